"""greenweave.subprocess with real child processes: concurrency, pipes, communicate
(large data both ways, timeouts and retry), wait/poll/kill/terminate, exit codes and
signals, the convenience functions, and no zombies or leaked descriptors."""

from __future__ import annotations

import os
import signal
import subprocess as stdsubprocess
import sys
import time
import types

import pytest

import greenweave
from greenweave import os as gos
from greenweave import subprocess as gsp
from greenweave.fileobject import FileObjectPosix

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    return fresh_hub


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _children_states() -> dict[int, str]:
    """pid -> state letter of every process whose parent is this one."""
    me = os.getpid()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me:
            found[int(entry)] = fields[0]
    return found


def _zombies() -> list[int]:
    return [pid for pid, state in _children_states().items() if state == "Z"]


def _ticker(ticks: list, interval: float = 0.01):
    def run():
        while True:
            ticks.append(time.monotonic())
            greenweave.sleep(interval)

    return greenweave.spawn(run)


# ---------------------------------------------------------------------------
# Concurrency


def test_many_concurrent_check_output_overlap():
    t0 = time.monotonic()
    greenlets = [greenweave.spawn(gsp.check_output, ["sleep", "0.2"]) for _ in range(50)]
    greenweave.joinall(greenlets, raise_error=True)
    elapsed = time.monotonic() - t0
    assert [g.value for g in greenlets] == [b""] * 50
    # Serially this is 10 s; concurrently about 0.2 s plus process start-up.
    assert elapsed < 4.0, elapsed


def test_greenlet_ticks_while_children_run():
    ticks: list = []
    ticker = _ticker(ticks)
    try:
        p = gsp.Popen(["sleep", "0.5"])
        greenweave.sleep(0)
        before = len(ticks)
        assert p.wait() == 0
        during = len(ticks) - before
    finally:
        ticker.kill()
    # 0.5 s at 10 ms per tick is ~50 ticks; a blocked hub would give ~0.
    assert during >= 15, during


def test_popen_pipes_are_cooperative_file_objects():
    p = gsp.Popen(["sh", "-c", "sleep 0.3; echo hello"], stdin=gsp.PIPE, stdout=gsp.PIPE,
                  stderr=gsp.PIPE)
    try:
        assert isinstance(p.stdin, FileObjectPosix)
        assert isinstance(p.stdout, FileObjectPosix)
        assert isinstance(p.stderr, FileObjectPosix)
        ticks: list = []
        ticker = _ticker(ticks)
        try:
            assert p.stdout.readline() == b"hello\n"
        finally:
            ticker.kill()
        assert len(ticks) >= 10
    finally:
        p.stdin.close()
        p.stdout.close()
        p.stderr.close()
        p.wait()


def test_popen_text_mode_pipes():
    with gsp.Popen(["cat"], stdin=gsp.PIPE, stdout=gsp.PIPE, text=True) as p:
        p.stdin.write("one\ntwo\n")
        p.stdin.flush()
        assert p.stdout.readline() == "one\n"
        p.stdin.close()
        assert p.stdout.read() == "two\n"
    assert p.returncode == 0
    assert p.stdout.closed and p.stdin.closed


# ---------------------------------------------------------------------------
# communicate


@pytest.mark.timeout(40)
def test_communicate_several_mib_both_ways():
    data = os.urandom(8 << 20)
    p = gsp.Popen(["cat"], stdin=gsp.PIPE, stdout=gsp.PIPE, stderr=gsp.PIPE)
    out, err = p.communicate(data)
    assert out == data
    assert err == b""
    assert p.returncode == 0


@pytest.mark.timeout(40)
def test_communicate_needs_concurrent_stderr_reading():
    # The child fills stderr (4 MiB, far beyond a pipe buffer) before it
    # reads any input: writing input first, or reading stdout only, deadlocks.
    script = "head -c 4194304 /dev/zero >&2; cat"
    data = os.urandom(6 << 20)
    p = gsp.Popen(["sh", "-c", script], stdin=gsp.PIPE, stdout=gsp.PIPE, stderr=gsp.PIPE)
    ticks: list = []
    ticker = _ticker(ticks)
    try:
        out, err = p.communicate(data, timeout=30)
    finally:
        ticker.kill()
    assert out == data
    assert err == b"\0" * (4 << 20)
    assert ticks


