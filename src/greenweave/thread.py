"""The :mod:`_thread` API on greenlets (gevent's ``gevent.thread``).

After ``greenweave.monkey.patch_thread()`` these replace the functions of
:mod:`_thread`, and so everything :mod:`threading` builds on them:

* :func:`start_new_thread` starts a greenlet, not an OS thread; a "thread
  identifier" (:func:`get_ident`) names a greenlet.  A native thread's root
  greenlet keeps the thread's native identifier, so the main thread stays
  ``threading.main_thread()`` and native threads started before patching are
  still recognised by :func:`threading.current_thread`.
* :class:`LockType` (:func:`allocate_lock`) is a lock whose ``acquire``
  blocks only the calling greenlet; :class:`RLock` is the reentrant version,
  owned by a greenlet.  Both may also be used from (and released by) other
  native threads.
* Green threads start, like native ones, in an empty :mod:`contextvars`
  context.
* :func:`interrupt_main` called from a green thread raises
  ``KeyboardInterrupt`` in the main greenlet, not in the caller.

Everything else (``error``, ``TIMEOUT_MAX``, ``get_native_id``...) is the
native module's own object.
"""

from __future__ import annotations

import _thread as __thread__
import signal as _signal
import sys
from contextvars import Context
from time import monotonic
from typing import Any, Callable, NoReturn

from greenlet import GreenletExit, getcurrent

from ._core.hub import get_hub, get_hub_if_exists
from ._core.park import ParkingLot
from .exceptions import LoopExit
from .greenlet import Greenlet
from .local import local as _local  # noqa: F401 - patched in as _thread._local


def _original(name: str) -> Any:
    """``_thread.name`` as it was before any monkey patching."""
    monkey = sys.modules.get("greenweave.monkey")
    saved = getattr(monkey, "saved", None)
    if saved:
        value = saved.get("_thread", {}).get(name)
        if value is not None:
            return value
    return getattr(__thread__, name, None)


_native_allocate_lock = _original("allocate_lock")
_native_get_ident = _original("get_ident")
_native_start_new_thread = _original("start_new_thread")
_native_stack_size = _original("stack_size")
_native_count = _original("_count")
_native_set_sentinel = _original("_set_sentinel")
_native_local = _original("_local")

error = __thread__.error
TIMEOUT_MAX = __thread__.TIMEOUT_MAX
get_native_id = __thread__.get_native_id
_native_interrupt_main = _original("interrupt_main")

#: What ``patch_thread`` replaces in :mod:`_thread`.
__implements__ = [
    "allocate_lock",
    "allocate",
    "get_ident",
    "exit",
    "exit_thread",
    "LockType",
    "RLock",
    "stack_size",
    "start_new_thread",
    "start_new",
    "interrupt_main",
    "_local",
]
if _native_set_sentinel is not None:
    __implements__.append("_set_sentinel")
#: Re-exported unchanged from :mod:`_thread`.
__imports__ = ["error", "TIMEOUT_MAX", "get_native_id"]
for _name in ("daemon_threads_allowed", "_is_main_interpreter", "_excepthook",
              "_ExceptHookArgs"):
    if hasattr(__thread__, _name):
        globals()[_name] = getattr(__thread__, _name)
        __imports__.append(_name)
del _name

__all__ = [
    "allocate_lock",
    "get_ident",
    "exit",
    "LockType",
    "stack_size",
    "start_new_thread",
    "error",
    "TIMEOUT_MAX",
    "allocate",
    "exit_thread",
    "interrupt_main",
    "start_new",
    "get_native_id",
    "RLock",
]


# -- identity ------------------------------------------------------------------


def get_ident(gr: Any = None) -> int:
    """The "thread identifier" of greenlet ``gr`` (default: the current one).

    A thread's root greenlet answers the thread's native identifier (so
    ``threading``'s records of the main thread and of native threads stay
    valid); any other greenlet answers ``id(greenlet)``.
    """
    if gr is None:
        gr = getcurrent()
        if gr.parent is None:
            return _native_get_ident()
        return id(gr)
    if gr.parent is None:
        cur = getcurrent()
        while cur.parent is not None:
            cur = cur.parent
        if cur is gr:
            return _native_get_ident()
    return id(gr)


