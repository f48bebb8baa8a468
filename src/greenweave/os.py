"""Cooperative versions of some :mod:`os` functions.

I/O on descriptors:

* :func:`tp_read` / :func:`tp_write` run ``os.read`` / ``os.write`` in the
  hub's native thread pool (works for any descriptor, regular files too);
* :func:`nb_read` / :func:`nb_write` wait for readiness with the loop's I/O
  watchers (the descriptor must be non-blocking: :func:`make_nonblocking`);
* :func:`close` closes a descriptor after waking any greenlet waiting on it
  (it gets ``EBADF``) and making the loop forget it.

Child processes:

* :func:`fork` (= :func:`fork_and_watch`) forks, and in the parent watches the
  child with the loop's child watcher so that :func:`waitpid` can wait for it
  cooperatively.  The child process gets a fresh hub (an at-fork hook
  reinitialises it), whichever fork function is used.
* :func:`waitpid` blocks only the calling greenlet.  A watched child that the
  loop has already reaped keeps its exit status here until it is collected
  by ``waitpid`` (or for 60 seconds after it exited, if nobody asks).
* :func:`posix_spawn` / :func:`posix_spawnp` spawn, then watch, the child.
"""

from __future__ import annotations

import os as _os
import signal as _signal
from errno import EBADF
from time import monotonic
from typing import Any, Callable

from ._core.hub import get_hub, get_hub_if_exists, sleep
from ._core.park import ParkingLot

__all__ = [
    "close",
    "fork",
    "fork_and_watch",
    "fork_gevent",
    "forkpty",
    "forkpty_and_watch",
    "forkpty_gevent",
    "make_nonblocking",
    "nb_read",
    "nb_write",
    "posix_spawn",
    "posix_spawnp",
    "tp_read",
    "tp_write",
    "waitpid",
]

#: Names of :mod:`os` functions this module replaces (for monkey patching).
__implements__ = ["fork", "forkpty", "waitpid", "posix_spawn", "posix_spawnp", "close"]
#: Extra names this module adds.
__extensions__ = ["tp_read", "tp_write", "make_nonblocking", "nb_read", "nb_write",
                  "fork_and_watch", "forkpty_and_watch", "fork_gevent", "forkpty_gevent"]

_read = _os.read
_write = _os.write
_close = _os.close
_raw_fork = _os.fork
_raw_waitpid = _os.waitpid
_WNOHANG = _os.WNOHANG

#: Seconds a watched child's exit status is kept when nobody collects it.
KEEP_STATUS_SECONDS = 60.0


# ---------------------------------------------------------------------------
# Descriptor I/O


def tp_read(fd: int, n: int) -> bytes:
    """Read up to ``n`` bytes from ``fd`` in the thread pool ('' at end of file)."""
    return get_hub().threadpool.apply(_read, (fd, n))


def tp_write(fd: int, buf: Any) -> int:
    """Write ``buf`` to ``fd`` in the thread pool; return the number of bytes written."""
    return get_hub().threadpool.apply(_write, (fd, buf))


def make_nonblocking(fd: int) -> bool:
    """Put ``fd`` in non-blocking mode; return True if it was blocking before."""
    if _os.get_blocking(fd):
        _os.set_blocking(fd, False)
        return True
    return False


def nb_read(fd: int, n: int) -> bytes:
    """Read up to ``n`` bytes from non-blocking ``fd``, waiting cooperatively for data."""
    try:
        return _read(fd, n)
    except BlockingIOError:
        pass
    hub = get_hub()
    watcher = hub.loop.io(fd, 1)
    try:
        while True:
            hub.wait(watcher)
            try:
                return _read(fd, n)
            except BlockingIOError:
                pass
    finally:
        watcher.close()


def nb_write(fd: int, buf: Any) -> int:
    """Write some of ``buf`` to non-blocking ``fd`` (waiting cooperatively for room);
    return how many bytes were written, which may be fewer than ``len(buf)``."""
    try:
        return _write(fd, buf)
    except BlockingIOError:
        pass
    hub = get_hub()
    watcher = hub.loop.io(fd, 2)
    try:
        while True:
            hub.wait(watcher)
            try:
                return _write(fd, buf)
            except BlockingIOError:
                pass
    finally:
        watcher.close()


def close(fd: int) -> None:
    """Close ``fd``; greenlets waiting on it are woken with ``OSError(EBADF)``.

    The loop forgets the descriptor first, so its number can be reused at
    once without confusing the loop.
    """
    hub = get_hub_if_exists()
    if hub is not None and not hub.loop.closed:
        loop = hub.loop
        entry = loop._fds.get(fd)
        if entry is not None:
            for watcher in tuple(entry.watchers):
                hub.cancel_wait(watcher, OSError(
                    EBADF, "File descriptor was closed in another greenlet"))
        loop.closing_fd(fd)
    _close(fd)


# ---------------------------------------------------------------------------
# Watched children


