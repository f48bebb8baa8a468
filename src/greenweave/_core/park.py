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

from greenlet import getcurrent
from greenlet import greenlet as RawGreenlet

from ..exceptions import BlockingSwitchOutError
from .hub import _tls, get_hub

__all__ = ["ParkingLot"]

_switch = RawGreenlet.switch

# A slot is a list [greenlet, loop, thread ident, state]: a list costs a
# third of an object with __init__, and one is made per park.  ``state`` is
# only touched in the parker's thread.
_GLET, _LOOP, _TID, _STATE = 0, 1, 2, 3
_PARKED = 0
_DONE = 1


def _wake(slots: list[list]) -> None:
    # Runs in the parkers' hub.  A slot whose greenlet gave up meanwhile (it
    # was killed or timed out and passed the wake-up on) is skipped.
    for slot in slots:
        if slot[3] == _PARKED:
            slot[3] = _DONE
            try:
                slot[0].switch(True)
            except:  # noqa: E722 - a raw greenlet died with an error: report, go on
                slot[1].handle_error(slot[0], *sys.exc_info())


def _wake_one(slot: list) -> None:
    if slot[3] == _PARKED:
        slot[3] = _DONE
        slot[0].switch(True)


class ParkingLot:
    """A FIFO queue of greenlets waiting for something (see module docstring)."""

    __slots__ = ("_slots", "__weakref__")

    def __init__(self) -> None:
        self._slots: deque[list] = deque()

    def __len__(self) -> int:
        return len(self._slots)

    def __bool__(self) -> bool:
        return bool(self._slots)

    def park(self, timeout: float | None = None) -> bool:
        """Block the current greenlet until unparked (True) or timed out (False).

        ``timeout`` None waits forever; <= 0 still parks, until the callbacks
        already queued have run (so other ready greenlets run once first).
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
        slot = [cur, loop, get_ident(), _PARKED]
        self._slots.append(slot)
        if timeout is None:
            try:
                return _switch(hub)
            except BaseException:
                self._abandon(slot)
                raise
        if timeout <= 0:
            # Expire behind what is already queued, not on a timer (a 0 s
            # timer can fire before callbacks queued earlier this iteration).
            expiry = [self._expire, (slot,)]
            loop._ready.append(expiry)
            try:
                return _switch(hub)
            except BaseException:
                self._abandon(slot)
                raise
            finally:
                expiry[0] = None
        timer = loop.timer(timeout)
        timer.start(self._expire, slot)
        try:
            return _switch(hub)
        except BaseException:
            self._abandon(slot)
            raise
        finally:
            timer.stop()

    def _expire(self, slot: list) -> None:
        if slot[3] != _PARKED:
            return
        try:
            self._remove(slot)
        except ValueError:
            # An unparker already picked us; its wake-up is on the way and wins.
            return
        slot[3] = _DONE
        slot[0].switch(False)

    def _remove(self, slot: list) -> None:
        """Take ``slot`` itself out of the queue (ValueError if not there).

        Not ``deque.remove``: that compares by value, and two slots are equal
        lists when one greenlet parked twice (one of them stale)."""
        slots = self._slots
        for i, other in enumerate(slots):
            if other is slot:
                del slots[i]
                return
        raise ValueError("slot not parked")

    def _abandon(self, slot: list) -> None:
        if slot[3] != _PARKED:
            return
        slot[3] = _DONE
        try:
            self._remove(slot)
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
            if slot[2] == get_ident():
                slot[1]._ready.append([_wake_one, (slot,)])
            else:
                slot[1].run_callback_threadsafe(_wake_one, slot)
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
    def _schedule(picked: list[list]) -> None:
        if not picked:
            return
        me = get_ident()
        first = picked[0]
        loop = first[1]
        if all(s[1] is loop for s in picked):
            if first[2] == me:
                loop._ready.append([_wake, (picked,)])
            else:
                loop.run_callback_threadsafe(_wake, picked)
            return
        by_loop: dict[int, list[list]] = {}
        for s in picked:
            by_loop.setdefault(id(s[1]), []).append(s)
        for group in by_loop.values():
            loop = group[0][1]
            if group[0][2] == me:
                loop._ready.append([_wake, (group,)])
            else:
                loop.run_callback_threadsafe(_wake, group)

    def __repr__(self) -> str:
        return f"<ParkingLot at {id(self):#x} parked={len(self._slots)}>"
