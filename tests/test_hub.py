"""The hub: waiting, errors, LoopExit, BlockingSwitchOutError, join/destroy,
one hub per thread, fork, signals, Waiter."""

from __future__ import annotations

import gc
import os
import re
import signal
import socket
import sys
import threading
import time

import pytest

import greenweave
import greenweave.os as gos
from greenweave import GreenletExit, Timeout
from greenweave._core.park import ParkingLot
from greenweave.exceptions import BlockingSwitchOutError, LoopExit
from greenweave.hub import Hub, Waiter, get_hub

pytestmark = pytest.mark.timeout(15)


def _in_thread(fn):
    """Run ``fn()`` in a new native thread (with its own hub); return its result
    or re-raise its exception here."""
    box = {}

    def main():
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: B036 - handed back to the test
            box["error"] = e
        finally:
            hub = greenweave.hub.get_hub_if_exists()
            if hub is not None:
                hub.destroy(destroy_loop=True)

    t = threading.Thread(target=main)
    t.start()
    t.join(10)
    assert not t.is_alive(), "thread did not finish"
    if "error" in box:
        raise box["error"]
    return box.get("value")


# -- basics ----------------------------------------------------------------


def test_get_hub_is_per_thread_singleton():
    hub = get_hub()
    assert isinstance(hub, Hub)
    assert get_hub() is hub
    assert greenweave.get_hub() is hub
    assert hub.loop is not None


def test_error_class_attributes():
    assert issubclass(KeyboardInterrupt, Hub.SYSTEM_ERROR)
    assert issubclass(SystemExit, Hub.SYSTEM_ERROR)
    assert issubclass(GreenletExit, Hub.NOT_ERROR)
    assert not issubclass(ValueError, Hub.SYSTEM_ERROR + Hub.NOT_ERROR)


def test_hub_wait_blocks_until_watcher_fires():
    hub = get_hub()
    timer = hub.loop.timer(0.02)
    t0 = time.monotonic()
    hub.wait(timer)
    assert time.monotonic() - t0 >= 0.01
    assert not timer.active


def test_hub_switch_from_hub_raises_blocking_switch_out():
    hub = get_hub()
    got = []

    def cb():
        try:
            hub.switch()
        except BlockingSwitchOutError as e:
            got.append(e)

    hub.loop.run_callback(cb)
    greenweave.sleep(0)
    assert len(got) == 1
    assert "hub" in str(got[0]) or "event loop" in str(got[0])


def test_cancel_wait_raises_in_the_waiter(capsys):
    hub = get_hub()
    a, b = socket.socketpair()
    with a, b:
        watcher = hub.loop.io(a.fileno(), 1)
        g = greenweave.spawn(hub.wait, watcher)
        greenweave.sleep(0)
        hub.cancel_wait(watcher, ValueError("cancelled"))
        g.join()
        assert repr(g.exception) == "ValueError('cancelled')"
        assert not watcher.active
        watcher.close()
    capsys.readouterr()


def test_getswitchinterval_setswitchinterval():
    old = greenweave.getswitchinterval()
    try:
        greenweave.setswitchinterval(0.01)
        assert greenweave.getswitchinterval() == pytest.approx(0.01)
        assert sys.getswitchinterval() == pytest.approx(0.01)
    finally:
        greenweave.setswitchinterval(old)


# -- handle_error ------------------------------------------------------------

_STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_handle_error_prints_traceback_and_timestamp_line(capsys):
    hub = get_hub()
    try:
        raise ValueError("reported")
    except ValueError:
        hub.handle_error("my-context", *sys.exc_info())
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: reported" in err
    assert re.search(rf"^{_STAMP} 'my-context' failed with ValueError$", err, re.M), err


def test_handle_error_survives_broken_context_repr(capsys):
    class Broken:
        def __repr__(self):
            raise RuntimeError("no repr")

    try:
        raise ValueError("still reported")
    except ValueError:
        get_hub().handle_error(Broken(), *sys.exc_info())
    err = capsys.readouterr().err
    assert "ValueError: still reported" in err
    assert re.search(rf"^{_STAMP} <.*Broken object at 0x[0-9a-f]+> failed with ValueError$",
                     err, re.M), err


def test_error_in_loop_callback_is_reported_and_loop_continues(capsys):
    hub = get_hub()
    ran = []

    def bad():
        raise KeyError("callback failure")

    hub.loop.run_callback(bad)
    hub.loop.run_callback(ran.append, "after")
    timer = hub.loop.timer(0)
    timer.start(bad)
    greenweave.sleep(0.01)
    assert ran == ["after"]
    err = capsys.readouterr().err
    assert err.count("KeyError: 'callback failure'") == 2
    assert re.search(rf"^{_STAMP} .*TimerWatcher.* failed with KeyError$", err, re.M), err
    assert greenweave.spawn(lambda: "alive").get() == "alive"


