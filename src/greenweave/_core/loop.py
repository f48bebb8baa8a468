"""The event loop's policy: callbacks, timers, watchers and the run cycle.

The loop owns an I/O backend (:mod:`.backend_epoll` by default, mechanics
only) and decides *when* things run:

1. callbacks queued with :meth:`Loop.run_callback` run in FIFO order; each
   iteration runs only those queued before it started, so ``sleep(0)`` lets
   every other ready greenlet run exactly once and I/O is never starved;
2. the backend is polled, with a timeout that reaches the nearest timer (0 if
   callbacks are waiting, forever if only I/O can wake us);
3. ready I/O watchers, expired timers and check watchers fire.

:meth:`Loop.run` returns when no active *referencing* watcher and no callback
is left: nothing could ever happen again.  The hub turns that into
:class:`~greenweave.exceptions.LoopExit` for whoever was waiting.

Watchers follow the libev/gevent shape that third-party integrations use:
``loop.io(fd, events)``, ``loop.timer(after, repeat)``, ``loop.async_()``,
``loop.signal(signum)``, ``loop.child(pid)``, ``loop.idle()``,
``loop.prepare()``, ``loop.check()``; each has ``start(callback, *args)``,
``stop()``, ``close()``, ``active``, ``pending``, ``ref`` and is a context
manager.  Callbacks are invoked directly from the loop (in the hub greenlet).

Design notes (why it is shaped like this):

* I/O interest is level-triggered and *lazily reduced*: stopping an I/O
  watcher does not touch epoll; the registration is only narrowed when an
  event arrives that nobody wants any more.  A socket that waits for reading
  again and again therefore costs one ``epoll_ctl`` in its lifetime, not two
  per wait.
* Timers live in a heap of ``[when, seq, watcher]`` entries; stopping a timer
  blanks its entry (O(1)) and the heap is compacted when more than half of it
  is dead, so start+cancel churn (timeouts that never fire) stays cheap.
* Other native threads hand work in through :meth:`run_callback_threadsafe`,
  which appends to the (thread-safe) callback deque and pokes an eventfd.
"""

from __future__ import annotations

import _thread
import os
import signal as _signal
import sys
import threading
from collections import deque
from heapq import heapify, heappop, heappush
from itertools import count
from time import monotonic
from typing import Any, Callable

try:
    from .backend_epoll import EpollBackend as _DefaultBackend
except ImportError:  # pragma: no cover - non-Linux
    from .backend_selectors import SelectorsBackend as _DefaultBackend  # type: ignore

from .backend_selectors import SelectorsBackend

# Bound at import: monkey patching replaces os.waitpid, os.close and
# signal.signal with cooperative versions that must never run inside the loop.
_waitpid = os.waitpid
_close = os.close
_set_signal = _signal.signal

# Which child is waitable, without reaping it (see Loop._reap_children).
_waitid = getattr(os, "waitid", None) if hasattr(os, "WNOWAIT") else None
_WAITID_PEEK = (os.WEXITED | os.WNOHANG | os.WNOWAIT) if _waitid is not None else 0

__all__ = ["Loop", "Callback", "READ", "WRITE", "MAXPRI", "MINPRI"]

READ = 1
WRITE = 2
#: Seconds of back-to-back callback batches before the loop polls I/O and
#: timers again (gevent checks its switch interval the same way).
CALLBACK_BUDGET = 0.001
MAXPRI = 2
MINPRI = -2

# Native identities, bound at import: after monkey.patch_thread(),
# threading.current_thread() describes green threads, and only the native
# main thread may install signal handlers or own the default loop.
_native_get_ident = _thread.get_ident
_MAIN_THREAD_IDENT = threading.main_thread().ident


def _is_main_thread() -> bool:
    """True in the process's native main thread (whatever greenlet runs)."""
    return _native_get_ident() == _MAIN_THREAD_IDENT


def _make_backend(name: str | None):
    if not name or name == "default":
        return _DefaultBackend()
    if name == "epoll":
        from .backend_epoll import EpollBackend

        return EpollBackend()
    if name in ("selectors", "select", "poll"):
        return SelectorsBackend()
    raise ValueError(f"unknown loop backend {name!r} (choose 'epoll' or 'selectors')")


