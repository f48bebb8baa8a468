"""greenweave.fileobject over real pipes, ptys and regular files: cooperative reads and
writes (other greenlets keep running), modes, text/binary, close semantics, and the
same behaviour from FileObjectThread, FileObjectPosix and FileObjectBlock."""

from __future__ import annotations

import errno
import io
import os
import time

import pytest

import greenweave
from greenweave import fileobject as gfo
from greenweave.fileobject import (
    FileObject,
    FileObjectBlock,
    FileObjectClosed,
    FileObjectPosix,
    FileObjectThread,
)

pytestmark = pytest.mark.timeout(30)

ALL = [FileObjectThread, FileObjectPosix, FileObjectBlock]
COOPERATIVE = [FileObjectThread, FileObjectPosix]


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


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError as exc:
        assert exc.errno == errno.EBADF
        return False
    return True


def _ticker(ticks: list, interval: float = 0.01):
    def run():
        while True:
            ticks.append(1)
            greenweave.sleep(interval)

    return greenweave.spawn(run)


def test_default_fileobject_is_the_thread_one():
    assert FileObject is FileObjectThread
    assert issubclass(FileObjectClosed, ValueError)
    assert issubclass(FileObjectClosed, OSError)


# ---------------------------------------------------------------------------
# Cooperation


@pytest.mark.parametrize("cls", COOPERATIVE)
def test_read_from_pipe_blocks_only_the_greenlet(cls, pipe):
    r, w = pipe
    reader = cls(r, "rb")
    ticks: list = []
    ticker = _ticker(ticks)

    def write_later():
        greenweave.sleep(0.3)
        os.write(w, b"payload\n")

    writer = greenweave.spawn(write_later)
    try:
        assert reader.readline() == b"payload\n"
    finally:
        ticker.kill()
        writer.join()
        reader.close()
    assert len(ticks) >= 10, len(ticks)


@pytest.mark.parametrize("cls", COOPERATIVE)
def test_write_to_full_pipe_blocks_only_the_greenlet(cls, pipe):
    from greenweave.os import nb_read, tp_read

    r, w = pipe
    writer = cls(w, "wb")
    data = os.urandom(1 << 20)  # much more than the pipe buffer
    ticks: list = []
    ticker = _ticker(ticks)
    received = []
    if cls is FileObjectPosix:
        os.set_blocking(r, False)
        read = nb_read
    else:
        read = tp_read  # the writer's thread blocks; read from another one

    def slow_reader():
        greenweave.sleep(0.2)  # the writer fills the pipe and must wait
        while True:
            chunk = read(r, 65536)
            if not chunk:
                return
            received.append(chunk)

    rg = greenweave.spawn(slow_reader)
    try:
        writer.write(data)
        writer.close()
        rg.get(timeout=20)
    finally:
        ticker.kill()
    assert b"".join(received) == data
    assert len(ticks) >= 5


def test_posix_pipe_both_ends_in_greenlets(pipe):
    r, w = pipe
    reader = FileObjectPosix(r, "rb")
    writer = FileObjectPosix(w, "wb")
    data = os.urandom(3 << 20)

    def produce():
        for i in range(0, len(data), 10000):
            writer.write(data[i:i + 10000])
        writer.close()

    g = greenweave.spawn(produce)
    got = reader.read()
    g.get()
    reader.close()
    assert got == data


def test_posix_descriptor_is_nonblocking_and_restored(pipe):
    r, w = pipe
    f = FileObjectPosix(r, "rb", closefd=False)
    assert not os.get_blocking(r)
    f.close()
    assert _is_open(r)
    assert os.get_blocking(r)  # given back as it was found
    f = FileObjectPosix(w, "wb")
    assert not os.get_blocking(w)
    f.close()
    assert not _is_open(w)


@pytest.mark.parametrize("buffering", [0, -1])
def test_posix_close_wakes_a_blocked_reader(pipe, buffering):
    r, w = pipe
    reader = FileObjectPosix(r, "rb", buffering=buffering)
    g = greenweave.spawn(reader.read, 10)
    greenweave.sleep(0.05)
    assert not g.ready()
    reader.close()
    with pytest.raises(ValueError):
        g.get(timeout=5)
    assert isinstance(g.exception, FileObjectClosed)
    assert not _is_open(r)


