"""The hub: one greenlet per native thread that runs the event loop.

Every other greenlet in the thread has the hub as its parent.  A greenlet
that must wait arranges for something (a watcher, a callback, a parked slot)
to switch back to it later, then switches to the hub; the hub runs the loop
until that happens.  When the loop runs out of work while someone is still
waiting, the hub throws :class:`LoopExit` into its parent (the thread's main
greenlet) rather than hang.
"""

from __future__ import annotations

import os
import sys
import traceback
from _thread import _local as _thread_local
from _thread import get_ident as _get_ident
from datetime import datetime, timezone
from itertools import count
from typing import Any

from greenlet import GreenletExit, getcurrent
from greenlet import greenlet as RawGreenlet

from ..exceptions import BlockingSwitchOutError, HubDestroyed, InvalidSwitchError, LoopExit
from .loop import _MAIN_THREAD_IDENT, Loop, _is_main_thread

__all__ = ["Hub", "Waiter", "get_hub", "get_hub_if_exists", "set_hub", "sleep", "reinit"]

_switch = RawGreenlet.switch
_tls = _thread_local()


def get_hub() -> Hub:
    """Return this native thread's hub, creating it on first use."""
    try:
        return _tls.hub
    except AttributeError:
        hub = _tls.hub = Hub()
        return hub


def get_hub_if_exists() -> Hub | None:
    return getattr(_tls, "hub", None)


def set_hub(hub: Hub | None) -> None:
    _tls.hub = hub
    if hub is None:
        del _tls.hub


_default_loop: Loop | None = None




def _root_greenlet() -> RawGreenlet:
    g = getcurrent()
    while g.parent is not None:
        g = g.parent
    return g


