"""Green threads: the standard threading module after monkey.patch_thread().

Patching is process-wide, so every case runs in a fresh interpreter: the
script asserts what it checks and prints OK at the end.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import greenweave.threading as gthreading

pytestmark = pytest.mark.timeout(60)

PRELUDE = """\
import warnings
warnings.simplefilter("error", RuntimeWarning)  # a MonkeyPatchWarning would be a failure
from greenweave import monkey
monkey.patch_all()
import threading, time, sys, _thread
import greenweave
from greenlet import getcurrent
"""


def run(tmp_path, body: str, prelude: str = PRELUDE, timeout: float = 45,
        expect_rc: int = 0) -> subprocess.CompletedProcess:
    script = tmp_path / "prog.py"
    script.write_text(prelude + textwrap.dedent(body))
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path)
    assert proc.returncode == expect_rc, f"rc={proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def run_ok(tmp_path, body: str, **kwargs) -> subprocess.CompletedProcess:
    proc = run(tmp_path, textwrap.dedent(body) + "\nprint('OK')\n", **kwargs)
    assert proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
    return proc


def test_module_surface():
    assert gthreading.Thread is __import__("threading").Thread
    assert gthreading.Lock is gthreading.allocate_lock
    assert gthreading.getcurrent is __import__("greenlet").getcurrent
    assert "Thread" in gthreading.__all__ and "local" in gthreading.__all__
    for name in gthreading.__implements__:
        assert hasattr(gthreading, name), name


def test_threads_are_greenlets_and_run_concurrently(tmp_path):
    run_ok(tmp_path, """
        info = []
        def work(i):
            info.append((getcurrent(), threading.get_native_id()))
            time.sleep(0.2)
        start = time.monotonic()
        threads = [threading.Thread(target=work, args=(i,)) for i in range(100)]
        for t in threads: t.start()
        for t in threads: t.join()
        elapsed = time.monotonic() - start
        assert elapsed < 2.0, elapsed
        assert len({id(g) for g, _ in info}) == 100
        assert all(g is not getcurrent() for g, _ in info)
        assert {n for _, n in info} == {threading.get_native_id()}  # one OS thread
        assert threading.active_count() == 1
    """)


def test_current_thread_and_main_thread(tmp_path):
    run_ok(tmp_path, """
        main = threading.main_thread()
        assert type(main).__name__ == "_MainThread"
        assert threading.current_thread() is main
        assert main.ident == threading.get_ident() == _thread.get_ident()
        seen = {}
        def work():
            me = threading.current_thread()
            seen.update(name=me.name, is_main=me is main, ident=me.ident,
                        get_ident=threading.get_ident(), glet=id(getcurrent()),
                        main_alive=threading.main_thread().is_alive(),
                        enumerated=me in threading.enumerate())
        t = threading.Thread(target=work, name="worker")
        t.start(); t.join()
        assert seen["name"] == "worker" and not seen["is_main"], seen
        assert seen["ident"] == seen["get_ident"] == seen["glet"] == t.ident, seen
        assert seen["main_alive"] and seen["enumerated"], seen
        assert not t.is_alive() and t not in threading.enumerate()
    """)


def test_plain_greenlet_gets_a_dummy_thread_that_is_forgotten(tmp_path):
    run_ok(tmp_path, """
        import gc
        def look():
            t = threading.current_thread()
            return t.name, type(t).__name__, t.ident
        g = greenweave.spawn(look)
        name, kind, ident = g.get()
        assert kind == "_DummyThread" and name.startswith("Dummy-"), (name, kind)
        assert ident in threading._active
        del g
        gc.collect()
        assert ident not in threading._active
    """)


def test_join_with_timeout(tmp_path):
    run_ok(tmp_path, """
        release = threading.Event()
        t = threading.Thread(target=release.wait)
        t.start()
        start = time.monotonic()
        t.join(0.1)
        assert 0.08 < time.monotonic() - start < 2
        assert t.is_alive()
        release.set()
        t.join(5)
        assert not t.is_alive()
        t.join()  # joining a finished thread returns at once
    """)


def test_timer_fires_and_can_be_cancelled(tmp_path):
    run_ok(tmp_path, """
        fired = []
        t = threading.Timer(0.05, fired.append, args=("a",))
        t.start(); t.join(5)
        assert fired == ["a"]
        t2 = threading.Timer(0.2, fired.append, args=("b",))
        t2.start(); t2.cancel(); t2.join(5)
        assert fired == ["a"] and not t2.is_alive()
    """)


def test_condition(tmp_path):
    run_ok(tmp_path, """
        cond = threading.Condition()
        items, got = [], []
        def consumer():
            with cond:
                while not items:
                    cond.wait()
                got.append(items.pop())
        consumers = [threading.Thread(target=consumer) for _ in range(3)]
        for c in consumers: c.start()
        time.sleep(0.01)
        for i in range(3):
            with cond:
                items.append(i)
                cond.notify()
            time.sleep(0.01)
        for c in consumers: c.join(5)
        assert sorted(got) == [0, 1, 2], got
        with cond:
            start = time.monotonic()
            assert cond.wait(0.05) is False
            assert time.monotonic() - start >= 0.04
    """)


def test_barrier(tmp_path):
    run_ok(tmp_path, """
        barrier = threading.Barrier(3)
        results = []
        def party():
            results.append(barrier.wait(5))
        threads = [threading.Thread(target=party) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join(5)
        assert sorted(results) == [0, 1, 2], results
        lonely = threading.Barrier(2)
        try:
            lonely.wait(0.05)
        except threading.BrokenBarrierError:
            pass
        else:
            raise AssertionError("expected BrokenBarrierError")
    """)


def test_event_is_greenweave_event(tmp_path):
    run_ok(tmp_path, """
        import greenweave.event
        assert issubclass(threading.Event, greenweave.event.Event)
        ev = threading.Event()
        assert ev.wait(0.01) is False
        threading.Timer(0.05, ev.set).start()
        assert ev.wait(5) is True and ev.is_set()
        ev.clear()
        assert not ev.is_set()
    """)


def test_semaphores_limit_concurrency(tmp_path):
    run_ok(tmp_path, """
        sem = threading.BoundedSemaphore(2)
        active, peak = [0], [0]
        def work():
            with sem:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
                time.sleep(0.02)
                active[0] -= 1
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join(5)
        assert peak[0] == 2, peak
        try:
            sem.release()
        except ValueError:
            pass
        else:
            raise AssertionError("BoundedSemaphore over-release not detected")
    """)


def test_locks_are_green(tmp_path):
    run_ok(tmp_path, """
        from greenweave import thread as gthread
        assert isinstance(threading.Lock(), gthread.LockType)
        assert isinstance(threading.RLock(), gthread.RLock)
        assert _thread.allocate_lock is gthread.allocate_lock
        lock = threading.Lock()
        order = []
        def holder():
            with lock:
                order.append("holder"); time.sleep(0.05); order.append("holder done")
        def other():
            order.append("other ran")
        a = threading.Thread(target=holder); b = threading.Thread(target=other)
        a.start(); b.start(); a.join(); b.join()
        assert order == ["holder", "other ran", "holder done"], order
    """)


def test_threading_local_is_per_greenlet(tmp_path):
    run_ok(tmp_path, """
        import _threading_local
        from greenweave.local import local as glocal
        assert threading.local is glocal and _thread._local is glocal
        assert _threading_local.local is glocal
        data = threading.local()
        data.value = "main"
        seen = []
        def work(i):
            data.value = i
            time.sleep(0.01)
            seen.append(data.value == i)
        threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
        for t in threads: t.start()
        for t in threads: t.join()
        g = greenweave.spawn(lambda: getattr(data, "value", "unset"))
        assert g.get() == "unset"
        assert seen == [True] * 5 and data.value == "main"
    """)


def test_excepthook_sees_exceptions_in_threads(tmp_path):
    proc = run_ok(tmp_path, """
        caught = []
        threading.excepthook = lambda args: caught.append((args.exc_type, args.thread.name))
        t = threading.Thread(target=lambda: 1 / 0, name="bad")
        t.start(); t.join()
        assert caught == [(ZeroDivisionError, "bad")], caught
        t = threading.Thread(target=sys.exit, name="exiting")  # as for native threads
        t.start(); t.join()
        assert caught[1] == (SystemExit, "exiting"), caught
        threading.excepthook = threading.__excepthook__  # which ignores SystemExit
        t = threading.Thread(target=sys.exit)
        t.start(); t.join()
    """)
    assert proc.stderr == ""


def test_shutdown_waits_for_non_daemon_threads(tmp_path):
    proc = run(tmp_path, """
        def slow():
            time.sleep(0.3)
            print("non-daemon finished", flush=True)
        def forever():
            time.sleep(1000)
        threading.Thread(target=slow).start()
        threading.Thread(target=forever, daemon=True).start()
        print("main done", flush=True)
    """, timeout=20)
    assert proc.stdout.split() == ["main", "done", "non-daemon", "finished"], proc.stdout


def test_thread_started_by_a_thread_at_shutdown_is_waited_for(tmp_path):
    proc = run(tmp_path, """
        def child():
            time.sleep(0.1)
            print("grandchild finished", flush=True)
        def parent():
            time.sleep(0.1)
            threading.Thread(target=child).start()
        threading.Thread(target=parent).start()
    """, timeout=20)
    assert proc.stdout.strip() == "grandchild finished"


def test_native_thread_is_still_available(tmp_path):
    run_ok(tmp_path, """
        from greenweave import monkey
        NativeThread = monkey.get_original("threading", "Thread")
        assert issubclass(NativeThread, threading.Thread)
        native_start = monkey.get_original("_thread", "start_new_thread")
        assert native_start is not _thread.start_new_thread
        assert type(native_start).__name__ == "builtin_function_or_method"
        out = {}
        def native():
            out["native_id"] = threading.get_native_id()
            out["name"] = threading.current_thread().name
            out["glet_root"] = getcurrent().parent is None
            time.sleep(0.3)  # green sleep in the native thread's own hub
        ticks = []
        ticker = greenweave.spawn(lambda: [ticks.append(time.sleep(0.02)) for _ in range(5)])
        nt = NativeThread(target=native, name="native")
        nt.start()
        nt.join()  # cooperative: the ticker greenlet keeps running meanwhile
        assert len(ticks) == 5, ticks
        assert out["native_id"] != threading.get_native_id(), out
        assert out["name"] == "native" and out["glet_root"], out
        assert not nt.is_alive()
        NativeTimer = monkey.get_original("threading", "Timer")
        fired = []
        timer = NativeTimer(0.05, lambda: fired.append(threading.get_native_id()))
        timer.start(); timer.join(5)
        assert fired and fired[0] != threading.get_native_id()
        ticker.join()
    """)


def test_non_daemon_native_thread_is_waited_for_at_exit(tmp_path):
    proc = run(tmp_path, """
        from greenweave import monkey
        def slow():
            time.sleep(0.3)
            print("native finished", flush=True)
        monkey.get_original("threading", "Thread")(target=slow).start()
    """, timeout=20)
    assert proc.stdout.strip() == "native finished"


def test_native_thread_started_before_patching_keeps_working(tmp_path):
    prelude = """\
import threading, time, warnings
stop = threading.Event()
log = []
def native():
    while not stop.is_set():
        time.sleep(0.01)
    log.append(threading.get_native_id())
pre = threading.Thread(target=native, name="pre-existing")
pre.start()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from greenweave import monkey
    monkey.patch_all()
import greenweave, _thread
from greenlet import getcurrent
"""
    run_ok(tmp_path, """
        messages = [str(w.message) for w in caught if w.category is monkey.MonkeyPatchWarning]
        assert len(messages) == 1 and "pre-existing" in messages[0], messages
        time.sleep(0.05)
        stop.set()
        pre.join(5)
        assert not pre.is_alive()
        assert log and log[0] != threading.get_native_id(), log
        t = threading.Thread(target=time.sleep, args=(0.01,))
        t.start(); t.join()
    """, prelude=prelude)


def test_patching_from_a_non_main_thread_warns(tmp_path):
    prelude = """\
import threading, warnings
caught = []
def patch():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        from greenweave import monkey
        monkey.patch_thread()
    caught.extend(w)
t = threading.Thread(target=patch)
t.start(); t.join()
"""
    run_ok(tmp_path, """
        messages = [str(w.message) for w in caught]
        assert any("other than the main thread" in m for m in messages), messages
    """, prelude=prelude)


def test_fork_after_patching(tmp_path):
    run_ok(tmp_path, """
        import os
        def child_thread():
            time.sleep(0.05)
            print("child thread ran", flush=True)
        t = threading.Thread(target=time.sleep, args=(0.01,))
        t.start(); t.join()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                c = threading.Thread(target=child_thread)
                c.start(); c.join(5)
                if (not c.is_alive() and threading.current_thread() is threading.main_thread()
                        and threading.active_count() == 1):
                    code = 7
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 7, status
        t = threading.Thread(target=time.sleep, args=(0.01,))
        t.start(); t.join()
    """)


def test_fork_from_a_green_thread(tmp_path):
    run_ok(tmp_path, """
        import os
        result = {}
        def forker():
            pid = os.fork()
            if pid == 0:
                ok = threading.current_thread() is threading.main_thread()
                t = threading.Thread(target=time.sleep, args=(0.01,))
                t.start(); t.join(5)
                os._exit(0 if ok and not t.is_alive() else 1)
            result["status"] = os.waitpid(pid, 0)[1]
        t = threading.Thread(target=forker)
        t.start(); t.join()
        assert os.waitstatus_to_exitcode(result["status"]) == 0, result
    """)


def test_queue_futures_and_logging_work_on_green_threads(tmp_path):
    run_ok(tmp_path, """
        import queue, logging, io, concurrent.futures as cf
        q = queue.Queue()
        def producer():
            for i in range(5):
                time.sleep(0.01); q.put(i)
        threading.Thread(target=producer).start()
        assert [q.get(timeout=5) for _ in range(5)] == [0, 1, 2, 3, 4]
        start = time.monotonic()
        with cf.ThreadPoolExecutor(max_workers=20) as ex:
            results = list(ex.map(lambda i: (time.sleep(0.2), i)[1], range(40)))
        assert results == list(range(40))
        assert time.monotonic() - start < 2.0
        stream = io.StringIO()
        logging.basicConfig(stream=stream, level=logging.INFO, format="%(threadName)s %(message)s")
        t = threading.Thread(target=logging.info, args=("hi",), name="logger")
        t.start(); t.join()
        assert stream.getvalue() == "logger hi\\n", stream.getvalue()
    """)


def test_logging_imported_first_gets_green_locks(tmp_path):
    prelude = """\
import logging
handler = logging.StreamHandler()
logging.getLogger().addHandler(handler)
from greenweave import monkey
monkey.patch_all()
import threading
"""
    run_ok(tmp_path, """
        from greenweave import thread as gthread
        assert isinstance(logging._lock, gthread.RLock), logging._lock
        assert isinstance(handler.lock, gthread.RLock), handler.lock
        assert monkey.is_object_patched("logging", "_lock")
    """, prelude=prelude)


def test_patch_thread_without_threading(tmp_path):
    prelude = """\
from greenweave import monkey
monkey.patch_thread(threading=False)
import _thread, sys
"""
    run_ok(tmp_path, """
        from greenweave import thread as gthread
        assert _thread.start_new_thread is gthread.start_new_thread
        assert _thread.allocate_lock is gthread.allocate_lock
        assert monkey.is_module_patched("_thread")
        assert not monkey.is_module_patched("threading")
        import threading
        assert threading.local is not gthread._local
    """, prelude=prelude)


def test_interrupt_main_from_a_green_thread(tmp_path):
    run_ok(tmp_path, """
        t = threading.Thread(target=_thread.interrupt_main)
        try:
            t.start()
            t.join()
        except KeyboardInterrupt:
            interrupted = True
        else:
            interrupted = False
        t.join()
        assert interrupted  # in the main thread, not in the green thread that called it
        try:
            _thread.interrupt_main()  # from the main greenlet itself
            for _ in range(1000):
                time.sleep(0)
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("no KeyboardInterrupt")
    """)


def test_event_repr_is_threadings(tmp_path):
    run_ok(tmp_path, """
        import re
        ev = threading.Event()
        assert re.fullmatch(r"<threading\\.Event at 0x[0-9a-f]+: unset>", repr(ev)), repr(ev)
        ev.set()
        assert repr(ev).endswith(": set>")
    """)
