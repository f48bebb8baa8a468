"""The epoll I/O backend: mechanics only.

A backend knows how to register interest in file descriptors and how to wait
for readiness; it knows nothing of watchers, callbacks or timers (that policy
lives in :mod:`greenweave._core.loop`).  Every backend offers the same small
interface:

``READ``, ``WRITE``
    The backend's native event bits that mean "readable" and "writable",
    *including* the error/hang-up bits that must wake both readers and writers.
``ERRORS``
    The error/hang-up bits alone (0 where the backend reports none).
``native(events)``
    Translate a libev-style mask (1 = read, 2 = write) into the bits to
    register.
``register(fd, native_mask)``, ``modify(fd, native_mask)``, ``unregister(fd)``
``poll(timeout)``
    ``timeout`` is seconds (0 = don't block, -1 = forever); returns a list of
    ``(fd, native_events)`` pairs.
``to_libev(native_events)``
    The reverse of ``native`` for callers that asked for ``pass_events``.
``close()``
"""

from __future__ import annotations

import select

_IN = select.EPOLLIN
_OUT = select.EPOLLOUT
_ERR = select.EPOLLERR | select.EPOLLHUP
# Bound at import: monkey.patch_select() removes select.epoll (it would block).
_epoll = select.epoll


class EpollBackend:
    name = "epoll"
    # Error and hang-up conditions wake both directions: a reader must see the
    # EOF/error from recv and a writer the EPIPE from send.
    READ = _IN | _ERR | select.EPOLLPRI
    WRITE = _OUT | _ERR
    #: Bits that wake every watcher of an fd whatever it registered for.
    ERRORS = _ERR

    def __init__(self) -> None:
        self._ep = _epoll()
        self.poll = self._ep.poll

    def fileno(self) -> int:
        return self._ep.fileno()

    @staticmethod
    def native(events: int) -> int:
        mask = 0
        if events & 1:
            mask |= _IN
        if events & 2:
            mask |= _OUT
        return mask

    @staticmethod
    def to_libev(native_events: int) -> int:
        ev = 0
        if native_events & (_IN | _ERR):
            ev |= 1
        if native_events & (_OUT | _ERR):
            ev |= 2
        return ev

    def register(self, fd: int, mask: int) -> None:
        try:
            self._ep.register(fd, mask)
        except FileExistsError:
            # A dup of a descriptor we forgot about, or fd-number reuse after a
            # close we were not told about: the kernel's view wins.
            self._ep.modify(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        try:
            self._ep.modify(fd, mask)
        except FileNotFoundError:
            # The fd was closed and reopened behind our back; epoll dropped it.
            self._ep.register(fd, mask)

    def unregister(self, fd: int) -> None:
        try:
            self._ep.unregister(fd)
        except (OSError, ValueError):
            # Already closed: epoll removed it on close.
            pass

    def close(self) -> None:
        self._ep.close()
