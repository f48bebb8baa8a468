"""Portable fallback backend over :mod:`selectors` (kqueue, poll or select).

Same interface as :class:`greenweave._core.backend_epoll.EpollBackend`; used
where ``select.epoll`` does not exist.  Native bits are the ``selectors``
``EVENT_READ`` (1) / ``EVENT_WRITE`` (2), which happen to match libev's.
"""

from __future__ import annotations

import selectors

# Bound at import: monkey.patch_selectors() makes selectors.DefaultSelector
# the cooperative selector, which must never back the loop itself.
_DefaultSelector = selectors.DefaultSelector


class SelectorsBackend:
    name = "selectors"
    READ = selectors.EVENT_READ
    WRITE = selectors.EVENT_WRITE
    ERRORS = 0  # select() reports errors as readable/writable

    def __init__(self) -> None:
        self._sel = _DefaultSelector()
        self.name = "selectors-" + type(self._sel).__name__.replace("Selector", "").lower()

    def fileno(self) -> int:
        try:
            return self._sel.fileno()  # type: ignore[attr-defined]
        except AttributeError:
            return -1

    @staticmethod
    def native(events: int) -> int:
        return events & 3

    @staticmethod
    def to_libev(native_events: int) -> int:
        return native_events & 3

    def register(self, fd: int, mask: int) -> None:
        try:
            self._sel.register(fd, mask)
        except KeyError:
            self._sel.modify(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        try:
            self._sel.modify(fd, mask)
        except KeyError:
            self._sel.register(fd, mask)

    def unregister(self, fd: int) -> None:
        try:
            self._sel.unregister(fd)
        except (KeyError, ValueError, OSError):
            pass

    def poll(self, timeout: float) -> list[tuple[int, int]]:
        if timeout < 0:
            timeout = None
        return [(key.fd, ev) for key, ev in self._sel.select(timeout)]

    def close(self) -> None:
        self._sel.close()
