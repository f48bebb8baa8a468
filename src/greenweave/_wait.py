"""Waiting on many things at once: :func:`iwait` and :func:`wait`.

Works with anything that has ``rawlink(callback)`` / ``unlink(callback)``
(greenlets, events, async results, ...).  Built on the same parking primitive
as everything else: each finished object is queued and the waiting greenlet
unparked.
"""

from __future__ import annotations

from collections import deque
from time import monotonic
from typing import Any, Iterable, Iterator
from weakref import ref

from ._core.hub import get_hub
from ._core.park import ParkingLot

__all__ = ["iwait", "wait"]


class _Notify:
    """The link installed on each object.  It holds the iterator only weakly, so
    an iterator dropped early (or left behind by a killed waiter) is freed,
    and its ``__del__`` unlinks from everything."""

    __slots__ = ("_it",)

    def __init__(self, it: _WaitIterator) -> None:
        self._it = ref(it)

    def __call__(self, obj: Any) -> None:
        it = self._it()
        if it is not None:
            it._notified(obj)


class _WaitIterator:
    """Yields objects as they become ready; unlinks everything when done or closed."""

    def __init__(self, objects: Iterable[Any], timeout: float | None, count: int | None) -> None:
        self._objects = list(objects)
        self._timeout = timeout
        self._count = len(self._objects) if count is None else min(count, len(self._objects))
        self._ready: deque[Any] = deque()
        self._lot = ParkingLot()
        self._on_ready = _Notify(self)  # one object, so unlink finds it
        self._yielded = 0
        self._begun = False
        self._closed = False
        self._deadline: float | None = None

    def _notified(self, obj: Any) -> None:
        self._ready.append(obj)
        self._lot.unpark()

    def _begin(self) -> None:
        self._begun = True
        if self._timeout is not None:
            self._deadline = monotonic() + self._timeout
        cb = self._on_ready
        for obj in self._objects:
            obj.rawlink(cb)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        if not self._begun:
            get_hub()  # fail early in a thread with no usable hub
            self._begin()
        if self._yielded >= self._count:
            self.close()
            raise StopIteration
        ready = self._ready
        while not ready:
            if self._deadline is None:
                self._lot.park()
            else:
                remaining = self._deadline - monotonic()
                if remaining <= 0 or not self._lot.park(remaining):
                    if not ready:
                        self.close()
                        raise StopIteration
        self._yielded += 1
        return ready.popleft()

    def close(self) -> None:
        """Stop waiting: unlink from every object."""
        if self._closed:
            return
        self._closed = True
        if self._begun:
            cb = self._on_ready
            for obj in self._objects:
                try:
                    obj.unlink(cb)
                except Exception:
                    pass

    def __enter__(self) -> _WaitIterator:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def iwait(objects: Iterable[Any], timeout: float | None = None,
          count: int | None = None) -> _WaitIterator:
    """Iterate over ``objects`` in the order they become ready.

    Stops after ``count`` objects, or when ``timeout`` passes.  Use it as a
    context manager (or call ``close()``) to unlink early; dropping the
    iterator does the same.
    """
    return _WaitIterator(objects, timeout, count)


def wait(objects: Iterable[Any] | None = None, timeout: float | None = None,
         count: int | None = None) -> Any:
    """Wait for ``objects`` to become ready; return the list of those that did.

    With no objects, wait until the loop has nothing left to do (returns
    True) or ``timeout`` passes (False).
    """
    if objects is None:
        return get_hub().join(timeout=timeout)
    with iwait(objects, timeout, count) as it:
        return list(it)
