"""Cooperative :mod:`selectors`: :class:`GreenweaveSelector` blocks only the
calling greenlet.

:data:`DefaultSelector` is :class:`GreenweaveSelector`, and so is
``GeventSelector`` (gevent's name for it).  The other names of the standard
module are re-exported unchanged (``EpollSelector`` and friends block the
whole thread; use them only with timeout 0).
"""

from __future__ import annotations

import selectors as __selectors__
from collections.abc import Mapping
from typing import Any, Iterator

from . import select as _gselect

for _name in dir(__selectors__):
    if not _name.startswith("_"):
        _value = getattr(__selectors__, _name)
        if not isinstance(_value, type(__selectors__)):  # skip imported modules
            globals()[_name] = _value
del _name, _value

EVENT_READ = __selectors__.EVENT_READ
EVENT_WRITE = __selectors__.EVENT_WRITE
BaseSelector = __selectors__.BaseSelector
SelectorKey = __selectors__.SelectorKey

__all__ = sorted(
    {n for n in dir(__selectors__) if not n.startswith("_")
     and not isinstance(getattr(__selectors__, n), type(__selectors__))}
    | {"GreenweaveSelector", "GeventSelector", "DefaultSelector"}
)

_POLLIN = _gselect.POLLIN
_POLLOUT = _gselect.POLLOUT


def _fileobj_to_fd(fileobj: Any) -> int:
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"Invalid file object: {fileobj!r}") from None
    if fd < 0:
        raise ValueError(f"Invalid file descriptor: {fd}")
    return fd


class _KeyMapping(Mapping):
    """Read-only ``fileobj -> SelectorKey`` view (what ``get_map()`` returns)."""

    def __init__(self, selector: GreenweaveSelector) -> None:
        self._selector = selector

    def __len__(self) -> int:
        return len(self._selector._keys)

    def __getitem__(self, fileobj: Any) -> SelectorKey:
        try:
            return self._selector._keys[self._selector._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None

    def __iter__(self) -> Iterator[int]:
        return iter(self._selector._keys)


class GreenweaveSelector(BaseSelector):
    """A selector whose :meth:`select` blocks only the calling greenlet.

    Built on :class:`greenweave.select.poll`: each registered descriptor keeps
    its I/O watcher until unregistered, so repeated ``select()`` calls cost
    no kernel registrations.
    """

    def __init__(self) -> None:
        self._poll = _gselect.poll()
        self._keys: dict[int, SelectorKey] = {}
        self._map: _KeyMapping | None = _KeyMapping(self)

    def _fileobj_lookup(self, fileobj: Any) -> int:
        try:
            return _fileobj_to_fd(fileobj)
        except ValueError:
            # A closed file object: find it among the registered keys.
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    @staticmethod
    def _mask(events: int) -> int:
        mask = 0
        if events & EVENT_READ:
            mask |= _POLLIN
        if events & EVENT_WRITE:
            mask |= _POLLOUT
        return mask

    def register(self, fileobj: Any, events: int, data: Any = None) -> SelectorKey:
        if not events or events & ~(EVENT_READ | EVENT_WRITE):
            raise ValueError(f"Invalid events: {events!r}")
        if self._map is None:
            raise RuntimeError("the selector is closed")
        fd = self._fileobj_lookup(fileobj)
        if fd in self._keys:
            raise KeyError(f"{fileobj!r} (FD {fd}) is already registered")
        key = SelectorKey(fileobj, fd, events, data)
        self._poll.register(fd, self._mask(events))
        self._keys[fd] = key
        return key

    def unregister(self, fileobj: Any) -> SelectorKey:
        try:
            key = self._keys.pop(self._fileobj_lookup(fileobj))
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        try:
            self._poll.unregister(key.fd)
        except (KeyError, OSError, ValueError):
            pass
        return key

    def modify(self, fileobj: Any, events: int, data: Any = None) -> SelectorKey:
        try:
            key = self._keys[self._fileobj_lookup(fileobj)]
        except KeyError:
            raise KeyError(f"{fileobj!r} is not registered") from None
        if events != key.events:
            if not events or events & ~(EVENT_READ | EVENT_WRITE):
                raise ValueError(f"Invalid events: {events!r}")
            self._poll.modify(key.fd, self._mask(events))
            key = key._replace(events=events, data=data)
            self._keys[key.fd] = key
        elif data != key.data:
            key = key._replace(data=data)
            self._keys[key.fd] = key
        return key

    def select(self, timeout: float | None = None) -> list[tuple[SelectorKey, int]]:
        """Wait until some registered file object is ready, or ``timeout``
        seconds (``None``: no limit; ``<= 0``: just look)."""
        if timeout is None:
            seconds = None
        elif timeout <= 0:
            seconds = 0.0
        else:
            seconds = float(timeout)
        ready = []
        keys = self._keys
        for fd, ev in self._poll._poll_seconds(seconds):
            key = keys.get(fd)
            if key is None:
                continue
            events = 0
            if ev & ~_POLLIN:
                events |= EVENT_WRITE
            if ev & ~_POLLOUT:
                events |= EVENT_READ
            events &= key.events
            if events:
                ready.append((key, events))
        return ready

    def close(self) -> None:
        self._poll.close()
        self._keys.clear()
        self._map = None

    def get_map(self) -> Mapping | None:
        return self._map


GeventSelector = GreenweaveSelector
DefaultSelector = GreenweaveSelector
