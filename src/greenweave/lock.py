"""Locks: :class:`Semaphore`, :class:`BoundedSemaphore`, :class:`DummySemaphore`
and the re-entrant :class:`RLock`.

All block only the calling greenlet, over
:class:`~greenweave._core.park.ParkingLot`, and may be shared between native
threads, each with its own hub: a ``release()`` in thread B wakes a greenlet
parked in thread A.

Fairness: once greenlets are waiting, a slot freed by ``release()`` belongs
to them, oldest first.  A greenlet that arrives meanwhile (even with
``blocking=False``) queues behind them instead of taking the slot, so a
greenlet that releases and immediately re-acquires cannot starve the others.
A waiter that is woken but killed or timed out before it runs passes its turn
to the next one.

Threads and LoopExit: while other Python threads are running, a greenlet
waiting in ``acquire()``/``wait()`` keeps its hub's loop alive, because
another thread may still release the semaphore: like a native lock, the wait
lasts until the release (or the timeout).  With no other thread, a wait that
nothing in this thread can end raises
:class:`~greenweave.exceptions.LoopExit` instead of hanging.  (gevent blocks
the same way once it has seen the semaphore used by several threads.)
"""

from __future__ import annotations

from _thread import allocate_lock as _allocate_lock
from collections import deque
from operator import index as _index
from time import monotonic
from typing import Any, Callable

from greenlet import getcurrent

from ._core.hub import get_hub, get_hub_if_exists
from ._core.hub import sleep as _sleep
from ._core.park import ParkingLot
from .event import _arm_recheck, _Linkable, _other_threads
from .exceptions import LoopExit

__all__ = ["Semaphore", "BoundedSemaphore", "DummySemaphore", "RLock"]


