"""Tests for greenweave.threadpool: native worker threads, cooperative waiting."""

from __future__ import annotations

import _thread
import concurrent.futures as cf
import gc
import os
import subprocess
import sys
import threading
import time
import traceback

import pytest

import greenweave as gw
from greenweave import config
from greenweave._core.hub import get_hub
from greenweave.exceptions import InvalidThreadUseError
from greenweave.threadpool import ThreadPool, ThreadPoolExecutor, ThreadResult


@pytest.fixture
def pool():
    p = ThreadPool(4)
    yield p
    p.kill()


class Ticker:
    """A greenlet counting 10 ms sleeps: proof the hub keeps running."""

    def __init__(self) -> None:
        self.ticks = 0
        self.glet = gw.spawn(self._run)

    def _run(self) -> None:
        while True:
            self.ticks += 1
            gw.sleep(0.01)

    def stop(self) -> int:
        self.glet.kill()
        return self.ticks


def _os_threads() -> int | None:
    """The number of OS threads of this process (None without procfs)."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:  # pragma: no cover - no procfs
        return None


def _settled_threads() -> int | None:
    """The OS thread count once threads left by earlier tests have exited."""
    count = _os_threads()
    deadline = time.monotonic() + 3
    while count is not None and time.monotonic() < deadline:
        gw.sleep(0.1)
        now = _os_threads()
        if now == count:
            break
        count = now
    return count


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        gw.sleep(0.01)
    return predicate()


# -- results -----------------------------------------------------------------


def test_spawn_returns_result_computed_in_another_thread(pool):
    def work(a, b=0):
        return a + b, _thread.get_ident()

    r = pool.spawn(work, 1, b=2)
    assert isinstance(r, ThreadResult)
    value, ident = r.get()
    assert value == 3
    assert ident != _thread.get_ident()
    assert r.ready() and r.successful() and r.done()
    assert r.value == (3, ident)
    assert r.exception is None and r.exc_info == ()
    assert "value=" in repr(r)
    assert len(pool) == 0 and not pool
    assert pool.size == 1


def test_exception_travels_with_traceback(pool, capsys):
    def inner_failure():
        raise ValueError("bad value 42")

    r = pool.spawn(inner_failure)
    with pytest.raises(ValueError, match="bad value 42") as info:
        r.get()
    frames = [f.name for f in traceback.extract_tb(info.value.__traceback__)]
    assert "inner_failure" in frames
    assert r.ready() and not r.successful()
    assert isinstance(r.exception, ValueError)
    assert r.exc_info[0] is ValueError
    assert r.wait() is None  # wait() never raises
    # spawn() reports the error as the hub reports a greenlet's...
    assert "bad value 42" in capsys.readouterr().err
    # ...apply() just raises it in the caller.
    with pytest.raises(ValueError):
        pool.apply(inner_failure)
    assert "bad value 42" not in capsys.readouterr().err


def test_base_exceptions_are_delivered(pool):
    def leave():
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        pool.spawn(leave).get()


def test_get_timeout_and_nonblocking(pool):
    release = threading.Event()
    r = pool.spawn(release.wait, 10)
    with pytest.raises(gw.Timeout):
        r.get(block=False)
    with pytest.raises(gw.Timeout):
        r.get_nowait()
    start = time.monotonic()
    with pytest.raises(gw.Timeout):
        r.get(timeout=0.05)
    assert time.monotonic() - start < 2
    assert r.wait(0.01) is None
    assert "pending" in repr(r)
    release.set()
    assert r.get() is True
    assert r.result(timeout=1) is True


def test_waiting_keeps_the_loop_alive():
    # Nothing but the thread pool could wake the main greenlet: no LoopExit.
    p = ThreadPool(1)
    try:
        assert p.spawn(time.sleep, 0.2).get() is None
        # hub.join() (gw.wait() with no objects) waits for tasks in flight.
        r = p.spawn(time.sleep, 0.1)
        assert gw.wait(timeout=5) is True
        assert r.ready()
    finally:
        p.kill()


def test_callable_checked(pool):
    with pytest.raises(TypeError, match="callable"):
        pool.spawn(42)


def test_spawn_from_another_thread_is_refused(pool):
    errors = []

    def other():
        try:
            pool.spawn(lambda: 1)
        except InvalidThreadUseError as exc:
            errors.append(exc)

    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert len(errors) == 1


def test_apply_from_another_thread_runs_there(pool):
    seen = []

    def other():
        seen.append(pool.apply(_thread.get_ident) == _thread.get_ident())

    t = threading.Thread(target=other)
    t.start()
    t.join(5)
    assert seen == [True]


def test_rawlink_and_iwait(pool):
    slow = pool.spawn(time.sleep, 0.3)
    fast = pool.spawn(lambda: "fast")
    order = list(gw.iwait([slow, fast], timeout=5))
    assert order == [fast, slow]
    called = []
    fast.rawlink(called.append)  # already ready: called soon, in the hub
    assert fast.linkcount() == 1
    gw.sleep(0.01)
    assert called == [fast]
    r = pool.spawn(time.sleep, 0.05)
    r.rawlink(called.append)
    r.unlink(called.append)
    r.get()
    gw.sleep(0.01)
    assert called == [fast]


# -- apply and the mapping helpers ---------------------------------------------


def test_apply(pool):
    assert pool.apply(lambda a, b=0: a + b, (1,), {"b": 2}) == 3
    assert pool.apply(_thread.get_ident) != _thread.get_ident()
    with pytest.raises(TypeError):
        pool.apply(lambda: 1, 5)


def test_apply_from_a_worker_runs_inline(pool):
    def outer():
        return pool.apply(_thread.get_ident), _thread.get_ident()

    inner_ident, outer_ident = pool.apply(outer)
    assert inner_ident == outer_ident != _thread.get_ident()


def test_apply_async_and_cb(pool):
    got = []
    g = pool.apply_async(lambda x: x * 2, (21,), callback=got.append)
    assert isinstance(g, gw.Greenlet)
    assert g.get(timeout=5) == 42
    assert got == [42]
    assert pool.apply_cb(lambda: 7, callback=got.append) == 7
    assert got == [42, 7]
    g = pool.map_async(abs, [-1, -2], callback=got.append)
    assert g.get(timeout=5) == [1, 2]
    assert got[-1] == [1, 2]


def test_map_imap_imap_unordered(pool):
    assert pool.map(lambda x: x * x, range(20)) == [x * x for x in range(20)]
    assert list(pool.imap(lambda x: x + 1, range(50))) == list(range(1, 51))
    assert list(pool.imap(lambda a, b: a + b, [1, 2], [10, 20, 30])) == [11, 22]
    assert sorted(pool.imap_unordered(lambda x: -x, range(50))) == sorted(-x for x in range(50))
    assert list(pool.imap(str, range(10), maxsize=1)) == [str(i) for i in range(10)]
    assert pool.map(str, []) == []
    with pytest.raises(TypeError, match="Unsupported keyword"):
        pool.imap(str, range(3), foo=1)


def test_imap_runs_in_parallel_and_yields_in_completion_order(pool):
    start = time.monotonic()
    assert list(pool.imap(time.sleep, [0.2] * 8)) == [None] * 8
    assert time.monotonic() - start < 1.2  # 4 threads: ~0.4 s, not 1.6 s
    delays = [0.4, 0.1, 0.25]
    assert list(pool.imap_unordered(lambda d: time.sleep(d) or d, delays)) == [0.1, 0.25, 0.4]


def test_imap_error_raises_in_turn_then_continues(pool):
    def f(x):
        if x == 3:
            raise ValueError(x)
        return x

    it = pool.imap(f, range(6))
    got = []
    with pytest.raises(ValueError):
        for x in it:
            got.append(x)
    assert got == [0, 1, 2]
    assert list(it) == [4, 5]


# -- size, join, kill ----------------------------------------------------------


def test_threads_start_on_demand_up_to_maxsize():
    p = ThreadPool(3)
    try:
        assert p.size == 0 and p.maxsize == 3
        barrier = threading.Barrier(3, timeout=10)
        results = [p.spawn(barrier.wait) for _ in range(3)]
        assert sorted(r.get() for r in results) == [0, 1, 2]  # 3 threads at once
        assert p.size == 3
        # More tasks than threads queue up; spawning never blocks.
        results = [p.spawn(time.sleep, 0.05) for _ in range(9)]
        assert p.size == 3
        assert len(p) == 9 and p
        p.join()
        assert len(p) == 0
        assert all(r.ready() for r in results)
    finally:
        p.kill()


def test_size_grows_and_shrinks_native_threads():
    p = ThreadPool(5)
    before = _settled_threads()
    try:
        p.size = 4
        assert p.size == 4
        if before is not None:
            assert _wait_for(lambda: _os_threads() == before + 4)
        barrier = threading.Barrier(4, timeout=10)
        assert sorted(r.get() for r in [p.spawn(barrier.wait) for _ in range(4)]) == [0, 1, 2, 3]
        p.size = 1
        assert p.size == 1
        if before is not None:
            assert _wait_for(lambda: _os_threads() == before + 1)
        assert p.apply(lambda: 5) == 5
        p.maxsize = 0
        assert p.size == 0 and p.maxsize == 0
        if before is not None:
            assert _wait_for(lambda: _os_threads() == before)
        with pytest.raises(ValueError, match="maxsize 0"):
            p.spawn(lambda: 1)
        p.maxsize = 2
        assert p.apply(lambda: 6) == 6
    finally:
        p.kill()


def test_bad_sizes():
    p = ThreadPool(2)
    try:
        with pytest.raises(ValueError, match="bigger than maxsize"):
            p.size = 3
        with pytest.raises(ValueError, match="negative"):
            p.size = -1
        with pytest.raises(ValueError, match="negative"):
            p.maxsize = -1
        with pytest.raises(TypeError):
            p.size = 1.5
        with pytest.raises(ValueError, match="negative"):
            ThreadPool(-1)
        with pytest.raises(TypeError):
            ThreadPool("10")
        assert p.maxsize == 2
    finally:
        p.kill()


def test_adjust_starts_threads_for_queued_work():
    p = ThreadPool(3)
    try:
        p.adjust()
        assert p.size == 0
        p.size = 1
        gate = threading.Event()
        results = [p.spawn(gate.wait, 10) for _ in range(3)]
        p.maxsize = 3
        p.adjust()
        assert p.size == 3
        gate.set()
        assert [r.get() for r in results] == [True] * 3
    finally:
        p.kill()


def test_idle_threads_can_expire():
    p = ThreadPool(2, idle_task_timeout=0.1)
    try:
        assert p.apply(lambda: 1) == 1
        assert p.size == 1
        assert _wait_for(lambda: p.size == 0, timeout=5)
        assert p.apply(lambda: 2) == 2  # and come back on demand
    finally:
        p.kill()


def test_dropped_pool_retires_its_threads():
    before = _settled_threads()
    if before is None:  # pragma: no cover
        pytest.skip("no /proc/self/task")
    p = ThreadPool(3)
    p.size = 3
    assert p.map(abs, [-1, -2, -3]) == [1, 2, 3]
    assert _wait_for(lambda: _os_threads() == before + 3)
    del p
    gc.collect()
    assert _wait_for(lambda: _os_threads() == before)


@pytest.mark.timeout(20)
def test_kill_cancels_queued_tasks_and_stops_threads():
    p = ThreadPool(1)
    before = _settled_threads()
    gate = threading.Event()
    started = threading.Event()
    running = p.spawn(lambda: started.set() or gate.wait(10))
    assert _wait_for(started.is_set)
    queued = [p.spawn(lambda: "never") for _ in range(3)]
    assert len(p) == 4
    p.kill()
    assert p.size == 0
    for r in queued:
        assert r.ready() and not r.successful()
        with pytest.raises(gw.GreenletExit):
            r.get()
    assert not running.ready()  # a running native thread cannot be interrupted
    gate.set()
    assert running.get(timeout=5) is True
    if before is not None:
        assert _wait_for(lambda: _os_threads() == before)
    # The pool is usable again after kill().
    assert p.apply(lambda: "again") == "again"
    p.kill()


@pytest.mark.timeout(20)
def test_greenlet_blocked_in_apply_is_released_by_kill():
    p = ThreadPool(1)
    gate = threading.Event()
    started = threading.Event()
    p.spawn(lambda: started.set() or gate.wait(10))
    assert _wait_for(started.is_set)
    waiter = gw.spawn(p.apply, lambda: 1)
    gw.sleep(0.05)
    p.kill()
    waiter.join(5)
    assert waiter.ready()
    assert isinstance(waiter.value, gw.GreenletExit)  # it was killed, quietly
    gate.set()


# -- concurrency -----------------------------------------------------------------


def test_blocking_task_does_not_block_other_greenlets(pool):
    ticker = Ticker()
    try:
        pool.apply(time.sleep, (0.3,))
    finally:
        ticks = ticker.stop()
    assert ticks >= 10


@pytest.mark.timeout(30)
def test_many_greenlets_waiting_on_the_pool():
    p = ThreadPool(10)
    try:
        ticker = Ticker()
        start = time.monotonic()
        glets = [gw.spawn(p.apply, lambda i=i: time.sleep(0.05) or i) for i in range(200)]
        gw.joinall(glets, timeout=20)
        elapsed = time.monotonic() - start
        ticks = ticker.stop()
        assert [g.value for g in glets] == list(range(200))
        assert elapsed < 5  # 200 x 50 ms on 10 threads: ~1 s, not 10 s
        assert ticks >= 10
        assert p.size == 10
    finally:
        p.kill()


def test_quick_tasks_round_trip(pool):
    for i in range(500):
        assert pool.apply(lambda i=i: i) == i


# -- hubs -------------------------------------------------------------------------


def test_worker_thread_gets_its_own_hub(pool):
    main_hub = get_hub()

    def uses_greenweave():
        hub = get_hub()
        out = []
        glets = [gw.spawn(lambda n=n: (gw.sleep(0.01 * n), out.append(n))) for n in (3, 1, 2)]
        gw.joinall(glets)
        return hub, hub.thread_ident, _thread.get_ident(), out

    hub, hub_ident, ident, out = pool.apply(uses_greenweave)
    assert hub is not main_hub
    assert hub_ident == ident != _thread.get_ident()
    assert out == [1, 2, 3]
    # The worker's own hub has its own (separate) pool.
    nested = pool.apply(lambda: get_hub().threadpool.apply(_thread.get_ident))
    assert nested not in (ident, _thread.get_ident())


def test_hub_threadpool_is_per_hub_and_sized_by_config(fresh_hub):
    config.threadpool_size = 3
    try:
        hub2 = gw.get_hub()
        assert hub2 is fresh_hub
        assert fresh_hub.threadpool.maxsize == 3
        assert fresh_hub.threadpool is fresh_hub.threadpool
        assert fresh_hub.threadpool.hub is fresh_hub
        result = []

        def in_thread():
            result.append(gw.get_hub().threadpool)

        t = threading.Thread(target=in_thread)
        t.start()
        t.join(5)
        assert result and result[0] is not fresh_hub.threadpool
    finally:
        config.reset("threadpool_size")


def test_hub_destroy_kills_its_pool(fresh_hub):
    p = fresh_hub.threadpool
    before = _settled_threads()
    assert p.apply(lambda: 1) == 1
    assert p.size == 1
    fresh_hub.destroy(destroy_loop=True)
    assert p.size == 0
    if before is not None:
        assert _wait_for(lambda: _os_threads() <= before)
    assert gw.get_hub() is not fresh_hub


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
@pytest.mark.timeout(30)
def test_pool_after_fork():
    p = ThreadPool(2)
    try:
        assert p.apply(lambda: 1) == 1
        gate = threading.Event()
        in_flight = p.spawn(gate.wait, 10)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                with pytest.raises(RuntimeError, match="fork"):
                    in_flight.get(timeout=5)
                assert p.size == 0
                assert p.apply(lambda: 41) + 1 == 42
                assert get_hub().threadpool.apply(lambda: "hub pool") == "hub pool"
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        gate.set()
        assert in_flight.get(timeout=5) is True
        deadline = time.monotonic() + 20
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            assert time.monotonic() < deadline, "child did not finish"
            gw.sleep(0.02)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        p.kill()


# -- ThreadPoolExecutor ------------------------------------------------------------


@pytest.fixture
def executor():
    ex = ThreadPoolExecutor(4)
    yield ex
    ex.shutdown(wait=True, cancel_futures=True)


def test_executor_is_a_concurrent_futures_executor(executor):
    assert isinstance(executor, cf.ThreadPoolExecutor)
    f = executor.submit(lambda a, b=0: (a + b, _thread.get_ident()), 1, b=2)
    value, ident = f.result(timeout=5)
    assert value == 3 and ident != _thread.get_ident()
    assert f.done() and not f.cancelled()
    assert list(executor.map(abs, [-1, -2, -3])) == [1, 2, 3]


def test_executor_result_blocks_only_the_calling_greenlet(executor):
    ticker = Ticker()
    try:
        f = executor.submit(time.sleep, 0.3)
        assert f.result() is None
    finally:
        ticks = ticker.stop()
    assert ticks >= 10


def test_executor_result_timeout_and_exception(executor):
    gate = threading.Event()
    slow = executor.submit(gate.wait, 10)
    start = time.monotonic()
    with pytest.raises(cf.TimeoutError):
        slow.result(timeout=0.05)
    with pytest.raises(cf.TimeoutError):
        slow.exception(timeout=0.05)
    assert time.monotonic() - start < 2
    gate.set()
    assert slow.result(timeout=5) is True

    def fail():
        raise KeyError("k")

    f = executor.submit(fail)
    assert isinstance(f.exception(timeout=5), KeyError)
    with pytest.raises(KeyError):
        f.result()


def test_executor_wait_and_as_completed_are_cooperative(executor):
    ticker = Ticker()
    try:
        futures = [executor.submit(time.sleep, d) for d in (0.3, 0.1, 0.2)]
        done, not_done = cf.wait(futures, return_when=cf.FIRST_COMPLETED)
        assert futures[1] in done
        order = list(cf.as_completed(futures, timeout=10))
        assert set(order) == set(futures)
        done, not_done = cf.wait(futures, timeout=10)
        assert done == set(futures) and not not_done
        ticks_during = ticker.ticks
        futures = [executor.submit(time.sleep, d) for d in (0.3, 0.1, 0.2)]
        assert list(cf.as_completed(futures, timeout=10)) == [futures[1], futures[2], futures[0]]
    finally:
        ticks = ticker.stop()
    assert ticks_during >= 10 and ticks >= 20


def test_executor_wait_timeout(executor):
    gate = threading.Event()
    f = executor.submit(gate.wait, 10)
    start = time.monotonic()
    done, not_done = cf.wait([f], timeout=0.1)
    assert not done and not_done == {f}
    with pytest.raises(cf.TimeoutError):
        list(cf.as_completed([f], timeout=0.1))
    assert time.monotonic() - start < 2
    gate.set()
    assert f.result(timeout=5) is True


def test_executor_futures_work_with_greenweave_wait(executor):
    futures = [executor.submit(time.sleep, d) for d in (0.2, 0.05)]
    assert list(gw.iwait(futures, timeout=5)) == [futures[1], futures[0]]
    assert gw.wait([executor.submit(lambda: 1)], timeout=5)[0].result() == 1


def test_executor_cancel_wakes_result_waiter():
    ex = ThreadPoolExecutor(1)
    gate = threading.Event()
    try:
        ex.submit(gate.wait, 10)
        queued = ex.submit(lambda: "never")
        waiter = gw.spawn(queued.result)
        gw.sleep(0.05)
        assert queued.cancel()
        waiter.join(5)
        assert isinstance(waiter.exception, cf.CancelledError)
    finally:
        gate.set()
        ex.shutdown()


def test_executor_shutdown(executor):
    ticker = Ticker()
    futures = [executor.submit(time.sleep, 0.1) for _ in range(8)]
    executor.shutdown(wait=True)  # cooperative: the ticker keeps going
    ticks = ticker.stop()
    assert all(f.done() for f in futures)
    assert ticks >= 10
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(lambda: 1)


def test_executor_shutdown_cancel_futures():
    ex = ThreadPoolExecutor(1)
    gate = threading.Event()
    running = ex.submit(gate.wait, 10)
    queued = [ex.submit(lambda: 1) for _ in range(3)]
    gw.sleep(0.05)
    ex.shutdown(wait=False, cancel_futures=True)
    assert all(f.cancelled() for f in queued)
    gate.set()
    assert running.result(timeout=5) is True
    done, _ = cf.wait(queued, timeout=5)
    assert done == set(queued)


def test_executor_context_manager_and_initializer():
    seen = []
    with ThreadPoolExecutor(2, initializer=seen.append, initargs=("init",)) as ex:
        assert ex.submit(lambda: 5).result() == 5
    assert "init" in seen


def test_executor_broken_initializer():
    def bad_init():
        raise RuntimeError("init failed")

    ex = ThreadPoolExecutor(1, initializer=bad_init)
    f = ex.submit(lambda: 1)
    with pytest.raises(cf.thread.BrokenThreadPool):
        f.result(timeout=5)
    with pytest.raises(cf.thread.BrokenThreadPool):
        ex.submit(lambda: 2)
    ex.shutdown()


def test_executor_usable_from_plain_threads():
    # A thread with no hub: the futures block it natively (no hub created).
    ex = ThreadPoolExecutor(2)
    out = []

    def plain():
        futures = [ex.submit(lambda i=i: i * 10) for i in range(3)]
        out.append([f.result(timeout=5) for f in cf.as_completed(futures)])
        slow = ex.submit(time.sleep, 0.1)
        ex.shutdown(wait=True)
        out.append(slow.done())
        from greenweave._core.hub import get_hub_if_exists

        out.append(get_hub_if_exists())

    t = threading.Thread(target=plain)
    t.start()
    t.join(10)
    assert sorted(out[0]) == [0, 10, 20]
    assert out[1] is True
    assert out[2] is None


def test_dropped_executor_retires_its_threads():
    before = _settled_threads()
    if before is None:  # pragma: no cover
        pytest.skip("no /proc/self/task")
    ex = ThreadPoolExecutor(2)
    futures = [ex.submit(time.sleep, 0.05) for _ in range(2)]
    cf.wait(futures, timeout=5)
    assert _os_threads() == before + 2
    del ex, futures
    gc.collect()
    assert _wait_for(lambda: _os_threads() == before)


MONKEY_SCRIPT = """
import greenweave.monkey
greenweave.monkey.patch_all()
import concurrent.futures as cf
import time
import greenweave as gw
from greenweave.monkey import get_original
from greenweave.threadpool import ThreadPoolExecutor
native_ident = get_original("_thread", "get_ident")
main = native_ident()

