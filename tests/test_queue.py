"""Queues: FIFO/LIFO/priority order, blocking and timeouts, task tracking,
shutdown, Channel rendezvous, no item lost or duplicated, native threads."""

from __future__ import annotations

import queue as stdlib_queue
import random
import threading
import time
import warnings

import pytest

import greenweave
from greenweave import Timeout
from greenweave._core.park import ParkingLot
from greenweave.exceptions import LoopExit
from greenweave.queue import (
    Channel,
    Empty,
    Full,
    JoinableQueue,
    LifoQueue,
    PriorityQueue,
    Queue,
    ShutDown,
    SimpleQueue,
)

pytestmark = pytest.mark.timeout(20)


def _parked(*greenlets):
    """Let freshly spawned greenlets run up to their first block."""
    greenweave.sleep(0)
    for g in greenlets:
        assert not g.ready(), g


# -- basics --------------------------------------------------------------


def test_exceptions_are_the_standard_ones():
    assert Empty is stdlib_queue.Empty
    assert Full is stdlib_queue.Full
    assert issubclass(ShutDown, Exception)
    if hasattr(stdlib_queue, "ShutDown"):
        assert ShutDown is stdlib_queue.ShutDown


def test_fifo_order_and_sizes():
    q = Queue()
    assert q.empty() and not q.full() and q.qsize() == 0 and len(q) == 0
    for i in range(5):
        q.put(i)
    assert q.qsize() == 5 and len(q) == 5 and not q.empty()
    assert [q.get() for _ in range(5)] == [0, 1, 2, 3, 4]


def test_queue_object_is_true_even_when_empty():
    assert bool(Queue())
    assert bool(Channel())


def test_maxsize_normalisation():
    assert Queue().maxsize is None
    assert Queue(None).maxsize is None
    assert Queue(-1).maxsize is None
    with pytest.warns(DeprecationWarning):
        assert Queue(0).maxsize is None
    assert Queue(3).maxsize == 3
    with pytest.raises(TypeError):
        Queue("3")
    with pytest.raises(TypeError):
        Queue(1.5)


def test_items_prefill_and_unfinished_tasks():
    q = Queue(items=[1, 2, 3])
    assert q.qsize() == 3 and q.unfinished_tasks == 3
    assert Queue(items=[1, 2], unfinished_tasks=0).unfinished_tasks == 0
    assert [q.get(), q.get(), q.get()] == [1, 2, 3]


def test_full_and_nowait_errors():
    q = Queue(2)
    q.put(1)
    q.put_nowait(2)
    assert q.full()
    with pytest.raises(Full):
        q.put_nowait(3)
    with pytest.raises(Full):
        q.put(3, block=False)
    assert [q.get_nowait(), q.get(block=False)] == [1, 2]
    with pytest.raises(Empty):
        q.get_nowait()
    with pytest.raises(Empty):
        q.peek_nowait()


def test_timeouts_on_every_blocking_call():
    q = Queue(1)
    start = time.monotonic()
    with pytest.raises(Empty):
        q.get(timeout=0.03)
    with pytest.raises(Empty):
        q.peek(timeout=0.03)
    q.put(1)
    with pytest.raises(Full):
        q.put(2, timeout=0.03)
    assert q.join(timeout=0.03) is False
    assert time.monotonic() - start >= 0.1
    assert q.qsize() == 1 and q.get() == 1


def test_negative_timeouts_are_rejected():
    q = Queue()
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)
    with pytest.raises(ValueError, match="non-negative"):
        q.put(1, timeout=-1)
    assert q.qsize() == 0
    with pytest.raises(Empty):  # non-blocking ignores the timeout
        q.get(block=False, timeout=-1)


def test_zero_timeout_lets_ready_greenlets_run_once():
    q = Queue()
    greenweave.spawn(q.put, "x")
    assert q.get(timeout=0) == "x"
    with pytest.raises(Empty):
        q.get(timeout=0)
    full = Queue(1, items=[0])
    greenweave.spawn(full.get)
    full.put(1, timeout=0)
    assert list(full.queue) == [1]


def test_get_blocks_until_put():
    q = Queue()
    g = greenweave.spawn(q.get)
    _parked(g)
    q.put("hello")
    assert g.get(timeout=2) == "hello"


