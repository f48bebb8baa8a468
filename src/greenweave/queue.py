"""Queues between greenlets: :class:`Queue` (also :class:`JoinableQueue`),
:class:`SimpleQueue`, :class:`LifoQueue`, :class:`PriorityQueue` and the
rendezvous :class:`Channel`.

``Empty`` and ``Full`` are the standard library's ``queue`` exceptions;
``ShutDown`` is ``queue.ShutDown`` on Python 3.13+ and our own ``Exception``
subclass before that.  :meth:`Queue.shutdown` behaves as in Python 3.13.

Guarantees:

* Nothing is lost or duplicated.  A getter only removes an item while it is
  running (never while parked), so a getter killed or timed out while
  waiting takes nothing; a putter blocked on a full queue adds its item only
  once it runs again and there is room, so one killed or timed out while
  waiting adds nothing.  A woken waiter that gives up passes its turn on.
* Blocking calls park over :class:`~greenweave._core.park.ParkingLot`
  (FIFO among waiters).  Like gevent, a free item or slot goes to whoever
  asks first: ``get_nowait()`` succeeds whenever ``qsize() > 0``.
* Cross-thread use is safe: a ``put`` in thread B wakes a getter parked in
  thread A's hub.  A native lock (from ``_thread``, so monkey-patching does
  not replace it) guards the compound updates and is never held while
  parking; a plain FIFO queue's getters need none (``deque.popleft`` is
  atomic).  As with gevent, an untimed blocking call in a thread whose hub
  has nothing else to do raises ``LoopExit``: give cross-thread waits a
  timeout, or keep the hub busy.
"""

from __future__ import annotations

import heapq
import sys
import types
import warnings
from _thread import allocate_lock as _allocate_lock
from collections import deque
from operator import index as _index
from queue import Empty, Full
from time import monotonic
from typing import Any, Iterable

from greenlet import getcurrent

from ._core.hub import sleep as _sleep
from ._core.park import ParkingLot
from .event import _arm_recheck, _other_threads

if sys.version_info >= (3, 13):
    from queue import ShutDown
else:

    class ShutDown(Exception):
        """Raised by ``put`` on a queue that was shut down, and by ``get``
        once such a queue is empty."""


__all__ = [
    "Queue",
    "PriorityQueue",
    "LifoQueue",
    "SimpleQueue",
    "JoinableQueue",
    "Channel",
    "ShutDown",
    "Empty",
    "Full",
]


def _norm_maxsize(maxsize: Any, warn_depth: int = 0) -> int | None:
    """None for unbounded (None, 0 or less), else the int; ``Queue(0)`` warns
    (it once meant a channel)."""
    if maxsize is None:
        return None
    maxsize = _index(maxsize)
    if maxsize <= 0:
        if maxsize == 0 and warn_depth:
            warnings.warn(
                "Queue(0) now equivalent to Queue(None); if you want a channel, use Channel",
                DeprecationWarning,
                stacklevel=warn_depth + 1,
            )
        return None
    return maxsize


def _bad_timeout() -> ValueError:
    return ValueError("'timeout' must be a non-negative number")