def test_communicate_timeout_then_retry_loses_nothing():
    p = gsp.Popen(["sh", "-c", "echo start; sleep 1; echo end; echo bye >&2"],
                  stdout=gsp.PIPE, stderr=gsp.PIPE)
    with pytest.raises(gsp.TimeoutExpired) as info:
        p.communicate(timeout=0.5)
    assert info.value.timeout == 0.5
    assert info.value.stdout == b"start\n"  # the output so far travels with it
    assert p.returncode is None
    out, err = p.communicate(timeout=20)
    assert out == b"start\nend\n"
    assert err == b"bye\n"
    assert p.returncode == 0


def test_communicate_retry_keeps_feeding_input():
    # The child reads slowly, so input is still being written at the timeout.
    script = "sleep 0.5; cat"
    data = os.urandom(1 << 20)
    p = gsp.Popen(["sh", "-c", script], stdin=gsp.PIPE, stdout=gsp.PIPE)
    with pytest.raises(gsp.TimeoutExpired):
        p.communicate(data, timeout=0.1)
    with pytest.raises(ValueError, match="Cannot send input"):
        p.communicate(b"more")
    out, err = p.communicate()
    assert out == data and err is None


def test_communicate_text_mode():
    p = gsp.Popen(["sh", "-c", "cat; printf 'x\\r\\ny\\n' >&2"], stdin=gsp.PIPE,
                  stdout=gsp.PIPE, stderr=gsp.PIPE, text=True)
    out, err = p.communicate("héllo\nwörld\n", timeout=20)
    assert out == "héllo\nwörld\n"
    assert err == "x\ny\n"  # universal newlines, as the standard library


def test_communicate_single_pipe_and_no_pipe():
    p = gsp.Popen(["echo", "hi"], stdout=gsp.PIPE)
    assert p.communicate() == (b"hi\n", None)
    p = gsp.Popen(["true"])
    assert p.communicate() == (None, None)
    assert p.returncode == 0
    p = gsp.Popen(["cat"], stdin=gsp.PIPE, stdout=gsp.DEVNULL)
    assert p.communicate(b"ignored") == (None, None)
    assert p.stdin.closed


def test_communicate_ignores_broken_pipe():
    p = gsp.Popen(["true"], stdin=gsp.PIPE, stdout=gsp.PIPE)
    out, _ = p.communicate(b"x" * (4 << 20), timeout=20)
    assert out == b""
    assert p.returncode == 0


# ---------------------------------------------------------------------------
# wait, poll, signals


def test_wait_timeout_then_kill():
    p = gsp.Popen(["sleep", "30"])
    t0 = time.monotonic()
    with pytest.raises(gsp.TimeoutExpired):
        p.wait(timeout=0.2)
    assert time.monotonic() - t0 < 5
    assert p.poll() is None
    p.kill()
    assert p.wait(timeout=10) == -signal.SIGKILL
    assert p.returncode == -9
    assert p.poll() == -9
    p.kill()  # a dead, reaped process: no error


def test_wait_zero_timeout():
    p = gsp.Popen(["sleep", "30"])
    try:
        with pytest.raises(gsp.TimeoutExpired):
            p.wait(0)
    finally:
        p.kill()
        p.wait()


def test_terminate_and_send_signal():
    p = gsp.Popen(["sleep", "30"])
    p.terminate()
    assert p.wait() == -signal.SIGTERM
    p = gsp.Popen(["sleep", "30"])
    p.send_signal(signal.SIGINT)
    assert p.wait() == -signal.SIGINT


def test_exit_codes():
    assert gsp.call(["sh", "-c", "exit 3"]) == 3
    assert gsp.run(["sh", "-c", "exit 7"]).returncode == 7
    assert gsp.Popen(["sh", "-c", "kill -9 $$"]).wait() == -9
    assert gsp.check_call(["true"]) == 0
    with pytest.raises(gsp.CalledProcessError) as info:
        gsp.check_call(["sh", "-c", "exit 4"])
    assert info.value.returncode == 4
    with pytest.raises(gsp.CalledProcessError) as info:
        gsp.check_output(["sh", "-c", "echo partial; exit 5"])
    assert info.value.returncode == 5
    assert info.value.output == b"partial\n"