def work():
    time.sleep(0.2)  # patched: cooperative, in the worker thread's own hub
    return native_ident()

start = time.monotonic()
pool = gw.get_hub().threadpool
ids = [r.get() for r in [pool.spawn(work) for _ in range(4)]]
assert len(set(ids)) == 4 and main not in ids, ids
assert time.monotonic() - start < 0.7
ticks = [0]

def tick():
    while True:
        ticks[0] += 1
        gw.sleep(0.01)

g = gw.spawn(tick)
with ThreadPoolExecutor(4) as ex:
    ids = [f.result() for f in cf.as_completed([ex.submit(work) for _ in range(4)])]
assert len(set(ids)) == 4 and main not in ids, ids
assert ticks[0] >= 10, ticks
g.kill()
print("ok")
"""


@pytest.mark.timeout(60)
def test_native_threads_after_monkey_patching():
    pytest.importorskip("greenweave.monkey")
    out = subprocess.run([sys.executable, "-c", MONKEY_SCRIPT], capture_output=True, text=True,
                         timeout=50)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_no_leaked_os_threads_after_shutdown():
    before = _settled_threads()
    if before is None:  # pragma: no cover
        pytest.skip("no /proc/self/task")
    ex = ThreadPoolExecutor(3)
    list(ex.map(time.sleep, [0.05] * 6))
    ex.shutdown(wait=True)
    assert _wait_for(lambda: _os_threads() == before)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
