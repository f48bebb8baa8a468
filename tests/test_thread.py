"""greenweave.thread: the _thread API on greenlets (used here without patching)."""

from __future__ import annotations

import _thread
import contextvars
import subprocess
import sys
import textwrap
import time

import pytest
from greenlet import getcurrent

import greenweave
from greenweave import GreenletExit, thread
from greenweave.exceptions import LoopExit

pytestmark = pytest.mark.timeout(20)


def _native_thread(fn, *args):
    """Run fn(*args) in a real OS thread; returns a native lock released at the end.

    Returns once the thread runs (as ``threading.Thread.start`` does).
    """
    done = _thread.allocate_lock()
    done.acquire()
    started = _thread.allocate_lock()
    started.acquire()

    def run():
        started.release()
        try:
            fn(*args)
        finally:
            done.release()

    _thread.start_new_thread(run, ())
    assert started.acquire(timeout=5)
    return done


# -- start_new_thread -----------------------------------------------------------


def test_start_new_thread_runs_in_a_greenlet_with_args_and_kwargs(fresh_hub):
    seen = []

    def fn(a, b=None):
        seen.append((a, b, thread.get_ident(), getcurrent(), _thread.get_ident()))

    ident = thread.start_new_thread(fn, (1,), {"b": 2})
    assert seen == []  # starts at the next turn of the hub
    greenweave.sleep(0.01)
    a, b, inner_ident, glet, native = seen[0]
    assert (a, b) == (1, 2)
    assert inner_ident == ident == id(glet)
    assert glet is not getcurrent()
    assert native == _thread.get_ident()  # same OS thread


def test_many_green_threads_sleep_concurrently(fresh_hub):
    done = []
    start = time.monotonic()
    for i in range(100):
        thread.start_new_thread(lambda i=i: (greenweave.sleep(0.2), done.append(i)), ())
    while len(done) < 100:
        greenweave.sleep(0.02)
    assert time.monotonic() - start < 2.0
    assert sorted(done) == list(range(100))


@pytest.mark.parametrize("args, message", [
    ((1, ()), "first arg must be callable"),
    ((print, []), "2nd arg must be a tuple"),
    ((print, (), []), "optional 3rd arg must be a dictionary"),
])
def test_start_new_thread_checks_its_arguments(args, message):
    with pytest.raises(TypeError, match=message):
        thread.start_new_thread(*args)


def test_start_new_and_allocate_are_aliases():
    assert thread.start_new is thread.start_new_thread
    assert thread.allocate is thread.allocate_lock
    assert thread.exit_thread is thread.exit


def test_green_thread_starts_in_an_empty_context(fresh_hub):
    var = contextvars.ContextVar("var", default="unset")
    var.set("outer")
    seen = []
    thread.start_new_thread(lambda: seen.append(var.get()), ())
    greenweave.sleep(0.01)
    assert seen == ["unset"]


def test_exit_ends_a_green_thread_quietly(fresh_hub, capsys):
    after = []

    def fn():
        thread.exit()
        after.append(1)  # pragma: no cover - never reached

    thread.start_new_thread(fn, ())
    thread.start_new_thread(lambda: sys.exit(3), ())
    greenweave.sleep(0.01)
    assert after == []
    assert capsys.readouterr().err == ""


def test_exit_in_a_plain_greenlet_raises_greenlet_exit(fresh_hub):
    g = greenweave.spawn(thread.exit)
    g.join()
    assert g.successful()
    assert isinstance(g.value, GreenletExit)


def test_unhandled_exception_is_reported_and_the_hub_carries_on(fresh_hub, capsys):
    def boom():
        raise ValueError("kaboom")

    thread.start_new_thread(boom, ())
    greenweave.sleep(0.01)
    err = capsys.readouterr().err
    assert "Exception ignored in thread started by" in err
    assert "ValueError: kaboom" in err
    # the hub is still fine
    greenweave.sleep(0.001)


def test_count_includes_live_green_threads(fresh_hub):
    base = thread._count()
    gate = thread.allocate_lock()
    gate.acquire()
    thread.start_new_thread(gate.acquire, ())
    greenweave.sleep(0.01)
    assert thread._count() == base + 1
    gate.release()
    greenweave.sleep(0.01)
    assert thread._count() == base