class Semaphore(_Linkable):
    """A counter of free slots: ``acquire()`` takes one (waiting while there
    are none), ``release()`` gives one back.

    ``Semaphore(1)`` is a lock that any greenlet may release.  ``counter`` is
    the number of free slots.
    """

    # Free slots are tokens in a deque: taking one (pop) and giving one back
    # (append) are single atomic operations, so the uncontended paths need no
    # native lock even when several threads share the semaphore.
    __slots__ = ("_tokens", "_lot", "_waiters", "_mutex", "_turn_pending", "__weakref__")

    def __init__(self, value: int = 1, hub: Any = None) -> None:
        if not isinstance(value, int):
            value = int(value) if isinstance(value, float) else _index(value)
        if value < 0:
            raise ValueError("semaphore initial value must be >= 0")
        _Linkable.__init__(self)
        self._tokens: deque[None] = deque([None] * value)
        self._lot = ParkingLot()
        #: One token per greenlet inside the waiting part of acquire()/wait()
        #: (parked, or woken and about to look).  While there are any, free
        #: slots are theirs.
        self._waiters: deque[None] = deque()
        self._mutex = _allocate_lock()  # BoundedSemaphore's check-then-release
        self._turn_pending = False

    @property
    def counter(self) -> int:
        """The number of free slots."""
        return len(self._tokens)

    @counter.setter
    def counter(self, value: int) -> None:
        tokens = self._tokens
        while len(tokens) < value:
            self.release()
        while len(tokens) > value:
            try:
                tokens.pop()
            except IndexError:
                break

    # -- state ---------------------------------------------------------
    def locked(self) -> bool:
        """True if ``acquire(blocking=False)`` would fail right now."""
        return not self._tokens

    def ready(self) -> bool:
        """True if a slot is free (``rawlink`` callbacks fire when this becomes true)."""
        return bool(self._tokens)

    # -- acquiring -------------------------------------------------------
    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take a slot; return True, or False if ``blocking`` is false and no
        slot is free, or if ``timeout`` seconds pass first.

        A free slot is taken at once even while others wait (as gevent does):
        handing every release to the oldest waiter costs a park and a wake-up
        per release.  Woken waiters that find the slot gone park again.
        """
        if self._tokens:
            try:
                self._tokens.pop()
                return True
            except IndexError:  # another thread took the last one
                pass
        if not blocking:
            return False
        return self._wait(timeout, True)

    def wait(self, timeout: float | None = None) -> int:
        """Wait until a slot is free, without taking it; return :attr:`counter`
        (0 if ``timeout`` passed first)."""
        if not self._tokens:
            self._wait(timeout, False)
        return len(self._tokens)

    def _wait(self, timeout: float | None, take: bool) -> bool:
        """The waiting half of acquire() (``take``) and wait()."""
        tokens = self._tokens
        waiters = self._waiters
        if not waiters and tokens:
            # Nobody queued, and a slot came free since acquire() looked
            # (released by another thread): it is ours.
            if not take:
                return True
            try:
                tokens.pop()
                return True
            except IndexError:
                pass
        if timeout is not None and timeout <= 0:
            # Poll: let every other ready greenlet run once, look once more.
            _sleep(0)
            if waiters or not tokens:
                return False
            if take:
                try:
                    tokens.pop()
                except IndexError:
                    return False
            return True
        waiters.append(None)
        lot = self._lot
        deadline = None if timeout is None else monotonic() + timeout
        remaining = None
        got = False
        try:
            while True:
                if deadline is not None:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        return False
                if _other_threads():
                    # Another native thread may release us: keep this hub's
                    # loop alive while we wait (a native lock would block too)
                    # rather than let it run dry into LoopExit.
                    loop = get_hub().loop
                    _arm_recheck(self._recheck)
                    loop.ref()
                    try:
                        woken = lot.park(remaining)
                    except LoopExit:
                        woken = True  # raced with a thread starting: look again
                    finally:
                        loop.unref()
                else:
                    woken = lot.park(remaining)
                if not woken:
                    return False
                if tokens:
                    if not take:
                        got = True
                        return True
                    try:
                        tokens.pop()
                        got = True
                        return True
                    except IndexError:  # another thread was quicker
                        pass
        finally:
            waiters.pop()
            if not got or not take or waiters and tokens:
                self._pass_turn()

    def _schedule_turn(self) -> None:
        # Decide who to wake when the hub gets there, not now: a releaser
        # that takes the slot straight back (the common loop body) then
        # wakes nobody for nothing.  With other native threads about, the
        # waiter may be parked in another hub while this thread's hub may
        # not run again soon (it may block natively): wake at once.
        hub = get_hub_if_exists()
        if hub is None or _other_threads():
            self._pass_turn()
            return
        self._turn_pending = True
        hub.loop._ready.append([self._deferred_turn, ()])

    def _deferred_turn(self) -> None:
        self._turn_pending = False
        self._pass_turn()

    def _pass_turn(self) -> None:
        # Wake parked waiters for the free slots that no wake-up already on
        # its way will claim (waiters not parked are woken ones about to look).
        tokens = len(self._tokens)
        if tokens:
            lot = self._lot
            parked = len(lot)
            if parked:
                unclaimed = tokens - (len(self._waiters) - parked)
                if unclaimed > 0:
                    lot.unpark(unclaimed)

    def _recheck(self) -> None:
        if self._tokens:
            self._lot.unpark()

    # -- releasing -------------------------------------------------------
    def release(self) -> int:
        """Give a slot back, waking the oldest waiter; return :attr:`counter`.

        Callable from any native thread.
        """
        self._tokens.append(None)
        if self._waiters and not self._turn_pending:
            self._schedule_turn()
        if self._links:
            self._schedule_notify()
        return len(self._tokens)

    def _at_fork_reinit(self) -> None:
        self._mutex = _allocate_lock()

    # -- context manager -------------------------------------------------
    def __enter__(self) -> None:
        self.acquire()

    def __exit__(self, t: Any, v: Any, tb: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} at {id(self):#x} counter={len(self._tokens)} "
            f"waiters={len(self._waiters)} links={len(self._links)}>"
        )


class BoundedSemaphore(Semaphore):
    """A :class:`Semaphore` that refuses to be released more often than it was
    acquired: over-release raises ``ValueError``."""

    __slots__ = ("_initial_value",)

    _OVER_RELEASE_ERROR = ValueError

    def __init__(self, value: int = 1, hub: Any = None) -> None:
        Semaphore.__init__(self, value, hub)
        self._initial_value = len(self._tokens)

    def release(self) -> int:
        tokens = self._tokens
        with self._mutex:  # check-then-add must not interleave with another release
            if len(tokens) >= self._initial_value:
                raise self._OVER_RELEASE_ERROR("Semaphore released too many times")
            tokens.append(None)
        if self._waiters and not self._turn_pending:
            self._schedule_turn()
        if self._links:
            self._schedule_notify()
        return len(tokens)


class DummySemaphore:
    """A semaphore that never blocks: for code that takes an optional lock."""

    def __init__(self, value: Any = None) -> None:
        pass

    def locked(self) -> bool:
        """Always False."""
        return False

    def ready(self) -> bool:
        """Always True."""
        return True

    def release(self) -> None:
        """Does nothing."""

    def rawlink(self, callback: Callable[[Any], Any]) -> None:
        """Does nothing (the semaphore never becomes ready: it always is)."""

    def unlink(self, callback: Callable[[Any], Any]) -> None:
        """Does nothing."""

    def wait(self, timeout: float | None = None) -> int:
        """Returns 1 at once."""
        return 1

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Returns True at once."""
        return True

    def __enter__(self) -> None:
        pass

    def __exit__(self, typ: Any, val: Any, tb: Any) -> None:
        pass

    def __str__(self) -> str:
        return f"<{type(self).__name__}>"

    __repr__ = __str__