class Callback(list):
    """A callback queued with :meth:`Loop.run_callback`.  ``stop()`` cancels it.

    The ready queue holds ``[function, args]`` lists: internal hot paths
    (``sleep(0)``, starting a greenlet, waking a parked one) append plain
    lists, which cost a fifth of an object with ``__init__``; the public API
    hands out this list subclass, which adds the gevent-style attributes.
    A cancelled entry has ``None`` as its function.
    """

    __slots__ = ()

    def __init__(self, callback: Callable[..., Any], args: tuple) -> None:
        list.__init__(self, (callback, args))

    @property
    def callback(self) -> Callable[..., Any] | None:
        return self[0]

    @callback.setter
    def callback(self, value: Callable[..., Any] | None) -> None:
        self[0] = value

    @property
    def args(self) -> tuple:
        return self[1]

    @args.setter
    def args(self, value: tuple) -> None:
        self[1] = value

    def stop(self) -> None:
        self[0] = None
        self[1] = ()

    close = stop

    @property
    def pending(self) -> bool:
        return self[0] is not None

    def __bool__(self) -> bool:
        return self[0] is not None

    def __hash__(self) -> int:  # type: ignore[override]
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"<Callback {self[0]!r} pending={self[0] is not None}>"


class _FdEntry:
    """Per-descriptor state: the active I/O watchers and what epoll knows."""

    __slots__ = ("watchers", "mask", "alive", "ident")

    def __init__(self) -> None:
        self.watchers: list[IoWatcher] = []  # active ones only
        self.mask = 0  # native mask currently registered (0: not registered)
        self.alive = 0  # watcher objects created and not closed
        self.ident: tuple[int, int] | None = None  # (st_dev, st_ino) when registered


