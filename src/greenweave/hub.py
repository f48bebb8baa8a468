"""The hub and the basic blocking calls (gevent's ``gevent.hub``).

The hub itself lives in :mod:`greenweave._core.hub`; this module is its
public face plus ``kill``, ``spawn_raw`` and ``signal``.
"""

from __future__ import annotations

import sys
from functools import partial
from typing import Any, Callable

from greenlet import GreenletExit, getcurrent
from greenlet import greenlet as RawGreenlet

from ._core.hub import Hub, Waiter, get_hub, get_hub_if_exists, reinit, set_hub, sleep
from .exceptions import BlockingSwitchOutError, ConcurrentObjectUseError, LoopExit

__all__ = [
    "GreenletExit",
    "Hub",
    "Waiter",
    "get_hub",
    "getcurrent",
    "kill",
    "reinit",
    "signal",
    "sleep",
    "spawn_raw",
    "idle",
    "get_hub_if_exists",
    "set_hub",
    "LoopExit",
    "BlockingSwitchOutError",
    "ConcurrentObjectUseError",
]


def spawn_raw(function: Callable[..., Any], *args: Any, **kwargs: Any) -> RawGreenlet:
    """Start ``function(*args, **kwargs)`` in a plain greenlet (no result, no links).

    Cheaper than :func:`greenweave.spawn`; an exception in it is reported by
    the hub.
    """
    if not callable(function):
        raise TypeError(f"function must be callable, not {function!r}")
    hub = get_hub()
    if kwargs:
        function = partial(function, **kwargs)
    g = RawGreenlet(function, hub)
    hub.loop.run_callback(g.switch, *args)
    return g


def kill(greenlet: Any, exception: Any = GreenletExit) -> None:
    """Raise ``exception`` in ``greenlet`` soon (without waiting for it to die).

    Works for :class:`greenweave.Greenlet` and raw greenlets alike; a
    Greenlet that has not started yet never runs.
    """
    if hasattr(greenlet, "kill"):
        greenlet.kill(exception=exception, block=False)
        return
    if greenlet.dead:
        return
    hub = get_hub()
    if getcurrent() is hub:
        greenlet.throw(exception)
    else:
        hub.loop.run_callback(greenlet.throw, exception)


def idle(priority: int = 0) -> None:
    """Block until the loop has nothing else to do (no callbacks, no ready I/O)."""
    hub = get_hub()
    watcher = hub.loop.idle()
    hub.wait(watcher)


class signal:
    """Run ``handler(*args, **kwargs)`` in a new greenlet each time ``signalnum``
    arrives (the main thread's hub only).  ``cancel()`` stops it.
    """

    greenlet_class: Any = None

    def __init__(self, signalnum: int, handler: Callable[..., Any], *args: Any,
                 **kwargs: Any) -> None:
        if not callable(handler):
            raise TypeError(f"signal handler must be callable, not {handler!r}")
        self.hub = get_hub()
        self.watcher = self.hub.loop.signal(signalnum, ref=False)
        self.watcher.start(self._start)
        self.handler = handler
        self.args = args
        self.kwargs = kwargs
        if self.greenlet_class is None:
            from .greenlet import Greenlet

            type(self).greenlet_class = Greenlet

    @property
    def ref(self) -> bool:
        return self.watcher.ref

    @ref.setter
    def ref(self, value: bool) -> None:
        self.watcher.ref = value

    def cancel(self) -> None:
        self.watcher.stop()

    def _start(self) -> None:
        try:
            greenlet = self.greenlet_class(self.handle)
            greenlet.switch()
        except:  # noqa: E722
            self.hub.handle_error(None, *sys.exc_info())

    def handle(self) -> None:
        try:
            self.handler(*self.args, **self.kwargs)
        except:  # noqa: E722
            self.hub.handle_error(None, *sys.exc_info())

    def __repr__(self) -> str:
        return f"<signal at {id(self):#x} {self.watcher.signum} handler={self.handler!r}>"