class SimpleQueue:
    """A FIFO queue, unbounded (``maxsize`` None) or holding at most
    ``maxsize`` items; ``items`` pre-fills it.

    The base of the other queues: no ``task_done``/``join``/``shutdown``.
    """

    __class_getitem__ = classmethod(types.GenericAlias)  # Queue[int] in annotations

    def __init__(self, maxsize: int | None = None, items: Iterable[Any] = (),
                 _warn_depth: int = 2) -> None:
        self._maxsize = _norm_maxsize(maxsize, _warn_depth)
        self.queue = self._create_queue(items)
        self._getters = ParkingLot()  # get() and peek() waiters
        self._putters = ParkingLot()
        # One token per greenlet in the waiting part of get()/peek() (a
        # deque, so threads update it atomically), and a count of those in
        # the waiting part of put() (changed under the native lock).
        self._waiting_getters: deque[None] = deque()
        self._nput = 0
        self._mutex = _allocate_lock()
        self._shutdown = False
        self._unfinished = len(self.queue)
        cls = type(self)
        # Plain FIFO storage: the hot paths use the deque directly.
        self._fifo = cls._put is SimpleQueue._put and cls._get is SimpleQueue._get

    # -- storage hooks (overridden by LifoQueue / PriorityQueue) ---------
    def _create_queue(self, items: Iterable[Any] = ()) -> Any:
        return deque(items)

    def _put(self, item: Any) -> None:
        self.queue.append(item)

    def _get(self) -> Any:
        return self.queue.popleft()

    def _peek(self) -> Any:
        return self.queue[0]

    def _qsize(self) -> int:
        return len(self.queue)

    # -- size ------------------------------------------------------------
    @property
    def maxsize(self) -> int | None:
        """The capacity (None: unbounded).  Setting it to a bigger value
        admits blocked putters at once; 0 or less means unbounded."""
        return self._maxsize

    @maxsize.setter
    def maxsize(self, value: int | None) -> None:
        value = _norm_maxsize(value)
        with self._mutex:
            self._maxsize = value
            room = None if value is None else value - len(self.queue)
        if self._nput and (room is None or room > 0):
            if room is None:
                self._putters.unpark_all()
            else:
                self._putters.unpark(room)

    def qsize(self) -> int:
        """The number of items in the queue."""
        return len(self.queue)

    def __len__(self) -> int:
        return len(self.queue)

    def __bool__(self) -> bool:
        # A queue object is always true, even when empty (as in gevent), so
        # ``if queue:`` tests for the object, not its contents.
        return True

    def empty(self) -> bool:
        """True if the queue holds no items."""
        return not self.queue

    def full(self) -> bool:
        """True if the queue holds ``maxsize`` items (never for an unbounded one)."""
        maxsize = self._maxsize
        return maxsize is not None and len(self.queue) >= maxsize

    # -- putting ---------------------------------------------------------
    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Add ``item``, waiting for room if the queue is full.

        A full queue raises ``Full`` at once with ``block=False``, or after
        ``timeout`` seconds.  A queue that was shut down raises ``ShutDown``.
        """
        if timeout is not None and block and timeout < 0:
            raise _bad_timeout()
        mutex = self._mutex
        mutex.acquire()
        maxsize = self._maxsize
        queue = self.queue
        if (maxsize is None or len(queue) < maxsize) and not self._shutdown:
            if self._fifo:
                queue.append(item)
            else:
                try:
                    self._put(item)  # e.g. a heap comparing unorderable items
                except BaseException:
                    mutex.release()
                    raise
            self._unfinished += 1
            mutex.release()
            if self._waiting_getters:
                self._getters.unpark()
            return
        if self._shutdown:
            mutex.release()
            raise ShutDown
        if not block:
            mutex.release()
            raise Full
        if timeout is not None and timeout <= 0:
            mutex.release()
            _sleep(0)  # poll: let every other ready greenlet run once
            self.put(item, False)
            return
        self._nput += 1
        mutex.release()
        self._put_wait(item, timeout)

    def put_nowait(self, item: Any) -> None:
        """``put(item, block=False)``."""
        self.put(item, False)

    def _put_wait(self, item: Any, timeout: float | None) -> None:
        # The caller counted us in _nput.
        mutex = self._mutex
        lot = self._putters
        deadline = None if timeout is None else monotonic() + timeout
        try:
            while True:
                if _other_threads():
                    _arm_recheck(self._recheck_putters)
                if deadline is None:
                    lot.park()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0 or not lot.park(remaining):
                        raise Full
                mutex.acquire()
                if self._shutdown:
                    mutex.release()
                    raise ShutDown
                maxsize = self._maxsize
                if maxsize is None or len(self.queue) < maxsize:
                    try:
                        self._put(item)
                    except BaseException:
                        mutex.release()
                        raise
                    self._unfinished += 1
                    self._nput -= 1
                    mutex.release()
                    if self._waiting_getters:
                        self._getters.unpark()
                    return
                mutex.release()
        except BaseException:
            with mutex:
                self._nput -= 1
                maxsize = self._maxsize
                room = maxsize is None or len(self.queue) < maxsize
            if room:
                lot.unpark()  # leaving empty-handed: pass the turn on
            raise

    def _recheck_putters(self) -> None:
        maxsize = self._maxsize
        if self._shutdown or maxsize is None or len(self.queue) < maxsize:
            self._putters.unpark()

    # -- getting ---------------------------------------------------------
    # A plain FIFO queue takes items with deque.popleft(), one atomic
    # operation, so its getters need no native lock (put() still takes it, to
    # keep the item and its task count in step).  Other storage (a heap, user
    # hooks) is read under the lock.

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Remove and return the next item, waiting for one if the queue is empty.

        An empty queue raises ``Empty`` at once with ``block=False``, or after
        ``timeout`` seconds; an empty queue that was shut down raises
        ``ShutDown``.
        """
        queue = self.queue
        if queue:
            if self._fifo:
                try:
                    item = queue.popleft()
                except IndexError:  # another thread took the last one
                    pass
                else:
                    if self._nput:
                        self._putters.unpark()
                    return item
            else:
                with self._mutex:
                    got = bool(queue)
                    if got:
                        item = self._get()
                if got:
                    if self._nput:
                        self._putters.unpark()
                    return item
        if block and timeout is None and self._fifo and not self._shutdown:
            # The common blocking case, kept flat (_get_wait is the general one).
            lot = self._getters
            waiting = self._waiting_getters
            waiting.append(None)
            try:
                while True:
                    if _other_threads():
                        _arm_recheck(self._recheck_getters)
                    lot.park()
                    if queue:
                        try:
                            item = queue.popleft()
                        except IndexError:  # another thread was quicker
                            continue
                        waiting.pop()
                        if self._nput:
                            self._putters.unpark()
                        return item
                    if self._shutdown:
                        raise ShutDown
            except BaseException:
                waiting.pop()
                if queue:
                    lot.unpark()  # leaving an item behind: pass the turn on
                raise
        return self._get_wait(block, timeout, True)

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(False)

    def peek(self, block: bool = True, timeout: float | None = None) -> Any:
        """Return the next item without removing it; waits like :meth:`get`."""
        if self.queue:
            with self._mutex:
                got = bool(self.queue)
                if got:
                    item = self._peek()
            if got:
                return item
        return self._get_wait(block, timeout, False)

    def peek_nowait(self) -> Any:
        """``peek(block=False)``."""
        return self.peek(False)

    def _take(self, take: bool) -> tuple[bool, Any]:
        """(True, item) if an item could be taken (or peeked at), else (False, None)."""
        queue = self.queue
        if not queue:
            return False, None
        if take and self._fifo:
            try:
                return True, queue.popleft()
            except IndexError:
                return False, None
        with self._mutex:
            if not queue:
                return False, None
            return True, (self._get() if take else self._peek())

    def _get_wait(self, block: bool, timeout: float | None, take: bool) -> Any:
        if self._shutdown:
            raise ShutDown
        if not block:
            raise Empty
        if timeout is not None and timeout <= 0:
            if timeout < 0:
                raise _bad_timeout()
            _sleep(0)  # poll: let every other ready greenlet run once
            return self.get(False) if take else self.peek(False)
        lot = self._getters
        waiting = self._waiting_getters
        waiting.append(None)  # one token per waiting getter (atomic)
        deadline = None if timeout is None else monotonic() + timeout
        queue = self.queue
        try:
            while True:
                if _other_threads():
                    _arm_recheck(self._recheck_getters)
                if deadline is None:
                    lot.park()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0 or not lot.park(remaining):
                        raise Empty
                if queue:
                    if take and self._fifo:
                        try:
                            item = queue.popleft()
                        except IndexError:  # another thread was quicker
                            continue
                    else:
                        got, item = self._take(take)
                        if not got:
                            continue
                    waiting.pop()
                    if take:
                        if self._nput:
                            self._putters.unpark()
                    elif waiting:
                        lot.unpark()  # the item is still there: next, please
                    return item
                if self._shutdown:
                    raise ShutDown
        except BaseException:
            waiting.pop()
            if queue:
                lot.unpark()  # leaving an item behind: pass the turn on
            raise

    def _recheck_getters(self) -> None:
        if self.queue or self._shutdown:
            self._getters.unpark()

    # -- iteration ---------------------------------------------------------
    def __iter__(self) -> SimpleQueue:
        return self

    def __next__(self) -> Any:
        """Get the next item; putting ``StopIteration`` ends the iteration."""
        result = self.get()
        if result is StopIteration:
            raise result
        return result

    next = __next__

    # -- copying and display -------------------------------------------------
    def copy(self) -> SimpleQueue:
        """A new queue of the same type, maxsize and items."""
        return type(self)(self._maxsize, self.queue)

    def __copy__(self) -> SimpleQueue:
        return self.copy()

    def _format(self) -> str:
        parts = []
        if self._maxsize is not None:
            parts.append(f"maxsize={self._maxsize!r}")
        if self.queue:
            parts.append(f"queue={self.queue!r}")
        if self._waiting_getters:
            parts.append(f"getters[{len(self._waiting_getters)}]")
        if self._nput:
            parts.append(f"putters[{self._nput}]")
        return " ".join(parts)

    def __repr__(self) -> str:
        detail = self._format()
        return f"<{type(self).__name__} at {id(self):#x}{' ' + detail if detail else ''}>"

    def __str__(self) -> str:
        detail = self._format()
        return f"<{type(self).__name__}{' ' + detail if detail else ''}>"