def _fd_ident(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class Watcher:
    """Common watcher behaviour: start/stop/close, ref counting, context manager."""

    __slots__ = ("loop", "callback", "args", "_active", "_ref", "__weakref__")

    def __init__(self, loop: Loop, ref: bool = True, priority: int | None = None) -> None:
        self.loop = loop
        self.callback: Callable[..., Any] | None = None
        self.args: tuple = ()
        self._active = False
        self._ref = ref

    # -- subclass hooks --------------------------------------------------
    def _activate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _deactivate(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public API ------------------------------------------------------
    def start(self, callback: Callable[..., Any], *args: Any) -> None:
        if callback is None:
            raise TypeError("callback must be callable, not None")
        self.callback = callback
        self.args = args
        if not self._active:
            self._active = True
            if self._ref:
                self.loop._refs += 1
            self._activate()

    def stop(self) -> None:
        if self._active:
            self._active = False
            if self._ref:
                self.loop._refs -= 1
            self._deactivate()
        self.callback = None
        self.args = ()

    def close(self) -> None:
        self.stop()

    def _fired_once(self) -> None:
        """Mark a one-shot watcher inactive after it fired (callback kept for the call)."""
        if self._active:
            self._active = False
            if self._ref:
                self.loop._refs -= 1

    @property
    def active(self) -> bool:
        return self._active

    @property
    def pending(self) -> bool:
        # Events are dispatched straight to the callback, so nothing is ever
        # left pending between loop iterations.
        return False

    @property
    def ref(self) -> bool:
        return self._ref

    @ref.setter
    def ref(self, value: bool) -> None:
        value = bool(value)
        if value != self._ref:
            if self._active:
                self.loop._refs += 1 if value else -1
            self._ref = value

    @property
    def priority(self) -> int:
        return 0

    @priority.setter
    def priority(self, value: int) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        extra = self._format()
        return (
            f"<{type(self).__name__} at {id(self):#x}{extra} active={self._active} "
            f"ref={self._ref} callback={self.callback!r}>"
        )

    def _format(self) -> str:
        return ""


class IoWatcher(Watcher):
    """Readiness of a file descriptor: ``events`` is 1 (read), 2 (write) or 3."""

    __slots__ = ("fd", "events", "_native", "_match", "_entry", "_synced", "_pass_events",
                 "_closed")

    def __init__(self, loop: Loop, fd: int, events: int, ref: bool = True,
                 priority: int | None = None) -> None:
        if fd < 0:
            raise ValueError(f"fd must be non-negative, got {fd}")
        if events & ~3 or not events:
            raise ValueError(f"events must be 1 (read), 2 (write) or 3, got {events!r}")
        Watcher.__init__(self, loop, ref)
        self.fd = fd
        self.events = events
        self._native = loop._backend_native(events)
        # Error and hang-up conditions wake every watcher of the fd: the read
        # or write then reports the error.  (Not matching them would leave a
        # level-triggered error spinning the loop.)
        self._match = self._native | loop._backend.ERRORS
        entry = loop._fds.get(fd)
        if entry is not None and entry.mask and entry.ident != _fd_ident(fd):
            # The fd number was closed and reused behind our back while old
            # watchers were left open.  If a dup kept the old file alive, the
            # kernel still reports it under this number and no epoll_ctl can
            # reach it: start over with a fresh epoll set.
            entry = None
            loop._drop_fd_and_rebuild(fd)
        if entry is None:
            entry = loop._fds[fd] = _FdEntry()
        entry.alive += 1
        self._entry = entry
        # A new watcher re-asserts its registration once: the fd number may
        # have been closed and reused since epoll last heard of it.
        self._synced = False
        self._pass_events = False
        self._closed = False

    # start/stop are written out flat: every socket wait goes through both.
    def start(self, callback: Callable[..., Any], *args: Any, pass_events: bool = False) -> None:
        if self._closed:
            raise ValueError("operation on closed io watcher")
        if callback is None:
            raise TypeError("callback must be callable, not None")
        self._pass_events = pass_events
        self.callback = callback
        self.args = args
        if self._active:
            return
        self._active = True
        loop = self.loop
        if self._ref:
            loop._refs += 1
        entry = self._entry
        entry.watchers.append(self)
        native = self._native
        if not self._synced or native & ~entry.mask:
            self._synced = True
            if entry.mask:
                entry.mask |= native
                loop._backend.modify(self.fd, entry.mask)
            else:
                entry.mask = native
                entry.ident = _fd_ident(self.fd)
                loop._backend.register(self.fd, native)

    def stop(self) -> None:
        # Deliberately no epoll_ctl here: see the module docstring.
        if self._active:
            self._active = False
            if self._ref:
                self.loop._refs -= 1
            watchers = self._entry.watchers
            if watchers and watchers[-1] is self:
                watchers.pop()
            else:
                try:
                    watchers.remove(self)
                except ValueError:
                    pass
        self.callback = None
        self.args = ()

    def close(self) -> None:
        if self._closed:
            return
        self.stop()
        self._closed = True
        entry = self._entry
        entry.alive -= 1
        loop = self.loop
        if entry.alive <= 0 and loop._fds.get(self.fd) is entry:
            del loop._fds[self.fd]
            if entry.mask and loop._backend is not None:
                loop._backend.unregister(self.fd)

    def _format(self) -> str:
        return f" fd={self.fd} events={self.events}"


class TimerMechanics:
    """Heap-entry mechanics shared by :class:`TimerWatcher` and ``Timeout``.

    Written out flat (every ``Timeout`` and every timed wait goes through
    here).  A heap entry is ``[when, seq, owner, callback, args]``; the owner
    only needs ``_entry`` (it is active exactly while it has one) and
    ``_ref``, plus ``repeat`` for repeating timers.
    """

    __slots__ = ()

    def _arm(self, loop: Loop, after: float, callback: Callable[..., Any], args: tuple) -> None:
        entry = self._entry
        if entry is not None:  # restart: the old entry dies
            entry[2] = None
            loop._timers_dead += 1
        elif self._ref:
            loop._refs += 1
        entry = self._entry = [monotonic() + after if after > 0 else monotonic(),
                               next(loop._seq), self, callback, args]
        heappush(loop._timers, entry)

    def _disarm(self, loop: Loop) -> None:
        entry = self._entry
        if entry is not None:
            entry[2] = None
            self._entry = None
            if self._ref:
                loop._refs -= 1
            dead = loop._timers_dead = loop._timers_dead + 1
            if dead > 64 and dead * 2 > len(loop._timers):
                loop._compact_timers()


class TimerWatcher(TimerMechanics, Watcher):
    """Fires ``after`` seconds from start, then every ``repeat`` seconds if nonzero."""

    __slots__ = ("after", "repeat", "_entry")

    def __init__(self, loop: Loop, after: float = 0.0, repeat: float = 0.0, ref: bool = True,
                 priority: int | None = None) -> None:
        if repeat < 0:
            raise ValueError(f"repeat must be non-negative, got {repeat!r}")
        self.loop = loop
        self.callback = None
        self.args = ()
        self._ref = ref
        self.after = after
        self.repeat = repeat
        self._entry: list | None = None

    def start(self, callback: Callable[..., Any], *args: Any, update: bool | None = None) -> None:
        if callback is None:
            raise TypeError("callback must be callable, not None")
        self.callback = callback
        self.args = args
        self._arm(self.loop, self.after, callback, args)

    def stop(self) -> None:
        self._disarm(self.loop)
        self.callback = None
        self.args = ()

    @property
    def active(self) -> bool:
        return self._entry is not None

    @property
    def _active(self) -> bool:  # what the Watcher base class reads
        return self._entry is not None

    def _activate(self) -> None:  # pragma: no cover - start() is self-contained
        raise AssertionError("unreachable")

    _deactivate = _activate

    def again(self, callback: Callable[..., Any], *args: Any) -> None:
        """Restart with the repeat interval (libev's ``ev_timer_again``)."""
        self.start(callback, *args)

    @property
    def at(self) -> float:
        return self._entry[0] if self._entry else 0.0

    def _format(self) -> str:
        return f" after={self.after} repeat={self.repeat}"


class _PlainWatcher(Watcher):
    """Watchers kept in a per-loop list (prepare, check, idle)."""

    __slots__ = ()
    _list_name = ""

    def _activate(self) -> None:
        getattr(self.loop, self._list_name).append(self)

    def _deactivate(self) -> None:
        try:
            getattr(self.loop, self._list_name).remove(self)
        except ValueError:
            pass


class PrepareWatcher(_PlainWatcher):
    """Runs just before the loop polls for I/O."""

    __slots__ = ()
    _list_name = "_prepares"


class CheckWatcher(_PlainWatcher):
    """Runs just after the loop polled for I/O."""

    __slots__ = ()
    _list_name = "_checks"


class IdleWatcher(_PlainWatcher):
    """Runs when an iteration found nothing else to do (no callback, no event)."""

    __slots__ = ()
    _list_name = "_idles"


class AsyncWatcher(Watcher):
    """Wakes the loop from any native thread: ``send()`` is thread-safe.

    Several sends before the loop gets round to it coalesce into one call.
    """

    __slots__ = ("_sent",)

    def __init__(self, loop: Loop, ref: bool = True, priority: int | None = None) -> None:
        Watcher.__init__(self, loop, ref)
        self._sent = False

    def _activate(self) -> None:
        pass

    def _deactivate(self) -> None:
        pass

    def send(self) -> None:
        if not self._sent:
            self._sent = True
            self.loop.run_callback_threadsafe(self._dispatch)

    def send_ignoring_arg(self, _ignored: Any) -> None:
        self.send()

    def _dispatch(self) -> None:
        self._sent = False
        if self._active:
            self.callback(*self.args)

    @property
    def pending(self) -> bool:
        return self._sent


class SignalWatcher(Watcher):
    """Runs its callback in the loop each time ``signum`` arrives (main thread only)."""

    __slots__ = ("signum",)

    def __init__(self, loop: Loop, signum: int, ref: bool = True,
                 priority: int | None = None) -> None:
        if not 0 < signum < _signal.NSIG:
            raise ValueError(f"illegal signal number {signum!r}")
        Watcher.__init__(self, loop, ref)
        self.signum = signum

    def _activate(self) -> None:
        self.loop._signals.add(self)
        try:
            self.loop._sync_signal_handlers()
        except BaseException:
            self.loop._signals.discard(self)
            self._active = False
            if self._ref:
                self.loop._refs -= 1
            raise

    def _deactivate(self) -> None:
        self.loop._signals.discard(self)
        self.loop._sync_signal_handlers()

    def _format(self) -> str:
        return f" signum={self.signum}"


class ChildWatcher(Watcher):
    """Fires when child process ``pid`` exits; ``rpid``/``rstatus`` hold the result."""

    __slots__ = ("pid", "rpid", "rstatus", "trace", "reaped_elsewhere")

    def __init__(self, loop: Loop, pid: int, trace: int = 0, ref: bool = True) -> None:
        Watcher.__init__(self, loop, ref)
        self.pid = pid
        self.trace = trace
        self.rpid = 0
        self.rstatus = 0
        #: True when someone else reaped the child first (rstatus is then 0,
        #: not the real status).
        self.reaped_elsewhere = False

    def _activate(self) -> None:
        loop = self.loop
        loop._children.setdefault(self.pid, []).append(self)
        loop._watch_children_changed()
        # The child may have exited before we started watching; SIGCHLD is
        # not queued for us, so look once right away (one pass for however
        # many watchers start before the loop gets to it).
        if not loop._reap_queued:
            loop._reap_queued = True
            loop.run_callback(loop._reap_children)

    def _deactivate(self) -> None:
        loop = self.loop
        watchers = loop._children.get(self.pid)
        if watchers is not None:
            if self in watchers:
                watchers.remove(self)
            if not watchers:
                del loop._children[self.pid]
        loop._watch_children_changed()

    def _format(self) -> str:
        return f" pid={self.pid} rstatus={self.rstatus}"


class StatWatcher(Watcher):
    """Polls ``path`` every ``interval`` seconds (default 1 s) and fires on change."""

    __slots__ = ("path", "interval", "attr", "prev", "_timer")

    def __init__(self, loop: Loop, path: str, interval: float = 0.0, ref: bool = True) -> None:
        Watcher.__init__(self, loop, ref)
        self.path = path
        self.interval = interval if interval > 0 else 1.0
        self.attr = self.prev = self._stat()
        self._timer = TimerWatcher(loop, self.interval, self.interval, ref=False)

    def _stat(self):
        try:
            return os.stat(self.path)
        except OSError:
            return None

    def _activate(self) -> None:
        self._timer.start(self._check)

    def _deactivate(self) -> None:
        self._timer.stop()

    def _check(self) -> None:
        new = self._stat()
        if new != self.attr:
            self.prev, self.attr = self.attr, new
            self.callback(*self.args)


class Loop:
    """An event loop: see the module docstring for the cycle and the design."""

    MINPRI = MINPRI
    MAXPRI = MAXPRI

    def __init__(self, flags: Any = None, default: bool | None = None,
                 backend: str | None = None) -> None:
        if isinstance(flags, str) and backend is None:
            backend = flags
        self._backend = _make_backend(backend)
        self._backend_native = self._backend.native
        self._ready: deque[list] = deque()  # [function, args] entries
        self._timers: list[list] = []
        self._timers_dead = 0
        self._seq = count()
        self._fds: dict[int, _FdEntry] = {}
        self._refs = 0
        self._prepares: list[Watcher] = []
        self._checks: list[Watcher] = []
        self._idles: list[Watcher] = []
        self._signals: set[SignalWatcher] = set()
        self._installed_signals: dict[int, Any] = {}
        self._children: dict[int, list[ChildWatcher]] = {}  # pid -> active watchers
        self._reap_queued = False
        self._child_poller: TimerWatcher | None = None
        self._stopping = False
        self._running = False
        self.default = bool(default) if default is not None else _is_main_thread()
        self.error_handler: Any = None
        self.iteration = 0
        self._open_waker()

    # -- thread-safe wake-up --------------------------------------------
    def _open_waker(self) -> None:
        try:
            fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            self._wake_r = self._wake_w = fd
        except (AttributeError, OSError):  # pragma: no cover - non-Linux
            r, w = os.pipe()
            os.set_blocking(r, False)
            os.set_blocking(w, False)
            self._wake_r, self._wake_w = r, w
        self._waker = IoWatcher(self, self._wake_r, READ, ref=False)
        self._waker.start(self._drain_waker)

    def _close_waker(self) -> None:
        self._waker.close()
        _close(self._wake_r)
        if self._wake_w != self._wake_r:
            _close(self._wake_w)

    def _drain_waker(self) -> None:
        try:
            os.read(self._wake_r, 8192)
        except OSError:
            pass

    def _wake(self) -> None:
        try:
            if self._wake_w == self._wake_r:
                os.eventfd_write(self._wake_w, 1)
            else:
                os.write(self._wake_w, b"\0")
        except OSError:
            # Full (it is already going to wake) or closed (loop destroyed).
            pass

    # -- callbacks -------------------------------------------------------
    def run_callback(self, func: Callable[..., Any], *args: Any) -> Callback:
        """Queue ``func(*args)`` to run in the loop, after those queued before it."""
        cb = Callback(func, args)
        self._ready.append(cb)
        return cb

    def run_callback_threadsafe(self, func: Callable[..., Any], *args: Any) -> Callback:
        """Like :meth:`run_callback`, callable from any native thread; wakes the loop."""
        cb = Callback(func, args)
        self._ready.append(cb)  # deque.append is atomic
        self._wake()
        return cb

    # -- watcher factories ----------------------------------------------
    def io(self, fd: int, events: int, ref: bool = True, priority: int | None = None) -> IoWatcher:
        return IoWatcher(self, fd, events, ref, priority)

    def timer(self, after: float, repeat: float = 0.0, ref: bool = True,
              priority: int | None = None) -> TimerWatcher:
        return TimerWatcher(self, after, repeat, ref, priority)

    def async_(self, ref: bool = True, priority: int | None = None) -> AsyncWatcher:
        return AsyncWatcher(self, ref, priority)

    def signal(self, signum: int, ref: bool = True, priority: int | None = None) -> SignalWatcher:
        return SignalWatcher(self, signum, ref, priority)

    def child(self, pid: int, trace: int = 0, ref: bool = True) -> ChildWatcher:
        return ChildWatcher(self, pid, trace, ref)

    def idle(self, ref: bool = True, priority: int | None = None) -> IdleWatcher:
        return IdleWatcher(self, ref)

    def prepare(self, ref: bool = True, priority: int | None = None) -> PrepareWatcher:
        return PrepareWatcher(self, ref)

    def check(self, ref: bool = True, priority: int | None = None) -> CheckWatcher:
        return CheckWatcher(self, ref)

    def stat(self, path: str, interval: float = 0.0, ref: bool = True,
             priority: int | None = None) -> StatWatcher:
        return StatWatcher(self, path, interval, ref)

    def closing_fd(self, fd: int) -> bool:
        """Forget ``fd`` before it is closed.  Returns whether it was being watched."""
        entry = self._fds.pop(fd, None)
        if entry is None:
            return False
        if entry.mask:
            self._backend.unregister(fd)
            entry.mask = 0
        return bool(entry.watchers)

    # -- timers ----------------------------------------------------------
    def _compact_timers(self) -> None:
        """Drop dead entries once they are more than half the heap (amortised O(1))."""
        timers = self._timers
        timers[:] = [e for e in timers if e[2] is not None]
        heapify(timers)
        self._timers_dead = 0

    def _run_timers(self) -> None:
        timers = self._timers
        now = monotonic()
        while timers and timers[0][0] <= now:
            entry = heappop(timers)
            w = entry[2]
            if w is None:
                self._timers_dead -= 1
                continue
            if w.repeat:
                w._entry = [now + w.repeat, next(self._seq), w, entry[3], entry[4]]
                heappush(timers, w._entry)
            else:
                w._entry = None
                if w._ref:
                    self._refs -= 1
            try:
                entry[3](*entry[4])
            except:  # noqa: E722 - every error goes to the hub's handler
                self._handle_error(w, *sys.exc_info())

    # -- signals and children ---------------------------------------------
    def _sync_signal_handlers(self) -> None:
        wanted = {w.signum for w in self._signals}
        if self._children and self.default:
            wanted.add(_signal.SIGCHLD)
        for signum in list(self._installed_signals):
            if signum not in wanted:
                old = self._installed_signals.pop(signum)
                try:
                    _set_signal(signum, old if old is not None else _signal.SIG_DFL)
                except (ValueError, OSError, TypeError):
                    pass
        for signum in wanted:
            if signum not in self._installed_signals:
                try:
                    old = _set_signal(signum, self._on_signal)
                except ValueError as exc:
                    raise ValueError(
                        f"signal watchers only work in the main thread's loop: {exc}"
                    ) from None
                self._installed_signals[signum] = old

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Runs in the main thread between bytecodes, possibly inside the hub's
        # poll: defer the real work to the loop and make sure it wakes up.
        self.run_callback_threadsafe(self._dispatch_signal, signum)

    def _dispatch_signal(self, signum: int) -> None:
        if signum == _signal.SIGCHLD:
            self._reap_children(full=False)
        for w in list(self._signals):
            if w.signum == signum and w._active:
                try:
                    w.callback(*w.args)
                except:  # noqa: E722
                    self._handle_error(w, *sys.exc_info())

    def _reap_children(self, full: bool = True) -> None:
        """Reap watched children that exited and fire their watchers.

        ``full`` asks ``waitpid(pid, WNOHANG)`` for every watched pid (also
        noticing children reaped by someone else, which fire with status 0).
        Otherwise (on SIGCHLD) the kernel is asked which child is waitable,
        without reaping it (``waitid(WNOWAIT)``), and only that one is
        reaped, until none is left: O(exited), not O(watched), per signal.
        A waitable child we do not watch hides the others from that
        question, so then the pass falls back to the full scan.
        """
        self._reap_queued = False
        children = self._children
        if not full and _waitid is not None:
            while children:
                try:
                    info = _waitid(os.P_ALL, 0, _WAITID_PEEK)
                except ChildProcessError:
                    info = None
                if info is None:
                    break
                pid = info.si_pid
                if pid not in children or not self._reap_pid(pid):
                    full = True
                    break
        if full:
            for pid in list(children):
                if pid in children:
                    self._reap_pid(pid)
        self._watch_children_changed()

    def _reap_pid(self, pid: int) -> bool:
        """Reap ``pid`` (if it exited) for all its watchers; a pid <= 0 reaps any
        child of that group.  Returns whether a child was reaped."""
        lost = False
        try:
            result = _waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere: the status is lost
            result = (pid, 0) if pid > 0 else (0, 0)
            lost = True
        rpid = result[0]
        if rpid == 0:
            return False
        children = self._children
        watchers = children.pop(pid, [])
        if rpid != pid:  # reaped for an any-child watcher: tell the pid's own too
            watchers += children.pop(rpid, ())
        for w in watchers:
            w.rpid, w.rstatus = result
            w.reaped_elsewhere = lost
            w._fired_once()
            try:
                w.callback(*w.args)
            except:  # noqa: E722
                self._handle_error(w, *sys.exc_info())
        return True

    def _watch_children_changed(self) -> None:
        """Catch SIGCHLD in the main thread's loop; elsewhere (no signals), poll."""
        if self.default:
            self._sync_signal_handlers()
            return
        if self._children:
            if self._child_poller is None:
                self._child_poller = TimerWatcher(self, 0.05, 0.05, ref=False)
            if not self._child_poller.active:
                self._child_poller.start(self._reap_children)
        elif self._child_poller is not None:
            self._child_poller.stop()

    def reset_sigchld(self) -> None:
        if _signal.SIGCHLD in self._installed_signals:
            old = self._installed_signals.pop(_signal.SIGCHLD)
            _set_signal(_signal.SIGCHLD, old if old is not None else _signal.SIG_DFL)

    def install_sigchld(self) -> None:
        self._sync_signal_handlers()

    # -- running ---------------------------------------------------------
    def _handle_error(self, context: Any, typ: type, value: BaseException, tb: Any) -> None:
        handler = self.error_handler
        if handler is not None:
            handler(context, typ, value, tb)
        else:  # pragma: no cover - only a loop used without a hub
            import traceback

            traceback.print_exception(typ, value, tb)

    handle_error = _handle_error

    def run(self, nowait: bool = False, once: bool = False) -> None:
        """Run until nothing referencing is left (or :meth:`break_`)."""
        ready = self._ready
        popleft = ready.popleft
        timers = self._timers
        fds_get = self._fds.get
        handle_error = self._handle_error
        self._stopping = False
        self._running = True
        try:
            while not self._stopping:
                self.iteration += 1
                # 1. Callbacks, in batches: each batch is what was queued
                # when it began (so sleep(0) lets every other ready greenlet
                # run once).  Batches follow each other without polling
                # until CALLBACK_BUDGET seconds have passed: a ping-pong
                # between greenlets then costs no epoll_wait per hop, and
                # I/O and timers still get a turn.
                n = len(ready)
                budget_end = 0.0
                while n:
                    n -= 1
                    cb = popleft()
                    fn = cb[0]
                    if fn is not None:
                        cb[0] = None
                        try:
                            fn(*cb[1])
                        except:  # noqa: E722
                            handle_error(fn, *sys.exc_info())
                    if not n and ready and not self._stopping:
                        now = monotonic()
                        if not budget_end:
                            budget_end = now + CALLBACK_BUDGET
                            n = len(ready)
                        elif now < budget_end:
                            n = len(ready)
                if self._stopping:
                    break
                # 2. How long may we block?
                if ready or nowait:
                    timeout = 0.0
                elif not self._refs:
                    return  # nothing can ever wake us: the hub raises LoopExit
                else:
                    while timers and timers[0][2] is None:
                        heappop(timers)
                        self._timers_dead -= 1
                    if self._idles:
                        timeout = 0.0
                    elif timers:
                        timeout = timers[0][0] - monotonic()
                        if timeout < 0:
                            timeout = 0.0
                    else:
                        timeout = -1
                for w in tuple(self._prepares):
                    try:
                        w.callback(*w.args)
                    except:  # noqa: E722
                        handle_error(w, *sys.exc_info())
                # 3. Poll and dispatch I/O.  (The backend is looked up each
                # time: reinit() after fork replaces it under a suspended run().)
                backend = self._backend
                try:
                    events = backend.poll(timeout)
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    events = ()
                for fd, ev in events:
                    entry = fds_get(fd)
                    if entry is None:
                        backend.unregister(fd)
                        continue
                    ws = entry.watchers
                    fired = False
                    if len(ws) == 1:
                        w = ws[0]
                        if w._match & ev:
                            fired = True
                            try:
                                if w._pass_events:
                                    w.callback(backend.to_libev(ev) & w.events, *w.args)
                                else:
                                    w.callback(*w.args)
                            except:  # noqa: E722
                                handle_error(w, *sys.exc_info())
                    elif ws:
                        for w in tuple(ws):
                            if w._active and w._match & ev:
                                fired = True
                                try:
                                    if w._pass_events:
                                        w.callback(backend.to_libev(ev) & w.events, *w.args)
                                    else:
                                        w.callback(*w.args)
                                except:  # noqa: E722
                                    handle_error(w, *sys.exc_info())
                    if not fired:
                        # Nobody wants this any more: narrow the registration
                        # now (the lazy half of "no epoll_ctl per wait").
                        mask = 0
                        for w in ws:
                            mask |= w._native
                        if mask != entry.mask:
                            if mask:
                                backend.modify(fd, mask)
                            else:
                                backend.unregister(fd)
                            entry.mask = mask
                # 4. Timers, check and idle watchers.
                if timers and timers[0][0] <= monotonic():
                    self._run_timers()
                if self._checks:
                    for w in tuple(self._checks):
                        try:
                            w.callback(*w.args)
                        except:  # noqa: E722
                            handle_error(w, *sys.exc_info())
                if self._idles and not events and not ready:
                    for w in tuple(self._idles):
                        try:
                            w.callback(*w.args)
                        except:  # noqa: E722
                            handle_error(w, *sys.exc_info())
                if once:
                    break
        finally:
            self._running = False

    def break_(self, how: int = 0) -> None:
        """Make :meth:`run` return after the current step."""
        self._stopping = True
        self._wake()

    # -- introspection and life cycle -------------------------------------
    def now(self) -> float:
        return monotonic()

    def update_now(self) -> None:
        pass

    update = update_now

    def fileno(self) -> int:
        return self._backend.fileno()

    @property
    def backend(self) -> str:
        return self._backend.name

    @property
    def activecnt(self) -> int:
        return self._refs

    @property
    def pendingcnt(self) -> int:
        return sum(1 for cb in self._ready if cb[0] is not None)

    def ref(self) -> None:
        self._refs += 1

    def unref(self) -> None:
        self._refs -= 1

    def reinit(self) -> None:
        """Rebuild the kernel-side state after ``fork()``: new epoll, new waker.

        The child shares the parent's epoll instance and eventfd; using them
        would steal the parent's events, so every registration is replayed on
        fresh ones.
        """
        # The parent's children are not ours: their watchers go quiet here
        # (inactive, so they no longer keep the loop alive).
        for watchers in self._children.values():
            for w in watchers:
                w._fired_once()
        self._children.clear()
        waker = self._waker
        self._fds.pop(self._wake_r, None)
        waker._closed = True
        waker._active = False
        self._rebuild_backend()
        for fd in {self._wake_r, self._wake_w}:
            try:
                _close(fd)
            except OSError:
                pass
        self._open_waker()

    def _rebuild_backend(self) -> None:
        """Replace the kernel-side poller and replay every registration on it."""
        backend_name = None if isinstance(self._backend, _DefaultBackend) else "selectors"
        try:
            self._backend.close()
        except OSError:
            pass
        self._backend = _make_backend(backend_name)
        self._backend_native = self._backend.native
        for fd, entry in list(self._fds.items()):
            if entry.mask:
                try:
                    self._backend.register(fd, entry.mask)
                except OSError:
                    del self._fds[fd]

    def _drop_fd_and_rebuild(self, fd: int) -> None:
        # Old watchers keep their orphaned entry; close() on them is harmless.
        del self._fds[fd]
        self._rebuild_backend()

    def destroy(self) -> None:
        """Release the loop's kernel resources; the loop cannot run afterwards."""
        if self._backend is None:
            return
        self._stopping = True
        for signum in list(self._installed_signals):
            old = self._installed_signals.pop(signum)
            try:
                _set_signal(signum, old if old is not None else _signal.SIG_DFL)
            except (ValueError, OSError, TypeError):
                pass
        self._close_waker()
        self._backend.close()
        self._backend = None

    @property
    def closed(self) -> bool:
        return self._backend is None

    def __repr__(self) -> str:
        backend = self._backend.name if self._backend else "destroyed"
        return (
            f"<{type(self).__name__} at {id(self):#x} {backend}"
            f"{' default' if self.default else ''} pending={len(self._ready)} ref={self._refs}>"
        )
