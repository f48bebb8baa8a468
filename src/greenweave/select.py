"""Cooperative :func:`select` and :class:`poll`: they block only the calling greenlet.

Everything else of the standard :mod:`select` module is re-exported
(constants, ``error``, and, as in gevent, the blocking ``epoll`` object).

How they wait: first a zero-timeout call of the standard function answers
descriptors that are ready right now (and validates the arguments exactly as
the standard library does).  Otherwise the greenlet starts one I/O watcher
per descriptor, sleeps until the first one fires (or the timeout passes), and
asks the standard function again with a zero timeout for the precise result.

``select()``'s ``xlist`` is reported by those zero-timeout checks only: a
greenlet blocked in ``select()`` is woken by readability and writability,
not by exceptional conditions alone (as in gevent, which ignores ``xlist``).
"""

from __future__ import annotations

import select as __select__
from time import monotonic as _monotonic
from typing import Any, Iterable

from greenlet import getcurrent as _getcurrent
from greenlet import greenlet as _RawGreenlet

from ._core.hub import get_hub
from ._core.hub import sleep as _sleep
from .exceptions import BlockingSwitchOutError

for _name in dir(__select__):
    if not _name.startswith("_"):
        globals()[_name] = getattr(__select__, _name)
del _name

__implements__ = ["select", "poll"]
__all__ = sorted({n for n in dir(__select__) if not n.startswith("_")} | set(__implements__))

error = __select__.error
_original_select = __select__.select
_original_poll = getattr(__select__, "poll", None)

POLLIN = getattr(__select__, "POLLIN", 1)
POLLPRI = getattr(__select__, "POLLPRI", 2)
POLLOUT = getattr(__select__, "POLLOUT", 4)
# Which registered bits get a read / write watcher.  (A descriptor registered
# only for other bits, e.g. POLLPRI alone, is reported by the zero-timeout
# checks but does not wake a blocked poll(): watching it for readability would
# spin on ordinary data it did not ask for.)
_POLL_READ = POLLIN | getattr(__select__, "POLLRDNORM", 0)
_POLL_WRITE = POLLOUT | getattr(__select__, "POLLWRNORM", 0)

_switch = _RawGreenlet.switch
_TIMED_OUT = object()


def _fileno(obj: Any) -> int:
    if isinstance(obj, int):
        return obj
    return obj.fileno()


def _check_timeout(timeout: Any) -> float | None:
    if timeout is None:
        return None
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise TypeError(f"timeout must be a number or None, not {type(timeout).__name__}")
    if seconds < 0:
        raise ValueError("timeout must be non-negative")
    return seconds


def _block(hub: Any, watchers: list, deadline: float | None) -> None:
    """Start ``watchers``, sleep until one fires or ``deadline``, stop them all."""
    cur = _getcurrent()
    if cur is hub:
        raise BlockingSwitchOutError(
            "Impossible to call a blocking function in the event loop callback")
    switch = cur.switch
    timer = None
    try:
        for w in watchers:
            w.start(switch)
        if deadline is not None:
            remaining = deadline - _monotonic()
            if remaining <= 0:
                return
            timer = hub.loop.timer(remaining)
            timer.start(switch, _TIMED_OUT)
        _switch(hub)
    finally:
        for w in watchers:
            w.stop()
        if timer is not None:
            timer.stop()


def _yield_once() -> None:
    """Ready at once, but the caller was willing to wait: let every other ready
    greenlet run once first, or a loop around select()/poll() on an
    always-ready descriptor would starve the rest of the program."""
    if _getcurrent() is not get_hub():
        _sleep(0)