def test_sentinel_is_released_when_the_green_thread_ends(fresh_hub):
    sentinels = []

    def fn():
        lock = thread._set_sentinel()
        lock.acquire()
        sentinels.append(lock)
        greenweave.sleep(0.05)

    thread.start_new_thread(fn, ())
    greenweave.sleep(0.01)
    lock = sentinels[0]
    assert isinstance(lock, thread.LockType) and lock.locked()
    assert lock.acquire(timeout=2)  # waits for the green thread to end


def test_sentinel_outside_a_green_thread_is_the_native_one():
    lock = thread._set_sentinel()
    assert type(lock) is type(_thread.allocate_lock())


# -- identity --------------------------------------------------------------------


def test_get_ident_is_per_greenlet(fresh_hub):
    main_ident = thread.get_ident()
    assert main_ident == _thread.get_ident()  # the root greenlet keeps the native ident
    idents = []
    gs = [greenweave.spawn(lambda: idents.append(thread.get_ident())) for _ in range(3)]
    greenweave.joinall(gs)
    assert sorted(idents) == sorted(id(g) for g in gs)
    assert len(set(idents)) == 3 and main_ident not in idents
    assert thread.get_ident(gs[0]) == id(gs[0])
    assert thread.get_ident(getcurrent()) == main_ident


def test_native_names_are_the_native_objects():
    assert thread.error is _thread.error
    assert thread.TIMEOUT_MAX == _thread.TIMEOUT_MAX
    assert thread.get_native_id is _thread.get_native_id


def test_local_is_greenlet_local():
    from greenweave.local import local

    assert thread._local is local


def test_stack_size_is_the_native_setting():
    assert thread.stack_size() == _thread.stack_size()
    with pytest.raises(ValueError):
        thread.stack_size(100)
    old = thread.stack_size(1 << 20)
    try:
        assert thread.stack_size() == 1 << 20
    finally:
        thread.stack_size(old)


# -- LockType ------------------------------------------------------------------------


def test_lock_basics():
    lock = thread.allocate_lock()
    assert isinstance(lock, thread.LockType)
    assert not lock.locked()
    assert "unlocked" in repr(lock)
    assert lock.acquire()
    assert lock.locked() and repr(lock).startswith("<locked")
    assert lock.acquire(False) is False
    assert lock.acquire(blocking=False) is False
    lock.release()
    with pytest.raises(RuntimeError, match="release unlocked lock"):
        lock.release()
    with lock:
        assert lock.locked()
    assert not lock.locked()
    assert lock.acquire_lock() and lock.locked_lock()
    lock.release_lock()


def test_lock_argument_checks():
    lock = thread.LockType()
    with pytest.raises(ValueError, match="can't specify a timeout"):
        lock.acquire(False, 1)
    with pytest.raises(ValueError, match="non-negative"):
        lock.acquire(True, -5)
    with pytest.raises(OverflowError):
        lock.acquire(True, thread.TIMEOUT_MAX * 2)
    assert not lock.locked()


def test_lock_timeout_waits_then_gives_up(fresh_hub):
    lock = thread.LockType()
    lock.acquire()
    start = time.monotonic()
    assert lock.acquire(timeout=0.1) is False
    assert 0.08 <= time.monotonic() - start < 2
    assert lock.acquire(True, 0) is False  # no waiting at all


def test_lock_blocks_only_the_waiting_greenlet(fresh_hub):
    lock = thread.LockType()
    order = []

    def holder():
        with lock:
            order.append("held")
            greenweave.sleep(0.1)
            order.append("release")

    def waiter():
        with lock:
            order.append("waiter got it")

    def bystander():
        order.append("bystander ran")

    greenweave.joinall([greenweave.spawn(holder), greenweave.spawn(waiter),
                        greenweave.spawn(bystander)])
    assert order == ["held", "bystander ran", "release", "waiter got it"]


def test_lock_may_be_released_by_another_greenlet(fresh_hub):
    lock = thread.LockType()
    lock.acquire()
    greenweave.spawn_later(0.05, lock.release)
    assert lock.acquire(timeout=2)


def test_lock_waiters_are_served_and_a_killed_waiter_loses_nothing(fresh_hub):
    lock = thread.LockType()
    lock.acquire()
    got = []

    def waiter(name):
        lock.acquire()
        got.append(name)
        lock.release()

    a = greenweave.spawn(waiter, "a")
    b = greenweave.spawn(waiter, "b")
    greenweave.sleep(0.01)
    a.kill()
    lock.release()
    b.join(timeout=2)
    assert got == ["b"]
    assert not lock.locked()


