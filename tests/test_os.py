"""greenweave.os with real descriptors and real child processes: thread-pool and
non-blocking I/O, cooperative close, fork with a working hub in the child, waitpid
(including children the loop reaped first), fork_and_watch, forkpty, posix_spawn."""

from __future__ import annotations

import errno
import os
import time

import pytest

import greenweave
from greenweave import os as gos
from greenweave.fileobject import FileObjectPosix

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    return fresh_hub


@pytest.fixture
def pipe():
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


def _ticker(ticks: list, interval: float = 0.01):
    def run():
        while True:
            ticks.append(1)
            greenweave.sleep(interval)

    return greenweave.spawn(run)


def _exit_code(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


# ---------------------------------------------------------------------------
# Descriptor I/O


def test_tp_read_and_write_block_only_the_greenlet(pipe):
    r, w = pipe
    ticks: list = []
    ticker = _ticker(ticks)

    def write_later():
        greenweave.sleep(0.3)
        assert gos.tp_write(w, b"from the pool") == 13

    g = greenweave.spawn(write_later)
    try:
        assert gos.tp_read(r, 100) == b"from the pool"
    finally:
        ticker.kill()
    g.get()
    assert len(ticks) >= 10
    os.close(w)
    assert gos.tp_read(r, 100) == b""


def test_make_nonblocking(pipe):
    r, _ = pipe
    assert os.get_blocking(r)
    assert gos.make_nonblocking(r) is True
    assert not os.get_blocking(r)
    assert gos.make_nonblocking(r) is False


def test_nb_read_and_write(pipe):
    r, w = pipe
    gos.make_nonblocking(r)
    gos.make_nonblocking(w)
    ticks: list = []
    ticker = _ticker(ticks)

    def write_later():
        greenweave.sleep(0.3)
        return gos.nb_write(w, b"later")

    g = greenweave.spawn(write_later)
    try:
        assert gos.nb_read(r, 100) == b"later"
    finally:
        ticker.kill()
    assert g.get() == 5
    assert len(ticks) >= 10
    # A full pipe: nb_write waits for room, then reports a partial count.
    big = b"x" * (1 << 20)
    first = gos.nb_write(w, big)
    assert 0 < first < len(big)
    reader = greenweave.spawn(lambda: [gos.nb_read(r, 1 << 20) for _ in range(2)])
    second = gos.nb_write(w, big[first:])
    assert second > 0
    reader.get(timeout=5)


def test_close_wakes_waiters_and_forgets_the_fd(pipe):
    r, w = pipe
    gos.make_nonblocking(r)
    g = greenweave.spawn(gos.nb_read, r, 10)
    greenweave.sleep(0.05)
    assert not g.ready()
    gos.close(r)
    with pytest.raises(OSError) as info:
        g.get(timeout=5)
    assert info.value.errno == errno.EBADF
    # The number may come back at once for a new pipe; it works normally.
    r2, w2 = os.pipe()
    try:
        f = FileObjectPosix(r2, "rb", buffering=0)
        greenweave.spawn(lambda: (greenweave.sleep(0.05), os.write(w2, b"ok")))
        assert f.read(2) == b"ok"
        f.close()
    finally:
        os.close(w2)


# ---------------------------------------------------------------------------
# fork and waitpid


def test_fork_child_has_a_working_hub(pipe):
    r, w = pipe
    pid = gos.fork()
    if pid == 0:  # the child: greenlets, sleeps and a cooperative pipe all work
        try:
            os.close(r)
            results = []
            gs = [greenweave.spawn(lambda i=i: (greenweave.sleep(0.01 * i), results.append(i)))
                  for i in range(5)]
            greenweave.joinall(gs)
            out = FileObjectPosix(w, "wb")
            out.write(repr(results).encode())
            out.close()
            os._exit(0 if results == [0, 1, 2, 3, 4] else 3)
        except BaseException:
            os._exit(4)
    os.close(w)
    reader = FileObjectPosix(r, "rb", closefd=False)
    assert reader.read() == b"[0, 1, 2, 3, 4]"
    reader.close()
    rpid, status = gos.waitpid(pid, 0)
    assert rpid == pid
    assert _exit_code(status) == 0


def test_waitpid_of_forked_child_blocks_only_the_greenlet():
    pid = gos.fork()
    if pid == 0:
        time.sleep(0.3)
        os._exit(7)
    ticks: list = []
    ticker = _ticker(ticks)
    try:
        assert gos.waitpid(pid, os.WNOHANG) == (0, 0)
        rpid, status = gos.waitpid(pid, 0)
    finally:
        ticker.kill()
    assert rpid == pid and _exit_code(status) == 7
    assert len(ticks) >= 10
    with pytest.raises(ChildProcessError):
        gos.waitpid(pid, 0)


def test_waitpid_after_the_loop_reaped_the_child():
    pid = gos.fork()
    if pid == 0:
        os._exit(5)
    # Let the loop handle SIGCHLD and reap it: no zombie stays behind...
    # (a zombie keeps its /proc entry until reaped).
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        greenweave.sleep(0.02)
    assert not os.path.exists(f"/proc/{pid}")
    # ...and its status is still there for us.
    assert gos.waitpid(pid, os.WNOHANG) == (pid, 5 << 8)
    with pytest.raises(ChildProcessError):
        gos.waitpid(pid, os.WNOHANG)


def test_waitpid_any_child():
    pids = []
    for code in (1, 2):
        pid = gos.fork()
        if pid == 0:
            time.sleep(0.1 * code)
            os._exit(code)
        pids.append(pid)
    got = {}
    for _ in range(2):
        rpid, status = gos.waitpid(-1, 0)
        got[rpid] = _exit_code(status)
    assert got == {pids[0]: 1, pids[1]: 2}
    with pytest.raises(ChildProcessError):
        gos.waitpid(-1, 0)


def test_waitpid_of_a_plain_os_fork_child():
    pid = os.fork()
    if pid == 0:
        time.sleep(0.2)
        os._exit(9)
    ticks: list = []
    ticker = _ticker(ticks)
    try:
        rpid, status = gos.waitpid(pid, 0)
    finally:
        ticker.kill()
    assert rpid == pid and _exit_code(status) == 9
    assert len(ticks) >= 5


def test_fork_and_watch_callback():
    seen = []
    pid = gos.fork_and_watch(lambda watcher: seen.append((watcher.pid, watcher.rstatus)))
    if pid == 0:
        os._exit(3)
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        greenweave.sleep(0.01)
    assert seen == [(pid, 3 << 8)]
    assert gos.waitpid(pid, 0) == (pid, 3 << 8)


def test_forkpty_and_watch():
    pid, master = gos.forkpty()
    if pid == 0:
        os.write(1, b"hello from the pty\n")
        os._exit(0)
    try:
        f = FileObjectPosix(master, "rb", buffering=0, closefd=False)
        got = b""
        while b"\n" not in got:
            try:
                chunk = f.read(100)
            except OSError:  # EIO once the child side is gone
                break
            if not chunk:
                break
            got += chunk
        f.close()
        assert b"hello from the pty" in got
        rpid, status = gos.waitpid(pid, 0)
        assert rpid == pid and _exit_code(status) == 0
    finally:
        os.close(master)


def test_posix_spawn_and_spawnp_are_watched():
    pid = gos.posix_spawn("/bin/sh", ["sh", "-c", "exit 4"], os.environ)
    pid2 = gos.posix_spawnp("sh", ["sh", "-c", "exit 6"], os.environ)
    assert _exit_code(gos.waitpid(pid, 0)[1]) == 4
    assert _exit_code(gos.waitpid(pid2, 0)[1]) == 6


def test_fork_gevent_alias_and_python_child():
    assert gos.fork_gevent is not None and gos.forkpty_gevent is not None
    pid = gos.fork_gevent()
    if pid == 0:
        greenweave.sleep(0.01)
        os._exit(0)
    rpid, status = gos.waitpid(pid, 0)
    assert rpid == pid and status == 0


def test_waitpid_with_untraced_option_polls_cooperatively():
    pid = gos.fork()
    if pid == 0:
        time.sleep(0.2)
        os._exit(2)
    rpid, status = gos.waitpid(pid, os.WUNTRACED)
    assert rpid == pid and _exit_code(status) == 2


def test_waitpid_of_unknown_pid_raises():
    with pytest.raises(ChildProcessError):
        gos.waitpid(os.getpid(), 0)  # not our child