def test_greenlet_error_printed_with_repr_and_hub_keeps_running(capsys):
    def failing_worker():
        raise ZeroDivisionError("nope")

    g = greenweave.spawn(failing_worker)
    g.name = "the-worker"
    g.join()
    err = capsys.readouterr().err
    line = re.search(rf"^{_STAMP} (.*) failed with ZeroDivisionError$", err, re.M)
    assert line, err
    assert line.group(1).startswith(f'<Greenlet "the-worker" at {id(g):#x}: ')
    assert "failing_worker" in line.group(1)
    gs = [greenweave.spawn(lambda i=i: i) for i in range(3)]
    assert [x.get() for x in gs] == [0, 1, 2]


def test_exception_stream_can_be_redirected(capsys):
    import io

    hub = get_hub()
    stream = io.StringIO()
    old = hub.exception_stream
    hub.exception_stream = stream
    try:
        greenweave.spawn(int, "not a number").join()
    finally:
        hub.exception_stream = old
    assert "ValueError" in stream.getvalue()
    assert "ValueError" not in capsys.readouterr().err


def test_system_error_from_loop_callback_reaches_main():
    hub = get_hub()

    def interrupt():
        raise KeyboardInterrupt

    hub.loop.run_callback(interrupt)
    with pytest.raises(KeyboardInterrupt):
        greenweave.sleep(0.05)
    assert greenweave.spawn(lambda: 1).get() == 1


def test_system_exit_from_timer_callback_reaches_main():
    timer = get_hub().loop.timer(0.01)
    timer.start(sys.exit, 7)
    with pytest.raises(SystemExit) as info:
        greenweave.sleep(1)
    assert info.value.code == 7


# -- BlockingSwitchOutError -------------------------------------------------


@pytest.mark.parametrize("blocker", ["sleep", "sleep0", "park", "join", "hub_wait"])
def test_blocking_in_loop_callback_raises_blocking_switch_out(blocker):
    hub = get_hub()
    target = greenweave.spawn(greenweave.sleep, 5)
    calls = {
        "sleep": lambda: greenweave.sleep(0.1),
        "sleep0": lambda: greenweave.sleep(0),
        "park": lambda: ParkingLot().park(),
        "join": lambda: target.join(),
        "hub_wait": lambda: hub.wait(hub.loop.timer(0.1)),
    }
    got = []

    def cb():
        try:
            calls[blocker]()
        except BlockingSwitchOutError as e:
            got.append(str(e))

    hub.loop.run_callback(cb)
    greenweave.sleep(0.01)
    target.kill()
    assert len(got) == 1, got
    assert got[0]  # a message saying what happened


def test_uncaught_blocking_in_timer_callback_is_reported(capsys):
    timer = get_hub().loop.timer(0)
    timer.start(greenweave.sleep, 0.1)
    greenweave.sleep(0.02)
    err = capsys.readouterr().err
    assert "BlockingSwitchOutError" in err
    assert greenweave.spawn(lambda: 1).get() == 1


# -- LoopExit --------------------------------------------------------------


def test_loop_exit_when_main_parks_on_nothing(fresh_hub):
    lot = ParkingLot()
    t0 = time.monotonic()
    with pytest.raises(LoopExit) as info:
        lot.park()
    assert time.monotonic() - t0 < 5
    assert "block forever" in str(info.value)
    assert info.value.hub is fresh_hub
    assert len(lot) == 0
    # The hub works afterwards.
    assert greenweave.spawn(lambda: 3).get() == 3


def test_loop_exit_when_joining_greenlet_that_waits_forever(fresh_hub):
    g = greenweave.spawn(ParkingLot().park)
    with pytest.raises(LoopExit):
        g.join()
    assert not g.dead
    g.kill()
    assert g.dead


def test_loop_exit_get_on_forever_greenlet(fresh_hub):
    g = greenweave.spawn(ParkingLot().park)
    with pytest.raises(LoopExit):
        g.get()
    g.kill()


def test_loop_exit_on_unreferenced_sleep(fresh_hub):
    with pytest.raises(LoopExit):
        greenweave.sleep(5, ref=False)


def test_loop_exit_in_thread_main_greenlet():
    def body():
        try:
            ParkingLot().park()
        except LoopExit:
            return "loop-exit"

    assert _in_thread(body) == "loop-exit"


def test_waiting_with_active_timer_is_not_loop_exit(fresh_hub):
    greenweave.spawn(greenweave.sleep, 0.02)
    lot = ParkingLot()
    assert lot.park(timeout=0.05) is False


# -- Hub.join / destroy ------------------------------------------------------


