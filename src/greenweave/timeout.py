"""Timeouts: bound how long a block of code may wait.

:class:`Timeout` is both an exception and a context manager.  Started, it
arms a timer; if the timer fires before :meth:`Timeout.cancel`, the timeout
(or the exception given instead) is raised *in the greenlet that started it*,
wherever that greenlet is blocked.  Each ``Timeout`` fires only in its own
scope: an outer timeout passes through an inner ``with Timeout(...)`` block
untouched, because ``__exit__`` only swallows its own instance (and only when
constructed with ``exception=False``).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

from greenlet import getcurrent

from ._core.hub import _tls, get_hub
from ._core.loop import TimerMechanics

__all__ = ["Timeout", "with_timeout"]

T = TypeVar("T")
_NONE = object()


def _on_expiration(glet: Any, exc: BaseException) -> None:
    if not glet.dead:
        glet.throw(exc)


class _FakeTimer:
    """Stands in for a timeout that can never fire (``Timeout(None)``)."""

    pending = False
    active = False
    seconds = None
    timer = None

    def start(self, *args: Any, **kwargs: Any) -> None:
        pass

    def cancel(self) -> None:
        pass

    stop = close = cancel

    def __enter__(self) -> _FakeTimer:
        return self

    def __exit__(self, *args: Any) -> None:
        pass


_FAKE_TIMER = _FakeTimer()


class Timeout(BaseException, TimerMechanics):
    """Raise ``exception`` (default: this instance) in the current greenlet after
    ``seconds``.

    ``seconds=None`` never fires.  ``exception`` may be an exception class or
    instance to raise instead, or ``False`` to make the ``with`` block simply
    end silently.  ``ref=False`` lets the loop exit while only this timeout
    is pending.

    The timeout is its own timer (it shares the loop's timer mechanics rather
    than owning a separate watcher object): start + cancel is the hottest
    path in code that bounds every wait.
    """

    # Timer state (see greenweave._core.loop.TimerMechanics); class defaults
    # keep construction cheap.
    _entry: list | None = None
    _ref = True
    repeat = 0.0
    _loop: Any = None

    def __init__(self, seconds: float | None = None, exception: Any = None,
                 ref: bool = True, priority: int = -1) -> None:
        # (BaseException.__new__ already stored the arguments as .args.)
        self.seconds = seconds
        self.exception = exception
        if not ref:
            self._ref = False

    def start(self) -> None:
        """Arm the timer for the current greenlet.  Raises if already pending."""
        if self._entry is not None:
            raise AssertionError(f"{self!r} is already started; to restart it, cancel it first")
        seconds = self.seconds
        if seconds is None:
            return
        exc = self.exception
        if exc is None or exc is False or isinstance(exc, str):
            throws: BaseException = self
        elif isinstance(exc, BaseException):
            throws = exc
        else:
            throws = exc()
        loop = self._loop
        if loop is None:
            try:
                loop = self._loop = _tls.hub.loop
            except AttributeError:
                loop = self._loop = get_hub().loop
        self._arm(loop, seconds, _on_expiration, (getcurrent(), throws))

    @property
    def timer(self) -> Timeout:
        """gevent exposes the timer watcher; here the timeout is its own timer."""
        return self

    @property
    def active(self) -> bool:
        return self._entry is not None

    @classmethod
    def start_new(cls, timeout: Any = None, exception: Any = None, ref: bool = True) -> Timeout:
        """Create and start a Timeout (or start and return ``timeout`` if it is one)."""
        if isinstance(timeout, Timeout):
            if not timeout.pending:
                timeout.start()
            return timeout
        t = cls(timeout, exception, ref=ref)
        t.start()
        return t

    @staticmethod
    def _start_new_or_dummy(timeout: Any, exception: Any = None, ref: bool = True) -> Any:
        if timeout is None:
            return _FAKE_TIMER
        return Timeout.start_new(timeout, exception, ref)

    @property
    def pending(self) -> bool:
        """True while the timer is armed."""
        return self._entry is not None

    def cancel(self) -> None:
        """Disarm the timer; the timeout can be started again."""
        if self._entry is not None:
            self._disarm(self._loop)

    stop = cancel

    def close(self) -> None:
        """Cancel the timer (kept for gevent compatibility: nothing else to release)."""
        if self._entry is not None:
            self._disarm(self._loop)

    def __repr__(self) -> str:
        classname = type(self).__name__
        pending = " pending" if self.pending else ""
        exception = "" if self.exception is None else f" exception={self.exception!r}"
        return f"<{classname} at {id(self):#x} seconds={self.seconds}{exception}{pending}>"

    def __str__(self) -> str:
        if self.seconds is None:
            return ""
        suffix = "" if self.seconds == 1 else "s"
        if self.exception is None:
            return f"{self.seconds} second{suffix}"
        if self.exception is False:
            return f"{self.seconds} second{suffix} (silent)"
        return f"{self.seconds} second{suffix}: {self.exception}"

    def __enter__(self) -> Timeout:
        if not self.pending:
            self.start()
        return self

    def __exit__(self, typ: Any, value: Any, tb: Any) -> bool | None:
        self.close()
        if value is self and self.exception is False:
            return True
        return None


def with_timeout(seconds: float | None, function: Callable[..., T], *args: Any,
                 **kwds: Any) -> T:
    """Call ``function(*args, **kwds)``, giving up after ``seconds``.

    On timeout return the keyword-only ``timeout_value`` if given, else raise
    :class:`Timeout`.
    """
    timeout_value = kwds.pop("timeout_value", _NONE)
    timeout = Timeout.start_new(seconds)
    try:
        try:
            return function(*args, **kwds)
        except Timeout as ex:
            if ex is timeout and timeout_value is not _NONE:
                return timeout_value  # type: ignore[return-value]
            raise
    finally:
        timeout.cancel()