def test_put_blocks_until_room():
    q = Queue(1)
    q.put(1)
    g = greenweave.spawn(q.put, 2)
    _parked(g)
    assert q.get() == 1
    g.join(timeout=2)
    assert g.ready() and q.get() == 2


def test_getters_are_served_in_fifo_order():
    q = Queue()
    got = []
    gs = [greenweave.spawn(lambda i=i: got.append((i, q.get()))) for i in range(4)]
    _parked(*gs)
    for item in "abcd":
        q.put(item)
    greenweave.joinall(gs)
    assert got == [(0, "a"), (1, "b"), (2, "c"), (3, "d")]


def test_blocked_putters_keep_their_order():
    q = Queue(1)
    q.put(0)
    gs = [greenweave.spawn(q.put, i) for i in (1, 2, 3)]
    _parked(*gs)
    out = [q.get(timeout=2) for _ in range(4)]
    assert out == [0, 1, 2, 3]


def test_peek_does_not_remove_and_wakes_getters_too():
    q = Queue()
    p = greenweave.spawn(q.peek)
    g = greenweave.spawn(q.get)
    _parked(p, g)
    q.put("item")
    greenweave.joinall([p, g], timeout=2)
    assert p.value == "item" and g.value == "item"
    assert q.qsize() == 0
    q.put(1)
    assert q.peek() == 1 and q.peek_nowait() == 1 and q.qsize() == 1


def test_loopexit_when_nobody_can_put(fresh_hub):
    with pytest.raises(LoopExit):
        Queue().get()


# -- other orders ------------------------------------------------------------


def test_lifo_queue():
    q = LifoQueue()
    for i in (1, 2, 3):
        q.put(i)
    assert q.peek() == 3
    assert [q.get() for _ in range(3)] == [3, 2, 1]
    assert LifoQueue(items=[1, 2]).get() == 2


def test_priority_queue_returns_smallest_first():
    q = PriorityQueue()
    for item in (5, 1, 4, 2, 3):
        q.put(item)
    assert q.peek() == 1
    assert [q.get() for _ in range(5)] == [1, 2, 3, 4, 5]
    q2 = PriorityQueue(items=[(3, "c"), (1, "a"), (2, "b")])
    assert [q2.get()[1] for _ in range(3)] == ["a", "b", "c"]


def test_priority_queue_wakes_blocked_getter():
    q = PriorityQueue()
    g = greenweave.spawn(q.get)
    _parked(g)
    q.put((1, "x"))
    assert g.get(timeout=2) == (1, "x")


def test_copy_keeps_type_maxsize_and_items():
    q = Queue(5, items=[1, 2])
    c = q.copy()
    assert type(c) is Queue and c.maxsize == 5 and list(c.queue) == [1, 2]
    c.get()
    assert q.qsize() == 2
    pq = PriorityQueue(items=[3, 1, 2]).copy()
    assert type(pq) is PriorityQueue and [pq.get() for _ in range(3)] == [1, 2, 3]
    lq = LifoQueue(items=[1, 2]).copy()
    assert lq.get() == 2


def test_simple_queue_has_no_task_api():
    q = SimpleQueue(2, items=[1])
    assert q.maxsize == 2 and q.get() == 1
    assert not hasattr(q, "task_done") and not hasattr(q, "join")
    assert not hasattr(q, "shutdown")


# -- iteration -----------------------------------------------------------------


def test_iteration_stops_at_stopiteration():
    q = Queue()
    for item in (1, 2, StopIteration, 3):
        q.put(item)
    assert list(q) == [1, 2]
    assert q.qsize() == 1


def test_iteration_waits_for_items():
    q = Queue()

    def feed():
        for i in range(3):
            greenweave.sleep(0.001)
            q.put(i)
        q.put(StopIteration)

    greenweave.spawn(feed)
    assert [x for x in q] == [0, 1, 2]
    assert iter(q) is q


# -- task tracking ------------------------------------------------------------------


def test_joinablequeue_is_queue():
    assert JoinableQueue is Queue


def test_task_done_and_join():
    q = JoinableQueue()
    assert q.join() is True and q.join(0) is True
    done = []

    def worker():
        for item in q:
            done.append(item)
            q.task_done()

    greenweave.spawn(worker)
    for i in range(5):
        q.put(i)
    assert q.unfinished_tasks == 5
    assert q.join(timeout=5) is True
    assert done == [0, 1, 2, 3, 4] and q.unfinished_tasks == 0
    q.put(StopIteration)