def test_hub_join_waits_for_all_work(fresh_hub):
    gs = [greenweave.spawn(greenweave.sleep, 0.02) for _ in range(3)]
    assert fresh_hub.join() is True
    assert all(g.dead for g in gs)
    assert fresh_hub.join(timeout=0.01) is True


def test_hub_join_timeout(fresh_hub):
    g = greenweave.spawn(greenweave.sleep, 5)
    t0 = time.monotonic()
    assert fresh_hub.join(timeout=0.02) is False
    assert time.monotonic() - t0 < 4
    g.kill()


def test_hub_join_from_hub_raises():
    hub = get_hub()
    got = []

    def cb():
        try:
            hub.join()
        except BlockingSwitchOutError as e:
            got.append(e)

    hub.loop.run_callback(cb)
    greenweave.sleep(0)
    assert len(got) == 1


def test_wait_without_objects_is_hub_join(fresh_hub):
    greenweave.spawn(greenweave.sleep, 0.01)
    assert greenweave.wait() is True


def test_destroy_then_get_hub_gives_new_working_hub(fresh_hub):
    old = fresh_hub
    g = greenweave.spawn(greenweave.sleep, 5)
    greenweave.sleep(0)
    old.destroy(destroy_loop=True)
    assert old.loop.closed
    new = get_hub()
    assert new is not old
    assert not new.loop.closed
    assert greenweave.spawn(lambda: "new hub").get() == "new hub"
    greenweave.sleep(0.01)
    with pytest.raises(Timeout):
        with Timeout(0.01):
            greenweave.sleep(1)
    assert not g.dead  # stranded on the old hub, not resumed by the new one


def test_destroy_in_thread_then_new_hub():
    def body():
        first = get_hub()
        greenweave.sleep(0.001)
        first.destroy()  # a non-default loop is destroyed with its hub
        second = get_hub()
        return first is not second, first.loop.closed, greenweave.spawn(lambda: 9).get()

    assert _in_thread(body) == (True, True, 9)


def test_destroy_default_hub_does_not_leak_fds():
    def nfds():
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    greenweave.sleep(0)
    before = nfds()
    for _ in range(5):
        get_hub().destroy()
        greenweave.sleep(0)
    assert nfds() <= before


# -- threads -------------------------------------------------------------


def test_one_hub_per_native_thread():
    main_hub = get_hub()

    def body():
        hub = get_hub()
        t0 = time.monotonic()
        gs = [greenweave.spawn(greenweave.sleep, 0.05) for _ in range(20)]
        greenweave.joinall(gs)
        return (hub, hub.thread_ident, hub.loop.default, all(g.successful() for g in gs),
                time.monotonic() - t0, threading.get_ident())

    hub, ident, default, ok, elapsed, tid = _in_thread(body)
    assert hub is not main_hub
    assert ident == tid
    assert default is False
    assert ok
    assert elapsed < 2
    assert get_hub() is main_hub


def test_two_threads_run_their_hubs_concurrently():
    results = []

    def body(name):
        gs = [greenweave.spawn(greenweave.sleep, 0.05) for _ in range(10)]
        greenweave.joinall(gs)
        results.append((name, get_hub()))
        get_hub().destroy()

    threads = [threading.Thread(target=body, args=(n,)) for n in "ab"]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert time.monotonic() - t0 < 2
    assert sorted(n for n, _ in results) == ["a", "b"]
    assert results[0][1] is not results[1][1]


def test_run_callback_threadsafe_from_thread_wakes_hub():
    hub = get_hub()
    waiter = Waiter()

    def other():
        time.sleep(0.05)
        hub.loop.run_callback_threadsafe(waiter.switch, threading.get_ident())

    t = threading.Thread(target=other)
    with Timeout(5):  # a referenced timer, so the wait is not a LoopExit
        t.start()
        tid = waiter.get()
    t.join()
    assert tid == t.ident


# -- Waiter ----------------------------------------------------------------


def test_waiter_switch_from_callback():
    w = Waiter()
    get_hub().loop.run_callback(w.switch, 5)
    assert w.get() == 5


def test_waiter_switch_before_get_returns_at_once():
    w = Waiter()
    assert not w.ready()
    w.switch(6)
    assert w.ready() and w.successful() and w.value == 6
    assert w.get() == 6


def test_waiter_throw():
    w = Waiter()
    get_hub().loop.run_callback(w.throw, ValueError("thrown"))
    with pytest.raises(ValueError, match="thrown"):
        w.get()


def test_waiter_switch_outside_hub_is_rejected():
    w = Waiter()
    g = greenweave.spawn(w.get)
    greenweave.sleep(0)
    with pytest.raises(AssertionError, match="Hub greenlet"):
        w.switch(1)
    get_hub().loop.run_callback(w.switch, 1)
    assert g.get() == 1