class _Child:
    """A child watched by this module: its watcher, then its exit status."""

    __slots__ = ("pid", "watcher", "ref", "callback", "done", "status", "finished_at",
                 "lot", "waiters")

    def __init__(self, pid: int, watcher: Any, ref: bool, callback: Any) -> None:
        self.pid = pid
        self.watcher = watcher
        self.ref = ref
        self.callback = callback
        self.done = False
        self.status = 0
        self.finished_at = 0.0
        self.lot = ParkingLot()
        self.waiters = 0

    def finish(self, status: int) -> None:
        if self.done:
            return
        self.done = True
        self.status = status
        self.finished_at = monotonic()
        self.lot.unpark_all()
        _any_exited.unpark_all()


#: pid -> _Child, for children started by fork/forkpty/posix_spawn here.
_watched: dict[int, _Child] = {}
#: Woken whenever a watched child exits (for waitpid(-1, 0)).
_any_exited = ParkingLot()


def _on_child(rec: _Child) -> None:
    # In the hub: the loop reaped the child.
    watcher = rec.watcher
    rec.finish(watcher.rstatus)
    if watcher.reaped_elsewhere and not rec.waiters:
        # Reaped by a raw os.waitpid: there is no status to hand out later,
        # and waitpid(-1) must not report a child that is already gone.
        _watched.pop(watcher.pid, None)
    if rec.callback is not None:
        rec.callback(watcher)


def _forget_old(now: float) -> None:
    cutoff = now - KEEP_STATUS_SECONDS
    stale = [pid for pid, rec in _watched.items() if rec.done and rec.finished_at < cutoff]
    for pid in stale:
        del _watched[pid]


def _watch_child(pid: int, callback: Callable[[Any], Any] | None = None, loop: Any = None,
                 ref: bool = False) -> Any:
    """Start watching child ``pid``; ``callback(watcher)`` runs in the hub when it exits."""
    if loop is None:
        loop = get_hub().loop
    watcher = loop.child(pid, ref=ref)
    rec = _Child(pid, watcher, ref, callback)
    _watched[pid] = rec  # replaces a stale record if the pid was reused
    watcher.start(_on_child, rec)
    if len(_watched) > 64:
        _forget_old(monotonic())
    return watcher


def _claim(pid: int, status: int) -> None:
    """We reaped ``pid`` ourselves: settle its record (the status is consumed)."""
    rec = _watched.pop(pid, None)
    if rec is None or rec.done:
        return
    watcher = rec.watcher
    watcher.stop()
    watcher.rpid, watcher.rstatus = pid, status
    rec.finish(status)
    if rec.callback is not None:
        watcher.loop.run_callback(rec.callback, watcher)


def fork_gevent() -> int:
    """``os.fork()``: the child gets a fresh hub; the parent does not watch the child."""
    return _raw_fork()


def fork_and_watch(callback: Callable[[Any], Any] | None = None, loop: Any = None,
                   ref: bool = False, fork: Callable[[], int] = fork_gevent) -> int:
    """Fork with ``fork`` and, in the parent, watch the child.

    ``callback(watcher)`` runs in the hub when the child exits (the watcher's
    ``rpid``/``rstatus`` hold the result); its status also stays available to
    :func:`waitpid`.  ``ref=True`` keeps the loop running until the child exits.
    """
    pid = fork()
    if pid:
        _watch_child(pid, callback, loop, ref)
    return pid


def fork(callback: Callable[[Any], Any] | None = None, loop: Any = None,
         ref: bool = False, fork: Callable[[], int] = fork_gevent) -> int:
    """Fork; the child gets a fresh hub and the parent can :func:`waitpid` cooperatively.

    (The same as :func:`fork_and_watch`.)
    """
    return fork_and_watch(callback, loop, ref, fork)


if hasattr(_os, "forkpty"):
    _raw_forkpty = _os.forkpty

    def forkpty_gevent() -> tuple[int, int]:
        """``os.forkpty()``: the child gets a fresh hub; the parent does not watch it."""
        return _raw_forkpty()

    def forkpty_and_watch(callback: Callable[[Any], Any] | None = None, loop: Any = None,
                          ref: bool = False,
                          forkpty: Callable[[], tuple[int, int]] = forkpty_gevent
                          ) -> tuple[int, int]:
        """Like :func:`fork_and_watch` for ``forkpty``: returns ``(pid, master_fd)``.

        The master descriptor is left in blocking mode (wrap it in a
        :class:`~greenweave.fileobject.FileObjectPosix` for cooperative I/O).
        """
        pid, master_fd = forkpty()
        if pid:
            _watch_child(pid, callback, loop, ref)
        return pid, master_fd

    def forkpty(callback: Callable[[Any], Any] | None = None, loop: Any = None,
                ref: bool = False,
                forkpty: Callable[[], tuple[int, int]] = forkpty_gevent) -> tuple[int, int]:
        """``os.forkpty()`` with the child watched (the same as :func:`forkpty_and_watch`)."""
        return forkpty_and_watch(callback, loop, ref, forkpty)