def test_posix_concurrent_readers_are_refused(pipe):
    from greenweave.exceptions import ConcurrentObjectUseError

    r, w = pipe
    reader = FileObjectPosix(r, "rb", buffering=0)
    first = greenweave.spawn(reader.read, 10)
    greenweave.sleep(0.01)
    with pytest.raises(ConcurrentObjectUseError):
        reader.read(10)
    os.write(w, b"x")
    assert first.get(timeout=5) == b"x"
    reader.close()


def test_posix_over_pty_isatty():
    master, slave = os.openpty()
    try:
        f = FileObjectPosix(slave, "wb", closefd=False)
        m = FileObjectPosix(master, "rb", buffering=0, closefd=False)
        assert f.isatty()
        assert not f.seekable()
        f.write(b"over the pty\n")
        f.flush()
        got = b""
        while not got.endswith(b"\n"):
            got += m.read(100)
        assert b"over the pty" in got
        f.close()
        m.close()
    finally:
        os.close(master)
        os.close(slave)


# ---------------------------------------------------------------------------
# The common API, for all three


@pytest.mark.parametrize("cls", ALL)
def test_text_and_binary_modes_with_encoding(cls, tmp_path):
    path = tmp_path / "f.txt"
    with cls(str(path), "w", encoding="latin-1") as f:
        assert f.mode == "w"
        assert f.write("héllo\n") == 6
        f.writelines(["a\n", "b\n"])
        f.flush()
    assert path.read_bytes() == "héllo\na\nb\n".encode("latin-1")
    with cls(str(path), "r", encoding="latin-1") as f:
        assert f.readline() == "héllo\n"
        assert f.readlines() == ["a\n", "b\n"]
    with cls(str(path), "rb") as f:
        assert f.read(2) == b"h\xe9"
        buf = bytearray(4)
        assert f.readinto(buf) == 4 and bytes(buf) == b"llo\n"
        assert list(f) == [b"a\n", b"b\n"]
        assert f.read() == b""
    path.write_bytes(b"x\r\ny\rz\n")
    with cls(str(path), "r", newline=None) as f:
        assert f.read() == "x\ny\nz\n"
    with cls(str(path), "r", newline="") as f:
        assert f.readline() == "x\r\n"


@pytest.mark.parametrize("cls", ALL)
def test_descriptor_argument_and_attributes(cls, pipe):
    r, w = pipe
    fw = cls(w, "wb")
    fr = cls(r, "rb")
    assert fr.fileno() == r and fw.fileno() == w
    assert fr.name == r
    assert fr.mode == "rb" and fw.mode == "wb"
    assert fr.readable() and not fr.writable()
    assert fw.writable()
    assert not fr.seekable()
    assert not fr.isatty()
    fw.write(b"1\n2\n3\n")
    fw.close()
    assert [line for line in fr] == [b"1\n", b"2\n", b"3\n"]
    fr.close()
    assert not _is_open(r) and not _is_open(w)


@pytest.mark.parametrize("cls", ALL)
def test_close_semantics(cls, pipe):
    r, w = pipe
    f = cls(r, "rb", closefd=False)
    f.close()
    f.close()  # twice is fine
    assert f.closed
    assert _is_open(r)
    for op in (f.read, f.readline, lambda: f.readinto(bytearray(1)), f.fileno, f.isatty,
               lambda: next(iter(f))):
        with pytest.raises(ValueError):
            op()
    g = cls(w, "wb", close=False)  # the older spelling
    g.close()
    assert _is_open(w)
    with pytest.raises(ValueError):
        g.write(b"x")
    with cls(w, "wb") as h:
        h.write(b"z")
    assert h.closed and not _is_open(w)


@pytest.mark.parametrize("cls", ALL)
def test_wrapping_a_file_object(cls, pipe):
    r, w = pipe
    raw_w = open(w, "wb", buffering=0)
    f = cls(raw_w)
    assert f.mode == "wb"
    f.write(b"through the file object")
    f.close()
    assert raw_w.closed  # closing ours closes what it wraps
    text_r = open(r, "r", encoding="utf-8")
    fr = cls(text_r, closefd=False)
    assert fr.read() == "through the file object"
    fr.close()
    assert not text_r.closed
    text_r.close()