def test_join_times_out_while_tasks_remain():
    q = JoinableQueue()
    q.put(1)
    q.get()
    assert q.join(timeout=0.02) is False
    q.task_done()
    assert q.join(timeout=0.02) is True


def test_task_done_too_many_times():
    q = JoinableQueue()
    with pytest.raises(ValueError, match="too many"):
        q.task_done()
    q.put(1)
    q.task_done()
    with pytest.raises(ValueError):
        q.task_done()


def test_join_wakes_several_joiners():
    q = JoinableQueue()
    q.put(1)
    js = [greenweave.spawn(q.join) for _ in range(3)]
    _parked(*js)
    q.get()
    q.task_done()
    greenweave.joinall(js, timeout=2)
    assert [j.value for j in js] == [True] * 3


# -- shutdown ------------------------------------------------------------------------


def test_shutdown_refuses_puts_and_drains_gets():
    q = Queue()
    q.put(1)
    q.put(2)
    q.shutdown()
    assert q.is_shutdown
    with pytest.raises(ShutDown):
        q.put(3)
    with pytest.raises(ShutDown):
        q.put_nowait(3)
    assert [q.get(), q.get()] == [1, 2]
    with pytest.raises(ShutDown):
        q.get()
    with pytest.raises(ShutDown):
        q.get_nowait()
    with pytest.raises(ShutDown):
        q.peek()
    assert q.unfinished_tasks == 2


def test_shutdown_immediate_discards_items_and_releases_join():
    q = Queue()
    for i in range(3):
        q.put(i)
    joiner = greenweave.spawn(q.join)
    _parked(joiner)
    q.shutdown(immediate=True)
    assert q.qsize() == 0 and q.unfinished_tasks == 0
    assert joiner.get(timeout=2) is True
    with pytest.raises(ShutDown):
        q.get()


def test_shutdown_wakes_blocked_getters_and_putters():
    q = Queue()
    getters = [greenweave.spawn(q.get) for _ in range(2)]
    full = Queue(1, items=[0])
    putter = greenweave.spawn(full.put, 1)
    _parked(*getters, putter)
    q.shutdown()
    full.shutdown()
    greenweave.joinall(getters + [putter], timeout=2)
    assert all(isinstance(g.exception, ShutDown) for g in getters)
    assert isinstance(putter.exception, ShutDown)
    assert list(full.queue) == [0]  # the refused item was not added


def test_join_after_items_done_when_shut_down_non_immediately():
    q = Queue()
    q.put(1)
    q.shutdown()
    assert q.get() == 1
    q.task_done()
    assert q.join(timeout=1) is True


# -- nothing lost, nothing duplicated ---------------------------------------------------


def test_killed_parked_getter_takes_nothing():
    q = Queue()
    gs = [greenweave.spawn(q.get) for _ in range(3)]
    _parked(*gs)
    gs[0].kill()
    q.put("a")
    q.put("b")
    greenweave.joinall(gs[1:], timeout=2)
    assert sorted([gs[1].value, gs[2].value]) == ["a", "b"]
    assert q.qsize() == 0


def test_getter_killed_after_wakeup_passes_the_item_on():
    q = Queue()
    gs = [greenweave.spawn(q.get) for _ in range(2)]
    _parked(*gs)
    gs[0].kill(block=False)  # the kill is delivered first ...
    q.put("only")  # ... after this picked gs[0] to wake up
    assert gs[1].get(timeout=2) == "only"
    assert isinstance(gs[0].value, greenweave.GreenletExit)
    assert q.qsize() == 0


def test_timed_out_getter_takes_nothing():
    q = Queue()
    g = greenweave.spawn(q.get, timeout=0.01)
    g.join(timeout=2)
    assert isinstance(g.exception, Empty)
    q.put(1)
    assert q.qsize() == 1 and q.get() == 1


def test_timeout_exception_in_getter_takes_nothing():
    q = Queue()

    def getter():
        with Timeout(0.01):
            return q.get()

    g = greenweave.spawn(getter)
    g.join(timeout=2)
    assert isinstance(g.exception, Timeout)
    q.put(1)
    assert q.get_nowait() == 1


def test_killed_blocked_putter_adds_nothing():
    q = Queue(1, items=["old"])
    g = greenweave.spawn(q.put, "new")
    _parked(g)
    g.kill()
    assert q.qsize() == 1 and q.get() == "old"
    with pytest.raises(Empty):
        q.get_nowait()