def select(rlist: Iterable[Any], wlist: Iterable[Any], xlist: Iterable[Any],
           timeout: float | None = None) -> tuple[list, list, list]:
    """Wait until some of the objects are ready (see :func:`select.select`).

    Blocks only the calling greenlet.  ``timeout`` is in seconds (``None``:
    no limit).  Returns the three lists of ready objects, empty on timeout.
    """
    seconds = _check_timeout(timeout)
    # The first look uses the caller's own lists, as select.select does (a
    # fileno() that mutates its list sees the same thing it would there);
    # other iterables are read once, into lists.
    if not isinstance(rlist, (list, tuple)):
        rlist = list(rlist)
    if not isinstance(wlist, (list, tuple)):
        wlist = list(wlist)
    if not isinstance(xlist, (list, tuple)):
        xlist = list(xlist)
    result = _original_select(rlist, wlist, xlist, 0)
    if seconds == 0:
        return result
    rlist = list(rlist)
    wlist = list(wlist)
    xlist = list(xlist)
    if result[0] or result[1] or result[2]:
        _yield_once()
        return result
    deadline = None if seconds is None else _monotonic() + seconds
    hub = get_hub()
    io = hub.loop.io
    watchers = []
    try:
        for obj in rlist:
            watchers.append(io(_fileno(obj), 1))
        for obj in wlist:
            watchers.append(io(_fileno(obj), 2))
        while True:
            _block(hub, watchers, deadline)
            result = _original_select(rlist, wlist, xlist, 0)
            if result[0] or result[1] or result[2]:
                return result
            if deadline is not None and _monotonic() >= deadline:
                return result
    finally:
        for w in watchers:
            w.close()


class poll:
    """A cooperative :class:`select.poll` object.

    ``register``, ``modify`` and ``unregister`` behave (and fail) exactly like
    the standard ones; :meth:`poll` blocks only the calling greenlet.  Each
    registered descriptor keeps its I/O watchers until unregistered, so
    repeated ``poll()`` calls cost no kernel registration.
    """

    def __init__(self) -> None:
        if _original_poll is None:  # pragma: no cover - platforms without poll
            raise OSError("poll() is not available on this platform")
        self._std = _original_poll()
        self._fds: dict[int, list] = {}
        self._hub: Any = None
        self._polling = False

    def _watchers_for(self, fd: int, mask: int) -> list:
        events = (1 if mask & _POLL_READ else 0) | (2 if mask & _POLL_WRITE else 0)
        if not events:
            return []
        if self._hub is None:
            self._hub = get_hub()
        return [self._hub.loop.io(fd, events)]

    @staticmethod
    def _close(watchers: list) -> None:
        for w in watchers:
            w.close()

    def register(self, fd: Any, eventmask: int = POLLIN | POLLPRI | POLLOUT) -> None:
        """Watch ``fd`` (an int or an object with ``fileno()``) for ``eventmask``."""
        self._std.register(fd, eventmask)
        fd = _fileno(fd)
        old = self._fds.get(fd)
        if old is not None:
            self._close(old)
        self._fds[fd] = self._watchers_for(fd, eventmask)

    def modify(self, fd: Any, eventmask: int) -> None:
        """Change the event mask of a registered ``fd`` (FileNotFoundError if
        it is not registered)."""
        self._std.modify(fd, eventmask)
        fd = _fileno(fd)
        old = self._fds.get(fd)
        if old is not None:
            self._close(old)
        self._fds[fd] = self._watchers_for(fd, eventmask)

    def unregister(self, fd: Any) -> None:
        """Stop watching ``fd`` (KeyError if it is not registered)."""
        self._std.unregister(fd)
        watchers = self._fds.pop(_fileno(fd), None)
        if watchers:
            self._close(watchers)

    def poll(self, timeout: float | None = None) -> list[tuple[int, int]]:
        """Wait for events; ``timeout`` in milliseconds (``None`` or negative:
        no limit).  Returns a list of ``(fd, events)``, empty on timeout."""
        if timeout is None:
            seconds = None
        else:
            try:
                ms = float(timeout)
            except (TypeError, ValueError):
                raise TypeError(
                    f"timeout must be an integer or None, not {type(timeout).__name__}")
            seconds = None if ms < 0 else ms / 1000.0
        return self._poll_seconds(seconds)

    def _poll_seconds(self, seconds: float | None) -> list[tuple[int, int]]:
        if self._polling:
            raise RuntimeError("concurrent poll() invocation")
        result = self._std.poll(0)
        if seconds == 0:
            return result
        if result:
            _yield_once()
            return result
        deadline = None if seconds is None else _monotonic() + seconds
        hub = self._hub if self._hub is not None else get_hub()
        watchers = [w for ws in self._fds.values() for w in ws]
        self._polling = True
        try:
            while True:
                _block(hub, watchers, deadline)
                result = self._std.poll(0)
                if result or (deadline is not None and _monotonic() >= deadline):
                    return result
        finally:
            self._polling = False

    def close(self) -> None:
        """Release the watchers (not part of the standard API; harmless)."""
        for watchers in self._fds.values():
            self._close(watchers)
        self._fds.clear()