@pytest.mark.parametrize("cls", ALL)
def test_binary_file_object_in_text_mode(cls, pipe):
    r, w = pipe
    f = cls(open(w, "wb"), "w", encoding="utf-8")
    f.write("ünï\n")
    f.close()
    assert os.read(r, 100) == "ünï\n".encode()


@pytest.mark.parametrize("cls", ALL)
def test_append_and_plus_modes(cls, tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"start;")
    with cls(str(path), "ab") as f:
        f.write(b"more")
    assert path.read_bytes() == b"start;more"
    with cls(str(path), "r+b") as f:
        assert f.read(5) == b"start"
        f.seek(0)
        f.write(b"S")
        assert f.tell() == 1
    assert path.read_bytes() == b"Start;more"


@pytest.mark.parametrize("cls", ALL)
def test_bad_arguments(cls, pipe):
    r, _ = pipe
    with pytest.raises(ValueError):
        cls(r, "rq", closefd=False)
    with pytest.raises(ValueError):
        cls(r, "rw", closefd=False)
    with pytest.raises(ValueError):
        cls(r, "rb", encoding="utf-8", closefd=False)
    with pytest.raises(ValueError):
        cls(r, "r", buffering=0, closefd=False)
    with pytest.raises(TypeError):
        cls(object())
    assert _is_open(r)


def test_posix_unbuffered_binary_and_regular_file(tmp_path):
    path = tmp_path / "reg"
    path.write_bytes(b"0123456789")
    with FileObjectPosix(str(path), "rb", buffering=0) as f:
        assert isinstance(f.io, gfo.CooperativeFileIO)
        assert f.fileio is f.io
        assert f.seekable()
        assert f.read(3) == b"012"
        f.seek(8)
        assert f.read() == b"89"
    with pytest.raises(FileNotFoundError):
        FileObjectPosix(str(tmp_path / "missing"))
    with pytest.raises(FileExistsError):
        FileObjectPosix(str(path), "x")


def test_posix_unbuffered_write_writes_everything(pipe):
    r, w = pipe
    writer = FileObjectPosix(w, "wb", buffering=0)
    reader = FileObjectPosix(r, "rb")
    data = os.urandom(1 << 20)
    g = greenweave.spawn(reader.read)
    assert writer.write(data) == len(data)  # not a short write
    writer.close()
    assert g.get(timeout=10) == data
    reader.close()


def test_thread_fileobject_runs_in_the_pool(pipe):
    r, w = pipe
    f = FileObjectThread(r, "rb")
    ticks: list = []
    ticker = _ticker(ticks)

    def feed():
        greenweave.sleep(0.3)
        os.write(w, b"late")
        os.close(w)

    greenweave.spawn(feed)
    t0 = time.monotonic()
    try:
        assert f.read() == b"late"
    finally:
        ticker.kill()
        f.close()
    assert time.monotonic() - t0 >= 0.25
    assert len(ticks) >= 10


def test_thread_fileobject_serialises_concurrent_users(tmp_path):
    path = tmp_path / "lines"
    f = FileObjectThread(str(path), "w")
    writers = [greenweave.spawn(f.write, f"{i:03d}\n" * 100) for i in range(20)]
    greenweave.joinall(writers, raise_error=True)
    f.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 2000
    # Each write went in whole: no interleaving inside one call.
    for i in range(0, 2000, 100):
        assert len(set(lines[i:i + 100])) == 1


def test_block_fileobject_is_plain(tmp_path):
    path = tmp_path / "b"
    with FileObjectBlock(str(path), "w") as f:
        assert isinstance(f.io, io.TextIOWrapper)
        f.write("plain")
    with FileObjectBlock(str(path)) as f:
        assert f.read() == "plain"
        assert f.encoding  # delegated to the io object


def test_thread_fileobject_from_a_loop_callback(tmp_path):
    # The hub itself cannot wait for the pool (e.g. it prints an error to a
    # patched sys.stderr): the operation runs right there instead.
    path = tmp_path / "from_hub"
    f = FileObjectThread(str(path), "w")
    hub = greenweave.get_hub()
    done = []
    hub.loop.run_callback(lambda: done.append(f.write("in the hub\n")))
    greenweave.sleep(0.01)
    assert done == [11]
    hub.loop.run_callback(f.close)
    greenweave.sleep(0.01)
    assert f.closed
    assert path.read_text() == "in the hub\n"