def test_timed_out_putter_adds_nothing():
    q = Queue(1, items=["old"])
    with pytest.raises(Full):
        q.put("new", timeout=0.01)
    assert list(q.queue) == ["old"] and q.unfinished_tasks == 1


def test_putter_killed_after_wakeup_passes_the_room_on():
    q = Queue(1, items=[0])
    p1 = greenweave.spawn(q.put, 1)
    p2 = greenweave.spawn(q.put, 2)
    _parked(p1, p2)
    p1.kill(block=False)  # the kill is delivered first ...
    assert q.get() == 0  # ... after this picked p1 to wake up
    p2.join(timeout=2)
    assert p2.ready() and list(q.queue) == [2]


def test_maxsize_growth_admits_blocked_putters():
    q = Queue(1, items=[0])
    ps = [greenweave.spawn(q.put, i) for i in (1, 2, 3)]
    _parked(*ps)
    q.maxsize = 3
    greenweave.sleep(0)
    greenweave.sleep(0)
    assert q.qsize() == 3 and [p.ready() for p in ps] == [True, True, False]
    q.maxsize = None
    greenweave.joinall(ps, timeout=2)
    assert list(q.queue) == [0, 1, 2, 3]


def test_stress_random_kills_and_timeouts_lose_nothing():
    rnd = random.Random(1234)
    q = Queue(5)
    produced = list(range(400))
    consumed = []

    def producer(items):
        for item in items:
            while True:
                try:
                    q.put(item, timeout=rnd.choice([None, 0.001, 0.01]))
                    break
                except Full:
                    pass

    def consumer():
        while True:
            try:
                consumed.append(q.get(timeout=rnd.choice([None, 0.001, 0.01])))
            except Empty:
                pass

    producers = [greenweave.spawn(producer, produced[i::4]) for i in range(4)]
    consumers = [greenweave.spawn(consumer) for _ in range(6)]
    for _ in range(60):
        greenweave.sleep(rnd.choice([0, 0.001]))
        victim = rnd.randrange(len(consumers))
        consumers[victim].kill()
        consumers[victim] = greenweave.spawn(consumer)
    greenweave.joinall(producers, timeout=10)
    deadline = time.monotonic() + 5
    while len(consumed) + q.qsize() < len(produced) and time.monotonic() < deadline:
        greenweave.sleep(0.01)
    greenweave.killall(consumers)
    leftover = list(q.queue)
    assert sorted(consumed + leftover) == produced


# -- Channel -------------------------------------------------------------------------------


def test_channel_put_waits_for_a_getter():
    c = Channel()
    done = []

    def putter():
        c.put("x")
        done.append(True)

    p = greenweave.spawn(putter)
    _parked(p)
    assert c.balance == 1 and len(c.putters) == 1 and c.putters[0] is p
    assert c.qsize() == 0 and c.empty() and c.full()
    assert c.get() == "x"
    assert done == []  # the putter has not run yet, but its item is delivered
    p.join(timeout=2)
    assert done == [True] and c.balance == 0


def test_channel_get_waits_for_a_putter():
    c = Channel()
    g = greenweave.spawn(c.get)
    _parked(g)
    assert c.balance == -1 and c.getters == (g,)
    c.put("y", timeout=2)
    assert g.get(timeout=2) == "y"


def test_channel_nowait_calls():
    c = Channel()
    with pytest.raises(Full):
        c.put_nowait(1)
    with pytest.raises(Empty):
        c.get_nowait()
    g = greenweave.spawn(c.get)
    _parked(g)
    c.put_nowait(7)  # a getter is waiting: handed over
    assert g.get(timeout=2) == 7


def test_channel_timeouts_withdraw_the_item():
    c = Channel()
    with pytest.raises(Full):
        c.put("late", timeout=0.01)
    with pytest.raises(Empty):
        c.get(timeout=0.01)
    with pytest.raises(Empty):
        c.get_nowait()
    assert c.balance == 0
    with pytest.raises(ValueError):
        c.put(1, timeout=-1)


def test_channel_killed_putter_withdraws_its_item():
    c = Channel()
    p = greenweave.spawn(c.put, "gone")
    _parked(p)
    p.kill()
    assert c.balance == 0
    with pytest.raises(Empty):
        c.get(timeout=0.01)


