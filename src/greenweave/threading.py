"""Green threads for :mod:`threading` (gevent's ``gevent.threading``).

``greenweave.monkey.patch_thread()`` puts the names in ``__implements__``
into the standard :mod:`threading` module.  The module's own classes then
run on greenlets: ``threading.Thread`` starts a greenlet, ``Lock``,
``RLock``, ``Condition``, ``Semaphore``, ``Barrier``, ``Event`` and ``Timer``
block only the calling greenlet, ``threading.local`` is greenlet-local, and
``Thread.join`` and interpreter shutdown wait for green threads
cooperatively.  The main thread stays ``threading.main_thread()`` (a
``_MainThread``), and a greenlet that is not a thread gets a dummy thread
object that is forgotten once the greenlet is gone.

A real OS thread is still available after patching:
``greenweave.monkey.get_original('threading', 'Thread')`` (and ``'Timer'``)
return :class:`threading.Thread` subclasses that start native threads; a
greenlet can ``join()`` them without blocking its hub.
"""

from __future__ import annotations

import threading as __threading__
from functools import partial
from typing import Any, Callable
from weakref import ref as _wref

from greenlet import getcurrent

from . import thread as _gthread
from .local import local
from .thread import RLock, allocate_lock, get_ident, start_new_thread

#: What ``patch_thread`` replaces in :mod:`threading`.
__implements__ = [
    "local",
    "_start_new_thread",
    "_allocate_lock",
    "Lock",
    "_CRLock",
    "_DummyThread",
    "get_ident",
]
if hasattr(__threading__, "_set_sentinel"):
    __implements__.append("_set_sentinel")
__imports__: list[str] = []
__extensions__: list[str] = []

__all__ = [
    "Lock",
    "RLock",
    "Thread",
    "Timer",
    "allocate_lock",
    "get_ident",
    "getcurrent",
    "local",
    "start_new_thread",
]

Lock = _allocate_lock = allocate_lock
_CRLock = RLock
_set_sentinel = _gthread._set_sentinel
_get_ident = get_ident

#: The standard classes (they run on greenlets once ``threading`` is patched).
Thread = __threading__.Thread
Timer = __threading__.Timer


def _start_new_thread(function: Callable[..., Any], args: tuple = (),
                      kwargs: dict | None = None) -> int:
    """``threading``'s way to start a thread: a green thread, unless the
    ``Thread`` asked for a native one (see :class:`_NativeThread`)."""
    owner = getattr(function, "__self__", None)
    if owner is not None and getattr(owner, "_greenweave_native", False):
        return _gthread._start_native_thread(function, args, kwargs)
    return start_new_thread(function, args, kwargs)


class _NativeThread(__threading__.Thread):
    """A ``threading.Thread`` that runs in a real OS thread even after
    ``patch_thread`` (what ``get_original('threading', 'Thread')`` returns).

    Its code may use green primitives (its own hub is created on demand and
    destroyed when it ends); greenlets can ``join()`` it cooperatively.
    """

    _greenweave_native = True


class _NativeTimer(__threading__.Timer):
    """``threading.Timer`` in a real OS thread (``get_original('threading', 'Timer')``)."""

    _greenweave_native = True


def _forget(ident: int, thread_ref: Any, _glet_ref: Any) -> None:
    # The greenlet behind a dummy thread is gone: drop threading's record.
    active = __threading__._active
    thread = thread_ref()
    if thread is not None and active.get(ident) is thread:
        active.pop(ident, None)


class _DummyThread(__threading__._DummyThread):
    """``threading.current_thread()`` of a greenlet not started as a thread.

    Unlike the standard dummy (which lives forever), it is removed from
    ``threading``'s registry when its greenlet is garbage collected, so
    short-lived greenlets that log or call ``current_thread()`` leak nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        glet = getcurrent()
        if glet.parent is not None:
            self._gw_glet_ref = _wref(glet, partial(_forget, self._ident, _wref(self)))


_event_class: Any = None


def _threading_event_class() -> Any:
    """:class:`greenweave.event.Event` made fit to stand in for ``threading.Event``
    (what ``patch_thread(Event=True)`` installs), or None if unavailable.

    Adds what ``threading`` itself uses (``_at_fork_reinit``, ``isSet``) and
    keeps the hub alive during a ``wait()`` while other native threads exist,
    since one of them may be the one to ``set()`` it (e.g. a native thread
    announcing it has started).
    """
    global _event_class
    if _event_class is not None:
        return _event_class
    try:
        from .event import Event as _GreenEvent
    except ImportError:  # pragma: no cover - event.py is part of the package
        return None
    from ._core.hub import get_hub

    threads_elsewhere = _gthread._threads_elsewhere

    class Event(_GreenEvent):
        __slots__ = ()
        __doc__ = _GreenEvent.__doc__

        def wait(self, timeout: float | None = None) -> bool:
            if threads_elsewhere() and not self.is_set():
                loop = get_hub().loop
                loop.ref()
                try:
                    return _GreenEvent.wait(self, timeout)
                finally:
                    loop.unref()
            return _GreenEvent.wait(self, timeout)

        def isSet(self) -> bool:
            import warnings

            warnings.warn("isSet() is deprecated, use is_set() instead",
                          DeprecationWarning, stacklevel=2)
            return self.is_set()

        def __repr__(self) -> str:
            # The format of the threading.Event this stands in for.
            status = "set" if self.is_set() else "unset"
            return f"<threading.Event at {id(self):#x}: {status}>"

        def _at_fork_reinit(self) -> None:
            # In a forked child: fresh internals, same flag.
            was_set = self.is_set()
            _GreenEvent.__init__(self)
            if was_set:
                _GreenEvent.set(self)

    Event.__module__ = __name__
    Event.__qualname__ = "Event"
    _event_class = Event
    return Event
