"""Semaphore, BoundedSemaphore, DummySemaphore and RLock: blocking, timeouts,
fairness, kills, over-release, ownership, native threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

import greenweave
from greenweave import Timeout
from greenweave._core.park import ParkingLot
from greenweave.lock import BoundedSemaphore, DummySemaphore, RLock, Semaphore

pytestmark = pytest.mark.timeout(20)


def _parked(*greenlets):
    greenweave.sleep(0)
    for g in greenlets:
        assert not g.ready(), g


# -- Semaphore basics -------------------------------------------------------------


def test_semaphore_counts_slots():
    s = Semaphore(2)
    assert s.counter == 2 and not s.locked() and s.ready()
    assert s.acquire() is True and s.counter == 1
    assert s.acquire(blocking=False) is True and s.counter == 0
    assert s.locked() and not s.ready()
    assert s.acquire(blocking=False) is False
    assert s.release() == 1
    assert s.release() == 2
    assert s.release() == 3  # a plain Semaphore may be released beyond its start
    assert Semaphore().counter == 1


def test_semaphore_bad_values():
    with pytest.raises(ValueError, match=">= 0"):
        Semaphore(-1)
    with pytest.raises(TypeError):
        Semaphore("1")
    with pytest.raises(TypeError):
        Semaphore(None)
    assert Semaphore(2.7).counter == 2
    assert Semaphore(0).counter == 0


def test_acquire_timeout_returns_false():
    s = Semaphore(0)
    start = time.monotonic()
    assert s.acquire(timeout=0.05) is False
    assert time.monotonic() - start >= 0.04
    assert s.acquire(True, 0.01) is False
    assert s.counter == 0


def test_acquire_zero_timeout_lets_ready_greenlets_run_once():
    s = Semaphore(0)
    greenweave.spawn(s.release)
    assert s.acquire(timeout=0) is True
    assert s.acquire(timeout=0) is False
    assert s.acquire(timeout=-1) is False


def test_acquire_nonblocking_never_yields():
    s = Semaphore(0)
    greenweave.spawn(s.release)
    assert s.acquire(blocking=False) is False
    assert s.acquire(blocking=False, timeout=5) is False


def test_acquire_blocks_until_release():
    s = Semaphore(0)
    g = greenweave.spawn(s.acquire)
    _parked(g)
    s.release()
    assert g.get(timeout=2) is True
    assert s.counter == 0


def test_timeout_context_interrupts_acquire_without_taking_a_slot():
    s = Semaphore(0)
    with pytest.raises(Timeout):
        with Timeout(0.02):
            s.acquire()
    s.release()
    assert s.counter == 1 and s.acquire(blocking=False)


def test_wait_does_not_acquire():
    s = Semaphore(1)
    assert s.wait() == 1 and s.counter == 1
    s.acquire()
    assert s.wait(0.01) == 0
    assert s.wait(timeout=0) == 0
    w = greenweave.spawn(s.wait)
    _parked(w)
    s.release()
    assert w.get(timeout=2) == 1
    assert s.counter == 1


def test_waiter_that_only_looks_passes_the_slot_to_an_acquirer():
    s = Semaphore(0)
    w = greenweave.spawn(s.wait)
    a = greenweave.spawn(s.acquire)
    _parked(w, a)
    s.release()
    greenweave.joinall([w, a], timeout=2)
    assert w.value == 1 and a.value is True and s.counter == 0


def test_context_manager():
    s = Semaphore(1)
    with s as value:
        assert value is None
        assert s.locked()
    assert not s.locked()
    with pytest.raises(KeyError):
        with s:
            raise KeyError
    assert s.counter == 1


def test_rawlink_fires_when_a_slot_frees():
    s = Semaphore(0)
    calls = []
    s.rawlink(calls.append)
    greenweave.sleep(0)
    assert calls == []
    s.release()
    greenweave.sleep(0)
    assert calls == [s] and s.counter == 1  # a link does not take the slot
    s2 = Semaphore(1)
    s2.rawlink(calls.append)
    greenweave.sleep(0)
    assert calls[-1] is s2
    cb = calls.append
    s3 = Semaphore(0)
    s3.rawlink(cb)
    s3.unlink(cb)
    s3.release()
    greenweave.sleep(0)
    assert calls[-1] is s2
    with pytest.raises(TypeError):
        s3.rawlink("nope")


def test_many_greenlets_share_a_semaphore():
    s = Semaphore(3)
    inside = [0]
    peak = [0]

    def worker():
        for _ in range(5):
            with s:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                greenweave.sleep(0)
                inside[0] -= 1

    gs = [greenweave.spawn(worker) for _ in range(30)]
    greenweave.joinall(gs, timeout=10)
    assert all(g.successful() for g in gs)
    assert peak[0] == 3 and s.counter == 3


def test_acquire_with_nobody_to_release_raises_loopexit():
    # A fresh interpreter: no other Python thread exists there, so nothing
    # could ever release the semaphore.
    code = textwrap.dedent(
        """
        from greenweave.lock import Semaphore
        from greenweave.exceptions import LoopExit
        try:
            Semaphore(0).acquire()
        except LoopExit:
            print("LoopExit")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == "LoopExit", out.stderr