def test_untimed_wait_nobody_can_satisfy_raises_loopexit(fresh_hub):
    # Single-threaded: waiting forever on a lock no one will release is a
    # deadlock the hub reports (as gevent does), not a hang.
    if thread._threads_elsewhere():
        pytest.skip("other native threads exist in this process")
    lock = thread.LockType()
    lock.acquire()
    with pytest.raises(LoopExit):
        lock.acquire()


def test_lock_released_from_another_native_thread(fresh_hub):
    lock = thread.LockType()
    lock.acquire()
    done = _native_thread(lambda: (time.sleep(0.1), lock.release()))
    # Untimed, and the hub has nothing else to do: it must stay alive for the
    # other thread (no LoopExit).
    assert lock.acquire()
    assert done.acquire(timeout=5)


def test_lock_ping_pong_with_a_native_thread_loses_no_wakeup(fresh_hub):
    # Many hand-overs between a greenlet and a native thread: a release that
    # lands between the waiter's check and its park must still wake it.
    ping = thread.LockType()
    pong = thread.LockType()
    ping.acquire()
    pong.acquire()
    rounds = 300

    def other():
        for _ in range(rounds):
            assert ping.acquire(timeout=5)
            pong.release()

    done = _native_thread(other)
    for _ in range(rounds):
        ping.release()
        assert pong.acquire(timeout=5)
    assert done.acquire(timeout=5)


def test_lock_acquired_in_a_native_thread_without_a_hub(fresh_hub):
    lock = thread.LockType()
    lock.acquire()
    result = []
    done = _native_thread(lambda: result.append(lock.acquire(timeout=5)))
    greenweave.sleep(0.05)
    lock.release()
    assert done.acquire(timeout=5)
    assert result == [True]


def test_lock_at_fork_reinit_frees_it():
    lock = thread.LockType()
    lock.acquire()
    lock._at_fork_reinit()
    assert not lock.locked()
    assert lock.acquire(False)


# -- RLock -------------------------------------------------------------------------


def test_rlock_is_reentrant_and_owned_by_a_greenlet(fresh_hub):
    rlock = thread.RLock()
    assert rlock.acquire() and rlock.acquire()
    assert rlock._is_owned() and rlock._recursion_count() == 2
    assert "count=2" in repr(rlock) and repr(rlock).startswith("<locked")
    others = []

    def other():
        others.append(rlock.acquire(timeout=0.05))
        try:
            rlock.release()
        except RuntimeError as exc:
            others.append(str(exc))
        others.append(rlock._is_owned())

    greenweave.spawn(other).join()
    assert others == [False, "cannot release un-acquired lock", False]
    rlock.release()
    assert rlock.locked()
    rlock.release()
    assert not rlock.locked()
    with pytest.raises(RuntimeError):
        rlock.release()


def test_rlock_hands_over_to_a_waiting_greenlet(fresh_hub):
    rlock = thread.RLock()
    order = []

    def worker(name):
        with rlock:
            with rlock:
                order.append(name)
                greenweave.sleep(0.01)

    greenweave.joinall([greenweave.spawn(worker, n) for n in "abc"])
    assert order == ["a", "b", "c"]


def test_rlock_release_save_and_acquire_restore(fresh_hub):
    rlock = thread.RLock()
    rlock.acquire()
    rlock.acquire()
    state = rlock._release_save()
    assert not rlock.locked()
    g = greenweave.spawn(lambda: rlock.acquire(False) and (rlock.release() or True))
    assert g.get() is True
    rlock._acquire_restore(state)
    assert rlock._recursion_count() == 2
    rlock.release()
    rlock.release()
    with pytest.raises(RuntimeError):
        rlock._release_save()


def test_rlock_at_fork_reinit():
    rlock = thread.RLock()
    rlock.acquire()
    rlock._at_fork_reinit()
    assert not rlock.locked() and not rlock._is_owned()


def test_threading_condition_works_on_green_rlock_across_greenlets():
    # Done in a subprocess: threading.Condition uses threading's own lock
    # allocator for its waiters, which only becomes green once patched.
    code = textwrap.dedent("""
        from greenweave import monkey
        monkey.patch_thread()
        import threading, greenweave
        from greenweave import thread
        cond = threading.Condition(thread.RLock())
        box = []
        def consumer():
            with cond:
                assert cond.wait_for(lambda: box, timeout=5)
                box.append('consumed')
        g = greenweave.spawn(consumer)
        greenweave.sleep(0.01)
        with cond:
            box.append('item')
            cond.notify()
        g.join()
        assert box == ['item', 'consumed'], box
        print('OK')
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "OK"