# -- locks -----------------------------------------------------------------------


class LockType:
    """A non-reentrant lock that blocks only the calling greenlet
    (``_thread.lock`` semantics: any greenlet or thread may release it).

    The lock state itself is a native lock used only as an atomic
    test-and-set, so the lock is also correct across native threads; waiting
    happens in a :class:`~greenweave._core.park.ParkingLot`.
    """

    __slots__ = ("_block", "_lot", "_parked", "__weakref__")

    def __init__(self) -> None:
        self._block = _native_allocate_lock()
        self._lot = lot = ParkingLot()
        # What release() tests: the lot's own queue when it exposes one (a
        # C-level truth test on the hot path), else the lot itself.
        self._parked = getattr(lot, "_slots", lot)

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Acquire the lock; True if acquired.

        ``blocking=False`` never waits; ``timeout`` (seconds, -1 or None
        meaning forever) bounds the wait, as for ``_thread.lock``.
        """
        if timeout == -1 or timeout is None:
            if self._block.acquire(False):
                return True
            if not blocking:
                return False
            return self._wait(None)
        if not blocking:
            raise ValueError("can't specify a timeout for a non-blocking call")
        if timeout < 0:
            raise ValueError("timeout value must be a non-negative number")
        if timeout > TIMEOUT_MAX:
            raise OverflowError("timeout value is too large")
        if self._block.acquire(False):
            return True
        return self._wait(timeout)

    def _wait(self, timeout: float | None) -> bool:
        block = self._block
        lot = self._lot
        hub = get_hub()
        loop = hub.loop
        # With other native threads around, the release may come from one of
        # them: keep this hub's loop alive while we wait (no LoopExit), and
        # close the window between our failed check and our park with a
        # re-check that runs in our hub once we are parked.
        threaded = _threads_elsewhere()
        if threaded:
            loop.ref()
        try:
            if timeout is None:
                while True:
                    if threaded:
                        loop.run_callback(self._recheck)
                    try:
                        lot.park()
                    except LoopExit:
                        # The hub ran dry.  A native thread that had only just
                        # been started when we looked may release us after all.
                        if threaded or not _threads_elsewhere():
                            raise
                        threaded = True
                        loop.ref()
                        continue
                    if block.acquire(False):
                        return True
            deadline = monotonic() + timeout
            while True:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    return block.acquire(False)
                if threaded:
                    loop.run_callback(self._recheck)
                lot.park(remaining)
                if block.acquire(False):
                    return True
        finally:
            if threaded:
                loop.unref()

    def _recheck(self) -> None:
        # In the waiter's hub, after it parked: a release made by another
        # thread before the park found nobody to wake; wake someone now.
        if self._lot and not self._block.locked():
            self._lot.unpark()

    def release(self) -> None:
        """Release the lock (from any greenlet or thread); RuntimeError if unlocked."""
        self._block.release()
        if self._parked:
            self._lot.unpark()

    def locked(self) -> bool:
        """True if the lock is held."""
        return self._block.locked()

    def _at_fork_reinit(self) -> None:
        # In a forked child: the lock is free again; greenlets of this thread
        # that were waiting for it re-check.
        self._block = _native_allocate_lock()
        if self._lot:
            self._lot.unpark_all()

    acquire_lock = acquire
    release_lock = release
    locked_lock = locked
    __enter__ = acquire

    def __exit__(self, *args: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        cls = type(self)
        return f"<{state} {cls.__module__}.{cls.__qualname__} object at {id(self):#x}>"


#: A new, unlocked :class:`LockType`.  (The class itself, not a function: like
#: the built-in, it stays unbound when stored as a class attribute.)
allocate_lock = allocate = LockType


class RLock:
    """A reentrant lock owned by a greenlet (``_thread.RLock`` semantics).

    Also provides what :class:`threading.Condition` uses to wait with it
    (``_is_owned``, ``_release_save``, ``_acquire_restore``).
    """

    __slots__ = ("_block", "_owner", "_count", "__weakref__")

    def __init__(self) -> None:
        self._block = LockType()
        self._owner: int | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float | None = -1) -> bool:
        """Acquire, or re-enter if the current greenlet already owns it."""
        me = get_ident()
        if self._owner == me:
            self._count += 1
            return True
        if self._block.acquire(blocking, timeout):
            self._owner = me
            self._count = 1
            return True
        return False

    __enter__ = acquire

    def release(self) -> None:
        """Leave one level; the lock is free once every acquire is matched."""
        if self._owner != get_ident() or not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        count = self._count = self._count - 1
        if not count:
            self._owner = None
            self._block.release()

    def __exit__(self, *args: Any) -> None:
        self.release()

    def locked(self) -> bool:
        return self._block.locked()

    def _is_owned(self) -> bool:
        return self._owner == get_ident()

    def _recursion_count(self) -> int:
        return self._count if self._owner == get_ident() else 0

    def _release_save(self) -> tuple:
        if not self._count:
            raise RuntimeError("cannot release un-acquired lock")
        state = (self._count, self._owner)
        self._count = 0
        self._owner = None
        self._block.release()
        return state

    def _acquire_restore(self, state: tuple) -> None:
        self._block.acquire()
        self._count, self._owner = state

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        state = "locked" if self._block.locked() else "unlocked"
        cls = type(self)
        return (f"<{state} {cls.__module__}.{cls.__qualname__} object owner={self._owner or 0} "
                f"count={self._count} at {id(self):#x}>")


# -- starting threads ------------------------------------------------------

# Native threads started by _start_native_thread that have not finished.
# (_thread._count() only counts a new thread once it is running.)
_native_alive: set[object] = set()


def _threads_elsewhere() -> bool:
    """True if other native threads may exist (and so may release our locks or
    set our events): a waiter must then keep its hub alive."""
    return _native_count() > 0 or bool(_native_alive)


class _GreenThread(Greenlet):
    """The greenlet behind :func:`start_new_thread`.

    It releases the thread's sentinel locks (see :func:`_set_sentinel`) when
    the function has returned, which is what ``Thread.join`` and interpreter
    shutdown wait for.
    """

    def __init__(self, function: Callable[..., Any], args: tuple, kwargs: dict | None) -> None:
        Greenlet.__init__(self)
        self._gw_function = function
        self._gw_args = args
        self._gw_kwargs = kwargs or {}
        self._gw_sentinels: list[LockType] = []
        # Like a new native thread: an empty contextvars context.
        self.gr_context = Context()

    def _run(self) -> None:
        function = self._gw_function
        try:
            function(*self._gw_args, **self._gw_kwargs)
        except (SystemExit, GreenletExit):
            pass  # ends this thread quietly, as _thread does
        except KeyboardInterrupt:
            raise  # belongs to the main greenlet (the hub forwards it there)
        except BaseException:
            _report_unhandled(function)
        finally:
            self._gw_function = self._gw_args = self._gw_kwargs = None
            _live.discard(self)
            _release_all(self._gw_sentinels)

    def _describe_run(self) -> str:
        fn = self._gw_function
        return getattr(fn, "__qualname__", None) or repr(fn)


_live: set[_GreenThread] = set()


def _report_unhandled(function: Any) -> None:
    import traceback

    try:
        stream = sys.stderr
        if stream is None:
            return
        stream.write(f"Exception ignored in thread started by: {function!r}\n")
        traceback.print_exc(file=stream)
    except Exception:  # pragma: no cover - stderr itself is broken
        pass


def _release_all(sentinels: list) -> None:
    while sentinels:
        lock = sentinels.pop()
        if lock.locked():
            lock.release()


def start_new_thread(function: Callable[..., Any], args: tuple = (),
                     kwargs: dict | None = None) -> int:
    """Run ``function(*args, **kwargs)`` in a new green thread; return its ident.

    The greenlet starts at the next turn of the hub.  ``SystemExit`` ends it
    quietly; any other exception is reported on stderr.
    """
    if not callable(function):
        raise TypeError("first arg must be callable")
    if not isinstance(args, tuple):
        raise TypeError("2nd arg must be a tuple")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError("optional 3rd arg must be a dictionary")
    g = _GreenThread(function, args, kwargs)
    _live.add(g)
    g.rawlink(_live.discard)  # also covers a greenlet killed before it started
    g.start()
    return id(g)


start_new = start_new_thread

# Sentinels of native threads started through _start_native_thread.
_native_tls = _native_local() if _native_local is not None else None


def _start_native_thread(function: Callable[..., Any], args: tuple = (),
                         kwargs: dict | None = None) -> int:
    """Run ``function`` in a real OS thread (what an unpatched ``Thread`` does).

    Its sentinel locks are green locks released when ``function`` returns,
    so greenlets can ``join()`` it without blocking their hub.
    """
    if not callable(function):
        raise TypeError("first arg must be callable")
    if not isinstance(args, tuple):
        raise TypeError("2nd arg must be a tuple")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError("optional 3rd arg must be a dictionary")
    token = object()
    _native_alive.add(token)
    try:
        return _native_start_new_thread(_native_bootstrap, (function, args, kwargs or {}, token))
    except BaseException:
        _native_alive.discard(token)
        raise


def _native_bootstrap(function: Callable[..., Any], args: tuple, kwargs: dict,
                      token: object) -> None:
    sentinels: list[LockType] = []
    _native_tls.sentinels = sentinels
    try:
        function(*args, **kwargs)
    finally:
        _native_tls.sentinels = None
        _native_alive.discard(token)
        _release_all(sentinels)
        hub = get_hub_if_exists()
        if hub is not None:
            # This thread used green primitives: free its loop's descriptors.
            try:
                hub.destroy(destroy_loop=True)
            except Exception:  # pragma: no cover - best effort at thread exit
                pass


def _set_sentinel() -> Any:
    """A lock ``threading`` holds while the current thread runs.

    For a green thread (or a native thread started by greenweave) it is a
    green lock released when the thread's function returns, so waiting for
    it (``Thread.join``, shutdown) blocks only the waiting greenlet.
    Elsewhere it is the native sentinel.
    """
    cur = getcurrent()
    sentinels = getattr(cur, "_gw_sentinels", None)
    if sentinels is None and cur.parent is None and _native_tls is not None:
        sentinels = getattr(_native_tls, "sentinels", None)
    if sentinels is not None:
        lock = LockType()
        sentinels.append(lock)
        return lock
    if _native_set_sentinel is None:  # pragma: no cover - Python 3.13+
        return LockType()
    return _native_set_sentinel()


def _count() -> int:
    """Native threads started through ``_thread`` plus live green threads."""
    return _native_count() + sum(1 for g in list(_live) if not g.dead)


# -- the rest of the _thread API -------------------------------------------------


def exit() -> NoReturn:
    """End the current thread: ``SystemExit`` in a thread (green or native),
    ``GreenletExit`` in any other greenlet (which ends just that greenlet)."""
    cur = getcurrent()
    if cur.parent is None or isinstance(cur, _GreenThread):
        raise SystemExit
    raise GreenletExit


exit_thread = exit


def interrupt_main(signum: int = _signal.SIGINT) -> None:
    """Act as if signal ``signum`` had arrived in the main thread.

    Called from a green thread of the main OS thread, with the default
    ``SIGINT`` handler in place, the resulting ``KeyboardInterrupt`` is raised
    in the main greenlet (the main *thread*), not in the caller.  Otherwise
    this is :func:`_thread.interrupt_main`.
    """
    cur = getcurrent()
    if (cur.parent is not None and signum == _signal.SIGINT
            and _signal.getsignal(_signal.SIGINT) is _signal.default_int_handler):
        threading = sys.modules.get("threading")
        if threading is not None and threading.main_thread().ident == _native_get_ident():
            hub = get_hub()
            ready = getattr(hub.loop, "_ready", None)
            if ready is not None:
                # Ahead of everything queued: the main greenlet must get it
                # before any wake-up already on its way lets it carry on.
                ready.appendleft([_interrupt_root, (hub.parent,)])
            else:  # pragma: no cover - a loop without a ready queue
                hub.loop.run_callback(_interrupt_root, hub.parent)
            return
    _native_interrupt_main(signum)


def _interrupt_root(root: Any) -> None:
    if not root.dead:
        root.throw(KeyboardInterrupt)


def stack_size(size: int | None = None) -> int:
    """The native thread stack size setting (greenlets have no fixed stack).

    With ``size``, set it for native threads created later and return the
    previous value, as :func:`_thread.stack_size` does.
    """
    if size is None:
        return _native_stack_size()
    return _native_stack_size(size)