# -- fairness --------------------------------------------------------------------------


def test_free_slot_may_be_taken_by_a_newcomer_and_waiters_stay_fifo():
    # As in gevent, a released slot is free for whoever asks first (no
    # hand-off); the parked waiters are then served oldest first, none lost.
    s = Semaphore(1)
    s.acquire()
    order = []

    def waiter(i):
        s.acquire()
        order.append(i)
        greenweave.sleep(0)
        s.release()

    ws = [greenweave.spawn(waiter, i) for i in range(3)]
    _parked(*ws)
    s.release()
    assert s.acquire(blocking=False) is True  # the newcomer gets in first
    order.append("main")
    s.release()
    greenweave.joinall(ws, timeout=5)
    assert order == ["main", 0, 1, 2]
    assert s.counter == 1


def test_holder_that_waits_outside_the_lock_lets_a_waiter_in():
    s = Semaphore(1)
    served = []

    def hog():
        for _ in range(50):
            with s:
                greenweave.sleep(0)
            greenweave.sleep(0.001)  # blocks outside the lock

    def victim():
        with s:
            served.append(True)

    h = greenweave.spawn(hog)
    greenweave.sleep(0)
    v = greenweave.spawn(victim)
    greenweave.joinall([v], timeout=2)
    assert served == [True]
    assert not h.ready()  # the victim got in long before the hog finished
    h.join(timeout=5)


# -- kills ---------------------------------------------------------------------------


def test_killed_parked_waiter_holds_no_slot():
    s = Semaphore(0)
    ws = [greenweave.spawn(s.acquire) for _ in range(3)]
    _parked(*ws)
    ws[0].kill()
    s.release()
    s.release()
    greenweave.joinall(ws[1:], timeout=2)
    assert ws[1].value is True and ws[2].value is True
    assert s.counter == 0


def test_woken_waiter_killed_before_running_passes_its_turn_on():
    s = Semaphore(0)
    w1 = greenweave.spawn(s.acquire)
    w2 = greenweave.spawn(s.acquire)
    _parked(w1, w2)
    w1.kill(block=False)  # the kill is delivered first ...
    s.release()  # ... after this picked w1 to wake up
    assert w2.get(timeout=2) is True
    assert isinstance(w1.value, greenweave.GreenletExit)
    assert s.counter == 0


def test_woken_waiter_killed_with_nobody_behind_returns_the_slot():
    s = Semaphore(0)
    w = greenweave.spawn(s.acquire)
    _parked(w)
    w.kill(block=False)
    s.release()
    w.join(timeout=2)
    assert s.counter == 1 and not s.locked()
    assert s.acquire(blocking=False) is True


def test_timed_out_waiter_passes_a_slot_released_meanwhile():
    s = Semaphore(0)
    w1 = greenweave.spawn(s.acquire, timeout=0.02)
    w2 = greenweave.spawn(s.acquire)
    _parked(w1, w2)
    w1.join(timeout=2)
    assert w1.value is False
    s.release()
    assert w2.get(timeout=2) is True


# -- BoundedSemaphore and DummySemaphore -------------------------------------------------------


def test_bounded_semaphore_refuses_over_release():
    b = BoundedSemaphore(2)
    with pytest.raises(ValueError, match="too many"):
        b.release()
    b.acquire()
    b.acquire()
    assert b.release() == 1
    assert b.release() == 2
    with pytest.raises(ValueError):
        b.release()
    assert b.counter == 2


def test_bounded_semaphore_release_wakes_waiter():
    b = BoundedSemaphore(1)
    b.acquire()
    g = greenweave.spawn(b.acquire)
    _parked(g)
    b.release()
    assert g.get(timeout=2) is True
    with pytest.raises(ValueError):
        b.release()
        b.release()


def test_dummy_semaphore_never_blocks():
    d = DummySemaphore()
    assert d.acquire() and d.acquire(False) and d.acquire(timeout=0)
    assert not d.locked() and d.ready() and d.wait() == 1
    assert d.release() is None
    d.rawlink(print)
    d.unlink(print)
    with d:
        pass
    assert repr(DummySemaphore(3)) == "<DummySemaphore>"


# -- RLock -----------------------------------------------------------------------------------


def test_rlock_is_reentrant():
    r = RLock()
    assert not r.locked() and not r._is_owned()
    assert r.acquire() is True
    assert r.acquire()
    assert r._is_owned() and r.locked()
    r.release()
    assert r.locked()
    r.release()
    assert not r.locked()


