"""The one parking primitive every waiting object is built on.

A :class:`ParkingLot` is a FIFO of parked greenlets.  ``park()`` blocks the
current greenlet until ``unpark()`` picks it (returns True) or its timeout
passes (returns False).  Event, AsyncResult, Queue, Semaphore, RLock,
Greenlet.join and Pool are thin layers: each keeps its own state, and parks
while that state says "not yet", re-checking after every wake-up.

Guarantees:

* **FIFO**: ``unpark(n)`` wakes the ``n`` longest-parked greenlets.
* **Batched**: the greenlets picked by one ``unpark`` are switched to from a
  single hub callback, in order.
* **Cancellation-safe**: a greenlet killed or timed out while parked is taken
  out of the queue; if it had already been picked (its wake-up is on the way)
  it hands the wake-up to the next parked greenlet, so whatever it was about
  to take (a queue item, a semaphore slot) goes to someone who still wants it.
* **Thread-safe unpark**: a greenlet parked in thread A's hub can be unparked
  from thread B; the wake-up travels through A's loop's thread-safe callback
  queue.  (Only deque operations that are atomic under the GIL touch the
  shared queue, so no lock is needed.)
"""

from __future__ import annotations

import sys
from _thread import get_ident
from collections import deque
from typing import Any

from greenlet import getcurrent
from greenlet import greenlet as RawGreenlet

from ..exceptions import BlockingSwitchOutError
from .hub import _tls, get_hub

__all__ = ["ParkingLot"]

_switch = RawGreenlet.switch

_PARKED = 0
_DONE = 1


class _Slot:
    """One parked greenlet.  ``state`` is only touched in the parker's thread."""

    __slots__ = ("glet", "loop", "tid", "state")

    def __init__(self, glet: RawGreenlet, loop: Any, tid: int) -> None:
        self.glet = glet
        self.loop = loop
        self.tid = tid
        self.state = _PARKED


def _wake(slots: list[_Slot]) -> None:
    # Runs in the parkers' hub.  A slot whose greenlet gave up meanwhile (it
    # was killed or timed out and passed the wake-up on) is skipped.
    for slot in slots:
        if slot.state == _PARKED:
            slot.state = _DONE
            try:
                slot.glet.switch(True)
            except:  # noqa: E722 - a raw greenlet died with an error: report, go on
                slot.loop.handle_error(slot.glet, *sys.exc_info())


def _wake_one(slot: _Slot) -> None:
    if slot.state == _PARKED:
        slot.state = _DONE
        slot.glet.switch(True)


class ParkingLot:
    """A FIFO queue of greenlets waiting for something (see module docstring)."""

    __slots__ = ("_slots", "__weakref__")

    def __init__(self) -> None:
        self._slots: deque[_Slot] = deque()

    def __len__(self) -> int:
        return len(self._slots)

    def __bool__(self) -> bool:
        return bool(self._slots)

    def park(self, timeout: float | None = None) -> bool:
        """Block the current greenlet until unparked (True) or timed out (False).

        ``timeout`` None waits forever; <= 0 still parks until the loop's next
        timer check, which lets other greenlets run once.
        """
        try:
            hub = _tls.hub
        except AttributeError:
            hub = get_hub()
        cur = getcurrent()
        if cur is hub:
            raise BlockingSwitchOutError(
                "Impossible to call blocking function in the event loop callback "
                "(tried to wait from the hub greenlet)"
            )
        loop = hub.loop
        slot = _Slot(cur, loop, get_ident())
        self._slots.append(slot)
        if timeout is None:
            try:
                return _switch(hub)
            except BaseException:
                self._abandon(slot)
                raise
        timer = loop.timer(timeout if timeout > 0 else 0.0)
        timer.start(self._expire, slot)
        try:
            return _switch(hub)
        except BaseException:
            self._abandon(slot)
            raise
        finally:
            timer.stop()

    def _expire(self, slot: _Slot) -> None:
        if slot.state != _PARKED:
            return
        try:
            self._slots.remove(slot)
        except ValueError:
            # An unparker already picked us; its wake-up is on the way and wins.
            return
        slot.state = _DONE
        slot.glet.switch(False)

    def _abandon(self, slot: _Slot) -> None:
        if slot.state != _PARKED:
            return
        slot.state = _DONE
        try:
            self._slots.remove(slot)
        except ValueError:
            # We were picked but are leaving (killed / timed out) before the
            # wake-up arrived: pass it on so nothing is stranded.
            self.unpark(1)

    def unpark(self, n: int = 1) -> int:
        """Wake up to ``n`` parked greenlets, oldest first; returns how many."""
        slots = self._slots
        if not slots:
            return 0
        if n == 1:
            try:
                slot = slots.popleft()
            except IndexError:  # another thread got there first
                return 0
            if slot.tid == get_ident():
                slot.loop._ready.append([_wake_one, (slot,)])
            else:
                slot.loop.run_callback_threadsafe(_wake_one, slot)
            return 1
        picked = []
        while n and slots:
            try:
                picked.append(slots.popleft())
            except IndexError:
                break
            n -= 1
        self._schedule(picked)
        return len(picked)

    def unpark_all(self) -> int:
        """Wake every parked greenlet (in FIFO order, in one batch per hub)."""
        slots = self._slots
        if not slots:
            return 0
        picked = []
        while True:
            try:
                picked.append(slots.popleft())
            except IndexError:
                break
        self._schedule(picked)
        return len(picked)

    @staticmethod
    def _schedule(picked: list[_Slot]) -> None:
        if not picked:
            return
        me = get_ident()
        first = picked[0]
        if all(s.loop is first.loop for s in picked):
            if first.tid == me:
                first.loop._ready.append([_wake, (picked,)])
            else:
                first.loop.run_callback_threadsafe(_wake, picked)
            return
        by_loop: dict[int, list[_Slot]] = {}
        for s in picked:
            by_loop.setdefault(id(s.loop), []).append(s)
        for group in by_loop.values():
            loop = group[0].loop
            if group[0].tid == me:
                loop._ready.append([_wake, (group,)])
            else:
                loop.run_callback_threadsafe(_wake, group)

    def __repr__(self) -> str:
        return f"<ParkingLot at {id(self):#x} parked={len(self._slots)}>"
