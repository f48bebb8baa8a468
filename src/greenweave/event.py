"""Events: :class:`Event` (a flag greenlets can wait for) and
:class:`AsyncResult` (a one-slot value or exception greenlets can wait for).

Both are thin layers over :class:`~greenweave._core.park.ParkingLot`: they
keep their own state and park the waiting greenlet while the state says "not
yet", re-checking after every wake-up.

Threads: ``set()`` (and ``set_exception()``) may be called from any native
thread, including one that has no hub; greenlets parked in other threads'
hubs are woken through those hubs' thread-safe callback queues.  An untimed
``wait()`` in a thread whose hub has nothing else to do raises
:class:`~greenweave.exceptions.LoopExit` (as gevent does) even if another
thread would set the event later: pass a timeout, or keep the hub busy, when
the setter is another thread.

Links: ``rawlink(callback)`` callbacks are one-shot.  They run, in
registration order and in one batch, from the hub of the thread that
registered the first pending link (that hub is reached thread-safely if the
object is set from another thread), after the waiting greenlets have been
woken.  A failing callback is reported through the hub's ``handle_error``
and does not stop the others.
"""

from __future__ import annotations

import sys
from _thread import get_ident
from collections import deque
from time import monotonic
from typing import Any, Callable

from ._core.hub import get_hub
from ._core.hub import sleep as _sleep
from ._core.park import ParkingLot
from .timeout import Timeout

try:
    from _thread import _count as _other_threads
except ImportError:  # pragma: no cover - every CPython has it

    def _other_threads() -> int:
        return 1


__all__ = ["Event", "AsyncResult"]


def _arm_recheck(callback: Callable[..., Any], *args: Any) -> None:
    """Close the lost-wake-up window of cross-thread use.

    A greenlet checks its object's state, then parks.  If another native
    thread changes the state in between, its ``unpark`` finds nobody parked
    yet and wakes nobody.  So, whenever other Python threads exist, a waiter
    queues ``callback(*args)`` on its own loop before parking: the callback
    runs after the park (the hub only runs it once the waiter has switched
    away) and unparks if the state is already good.  Single-threaded programs
    never pay for this.
    """
    get_hub().loop.run_callback(callback, *args)


class _Linkable:
    """One-shot ``rawlink`` callbacks notified from a hub (see module docstring)."""

    __slots__ = ("_links", "_link_loop", "_link_tid", "_notify_pending")

    def __init__(self) -> None:
        self._links: deque = deque()
        self._link_loop: Any = None
        self._link_tid = 0
        self._notify_pending = False

    def ready(self) -> bool:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def rawlink(self, callback: Callable[[Any], Any]) -> None:
        """Call ``callback(self)`` from the hub once this object is ready (once)."""
        if not callable(callback):
            raise TypeError(f"Expected callable: {callback!r}")
        links = self._links
        if not links:
            self._link_loop = get_hub().loop
            self._link_tid = get_ident()
        links.append(callback)
        if self.ready():
            self._schedule_notify()

    def unlink(self, callback: Callable[[Any], Any]) -> None:
        """Remove a callback added by :meth:`rawlink` (no error if it is absent)."""
        try:
            self._links.remove(callback)
        except ValueError:
            pass

    def linkcount(self) -> int:
        """How many callbacks are waiting to be notified."""
        return len(self._links)

    def _schedule_notify(self) -> None:
        if self._notify_pending or not self._links:
            return
        self._notify_pending = True
        loop = self._link_loop
        if self._link_tid == get_ident():
            loop.run_callback(self._notify_links)
        else:
            loop.run_callback_threadsafe(self._notify_links)

    def _notify_links(self) -> None:
        self._notify_pending = False
        links = self._links
        hub = None
        # Only the links present now: one added by a callback (which
        # schedules its own notification) must not loop us forever.
        for _ in range(len(links)):
            try:
                link = links.popleft()
            except IndexError:  # unlinked from another thread meanwhile
                break
            try:
                link(self)
            except:  # noqa: E722 - a bad link never stops the others
                if hub is None:
                    hub = get_hub()
                hub.handle_error((link, self), *sys.exc_info())