def test_rlock_release_by_non_owner_raises():
    r = RLock()
    with pytest.raises(RuntimeError, match="cannot release un-acquired lock"):
        r.release()
    r.acquire()

    def other():
        r.release()

    g = greenweave.spawn(other)
    g.join()
    assert isinstance(g.exception, RuntimeError)
    assert r._is_owned()
    r.release()


def test_rlock_blocks_other_greenlets():
    r = RLock()
    r.acquire()
    assert greenweave.spawn(r.acquire, timeout=0.01).get() is False
    assert greenweave.spawn(r.acquire, blocking=False).get() is False
    g = greenweave.spawn(lambda: (r.acquire(), r._is_owned(), r.release()))
    _parked(g)
    r.release()
    assert g.get(timeout=2) == (True, True, None)
    assert not r.locked()


def test_rlock_context_manager_and_condition_protocol():
    r = RLock()
    with r:
        with r:
            assert r._count == 2
            state = r._release_save()
            assert state == (2, greenweave.getcurrent())
            assert not r.locked() and not r._is_owned()
            r._acquire_restore(state)
            assert r._count == 2 and r._is_owned()
        assert r._count == 1
    assert not r.locked()


def test_rlock_killed_waiter_does_not_get_the_lock():
    r = RLock()
    r.acquire()
    g = greenweave.spawn(r.acquire)
    _parked(g)
    g.kill()
    r.release()
    assert not r.locked()
    assert greenweave.spawn(r.acquire, blocking=False).get() is True


# -- native threads --------------------------------------------------------------------------


def test_release_from_another_thread_wakes_a_waiting_greenlet():
    s = Semaphore(0)

    def releaser():
        time.sleep(0.05)
        s.release()

    t = threading.Thread(target=releaser)
    t.start()
    try:
        assert s.acquire(timeout=5) is True
    finally:
        t.join()


def test_untimed_acquire_waits_for_a_release_from_another_thread():
    # Nothing else runs in this hub, but another thread will release: block
    # until it does rather than raising LoopExit.
    s = Semaphore(0)

    def releaser():
        time.sleep(0.05)
        s.release()

    t = threading.Thread(target=releaser)
    t.start()
    try:
        assert s.acquire() is True
    finally:
        t.join()


def test_semaphore_held_by_another_thread():
    s = Semaphore(1)
    held = threading.Event()

    def holder():
        s.acquire()
        held.set()
        time.sleep(0.05)
        s.release()

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    try:
        assert s.acquire() is True
        s.release()
    finally:
        t.join()


def test_threads_with_their_own_hubs_share_a_lock():
    lock = Semaphore(1)
    counter = [0]
    n_threads, n_greenlets, n_iter = 3, 5, 40

    def bump():
        for _ in range(n_iter):
            with lock:
                value = counter[0]
                greenweave.sleep(0)  # hold the lock across a switch
                counter[0] = value + 1

    def thread_main():
        greenweave.joinall([greenweave.spawn(bump) for _ in range(n_greenlets)])

    threads = [threading.Thread(target=thread_main) for _ in range(n_threads)]
    for t in threads:
        t.start()
    thread_main()
    for t in threads:
        t.join(15)
    assert counter[0] == (n_threads + 1) * n_greenlets * n_iter
    assert lock.counter == 1


def test_bounded_semaphore_over_release_across_threads():
    b = BoundedSemaphore(1)
    errors = []

    def releaser():
        try:
            b.release()
        except ValueError as ex:
            errors.append(ex)

    threads = [threading.Thread(target=releaser) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and b.counter == 1


def test_rlock_across_threads():
    r = RLock()
    r.acquire()
    result = []

    def thread_main():
        result.append(r.acquire(timeout=5))
        result.append(r._is_owned())
        r.release()

    t = threading.Thread(target=thread_main)
    t.start()
    time.sleep(0.05)
    assert result == []
    r.release()
    t.join(5)
    assert result == [True, True]
    assert not r.locked()


class _SlowLot(ParkingLot):
    """park() first lets other native threads run: holds the window between
    an acquirer's "no slot" check and its park wide open."""

    __slots__ = ("entered",)

    def park(self, timeout=None):
        self.entered.set()
        time.sleep(0.02)  # releases the GIL
        return ParkingLot.park(self, timeout)


def test_release_from_a_thread_between_check_and_park_is_not_lost():
    s = Semaphore(0)
    s._lot = lot = _SlowLot()
    lot.entered = threading.Event()

    def releaser():
        lot.entered.wait(5)
        s.release()

    t = threading.Thread(target=releaser)
    t.start()
    start = time.monotonic()
    try:
        assert s.acquire(timeout=5) is True
        assert time.monotonic() - start < 2.5  # not rescued by the timeout
    finally:
        t.join()


def test_reprs():
    assert "counter=2" in repr(Semaphore(2))
    assert "BoundedSemaphore" in repr(BoundedSemaphore())
    assert "RLock" in repr(RLock())
