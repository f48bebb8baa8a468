"""greenweave.signal and greenweave.signal_handler with real signals sent to this
process: handlers in greenlets, a user's SIGCHLD handler coexisting with the loop's
child watchers, handlers for signals the loop watches, set_wakeup_fd."""

from __future__ import annotations

import importlib
import os
import signal as stdsignal
import threading
import time

import pytest

import greenweave
from greenweave import subprocess as gsp
from greenweave.greenlet import Greenlet

# (``from greenweave import signal`` may name the signal_handler class.)
gsignal = importlib.import_module("greenweave.signal")

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    yield fresh_hub
    for signum in (stdsignal.SIGCHLD, stdsignal.SIGUSR1, stdsignal.SIGUSR2):
        gsignal.signal(signum, stdsignal.SIG_DFL)


def _wait_for(predicate, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        greenweave.sleep(0.005)
    return True


def test_signal_handler_runs_fn_in_a_new_greenlet():
    calls = []

    def fn(tag, key=None):
        calls.append((tag, key, greenweave.getcurrent()))
        greenweave.sleep(0.01)  # may block: it is a greenlet of its own

    handler = greenweave.signal_handler(stdsignal.SIGUSR1, fn, "usr1", key="k")
    try:
        os.kill(os.getpid(), stdsignal.SIGUSR1)
        assert _wait_for(lambda: len(calls) == 1)
        os.kill(os.getpid(), stdsignal.SIGUSR1)
        assert _wait_for(lambda: len(calls) == 2)
    finally:
        handler.cancel()
    tag, key, glet = calls[0]
    assert (tag, key) == ("usr1", "k")
    assert isinstance(glet, Greenlet)
    assert calls[0][2] is not calls[1][2]
    assert glet is not greenweave.get_hub()


def test_user_sigchld_handler_and_popen_wait_coexist():
    seen = []
    old = gsignal.signal(stdsignal.SIGCHLD, lambda signum, frame: seen.append(signum))
    try:
        assert gsignal.getsignal(stdsignal.SIGCHLD) is not old
        procs = [gsp.Popen(["sh", "-c", f"exit {i}"]) for i in range(5)]
        assert [p.wait(timeout=10) for p in procs] == list(range(5))
        assert _wait_for(lambda: seen)
        assert set(seen) == {stdsignal.SIGCHLD}
    finally:
        gsignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_DFL)
    # Everything is handed back once nobody needs SIGCHLD any more.
    assert stdsignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_DFL
    assert gsignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_DFL


def test_user_sigchld_handler_set_while_children_are_watched():
    seen = []
    p = gsp.Popen(["sh", "-c", "sleep 0.3; exit 3"])
    greenweave.sleep(0)
    # The loop owns SIGCHLD now; setting a handler must not break the watcher.
    gsignal.signal(stdsignal.SIGCHLD, lambda signum, frame: seen.append(frame))
    try:
        assert p.wait(timeout=10) == 3
        assert _wait_for(lambda: seen)
        assert seen[0] is None
    finally:
        gsignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_DFL)
    assert stdsignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_DFL


def test_sig_ign_for_sigchld_while_children_are_watched():
    p = gsp.Popen(["sh", "-c", "sleep 0.2; exit 4"])
    greenweave.sleep(0)
    old = gsignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_IGN)
    assert old == stdsignal.SIG_DFL
    assert gsignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_IGN
    assert p.wait(timeout=10) == 4  # the child watcher still works
    # ...and once it is done, the requested disposition is in force.
    assert _wait_for(lambda: stdsignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_IGN)
    gsignal.signal(stdsignal.SIGCHLD, stdsignal.SIG_DFL)
    assert stdsignal.getsignal(stdsignal.SIGCHLD) == stdsignal.SIG_DFL


def test_plain_signal_passes_through():
    seen = []

    def handler(signum, frame):
        seen.append(signum)

    old = gsignal.signal(stdsignal.SIGUSR2, handler)
    try:
        assert old == stdsignal.SIG_DFL
        assert stdsignal.getsignal(stdsignal.SIGUSR2) is handler
        assert gsignal.getsignal(stdsignal.SIGUSR2) is handler
        os.kill(os.getpid(), stdsignal.SIGUSR2)
        assert _wait_for(lambda: seen == [stdsignal.SIGUSR2])
    finally:
        assert gsignal.signal(stdsignal.SIGUSR2, stdsignal.SIG_DFL) is handler


def test_handler_for_a_signal_the_loop_watches_keeps_the_watcher_working():
    loop_calls = []
    user_calls = []
    watcher = greenweave.signal_handler(stdsignal.SIGUSR2, loop_calls.append, "loop")
    try:
        gsignal.signal(stdsignal.SIGUSR2, lambda signum, frame: user_calls.append(signum))
        os.kill(os.getpid(), stdsignal.SIGUSR2)
        assert _wait_for(lambda: loop_calls and user_calls)
        assert loop_calls == ["loop"] and user_calls == [stdsignal.SIGUSR2]
    finally:
        watcher.cancel()
    # The user's handler outlives the loop's watcher.
    os.kill(os.getpid(), stdsignal.SIGUSR2)
    assert _wait_for(lambda: len(user_calls) == 2)
    gsignal.signal(stdsignal.SIGUSR2, stdsignal.SIG_DFL)
    assert stdsignal.getsignal(stdsignal.SIGUSR2) == stdsignal.SIG_DFL


def test_default_disposition_set_while_the_loop_watches_applies_later():
    calls = []
    watcher = greenweave.signal_handler(stdsignal.SIGUSR2, calls.append, 1)
    try:
        gsignal.signal(stdsignal.SIGUSR2, stdsignal.SIG_IGN)
        os.kill(os.getpid(), stdsignal.SIGUSR2)
        assert _wait_for(lambda: calls == [1])  # the watcher still fires
    finally:
        watcher.cancel()
    assert stdsignal.getsignal(stdsignal.SIGUSR2) == stdsignal.SIG_IGN
    os.kill(os.getpid(), stdsignal.SIGUSR2)  # ignored: nothing happens
    greenweave.sleep(0.05)
    assert calls == [1]


def test_set_wakeup_fd_sees_signals_the_loop_handles():
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.set_blocking(w, False)
    calls = []
    watcher = greenweave.signal_handler(stdsignal.SIGUSR1, calls.append, "x")
    old = gsignal.set_wakeup_fd(w)
    try:
        os.kill(os.getpid(), stdsignal.SIGUSR1)
        assert _wait_for(lambda: calls)
        assert os.read(r, 10) == bytes([stdsignal.SIGUSR1])
    finally:
        gsignal.set_wakeup_fd(old)
        watcher.cancel()
        os.close(r)
        os.close(w)


def test_bad_arguments():
    with pytest.raises(TypeError):
        gsignal.signal(stdsignal.SIGUSR1, "not callable")
    with pytest.raises(TypeError):
        gsignal.signal(stdsignal.SIGCHLD, 42)
    with pytest.raises(ValueError):
        gsignal.signal(0, stdsignal.SIG_DFL)
    errors = []

    def in_thread():
        try:
            gsignal.signal(stdsignal.SIGUSR1, stdsignal.SIG_DFL)
        except ValueError as exc:
            errors.append(exc)

    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    assert len(errors) == 1


def test_reexports_the_standard_module():
    for name in dir(stdsignal):
        if not name.startswith("_"):
            assert hasattr(gsignal, name), name
    assert gsignal.SIGCHLD == stdsignal.SIGCHLD
    assert gsignal.Signals is stdsignal.Signals
    assert gsignal.signal is not stdsignal.signal