class Queue(SimpleQueue):
    """A FIFO queue with task tracking and shutdown (gevent's ``Queue``, which
    is also ``JoinableQueue``).

    Every ``put`` adds an unfinished task; consumers call :meth:`task_done`
    for each item they finished, and :meth:`join` waits until none is left.
    ``unfinished_tasks`` starts at ``len(items)`` unless given.
    """

    def __init__(self, maxsize: int | None = None, items: Iterable[Any] = (),
                 unfinished_tasks: int | None = None) -> None:
        SimpleQueue.__init__(self, maxsize, items, _warn_depth=3)
        if unfinished_tasks is not None:
            self._unfinished = _index(unfinished_tasks)
        self._joiners = ParkingLot()

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done with :meth:`task_done`."""
        return self._unfinished

    @property
    def is_shutdown(self) -> bool:
        """True once :meth:`shutdown` was called."""
        return self._shutdown

    def task_done(self) -> None:
        """Mark one item taken from the queue as finished; raises
        ``ValueError`` if called more times than items were put."""
        with self._mutex:
            if self._unfinished <= 0:
                raise ValueError("task_done() called too many times")
            self._unfinished = left = self._unfinished - 1
        if not left:
            self._joiners.unpark_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every item put has been marked done (True), or
        ``timeout`` seconds passed (False)."""
        if not self._unfinished:
            return True
        lot = self._joiners
        if timeout is not None and timeout <= 0:
            _sleep(0)  # poll: let every other ready greenlet run once
            return not self._unfinished
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            if _other_threads():
                _arm_recheck(self._recheck_joiners)
            if deadline is None:
                lot.park()
            else:
                remaining = deadline - monotonic()
                if remaining <= 0 or not lot.park(remaining):
                    return not self._unfinished
            if not self._unfinished:
                return True

    def _recheck_joiners(self) -> None:
        if not self._unfinished:
            self._joiners.unpark_all()

    def shutdown(self, immediate: bool = False) -> None:
        """Shut the queue down, as Python 3.13's ``queue.Queue.shutdown``.

        Afterwards ``put`` raises ``ShutDown``, and ``get`` raises it once the
        queue is empty; blocked putters and getters are woken to see that.
        With ``immediate``, the items left are discarded (and counted as
        done), so ``get`` raises at once and ``join`` returns.
        """
        with self._mutex:
            self._shutdown = True
            if immediate:
                n = len(self.queue)
                self.queue.clear()
                self._unfinished = max(0, self._unfinished - n)
            done = not self._unfinished
        self._getters.unpark_all()
        self._putters.unpark_all()
        if done:
            self._joiners.unpark_all()

    def copy(self) -> Queue:
        return type(self)(self._maxsize, self.queue)

    def _format(self) -> str:
        detail = SimpleQueue._format(self)
        tasks = f"tasks={self._unfinished}" if self._unfinished else ""
        return " ".join(p for p in (detail, tasks) if p)