def test_poll_never_blocks_and_reports_exit():
    p = gsp.Popen(["sh", "-c", "sleep 0.2; exit 6"])
    t0 = time.monotonic()
    assert p.poll() is None
    assert time.monotonic() - t0 < 0.1
    deadline = time.monotonic() + 10
    while p.poll() is None and time.monotonic() < deadline:
        greenweave.sleep(0.02)
    assert p.returncode == 6


def test_poll_right_after_exit_without_yielding():
    p = gsp.Popen(["true"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        time.sleep(0.01)  # blocking: the loop gets no chance to run
        if p.poll() is not None:
            break
    assert p.returncode == 0


def test_several_greenlets_wait_for_one_child():
    p = gsp.Popen(["sh", "-c", "sleep 0.2; exit 2"])
    waiters = [greenweave.spawn(p.wait) for _ in range(5)]
    greenweave.joinall(waiters, raise_error=True)
    assert [g.value for g in waiters] == [2] * 5


def test_waitpid_and_popen_wait_both_get_the_status():
    p = gsp.Popen(["sh", "-c", "sleep 0.2; exit 7"])
    other = greenweave.spawn(gos.waitpid, p.pid, 0)
    assert p.wait() == 7
    pid, status = other.get(timeout=10)
    assert pid == p.pid
    assert os.waitstatus_to_exitcode(status) == 7


def test_unwatched_zombie_does_not_hide_watched_children():
    # A child nobody watches, left as a zombie, is what the kernel reports
    # first when the loop asks "which child exited?": the loop must still
    # find and reap its own children.
    stray = os.fork()
    if stray == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 10
        while _children_states().get(stray) != "Z" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _children_states().get(stray) == "Z"
        procs = [gsp.Popen(["sh", "-c", f"sleep 0.1; exit {i}"]) for i in range(5)]
        assert [p.wait(timeout=10) for p in procs] == list(range(5))
        assert _children_states().get(stray) == "Z"  # not ours to reap
    finally:
        os.waitpid(stray, 0)


def test_greenweave_wait_on_processes_and_rawlink():
    fast = gsp.Popen(["sh", "-c", "exit 1"])
    slow = gsp.Popen(["sh", "-c", "sleep 0.3; exit 2"])
    order = [p.returncode for p in greenweave.iwait([slow, fast])]
    assert order == [1, 2]
    assert fast.ready() and slow.ready()
    seen = []
    fast.rawlink(seen.append)  # already exited: called soon anyway
    greenweave.sleep(0.01)
    assert seen == [fast]
    p = gsp.Popen(["sleep", "30"])
    assert greenweave.wait([p], timeout=0.1) == []
    p.kill()
    assert greenweave.wait([p], timeout=10) == [p]
    assert p.returncode == -9


def test_children_from_other_native_threads():
    import threading

    results = []

    def work(code):
        try:
            out = gsp.check_output(["sh", "-c", f"sleep 0.1; echo {code}"])
            p = gsp.Popen(["sh", "-c", f"exit {code}"])
            results.append((out, p.wait(timeout=10)))
        finally:
            greenweave.get_hub().destroy(destroy_loop=True)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    assert gsp.call(["sh", "-c", "sleep 0.2; exit 5"]) == 5  # the main thread meanwhile
    for t in threads:
        t.join(20)
    assert sorted(results) == [(f"{i}\n".encode(), i) for i in range(3)]


def test_wait_in_main_greenlet_does_not_loop_exit():
    # Nothing else keeps the loop alive: waiting must still work.
    p = gsp.Popen(["sh", "-c", "sleep 0.1; exit 1"])
    assert p.wait() == 1


def test_context_manager_closes_pipes_and_waits():
    with gsp.Popen(["sh", "-c", "echo out; exit 9"], stdout=gsp.PIPE) as p:
        assert p.stdout.read() == b"out\n"
    assert p.returncode == 9
    assert p.stdout.closed


def test_exec_failure_raises_and_leaks_nothing():
    before = _open_fds()
    with pytest.raises(FileNotFoundError):
        gsp.Popen(["/nonexistent/greenweave-test-binary"], stdout=gsp.PIPE)
    assert _open_fds() == before


# ---------------------------------------------------------------------------
# The convenience functions


def test_run_capture_output_and_input():
    res = gsp.run(["sh", "-c", "cat; echo err >&2; exit 3"], input=b"abc",
                  capture_output=True)
    assert isinstance(res, gsp.CompletedProcess)
    assert (res.returncode, res.stdout, res.stderr) == (3, b"abc", b"err\n")
    with pytest.raises(gsp.CalledProcessError):
        gsp.run(["false"], check=True)
    res = gsp.run(["echo", "hi"], stdout=gsp.PIPE, text=True)
    assert res.stdout == "hi\n"
    with pytest.raises(ValueError):
        gsp.run(["true"], input=b"", stdin=gsp.PIPE)
    with pytest.raises(ValueError):
        gsp.run(["true"], capture_output=True, stdout=gsp.PIPE)


def test_run_timeout_kills_the_child():
    t0 = time.monotonic()
    with pytest.raises(gsp.TimeoutExpired) as info:
        gsp.run(["sh", "-c", "echo begun; exec sleep 30"], stdout=gsp.PIPE, timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert info.value.stdout == b"begun\n"
    assert not _zombies()


def test_check_output_variants():
    assert gsp.check_output(["echo", "x"]) == b"x\n"
    assert gsp.check_output(["cat"], input=b"fed") == b"fed"
    assert gsp.check_output(["cat"], input=None) == b""
    assert gsp.check_output(["cat"], input="t", text=True) == "t"
    assert gsp.check_output("echo $((1+2))", shell=True) == b"3\n"
    assert gsp.check_output(["sh", "-c", "echo e >&2"], stderr=gsp.STDOUT) == b"e\n"
    with pytest.raises(ValueError):
        gsp.check_output(["true"], stdout=gsp.PIPE)
    with pytest.raises(gsp.TimeoutExpired):
        gsp.check_output(["sleep", "30"], timeout=0.3)


def test_getoutput_and_getstatusoutput():
    assert gsp.getoutput("echo one; echo two >&2") == "one\ntwo"
    assert gsp.getstatusoutput("echo a; exit 2") == (2, "a")
    assert gsp.getstatusoutput("true") == (0, "")


def test_public_names_match_the_standard_library():
    for name in dir(stdsubprocess):
        if name.startswith("_"):
            continue
        if isinstance(getattr(stdsubprocess, name), types.ModuleType):
            continue
        assert hasattr(gsp, name), name
    for name in stdsubprocess.__all__:
        assert hasattr(gsp, name), name
    assert gsp.PIPE == stdsubprocess.PIPE
    assert gsp.TimeoutExpired is stdsubprocess.TimeoutExpired
    assert gsp.CalledProcessError is stdsubprocess.CalledProcessError
    assert issubclass(gsp.Popen, stdsubprocess.Popen)
    assert gsp.list2cmdline(["a b", "c"]) == stdsubprocess.list2cmdline(["a b", "c"])


# ---------------------------------------------------------------------------
# Bursts: no zombies, no leaked descriptors


@pytest.mark.timeout(120)
def test_burst_of_children_leaves_no_zombies_or_fds():
    before = _open_fds()
    greenlets = [greenweave.spawn(gsp.check_output, ["sh", "-c", f"echo {i}"])
                 for i in range(200)]
    greenweave.joinall(greenlets, raise_error=True)
    assert [g.value for g in greenlets] == [f"{i}\n".encode() for i in range(200)]
    # A second wave of children nobody waits for: the loop reaps them.
    unwaited = [gsp.Popen(["true"]) for _ in range(100)]
    deadline = time.monotonic() + 20
    while any(p.returncode is None for p in unwaited) and time.monotonic() < deadline:
        greenweave.sleep(0.05)
    assert all(p.returncode == 0 for p in unwaited)
    assert _zombies() == []
    assert not _children_states()
    assert _open_fds() == before


@pytest.mark.timeout(120)
def test_thousands_of_short_children():
    sem_limit = 500
    done = []

    def one(i):
        out = gsp.check_output([sys.executable, "-S", "-c", "pass"] if i % 50 == 0
                               else ["true"])
        done.append(out)

    before = _open_fds()
    pending = []
    for i in range(2000):
        pending.append(greenweave.spawn(one, i))
        if len(pending) >= sem_limit:
            greenweave.joinall(pending, raise_error=True)
            pending = []
    greenweave.joinall(pending, raise_error=True)
    assert len(done) == 2000
    assert _zombies() == []
    assert _open_fds() == before