class Hub(RawGreenlet):
    """The greenlet that runs this thread's event loop."""

    #: Exceptions that, raised in any greenlet, are re-raised in the main greenlet.
    SYSTEM_ERROR: tuple = (KeyboardInterrupt, SystemExit, SystemError)
    #: Exceptions that end a greenlet without being reported as errors.
    NOT_ERROR: tuple = (GreenletExit, SystemExit)

    loop_class = Loop
    backend: str | None = None
    exception_stream: Any = None  # None means "sys.stderr at the time of printing"
    name = ""

    def __init__(self, loop: Loop | None = None, default: bool | None = None) -> None:
        RawGreenlet.__init__(self, None, _root_greenlet())
        if loop is None:
            global _default_loop
            main = _is_main_thread()
            if main and default is not False and _default_loop is not None \
                    and not _default_loop.closed:
                # The main thread's loop outlives a destroyed hub (as the
                # default loop does in gevent): a new hub takes it over.
                loop = _default_loop
            else:
                backend = self.backend
                if backend is None:
                    from .._config import config

                    backend = config.loop
                loop = self.loop_class(default=default, backend=backend)
                if loop.default and main:
                    _default_loop = loop
        self.loop = loop
        loop.error_handler = self.handle_error
        self.thread_ident = _get_ident()
        self._threadpool = None
        self._resolver = None
        self._destroying = False
        self._ident_counter = count()
        self.periodic_monitoring_thread = None

    # -- switching ---------------------------------------------------------
    def switch(self, *args: Any) -> Any:
        """Block the current greenlet: run the loop until something switches back."""
        if getcurrent() is self:
            raise BlockingSwitchOutError(
                "Impossible to call a blocking function in the event loop callback "
                "(code running in the hub greenlet tried to wait)"
            )
        return _switch(self, *args)

    def wait(self, watcher: Any) -> Any:
        """Start ``watcher`` and block until it fires; the watcher is stopped after."""
        waiter = Waiter(self)
        watcher.start(waiter.switch, waiter)
        try:
            result = waiter.get()
            if result is not waiter:
                raise InvalidSwitchError(
                    f"Invalid switch into {getcurrent()!r}: got {result!r} "
                    f"(expected {waiter!r}; while waiting on {watcher!r})"
                )
        finally:
            watcher.stop()

    def cancel_wait(self, watcher: Any, error: BaseException, close_watcher: bool = False) -> None:
        """Wake whatever greenlet waits on ``watcher`` by raising ``error`` in it."""
        if watcher.callback is not None:
            self.loop.run_callback(self._cancel_wait, watcher, error, close_watcher)
        elif close_watcher:
            watcher.close()

    def _cancel_wait(self, watcher: Any, error: BaseException, close_watcher: bool) -> None:
        active = watcher.active
        cb = watcher.callback
        if close_watcher:
            watcher.close()
        if active and cb is not None:
            glet = getattr(cb, "__self__", None)
            if isinstance(glet, Waiter):
                glet.throw(error)
            elif glet is not None and hasattr(glet, "throw"):
                glet.throw(error)

    # -- running -------------------------------------------------------
    def run(self) -> None:
        """The hub greenlet's body: run the loop; when it runs dry, raise LoopExit."""
        loop = self.loop
        while True:
            loop.error_handler = self.handle_error
            try:
                loop.run()
            except GreenletExit:
                if self._destroying:
                    raise
                continue
            except BaseException as exc:  # noqa: B036
                # Callbacks' errors are handled inside the loop; what escapes
                # was raised by a Python signal handler while the hub polled
                # (Ctrl-C, or a SIGALRM handler that raises).  Signal handlers
                # belong to the main thread's main greenlet: raise it there,
                # and keep the hub alive for whatever runs after.
                self.handle_system_error(type(exc), exc, exc.__traceback__)
                continue
            if self._destroying or loop.closed:
                return
            self.parent.throw(LoopExit("This operation would block forever", self))

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the loop has no more work (True) or ``timeout`` passes (False)."""
        if getcurrent() is self:
            raise BlockingSwitchOutError("Cannot join the hub from inside the hub")
        if self.dead:
            return True
        waiter = Waiter(self)
        timer = None
        if timeout is not None:
            timer = self.loop.timer(timeout, ref=False)
            timer.start(waiter.switch, None)
        try:
            try:
                waiter.get()
            except LoopExit:
                return True
        finally:
            if timer is not None:
                timer.close()
        return False

    def destroy(self, destroy_loop: bool | None = None) -> None:
        """Stop the hub and forget it for this thread; the next get_hub() makes a new one."""
        if self._threadpool is not None:
            self._threadpool.kill()
            self._threadpool = None
        if self._resolver is not None:
            try:
                self._resolver.close()
            except Exception:
                pass
            self._resolver = None
        self._destroying = True
        if not self.dead and getcurrent() is not self and bool(self):
            try:
                self.throw(HubDestroyed)
            except HubDestroyed:
                pass
        if destroy_loop is None:
            destroy_loop = not self.loop.default
        if destroy_loop:
            self.loop.destroy()
        if get_hub_if_exists() is self:
            set_hub(None)

    # -- errors --------------------------------------------------------
    def handle_error(self, context: Any, type: type, value: BaseException, tb: Any) -> None:
        """Report an exception raised in a greenlet or a loop callback.

        Ordinary errors are printed (traceback, then a timestamped line naming
        the context) and the loop carries on; ``SYSTEM_ERROR`` exceptions are
        re-raised in the main greenlet.
        """
        if self._destroying and getcurrent() is self and isinstance(value, GreenletExit):
            raise value
        if value is None and type is not None:
            value = type()
        if not issubclass(type, self.NOT_ERROR):
            self.print_exception(context, type, value, tb)
        if context is None or issubclass(type, self.SYSTEM_ERROR):
            self.handle_system_error(type, value, tb)

    def handle_system_error(self, type: type, value: BaseException, tb: Any = None) -> None:
        current = getcurrent()
        if current is self or current is self.parent or self.loop.closed:
            self.parent.throw(value)
        else:
            # Let the current greenlet finish its bookkeeping first.
            self.loop.run_callback(self.parent.throw, value)

    def print_exception(self, context: Any, type: type, value: BaseException, tb: Any) -> None:
        stream = self.exception_stream
        if stream is None:
            stream = sys.stderr
        elif isinstance(stream, str):
            stream = sys.stderr
        try:
            traceback.print_exception(type, value, tb, file=stream)
            when = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                ctx = self.format_context(context)
            except Exception:  # a broken __repr__ must not hide the error
                ctx = object.__repr__(context)
            stream.write(f"{when} {ctx} failed with {getattr(type, '__name__', type)}\n\n")
            stream.flush()
        except Exception:  # pragma: no cover - the stream itself is broken
            pass

    @staticmethod
    def format_context(context: Any) -> str:
        return repr(context)

    # -- services owned by the hub --------------------------------------
    @property
    def threadpool(self) -> Any:
        if self._threadpool is None:
            from .._config import config

            cls = config.threadpool
            kwargs: dict[str, Any] = {"hub": self}
            if config.threadpool_idle_task_timeout >= 0:
                # Idle workers leave after a while (as in gevent): a process
                # that looked up one name does not keep a thread forever.
                kwargs["idle_task_timeout"] = config.threadpool_idle_task_timeout
            try:
                self._threadpool = cls(config.threadpool_size, **kwargs)
            except TypeError:  # a custom pool class without that argument
                self._threadpool = cls(config.threadpool_size, hub=self)
        return self._threadpool

    @threadpool.setter
    def threadpool(self, value: Any) -> None:
        self._threadpool = value

    @property
    def resolver(self) -> Any:
        if self._resolver is None:
            from .._config import config

            self._resolver = config.resolver(hub=self)
        return self._resolver

    @resolver.setter
    def resolver(self, value: Any) -> None:
        self._resolver = value

    @property
    def main_hub(self) -> bool:
        return self.thread_ident == _MAIN_THREAD_IDENT

    def _next_ident(self) -> int:
        return next(self._ident_counter)

    def __repr__(self) -> str:
        loop = self.loop
        state = "dead " if self.dead else ""
        state += "destroyed" if loop.closed else loop.backend
        return (
            f"<Hub {self.name!r} at {id(self):#x} {state}"
            f"{' default' if self.loop.default else ''} pending={len(self.loop._ready)} "
            f"ref={self.loop._refs} thread_ident={self.thread_ident:#x}>"
        )


_NONE = object()


class Waiter:
    """A one-shot rendezvous between a greenlet and the hub (low level).

    The greenlet calls :meth:`get` to block; a loop callback later calls
    :meth:`switch` (with a value) or :meth:`throw`.  If the callback comes
    first, the value is stored and ``get`` returns it without blocking.
    """

    __slots__ = ("hub", "greenlet", "value", "_exception")

    def __init__(self, hub: Hub | None = None) -> None:
        self.hub = get_hub() if hub is None else hub
        self.greenlet: RawGreenlet | None = None
        self.value: Any = None
        self._exception: Any = _NONE

    def clear(self) -> None:
        self.greenlet = None
        self.value = None
        self._exception = _NONE

    def ready(self) -> bool:
        return self._exception is not _NONE

    def successful(self) -> bool:
        return self._exception is None

    @property
    def exception(self) -> Any:
        return None if self._exception is _NONE else self._exception

    @property
    def exc_info(self) -> Any:
        return None if self._exception in (_NONE, None) else self._exception

    def switch(self, value: Any = None) -> None:
        """Wake the waiting greenlet with ``value`` (call from the hub)."""
        greenlet = self.greenlet
        if greenlet is None:
            self.value = value
            self._exception = None
            return
        if getcurrent() is not self.hub:
            raise AssertionError("Can only use Waiter.switch method from the Hub greenlet")
        try:
            greenlet.switch(value)
        except:  # noqa: E722
            self.hub.handle_error(greenlet.switch, *sys.exc_info())

    def switch_args(self, *args: Any) -> None:
        self.switch(args)

    def throw(self, *throw_args: Any) -> None:
        """Raise an exception in the waiting greenlet (call from the hub)."""
        greenlet = self.greenlet
        if greenlet is None:
            self._exception = throw_args
            return
        if getcurrent() is not self.hub:
            raise AssertionError("Can only use Waiter.throw method from the Hub greenlet")
        try:
            greenlet.throw(*throw_args)
        except:  # noqa: E722
            self.hub.handle_error(greenlet.throw, *sys.exc_info())

    def get(self) -> Any:
        """Return the value passed to switch(), blocking until there is one."""
        exc = self._exception
        if exc is not _NONE:
            if exc is None:
                return self.value
            getcurrent().throw(*exc)
        if self.greenlet is not None:
            from ..exceptions import ConcurrentObjectUseError

            raise ConcurrentObjectUseError(f"This Waiter is already used by {self.greenlet!r}")
        self.greenlet = getcurrent()
        try:
            return self.hub.switch()
        finally:
            self.greenlet = None

    def __call__(self, source: Any) -> None:
        if source.exception is None:
            self.switch(source.value)
        else:
            self.throw(source.exception)

    def __repr__(self) -> str:
        state = "ready" if self.ready() else "waiting"
        return f"<{type(self).__name__} at {id(self):#x} {state} greenlet={self.greenlet!r}>"


def sleep(seconds: float = 0, ref: bool = True) -> None:
    """Block the current greenlet for ``seconds`` (negative counts as 0).

    ``sleep(0)`` yields: every other greenlet that is ready runs once before
    this one continues.  ``ref=False`` lets the loop exit while we sleep.
    """
    try:
        hub = _tls.hub
    except AttributeError:
        hub = get_hub()
    cur = getcurrent()
    if cur is hub:
        raise BlockingSwitchOutError(
            "Impossible to call blocking function in the event loop callback "
            "(sleep() called from the hub greenlet)"
        )
    loop = hub.loop
    if seconds <= 0:
        cb = [cur.switch, ()]
        loop._ready.append(cb)
        try:
            _switch(hub)
        except BaseException:
            cb[0] = None  # killed while yielding: don't resume us later
            raise
    else:
        timer = loop.timer(seconds, ref=ref)
        timer.start(cur.switch)
        try:
            _switch(hub)
        finally:
            timer.stop()


def reinit(hub: Hub | None = None) -> None:
    """Make the current thread's hub usable in a freshly forked child."""
    if hub is None:
        hub = get_hub_if_exists()
    if hub is None:
        return
    if not hub.loop.closed:
        hub.loop.reinit()
    if hub._threadpool is not None and hasattr(hub._threadpool, "_on_fork"):
        hub._threadpool._on_fork()
    if hub._resolver is not None and hasattr(hub._resolver, "_on_fork"):
        hub._resolver._on_fork()


if hasattr(os, "register_at_fork"):
    # Plain os.fork() in a program using greenweave leaves the child with a
    # working hub, not one that shares the parent's epoll instance.
    os.register_at_fork(after_in_child=reinit)