#: gevent's name for a queue with ``task_done``/``join``: the same class.
JoinableQueue = Queue


class PriorityQueue(Queue):
    """A queue that returns the smallest item first (a heap: put
    ``(priority, data)`` tuples to order arbitrary data)."""

    def _create_queue(self, items: Iterable[Any] = ()) -> list:
        q = list(items)
        heapq.heapify(q)
        return q

    def _put(self, item: Any) -> None:
        heapq.heappush(self.queue, item)

    def _get(self) -> Any:
        return heapq.heappop(self.queue)

    def _peek(self) -> Any:
        return self.queue[0]


class LifoQueue(Queue):
    """A queue that returns the most recently added item first."""

    def _create_queue(self, items: Iterable[Any] = ()) -> list:
        return list(items)

    def _put(self, item: Any) -> None:
        self.queue.append(item)

    def _get(self) -> Any:
        return self.queue.pop()

    def _peek(self) -> Any:
        return self.queue[-1]


class _Offer:
    """An item a putter holds out on a :class:`Channel` until a getter takes it."""

    __slots__ = ("item", "glet", "taken", "lot")

    def __init__(self, item: Any, glet: Any) -> None:
        self.item = item
        self.glet = glet  # the blocked putter, None for put_nowait
        self.taken = False
        self.lot: ParkingLot | None = None