def test_channel_killed_getter_takes_nothing():
    c = Channel()
    g1 = greenweave.spawn(c.get)
    g2 = greenweave.spawn(c.get)
    _parked(g1, g2)
    g1.kill()
    c.put("z", timeout=2)
    assert g2.get(timeout=2) == "z"


def test_channel_putters_keep_order_and_iteration():
    c = Channel()

    def feed():
        for i in range(3):
            c.put(i)
        c.put(StopIteration)

    greenweave.spawn(feed)
    assert list(c) == [0, 1, 2]


def test_channel_maxsize_must_be_one():
    Channel(1)
    for bad in (0, 2, None):
        with pytest.raises(ValueError, match="maxsize of 1"):
            Channel(bad)


# -- native threads -----------------------------------------------------------------------


def test_put_from_another_thread_wakes_a_getter():
    q = Queue()

    def putter():
        time.sleep(0.05)
        q.put("from thread")

    t = threading.Thread(target=putter)
    t.start()
    try:
        assert q.get(timeout=5) == "from thread"
    finally:
        t.join()


def test_many_threads_put_one_greenlet_gets_everything_once():
    q = Queue()
    n_threads, per_thread = 4, 500

    def putter(base):
        for i in range(per_thread):
            q.put(base + i)

    threads = [threading.Thread(target=putter, args=(k * per_thread,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    got = [q.get(timeout=5) for _ in range(n_threads * per_thread)]
    for t in threads:
        t.join()
    assert sorted(got) == list(range(n_threads * per_thread))
    assert q.qsize() == 0 and q.unfinished_tasks == n_threads * per_thread


def test_bounded_queue_between_a_thread_hub_and_the_main_hub():
    # A producer greenlet in another thread's hub blocks on a full queue; the
    # main thread's getters make room for it across the threads.
    q = Queue(2)
    n = 300
    errors = []

    def thread_main():
        try:
            for i in range(n):
                q.put(i, timeout=5)
        except BaseException as ex:  # pragma: no cover - reported below
            errors.append(ex)

    t = threading.Thread(target=thread_main)
    t.start()
    got = [q.get(timeout=5) for _ in range(n)]
    t.join(5)
    assert not errors
    assert got == list(range(n))


def test_getters_in_two_threads_share_items_without_duplicates():
    q = Queue()
    n = 400
    got_thread = []

    def thread_main():
        while True:
            item = q.get(timeout=5)
            if item is None:
                return
            got_thread.append(item)

    t = threading.Thread(target=thread_main)
    t.start()
    got_main = []
    for i in range(n):
        q.put(i)
        if i % 3 == 0:
            try:
                got_main.append(q.get_nowait())
            except Empty:
                pass
    q.put(None)
    t.join(10)
    while True:
        try:
            item = q.get_nowait()
        except Empty:
            break
        if item is not None:
            got_main.append(item)
    assert sorted(got_main + got_thread) == list(range(n))


class _SlowLot(ParkingLot):
    """park() first lets other native threads run: holds the window between a
    getter's "queue is empty" check and its park wide open."""

    __slots__ = ("entered",)

    def park(self, timeout=None):
        self.entered.set()
        time.sleep(0.02)  # releases the GIL
        return ParkingLot.park(self, timeout)


def test_put_from_a_thread_between_check_and_park_is_not_lost():
    q = Queue()
    q._getters = lot = _SlowLot()
    lot.entered = threading.Event()

    def putter():
        lot.entered.wait(5)
        q.put("raced")

    t = threading.Thread(target=putter)
    t.start()
    start = time.monotonic()
    try:
        assert q.get(timeout=5) == "raced"
        assert time.monotonic() - start < 2.5  # not rescued by the timeout
    finally:
        t.join()


def test_reprs():
    q = Queue(3)
    q.put(1)
    assert "maxsize=3" in repr(q) and "Queue" in str(q)
    assert "Channel" in repr(Channel())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert "PriorityQueue" in repr(PriorityQueue(items=[1]))


def test_priority_queue_unorderable_item_does_not_wedge_the_queue():
    # heapq has already appended the item when the comparison fails (as with
    # the standard library); what matters is that the queue's lock was
    # released, so the next calls do not hang.
    q = PriorityQueue()
    q.put(1)
    with pytest.raises(TypeError):
        q.put("a")
    assert q.get(timeout=1) == 1
    assert q.get(timeout=1) == "a"
    q.put(2)
    assert q.get_nowait() == 2