class Event(_Linkable):
    """A flag that greenlets can wait for.

    ``set()`` wakes every waiting greenlet; later ``wait()`` calls return at
    once until ``clear()``.  A greenlet that was waiting when ``set()`` was
    called returns True even if the flag was cleared again before it ran.
    """

    __slots__ = ("_flag", "_gen", "_lot", "__weakref__")

    def __init__(self) -> None:
        _Linkable.__init__(self)
        self._flag = False
        self._gen = 0  # bumped by every set(): tells waiters a set happened
        self._lot = ParkingLot()

    def is_set(self) -> bool:
        """Return the flag."""
        return self._flag

    isSet = is_set
    ready = is_set

    def set(self) -> None:
        """Set the flag and wake every waiter (callable from any thread)."""
        self._flag = True
        self._gen += 1
        self._lot.unpark_all()
        if self._links:
            self._schedule_notify()

    def clear(self) -> None:
        """Reset the flag: later ``wait()`` calls block until the next ``set()``."""
        self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the flag is set, or ``timeout`` seconds pass.

        Returns True if the flag was set (or a ``set()`` happened while we
        waited), else False.  A timeout of 0 or less polls: every other ready
        greenlet runs once, then the flag is returned.
        """
        if self._flag:
            return True
        gen = self._gen
        lot = self._lot
        if timeout is None:
            while True:
                if _other_threads():
                    _arm_recheck(self._recheck, gen)
                lot.park()
                if self._flag or self._gen != gen:
                    return True
        if timeout <= 0:
            # Poll: let every other ready greenlet run once, then look.
            _sleep(0)
            return self._flag or self._gen != gen
        deadline = monotonic() + timeout
        while True:
            if _other_threads():
                _arm_recheck(self._recheck, gen)
            remaining = deadline - monotonic()
            woken = remaining > 0 and lot.park(remaining)
            if self._flag or self._gen != gen:
                return True
            if not woken:
                return False

    def _recheck(self, gen: int) -> None:
        if self._flag or self._gen != gen:
            self._lot.unpark_all()

    def __repr__(self) -> str:
        state = "set" if self._flag else "clear"
        return (
            f"<{type(self).__name__} at {id(self):#x} {state} "
            f"waiters={len(self._lot)} links={len(self._links)}>"
        )

    # Pickling a wait queue makes no sense; say so clearly.
    def __reduce__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")


_UNSET = 0
_VALUE = 1
_ERROR = 2


class AsyncResult(_Linkable):
    """A value or an exception that will be delivered later, once or more.

    Waiters block in :meth:`get` / :meth:`wait` until :meth:`set` or
    :meth:`set_exception`.  An AsyncResult is a valid link target:
    ``greenlet.link(result)`` delivers the greenlet's value or exception.
    """

    __slots__ = ("_state", "_value", "_exception", "_exc_info", "_gen", "_lot", "__weakref__")

    def __init__(self) -> None:
        _Linkable.__init__(self)
        self._state = _UNSET
        self._value: Any = None
        self._exception: Any = None
        self._exc_info: tuple | None = None
        self._gen = 0
        self._lot = ParkingLot()

    # -- state ---------------------------------------------------------
    def ready(self) -> bool:
        """True once a value or an exception has been set."""
        return self._state != _UNSET

    done = ready

    def successful(self) -> bool:
        """True if a value (not an exception) has been set."""
        return self._state == _VALUE

    @property
    def value(self) -> Any:
        """The value set, or None (not ready, or an exception was set)."""
        return self._value

    @property
    def exception(self) -> Any:
        """The exception set, or None."""
        return self._exception

    @property
    def exc_info(self) -> tuple:
        """``(type, value, traceback)`` of the exception set, else ``()``."""
        return self._exc_info or ()

    # -- setting -------------------------------------------------------
    def set(self, value: Any = None) -> None:
        """Store ``value`` and wake every waiter (callable from any thread)."""
        self._value = value
        self._exception = None
        self._exc_info = None
        self._state = _VALUE
        self._wake()

    set_result = set

    def set_exception(self, exception: Any, exc_info: tuple | None = None) -> None:
        """Store ``exception`` (raised by :meth:`get`) and wake every waiter.

        The traceback re-raised is ``exc_info[2]`` if given, else the
        exception's own ``__traceback__`` (so an exception caught with
        ``except E as e: result.set_exception(e)`` keeps where it came from).
        """
        if exc_info is None or not exc_info or exc_info[1] is None:
            if isinstance(exception, BaseException):
                exc_info = (type(exception), exception, exception.__traceback__)
            else:  # an exception class
                exc_info = (exception, exception, None)
        self._value = None
        self._exception = exception
        self._exc_info = tuple(exc_info)
        self._state = _ERROR
        self._wake()

    def _wake(self) -> None:
        self._gen += 1
        self._lot.unpark_all()
        if self._links:
            self._schedule_notify()

    def __call__(self, source: Any) -> None:
        """Link-target protocol: take ``source``'s (a greenlet's) outcome."""
        if source.successful():
            self.set(source.value)
        else:
            self.set_exception(source.exception, getattr(source, "exc_info", None))

    # -- getting -------------------------------------------------------
    def _raise_exception(self) -> None:
        exc_info = self._exc_info
        exc = exc_info[1]
        if isinstance(exc, BaseException):
            raise exc.with_traceback(exc_info[2])
        raise exc

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Return the value, or raise the exception, once set.

        Not ready: with ``block=False`` raise :class:`~greenweave.Timeout` at
        once; else wait up to ``timeout`` seconds and raise ``Timeout`` after.
        """
        state = self._state
        if state == _VALUE:
            return self._value
        if state == _UNSET:
            if not block:
                raise Timeout()
            if not self._wait(timeout):
                raise Timeout(timeout)
            if self._state == _VALUE:
                return self._value
        self._raise_exception()

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(block=False)

    def result(self, timeout: float | None = None) -> Any:
        """``concurrent.futures`` spelling of :meth:`get`."""
        return self.get(timeout=timeout)

    def wait(self, timeout: float | None = None) -> Any:
        """Block until ready or ``timeout`` passes; return :attr:`value`
        (None if an exception was set or on timeout).  Never raises the
        stored exception."""
        if self._state == _UNSET:
            self._wait(timeout)
        return self._value

    def _wait(self, timeout: float | None) -> bool:
        gen = self._gen
        lot = self._lot
        if timeout is None:
            while True:
                if _other_threads():
                    _arm_recheck(self._recheck, gen)
                lot.park()
                if self._state != _UNSET:
                    return True
        if timeout <= 0:
            _sleep(0)
            return self._state != _UNSET
        deadline = monotonic() + timeout
        while True:
            if _other_threads():
                _arm_recheck(self._recheck, gen)
            remaining = deadline - monotonic()
            woken = remaining > 0 and lot.park(remaining)
            if self._state != _UNSET:
                return True
            if not woken:
                return False

    def _recheck(self, gen: int) -> None:
        if self._state != _UNSET or self._gen != gen:
            self._lot.unpark_all()

    # -- concurrent.futures compatibility ---------------------------------
    def cancel(self) -> bool:
        """Always False: an AsyncResult cannot be cancelled."""
        return False

    def cancelled(self) -> bool:
        return False

    def __repr__(self) -> str:
        state = self._state
        if state == _VALUE:
            detail = f"value={self._value!r}"
        elif state == _ERROR:
            detail = f"exception={self._exception!r}"
        else:
            detail = "unset"
        return (
            f"<{type(self).__name__} at {id(self):#x} {detail} "
            f"waiters={len(self._lot)} links={len(self._links)}>"
        )

    def __reduce__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")
