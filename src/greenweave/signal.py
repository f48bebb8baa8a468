"""``signal.signal`` and friends that keep the loop's own signal handling working.

The loop installs its own Python-level handler for every signal that has a
signal watcher (``greenweave.signal_handler``, ``loop.signal``) and, in the
main thread, for ``SIGCHLD`` while child watchers exist (that is how
``greenweave.subprocess`` and ``greenweave.os.waitpid`` learn that children
exited).  The standard :func:`signal.signal` would silently replace that
handler and break them.  The functions here do not:

* For ``SIGCHLD`` always, and for any other signal the loop is handling at
  the time, a callable handler is run by the loop: in a new greenlet, as
  ``handler(signum, None)``, each time the signal arrives, *after* the loop
  has done its own work (for ``SIGCHLD``: after reaping watched children).
  Both the loop's watchers and the handler run.
* ``SIG_DFL``/``SIG_IGN`` for such a signal becomes what the loop restores
  once it no longer needs the signal.
* Any other case is exactly :func:`signal.signal`.

:func:`getsignal` reports what was set through :func:`signal` (or what the
loop will restore), never the loop's internal handler.  Every other name of
the standard :mod:`signal` module is re-exported unchanged.
"""

from __future__ import annotations

import signal as _signal
from signal import *  # noqa: F403 - this module is a drop-in for the stdlib one
from typing import Any, Callable

from ._core.hub import get_hub, get_hub_if_exists
from ._core.loop import _is_main_thread

__implements__ = ["signal", "getsignal", "set_wakeup_fd"]

# The originals, captured now: monkey patching may replace the module's names.
_signal_signal = _signal.signal
_signal_getsignal = _signal.getsignal
_signal_set_wakeup_fd = _signal.set_wakeup_fd

_SIGCHLD = getattr(_signal, "SIGCHLD", None)
_SIG_DFL = _signal.SIG_DFL
_SIG_IGN = _signal.SIG_IGN

#: signum -> handler set through :func:`signal` that the loop is in charge of.
_handlers: dict[int, Any] = {}
#: signum -> the loop signal watcher that runs a callable handler.
_routes: dict[int, Any] = {}


def _owned(loop: Any, signum: int) -> bool:
    return signum in loop._installed_signals


def getsignal(signalnum: int) -> Any:
    """Like :func:`signal.getsignal`, but reports handlers set through :func:`signal`
    (and what the loop will restore) instead of the loop's internal handler."""
    signalnum = int(signalnum)
    if signalnum in _handlers:
        return _handlers[signalnum]
    hub = get_hub_if_exists()
    if hub is not None and hub.loop.default and not hub.loop.closed \
            and _owned(hub.loop, signalnum):
        return hub.loop._installed_signals[signalnum]
    return _signal_getsignal(signalnum)


def _run_handler(signum: int) -> None:
    # In the hub, each time the signal arrives.
    handler = _handlers.get(signum)
    if callable(handler):
        from .greenlet import Greenlet

        Greenlet.spawn(handler, signum, None)


def _stop_route(signum: int) -> None:
    route = _routes.pop(signum, None)
    if route is not None:
        route.close()


def signal(signalnum: int, handler: Callable[[int, Any], Any] | int) -> Any:
    """Set the handler for ``signalnum``; return the previous one (see module docstring).

    Like :func:`signal.signal`, only in the main thread; ``handler`` is a
    callable taking ``(signum, frame)``, ``SIG_DFL`` or ``SIG_IGN``.
    """
    if not _is_main_thread():  # native identity: green threads don't count
        raise ValueError("signal only works in main thread of the main interpreter")
    if not callable(handler) and handler not in (_SIG_DFL, _SIG_IGN):
        raise TypeError("signal handler must be signal.SIG_IGN, signal.SIG_DFL, "
                        "or a callable object")
    signum = int(signalnum)
    if not 0 < signum < _signal.NSIG:
        raise ValueError("signal number out of range")
    old = getsignal(signum)
    if signum != _SIGCHLD:
        hub = get_hub_if_exists()
        if hub is None or hub.loop.closed or not _owned(hub.loop, signum):
            _stop_route(signum)
            _handlers.pop(signum, None)
            _signal_signal(signalnum, handler)
            return old
    loop = get_hub().loop
    if callable(handler):
        _handlers[signum] = handler
        route = _routes.get(signum)
        if route is None or route.loop is not loop or not route.active:
            if route is not None:
                route.close()
            route = loop.signal(signum, ref=False)
            route.start(_run_handler, signum)
            _routes[signum] = route
        return old
    # SIG_DFL / SIG_IGN: make it what the loop restores when it lets go.
    if _owned(loop, signum):
        loop._installed_signals[signum] = handler
    _stop_route(signum)  # may make the loop let go (and restore ``handler``)
    if _owned(loop, signum):
        _handlers[signum] = handler
    else:
        _handlers.pop(signum, None)
        _signal_signal(signalnum, handler)
    return old


def set_wakeup_fd(fd: int, /, *, warn_on_full_buffer: bool = True) -> int:
    """:func:`signal.set_wakeup_fd`.

    The loop's handlers are ordinary Python-level handlers, so the wake-up
    descriptor receives the signal number for signals the loop handles too
    (``SIGCHLD`` included).
    """
    return _signal_set_wakeup_fd(fd, warn_on_full_buffer=warn_on_full_buffer)