def test_waiter_used_twice_concurrently():
    from greenweave.exceptions import ConcurrentObjectUseError

    w = Waiter()
    first = greenweave.spawn(w.get)
    second = greenweave.spawn(w.get)
    greenweave.sleep(0)
    second.join()
    assert isinstance(second.exception, ConcurrentObjectUseError)
    get_hub().loop.run_callback(w.switch, "x")
    assert first.get() == "x"


# -- signals ---------------------------------------------------------------


def test_signal_handler_runs_in_greenlet_and_cancel_restores():
    before = signal.getsignal(signal.SIGUSR1)
    got = []

    def handler(tag):
        got.append((tag, greenweave.getcurrent() is not get_hub()))

    s = greenweave.signal_handler(signal.SIGUSR1, handler, "sig")
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        with Timeout(5):
            while not got:
                greenweave.sleep(0.005)
        assert got == [("sig", True)]
    finally:
        s.cancel()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_signal_handler_rejects_non_callable():
    with pytest.raises(TypeError):
        greenweave.signal_handler(signal.SIGUSR1, 5)


# -- fork -------------------------------------------------------------------


def _child_work() -> str:
    """Spawn + sleep + a timer + socket I/O + a cross-thread wake-up, in the
    (forked) child's hub."""
    hub = get_hub()
    out = []
    g = greenweave.spawn(lambda: (greenweave.sleep(0.01), out.append("greenlet"))[1])
    timer = hub.loop.timer(0.01)
    timer.start(out.append, "timer")
    greenweave.sleep(0.03)
    g.join()
    with Timeout(0.01, False):
        greenweave.sleep(1)
    out.append("timeout")
    a, b = socket.socketpair()
    with a, b:
        watcher = hub.loop.io(a.fileno(), 1)
        greenweave.spawn_later(0.01, b.send, b"x")
        with Timeout(5):
            hub.wait(watcher)
        watcher.close()
        out.append("io")
    waiter = Waiter()
    t = threading.Thread(target=hub.loop.run_callback_threadsafe, args=(waiter.switch, "thread"))
    with Timeout(5):
        t.start()
        out.append(waiter.get())
    t.join()
    return ",".join(sorted(out))


def _fork_and_report(forker) -> tuple[bytes, int]:
    r, w = os.pipe()
    pid = forker()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(r)
            os.write(w, _child_work().encode())
            code = 0
        except BaseException as e:  # noqa: B036 - report anything
            try:
                os.write(w, f"error: {e!r}".encode())
            except BaseException:  # noqa: B036
                pass
        finally:
            os._exit(code)
    os.close(w)
    # The parent waits cooperatively: its hub polls while the child runs.
    data = b""
    hub = get_hub()
    watcher = hub.loop.io(r, 1)
    try:
        with Timeout(10):
            while True:
                hub.wait(watcher)
                chunk = os.read(r, 1024)
                if not chunk:
                    break
                data += chunk
    except Timeout:
        os.kill(pid, signal.SIGKILL)
        raise
    finally:
        watcher.close()
        os.close(r)
        # greenweave.fork watches the child, so the loop may reap it first:
        # greenweave.os.waitpid hands out the status either way.
        _, status = gos.waitpid(pid, 0)
    return data, status


@pytest.mark.parametrize("forker", [greenweave.fork, os.fork], ids=["greenweave.fork", "os.fork"])
def test_fork_child_has_working_hub(forker):
    hub = get_hub()
    greenweave.sleep(0.001)  # the parent's hub exists and has run
    # Something pending in the parent across the fork.
    pending = greenweave.spawn(greenweave.sleep, 0.02)
    data, status = _fork_and_report(forker)
    assert data == b"greenlet,io,thread,timeout,timer", data
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent's hub is unaffected.
    assert get_hub() is hub
    pending.join(timeout=5)
    assert pending.successful()
    assert greenweave.spawn(lambda: "parent").get() == "parent"


def test_reinit_in_same_process_keeps_hub_working():
    a, b = socket.socketpair()
    with a, b:
        hub = get_hub()
        watcher = hub.loop.io(a.fileno(), 1)
        greenweave.reinit()
        b.send(b"x")
        with Timeout(5):
            hub.wait(watcher)
        watcher.close()
    assert greenweave.spawn(lambda: 1).get() == 1


@pytest.mark.timeout(20)
def test_signal_handler_exception_reaches_blocked_main_greenlet_and_hub_survives():
    # A Python signal handler runs in whatever greenlet is running: here the
    # hub, polling while main waits on a socket.  Its exception belongs to
    # the main greenlet, and the hub must keep working afterwards.
    from greenweave import socket as gsocket

    a, b = gsocket.socketpair()
    old = signal.signal(signal.SIGALRM, lambda *args: 1 / 0)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(ZeroDivisionError):
            a.recv(10)
        assert greenweave.spawn(lambda: "alive").get(timeout=5) == "alive"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        a.close()
        b.close()