class Channel:
    """A rendezvous: ``put`` blocks until a getter has taken the item.

    Holds no items of its own (``qsize()`` is always 0).  ``put_nowait``
    succeeds only if a getter is already waiting.  ``maxsize`` must be 1, as in
    gevent.
    """

    __class_getitem__ = classmethod(types.GenericAlias)

    def __init__(self, maxsize: int = 1) -> None:
        if maxsize != 1:
            raise ValueError("Channels have a maxsize of 1")
        self._offers: deque[_Offer] = deque()
        self._getters_lot = ParkingLot()
        self._waiting: list[Any] = []  # greenlets waiting in get()
        self._mutex = _allocate_lock()

    @property
    def getters(self) -> tuple:
        """The greenlets waiting in :meth:`get`."""
        return tuple(self._waiting)

    @property
    def putters(self) -> tuple:
        """The greenlets waiting in :meth:`put` for a getter."""
        return tuple(o.glet for o in list(self._offers) if o.glet is not None)

    @property
    def balance(self) -> int:
        """Waiting putters minus waiting getters."""
        return len(self.putters) - len(self._waiting)

    def qsize(self) -> int:
        return 0

    def empty(self) -> bool:
        return True

    def full(self) -> bool:
        return True

    # -- putting ---------------------------------------------------------
    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        """Hand ``item`` to a getter, waiting until one has taken it.

        ``block=False`` raises ``Full`` unless a getter is already waiting;
        ``timeout`` raises ``Full`` when it passes, and the item is withdrawn.
        """
        if timeout is not None and timeout < 0:
            raise _bad_timeout()
        mutex = self._mutex
        if not block:
            with mutex:
                if len(self._waiting) <= len(self._offers):
                    raise Full
                self._offers.append(_Offer(item, None))
            self._getters_lot.unpark()
            return
        if timeout is not None and timeout <= 0:
            _sleep(0)  # poll: let every other ready greenlet run once
            self.put(item, False)
            return
        offer = _Offer(item, getcurrent())
        lot = offer.lot = ParkingLot()
        with mutex:
            self._offers.append(offer)
        if self._waiting:
            self._getters_lot.unpark()
        deadline = None if timeout is None else monotonic() + timeout
        try:
            while not offer.taken:
                if _other_threads():
                    _arm_recheck(self._recheck_offer, offer)
                if deadline is None:
                    lot.park()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0 or not lot.park(remaining):
                        break
        except BaseException:
            self._withdraw(offer)  # killed: the item goes nowhere
            raise
        if not offer.taken and self._withdraw(offer):
            raise Full

    def _withdraw(self, offer: _Offer) -> bool:
        """Take back an offer no getter took yet; False if one just did."""
        with self._mutex:
            if offer.taken:
                return False
            self._offers.remove(offer)
            return True

    def put_nowait(self, item: Any) -> None:
        self.put(item, False)

    @staticmethod
    def _recheck_offer(offer: _Offer) -> None:
        if offer.taken:
            offer.lot.unpark()  # type: ignore[union-attr]

    # -- getting ---------------------------------------------------------
    def _take(self) -> _Offer | None:
        with self._mutex:
            if not self._offers:
                return None
            offer = self._offers.popleft()
            offer.taken = True
        if offer.lot is not None:
            offer.lot.unpark()
        return offer

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Take an item from a waiting putter, waiting for one if needed.

        Raises ``Empty`` at once with ``block=False`` if no putter is waiting,
        or after ``timeout`` seconds.
        """
        offer = self._take()
        if offer is not None:
            return offer.item
        if not block:
            raise Empty
        if timeout is not None and timeout <= 0:
            if timeout < 0:
                raise _bad_timeout()
            _sleep(0)  # poll: let every other ready greenlet run once
            return self.get(False)
        lot = self._getters_lot
        me = getcurrent()
        deadline = None if timeout is None else monotonic() + timeout
        waiting = self._waiting
        waiting.append(me)
        took = False
        try:
            while True:
                if _other_threads():
                    _arm_recheck(self._recheck_getters)
                if deadline is None:
                    lot.park()
                else:
                    remaining = deadline - monotonic()
                    if remaining <= 0 or not lot.park(remaining):
                        raise Empty
                offer = self._take()
                if offer is not None:
                    took = True
                    return offer.item
        finally:
            waiting.remove(me)
            if not took and self._offers:
                lot.unpark()

    def get_nowait(self) -> Any:
        return self.get(False)

    def _recheck_getters(self) -> None:
        if self._offers:
            self._getters_lot.unpark()

    def __iter__(self) -> Channel:
        return self

    def __next__(self) -> Any:
        result = self.get()
        if result is StopIteration:
            raise result
        return result

    next = __next__

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} at {id(self):#x} getters[{len(self._waiting)}] "
            f"putters[{len(self.putters)}]>"
        )

    def __str__(self) -> str:
        return f"<{type(self).__name__} getters[{len(self._waiting)}] putters[{len(self.putters)}]>"