class RLock:
    """A re-entrant lock owned by a greenlet.

    The owner may acquire it again (it must release it as many times);
    releasing a lock you do not own raises ``RuntimeError``.
    """

    __slots__ = ("_block", "_owner", "_count", "__weakref__")

    def __init__(self, hub: Any = None) -> None:
        self._block = Semaphore(1)
        self._owner: Any = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Acquire the lock (again, if we own it); True on success, False if
        ``blocking`` is false or ``timeout`` passed while another owns it."""
        me = getcurrent()
        if self._owner is me:
            self._count += 1
            return 1  # type: ignore[return-value]  # like threading.RLock
        if not self._block.acquire(blocking, timeout):
            return False
        self._owner = me
        self._count = 1
        return True

    __enter__ = acquire

    def release(self) -> None:
        """Undo one acquire; the last one frees the lock for others."""
        if self._owner is not getcurrent():
            raise RuntimeError(
                f"cannot release un-acquired lock. Owner: {self._owner!r} "
                f"Current: {getcurrent()!r}"
            )
        self._count = count = self._count - 1
        if not count:
            self._owner = None
            self._block.release()

    def __exit__(self, typ: Any, value: Any, tb: Any) -> None:
        self.release()

    def locked(self) -> bool:
        """True if some greenlet owns the lock."""
        return self._block.locked()

    def _is_owned(self) -> bool:
        return self._owner is getcurrent()

    # threading.Condition support: give up all levels at once and restore them.
    def _release_save(self) -> tuple[int, Any]:
        count, owner = self._count, self._owner
        self._count = 0
        self._owner = None
        self._block.release()
        return count, owner

    def _acquire_restore(self, count_owner: tuple[int, Any]) -> None:
        self._block.acquire()
        self._count, self._owner = count_owner

    def _at_fork_reinit(self) -> None:
        self._block._at_fork_reinit()
        self._owner = None
        self._count = 0

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} at {id(self):#x} owner={self._owner!r} "
            f"count={self._count} block={self._block!r}>"
        )