if hasattr(_os, "posix_spawn"):
    _raw_posix_spawn = _os.posix_spawn
    _raw_posix_spawnp = _os.posix_spawnp

    def posix_spawn(path: Any, argv: Any, env: Any, **kwargs: Any) -> int:
        """``os.posix_spawn``, then watch the child (see :func:`waitpid`)."""
        pid = _raw_posix_spawn(path, argv, env, **kwargs)
        _watch_child(pid)
        return pid

    def posix_spawnp(path: Any, argv: Any, env: Any, **kwargs: Any) -> int:
        """``os.posix_spawnp``, then watch the child (see :func:`waitpid`)."""
        pid = _raw_posix_spawnp(path, argv, env, **kwargs)
        _watch_child(pid)
        return pid


def _poll_waitpid(pid: int, options: int) -> tuple[int, int]:
    """Wait by polling (cases the child watcher cannot express)."""
    delay = 0.001
    while True:
        rec = _watched.get(pid)
        if rec is not None and rec.done:  # the loop reaped it meanwhile
            del _watched[pid]
            return pid, rec.status
        rpid, status = _raw_waitpid(pid, options | _WNOHANG)
        if rpid:
            if _os.WIFEXITED(status) or _os.WIFSIGNALED(status):
                _claim(rpid, status)
            return rpid, status
        if options & _WNOHANG:
            return 0, 0
        sleep(delay)
        delay = min(delay * 2, 0.05)


def _pop_finished() -> tuple[int, int] | None:
    best = None
    for rec in _watched.values():
        if rec.done and (best is None or rec.finished_at < best.finished_at):
            best = rec
    if best is None:
        return None
    del _watched[best.pid]
    return best.pid, best.status


def _waitpid_any(options: int) -> tuple[int, int]:
    hub = get_hub()
    loop = hub.loop
    sigchld = None
    try:
        while True:
            found = _pop_finished()
            if found is not None:
                return found
            try:
                rpid, status = _raw_waitpid(-1, options | _WNOHANG)
            except ChildProcessError:
                # The kernel has no child left to wait for (and the loop
                # settles what it reaps at once, in this thread): a record
                # still pending was reaped behind our back by a raw waitpid.
                for stale in [p for p, rec in _watched.items() if not rec.done]:
                    _watched.pop(stale).watcher.stop()
                raise
            if rpid:
                if _os.WIFEXITED(status) or _os.WIFSIGNALED(status):
                    _claim(rpid, status)
                return rpid, status
            if options & _WNOHANG:
                return 0, 0
            if sigchld is None and loop.default:
                # Wake on any SIGCHLD, not only on watched children (started
                # before the next check, so no exit can slip in between).
                sigchld = loop.signal(_signal.SIGCHLD, ref=False)
                sigchld.start(_any_exited.unpark_all)
                continue
            # A watched child exiting wakes us at once; others are found
            # by SIGCHLD or, in threads without signals, by polling.
            _any_exited.park(1.0 if sigchld is not None else 0.05)
    finally:
        if sigchld is not None:
            sigchld.close()


def waitpid(pid: int, options: int) -> tuple[int, int]:
    """``os.waitpid`` that blocks only the calling greenlet.

    Children started by this module's :func:`fork`, :func:`forkpty` or
    :func:`posix_spawn` are waited for with the loop's child watcher, and
    their status is kept for us even if the loop reaped them first.  Any
    other child is waited for with a child watcher too.  ``pid == -1``
    returns the earliest-finished watched child first.  Options other than
    ``WNOHANG`` (``WUNTRACED`` ...) and process-group pids are handled
    cooperatively by polling.
    """
    pid = int(pid)
    options = int(options)
    if pid > 0:
        rec = _watched.get(pid)
        if rec is not None:
            if rec.done:
                del _watched[pid]
                return pid, rec.status
            if options & ~_WNOHANG:
                return _poll_waitpid(pid, options)
            if options:
                return 0, 0
            rec.waiters += 1
            rec.watcher.ref = True  # we are waiting: the loop must not exit
            try:
                while not rec.done:
                    rec.lot.park()
            finally:
                rec.waiters -= 1
                if not rec.waiters:
                    rec.watcher.ref = rec.ref
            if _watched.get(pid) is rec:
                del _watched[pid]
            return pid, rec.status
        if options & _WNOHANG:
            return _raw_waitpid(pid, options)
        rpid, status = _raw_waitpid(pid, options | _WNOHANG)
        if rpid:
            return rpid, status
        if options:
            return _poll_waitpid(pid, options)
        hub = get_hub()
        with hub.loop.child(pid) as watcher:
            hub.wait(watcher)
            return watcher.rpid, watcher.rstatus
    if pid == -1:
        return _waitpid_any(options)
    return _poll_waitpid(pid, options)


def _after_fork_in_child() -> None:
    # The parent's children are not ours.
    _watched.clear()


if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_after_fork_in_child)
