"""The event loop's watcher API (what gevent integrations drive directly)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

import greenweave
from greenweave import Timeout
from greenweave._core.loop import Loop
from greenweave.exceptions import LoopExit
from greenweave.hub import get_hub

pytestmark = pytest.mark.timeout(15)

BACKENDS = ["epoll", "selectors"] if hasattr(__import__("select"), "epoll") else ["selectors"]


@pytest.fixture(params=BACKENDS)
def loop(request):
    """A private loop (no hub), errors collected in ``loop.errors``."""
    lp = Loop(default=False, backend=request.param)
    lp.errors = []
    lp.error_handler = lambda ctx, typ, val, tb: lp.errors.append((ctx, val))
    yield lp
    lp.destroy()


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def _run_until(loop: Loop, predicate, timeout: float = 5.0) -> None:
    """Run ``loop`` until ``predicate()`` is true (a referenced guard timer
    fails the test instead of hanging)."""
    expired = []
    guard = loop.timer(timeout)
    guard.start(lambda: (expired.append(True), loop.break_()))
    # Prepare watchers run every iteration after the callbacks, before the
    # poll: they see what callbacks and the previous dispatch did.
    prepare = loop.prepare()
    prepare.start(lambda: predicate() and loop.break_())
    try:
        if not predicate():
            loop.run()
    finally:
        guard.stop()
        prepare.stop()
    assert not expired, "loop did not reach the expected state in time"


def _wait_hub(watcher, timeout: float = 5.0) -> None:
    with Timeout(timeout):
        get_hub().wait(watcher)


# -- callbacks -------------------------------------------------------------


def test_run_callback_fifo_and_loop_exits_when_idle(loop):
    order = []
    for i in range(5):
        loop.run_callback(order.append, i)
    loop.run()  # nothing referencing left afterwards: returns
    assert order == [0, 1, 2, 3, 4]


def test_callback_stop_cancels(loop):
    got = []
    cb = loop.run_callback(got.append, 1)
    assert cb.pending
    cb.stop()
    assert not cb.pending
    loop.run()
    assert got == []


def test_callbacks_queued_by_callbacks_run_after_the_current_batch(loop):
    seen = []

    def first():
        seen.append("first")
        loop.run_callback(lambda: seen.append("queued by first"))

    loop.run_callback(first)
    loop.run_callback(lambda: seen.append("second"))
    loop.run()
    assert seen == ["first", "second", "queued by first"]


def test_endless_callback_chain_does_not_starve_io_or_timers(loop):
    # A callback that always queues another (a greenlet spinning on
    # sleep(0)) must still let timers and I/O run: batches stop for a poll
    # once CALLBACK_BUDGET has passed.
    a, b = socket.socketpair()
    fired = []
    try:
        def spin():
            if len(fired) < 2:
                loop.run_callback(spin)

        io = loop.io(a.fileno(), 1)
        io.start(lambda: (fired.append("io"), io.stop()))
        t = loop.timer(0.01)
        t.start(fired.append, "timer")
        b.send(b"x")
        loop.run_callback(spin)
        loop.run()
        assert sorted(fired) == ["io", "timer"]
        io.close()
    finally:
        a.close()
        b.close()


def test_error_in_callback_goes_to_handler_and_loop_continues(loop):
    got = []
    loop.run_callback(lambda: 1 / 0)
    loop.run_callback(got.append, "after")
    loop.run()
    assert got == ["after"]
    assert len(loop.errors) == 1 and isinstance(loop.errors[0][1], ZeroDivisionError)


def test_run_callback_threadsafe_from_thread(loop):
    got = []
    keepalive = loop.async_()  # keeps the loop running until the thread calls in
    keepalive.start(lambda: None)

    def other():
        time.sleep(0.05)
        loop.run_callback_threadsafe(lambda: (got.append(threading.get_ident()),
                                              keepalive.stop()))

    t = threading.Thread(target=other)
    t.start()
    _run_until(loop, lambda: bool(got))
    t.join()
    assert got == [threading.get_ident()]  # ran in the loop's own thread


# -- async -----------------------------------------------------------------


def test_async_send_from_other_thread_wakes_hub():
    hub = get_hub()
    watcher = hub.loop.async_()
    sent_from = []

    def other():
        time.sleep(0.05)
        sent_from.append(threading.get_ident())
        watcher.send()

    t = threading.Thread(target=other)
    t0 = time.monotonic()
    t.start()
    _wait_hub(watcher)  # nothing else would wake the hub
    t.join()
    assert sent_from == [t.ident]
    assert time.monotonic() - t0 < 4
    watcher.close()


def test_async_started_then_sent_from_thread_runs_callback(loop):
    got = []
    watcher = loop.async_()
    watcher.start(lambda: (got.append("fired"), watcher.stop()))
    t = threading.Thread(target=lambda: (time.sleep(0.02), watcher.send()))
    t.start()
    _run_until(loop, lambda: bool(got))
    t.join()
    assert got == ["fired"]


def test_async_sends_coalesce(loop):
    got = []
    watcher = loop.async_()
    watcher.start(got.append, 1)
    watcher.send()
    watcher.send()
    assert watcher.pending
    loop.run(once=True)
    assert got == [1]
    assert not watcher.pending
    watcher.stop()


def test_async_send_to_stopped_watcher_is_ignored(loop):
    got = []
    watcher = loop.async_()
    watcher.start(got.append, 1)
    watcher.stop()
    watcher.send()
    loop.run()
    assert got == []


# -- io --------------------------------------------------------------------


def test_io_read_and_write_events(loop, pair):
    a, b = pair
    got = []
    r = loop.io(a.fileno(), 1)
    w = loop.io(a.fileno(), 2)
    w.start(got.append, "write")
    _run_until(loop, lambda: "write" in got)
    w.stop()
    assert "read" not in got
    r.start(got.append, "read")
    b.send(b"x")
    _run_until(loop, lambda: "read" in got)
    r.close()
    w.close()


def test_io_pass_events(loop, pair):
    a, b = pair
    got = []
    both = loop.io(a.fileno(), 3)
    b.send(b"x")
    both.start(lambda ev, tag: got.append((ev, tag)), "t", pass_events=True)
    _run_until(loop, lambda: bool(got))
    both.stop()
    both.close()
    assert got[0] == (3, "t")
    assert a.recv(10) == b"x"
    got.clear()
    w = loop.io(a.fileno(), 2)
    w.start(got.append, pass_events=True)
    _run_until(loop, lambda: bool(got))
    assert got[0] == 2
    w.close()


def test_io_pass_events_masked_to_watcher_events(loop, pair):
    a, b = pair
    b.send(b"x")  # readable and writable
    got = []
    w = loop.io(a.fileno(), 2)
    r = loop.io(a.fileno(), 1)
    w.start(lambda ev: got.append(("w", ev)), pass_events=True)
    r.start(lambda ev: got.append(("r", ev)), pass_events=True)
    _run_until(loop, lambda: len(got) >= 2)
    w.close()
    r.close()
    assert set(got[:2]) == {("w", 2), ("r", 1)}


def test_two_read_watchers_on_one_fd_both_fire(loop, pair):
    a, b = pair
    got = []
    w1 = loop.io(a.fileno(), 1)
    w2 = loop.io(a.fileno(), 1)
    w1.start(got.append, 1)
    w2.start(got.append, 2)
    b.send(b"x")
    _run_until(loop, lambda: {1, 2} <= set(got))
    w1.close()
    w2.close()


def test_io_stop_silences_watcher(loop, pair):
    a, b = pair
    got = []
    r = loop.io(a.fileno(), 1)
    r.start(got.append, 1)
    b.send(b"x")
    _run_until(loop, lambda: bool(got))
    r.stop()
    assert not r.active
    got.clear()
    t = loop.timer(0.03)
    t.start(lambda: None)
    loop.run()  # data still unread, but nobody listens
    assert got == []
    r.close()


def test_io_restart_after_lazy_narrowing(loop, pair):
    # Stopped watcher, fd still readable: the loop narrows its interest when
    # the unwanted event arrives.  Starting again must still deliver.
    a, b = pair
    got = []
    r = loop.io(a.fileno(), 1)
    r.start(got.append, 1)
    b.send(b"x")
    _run_until(loop, lambda: bool(got))
    r.stop()
    t = loop.timer(0.02)
    t.start(lambda: None)
    loop.run()
    got.clear()
    r.start(got.append, 2)
    _run_until(loop, lambda: bool(got))
    assert got[0] == 2
    r.close()


def test_io_peer_close_wakes_reader(loop, pair):
    a, b = pair
    got = []
    r = loop.io(a.fileno(), 1)
    r.start(got.append, 1)
    b.close()
    _run_until(loop, lambda: bool(got))
    assert a.recv(10) == b""
    r.close()


def test_io_close_then_start_raises(loop, pair):
    a, _ = pair
    r = loop.io(a.fileno(), 1)
    r.close()
    r.close()  # twice is fine
    with pytest.raises(ValueError, match="closed"):
        r.start(lambda: None)


@pytest.mark.parametrize("fd, events", [(-1, 1), (0, 0), (0, 4)])
def test_io_bad_arguments(loop, fd, events):
    with pytest.raises(ValueError):
        loop.io(fd, events)


def test_io_watcher_as_context_manager(pair):
    a, b = pair
    hub = get_hub()
    with hub.loop.io(a.fileno(), 1) as w:
        b.send(b"x")
        _wait_hub(w)
    assert not w.active
    with pytest.raises(ValueError):
        w.start(lambda: None)


def test_hub_wait_on_io_from_greenlets(pair):
    a, b = pair
    hub = get_hub()
    w = hub.loop.io(a.fileno(), 1)
    g = greenweave.spawn(_wait_hub, w)
    greenweave.sleep(0.01)
    assert not g.dead
    b.send(b"x")
    g.join(timeout=5)
    assert g.successful()
    w.close()


def _reuse_fd_socketpair(fd: int) -> tuple[socket.socket, socket.socket]:
    c, d = socket.socketpair()
    if c.fileno() != fd:
        c.close()
        d.close()
        pytest.skip("the kernel did not hand out the same fd number again")
    return c, d


@pytest.mark.parametrize("how", ["closed", "stopped", "closing_fd"])
def test_fd_reuse_after_close(how):
    """A socket is closed with a watcher that was active; a new socket gets
    the same fd number; a new watcher on it must still fire."""
    hub = get_hub()
    loop = hub.loop
    a, b = socket.socketpair()
    fd = a.fileno()
    old = loop.io(fd, 1)
    b.send(b"x")
    _wait_hub(old)  # active, fired, registered with the backend
    old.start(lambda: None)
    if how == "closed":
        old.close()
    elif how == "stopped":
        old.stop()
    else:
        loop.closing_fd(fd)
    a.close()
    b.close()
    c, d = _reuse_fd_socketpair(fd)
    with c, d:
        new = loop.io(c.fileno(), 1)
        greenweave.spawn_later(0.01, d.send, b"y")
        _wait_hub(new)
        assert c.recv(10) == b"y"
        # And the write direction on the reused number.
        wnew = loop.io(c.fileno(), 2)
        _wait_hub(wnew)
        new.close()
        wnew.close()
    old.close()


def test_fd_reuse_with_stale_registration_from_dup(loop):
    a, b = socket.socketpair()
    fd = a.fileno()
    old = loop.io(fd, 1)
    got = []
    old.start(got.append, 0)
    b.send(b"x")
    _run_until(loop, lambda: bool(got))
    keep = os.dup(fd)  # the old file description stays alive (like a forked child)
    try:
        old.stop()
        a.close()
        c, d = _reuse_fd_socketpair(fd)
        with c, d:
            fired = []
            new = loop.io(c.fileno(), 1)
            new.start(fired.append, 1)
            t = loop.timer(0.05)
            t.start(loop.break_)
            loop.run()
            new.close()
            # c has no data: the new watcher must not fire.
            assert len(fired) == 0, f"{len(fired)} spurious wake-ups"
    finally:
        os.close(keep)
        b.close()
        old.close()


def test_closing_fd_reports_whether_watched(loop, pair):
    a, _ = pair
    assert loop.closing_fd(a.fileno()) is False
    w = loop.io(a.fileno(), 1)
    w.start(lambda: None)
    assert loop.closing_fd(a.fileno()) is True
    w.close()


# -- timers ----------------------------------------------------------------


def test_timer_fires_once(loop):
    got = []
    t = loop.timer(0.01)
    t.start(got.append, "x")
    assert t.active
    loop.run()
    assert got == ["x"]
    assert not t.active


def test_timer_repeat(loop):
    got = []
    t = loop.timer(0.005, repeat=0.005)
    t.start(lambda: (got.append(1), len(got) >= 4 and t.stop()))
    loop.run()  # returns once the repeating timer stopped itself
    assert len(got) == 4
    assert not t.active


def test_timer_stop_before_firing(loop):
    got = []
    t = loop.timer(0.01)
    t.start(got.append, 1)
    t.stop()
    assert not t.active
    loop.run()
    assert got == []


def test_timers_fire_in_deadline_order(loop):
    got = []
    for delay in (0.03, 0.01, 0.02, 0.0):
        loop.timer(delay).start(got.append, delay)
    loop.run()
    assert got == [0.0, 0.01, 0.02, 0.03]


def test_timer_restart_reschedules(loop):
    got = []
    t = loop.timer(5)
    t.start(got.append, "late")
    t.after = 0.01
    t.start(got.append, "rescheduled")
    loop.run()
    assert got == ["rescheduled"]


def test_timer_cancel_churn_then_real_timer_fires(loop):
    for _ in range(1000):
        t = loop.timer(10)
        t.start(lambda: None)
        t.stop()
    got = []
    loop.timer(0.01).start(got.append, 1)
    loop.run()
    assert got == [1]


def test_timer_negative_repeat_rejected(loop):
    with pytest.raises(ValueError):
        loop.timer(1, repeat=-1)


def test_start_with_none_callback_rejected(loop):
    with pytest.raises(TypeError):
        loop.timer(1).start(None)


def test_unreferenced_timer_lets_loop_exit(loop):
    got = []
    unref = loop.timer(10, ref=False)
    unref.start(got.append, "unref")
    loop.timer(0.01).start(got.append, "ref")
    t0 = time.monotonic()
    loop.run()
    assert time.monotonic() - t0 < 5
    assert got == ["ref"]
    assert unref.active
    unref.stop()


def test_ref_setter_on_active_watcher(loop):
    t = loop.timer(10)
    t.start(lambda: None)
    assert loop.activecnt == 1
    t.ref = False
    assert loop.activecnt == 0
    t0 = time.monotonic()
    loop.run()
    assert time.monotonic() - t0 < 5
    t.ref = True
    assert loop.activecnt == 1
    t.stop()
    assert loop.activecnt == 0


def test_unreferenced_timer_in_hub_gives_loop_exit(fresh_hub):
    t = fresh_hub.loop.timer(10, ref=False)
    with pytest.raises(LoopExit):
        fresh_hub.wait(t)


def test_timer_context_manager_with_hub_wait():
    hub = get_hub()
    with hub.loop.timer(0.01) as t:
        hub.wait(t)
    assert not t.active


# -- idle / prepare / check ---------------------------------------------------


def test_prepare_and_check_run_every_iteration(loop):
    counts = {"prepare": 0, "check": 0}
    p = loop.prepare()
    c = loop.check()
    p.start(lambda: counts.__setitem__("prepare", counts["prepare"] + 1))
    c.start(lambda: counts.__setitem__("check", counts["check"] + 1))

    # Active prepare/check watchers keep the loop running (as in libev): a
    # repeating timer gives it three polling iterations, then stops them,
    # and the loop runs dry and returns.
    ticks = []

    def tick():
        ticks.append(1)
        if len(ticks) == 3:
            p.stop()
            c.stop()
            t.stop()

    t = loop.timer(0.005, 0.005)
    t.start(tick)
    loop.run()
    assert counts["prepare"] >= 3 and counts["check"] >= 2  # (the last tick stops check first)
    assert not p.active and not c.active
    before = dict(counts)
    loop.run_callback(lambda: None)
    loop.run()
    assert counts == before


def test_idle_runs_only_when_nothing_else_to_do(loop):
    log = []
    idle = loop.idle()
    idle.start(lambda: (log.append("idle"), idle.stop()))

    def chain(n):
        log.append(n)
        if n < 3:
            loop.run_callback(chain, n + 1)

    loop.run_callback(chain, 0)
    loop.run()
    assert log == [0, 1, 2, 3, "idle"]


def test_watchers_as_context_managers(loop):
    for make in (loop.idle, loop.prepare, loop.check, loop.async_, lambda: loop.timer(1)):
        with make() as w:
            w.start(lambda: None)
            assert w.active
        assert not w.active


# -- signals -----------------------------------------------------------------


def test_signal_watcher_sigusr1():
    hub = get_hub()
    before = signal.getsignal(signal.SIGUSR1)
    got = []
    w1 = hub.loop.signal(signal.SIGUSR1)
    w2 = hub.loop.signal(signal.SIGUSR1)
    w1.start(got.append, 1)
    w2.start(got.append, 2)
    try:
        os.kill(os.getpid(), signal.SIGUSR1)
        with Timeout(5):
            while len(got) < 2:
                greenweave.sleep(0.005)
        assert sorted(got) == [1, 2]
        assert greenweave.getcurrent() is not hub
        w1.stop()
        got.clear()
        os.kill(os.getpid(), signal.SIGUSR1)
        with Timeout(5):
            while not got:
                greenweave.sleep(0.005)
        assert got == [2]
    finally:
        w1.close()
        w2.close()
    assert signal.getsignal(signal.SIGUSR1) == before


def test_hub_wait_on_signal_watcher():
    hub = get_hub()
    with hub.loop.signal(signal.SIGUSR2) as w:
        greenweave.spawn_later(0.01, os.kill, os.getpid(), signal.SIGUSR2)
        _wait_hub(w)


def test_signal_watcher_bad_number(loop):
    with pytest.raises(ValueError):
        loop.signal(0)


def test_signal_watcher_outside_main_thread_is_a_clear_error():
    box = {}

    def body():
        lp = Loop(default=False)
        try:
            lp.signal(signal.SIGUSR1).start(lambda: None)
        except ValueError as e:
            box["error"] = e
        finally:
            lp.destroy()

    t = threading.Thread(target=body)
    t.start()
    t.join(5)
    assert "main thread" in str(box.get("error"))


# -- child processes -------------------------------------------------------


@pytest.mark.parametrize("prog, code", [("/bin/true", 0), ("/bin/false", 1)])
def test_child_watcher_posix_spawn(prog, code):
    if not os.path.exists(prog):
        pytest.skip(f"{prog} missing")
    hub = get_hub()
    pid = os.posix_spawn(prog, [prog], os.environ)
    w = hub.loop.child(pid)
    _wait_hub(w)
    assert w.rpid == pid
    assert os.waitstatus_to_exitcode(w.rstatus) == code
    assert not w.active


def test_child_watcher_fork_exit_code():
    hub = get_hub()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os._exit(3)
    w = hub.loop.child(pid)
    _wait_hub(w)
    assert w.rpid == pid
    assert os.waitstatus_to_exitcode(w.rstatus) == 3


def test_child_watcher_child_already_exited():
    hub = get_hub()
    pid = os.posix_spawn("/bin/true", ["/bin/true"], os.environ)
    time.sleep(0.1)  # exited (zombie) before anyone watches
    w = hub.loop.child(pid)
    _wait_hub(w)
    assert w.rpid == pid and os.waitstatus_to_exitcode(w.rstatus) == 0


def test_child_watcher_in_non_main_thread_loop():
    box = {}

    def body():
        hub = get_hub()
        try:
            pid = os.posix_spawn("/bin/false", ["/bin/false"], os.environ)
            w = hub.loop.child(pid)
            _wait_hub(w)
            box["result"] = (w.rpid == pid, os.waitstatus_to_exitcode(w.rstatus))
        except BaseException as e:  # noqa: B036
            box["result"] = e
        finally:
            hub.destroy()

    t = threading.Thread(target=body)
    t.start()
    t.join(10)
    assert box.get("result") == (True, 1)


# -- life cycle --------------------------------------------------------------


def test_unknown_backend_rejected():
    with pytest.raises(ValueError, match="backend"):
        Loop(default=False, backend="kqueue-please")


def test_destroy_closes_loop():
    lp = Loop(default=False)
    assert not lp.closed
    assert "Loop" in repr(lp)
    lp.destroy()
    assert lp.closed
    lp.destroy()  # twice is fine
    assert "destroyed" in repr(lp)


def test_hub_loop_offers_the_gevent_watcher_api():
    loop = get_hub().loop
    for name in ("io", "timer", "async_", "run_callback", "run_callback_threadsafe",
                 "signal", "child", "idle", "prepare", "check"):
        assert callable(getattr(loop, name)), name
    w = loop.timer(1)
    for attr in ("start", "stop", "close", "active", "pending", "ref", "__enter__", "__exit__"):
        assert hasattr(w, attr), attr
