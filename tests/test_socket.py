"""greenweave.socket over real loopback sockets: TCP, UDP, UNIX, IPv6; timeouts on
every blocking method; close/cancel while waiting; concurrent-use errors; large
sendall; makefile, sendfile, dup/detach/fromfd; name resolution hand-off."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket as stdsocket
import sys
import time

import pytest

import greenweave
from greenweave import socket as gsocket
from greenweave.exceptions import BlockingSwitchOutError, ConcurrentObjectUseError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    return fresh_hub


def _has_ipv6() -> bool:
    if not stdsocket.has_ipv6:
        return False
    try:
        with stdsocket.socket(stdsocket.AF_INET6, stdsocket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _listener(backlog: int = 128, family: int = stdsocket.AF_INET, host: str = "127.0.0.1"):
    lst = gsocket.socket(family, stdsocket.SOCK_STREAM)
    lst.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR, 1)
    lst.bind((host, 0))
    lst.listen(backlog)
    return lst


def _tcp_pair():
    """A connected (client, server-side) pair of cooperative TCP sockets."""
    lst = _listener()
    cli = gsocket.socket()
    cli.connect(lst.getsockname())
    srv, _ = lst.accept()
    lst.close()
    return cli, srv


def _elapsed(fn, *args):
    t0 = time.monotonic()
    try:
        fn(*args)
    except BaseException as exc:  # noqa: B036 - returned to the test
        return time.monotonic() - t0, exc
    return time.monotonic() - t0, None


class _RecordingResolver:
    """A resolver (the hub's resolver interface) that answers from the standard
    library and records every call, so tests can see what was delegated."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def _record(self, *call):
        self.calls.append(call)
        if self.fail:
            raise AssertionError(f"the resolver must not be used here: {call!r}")

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):
        self._record("getaddrinfo", host, port)
        if host == "greenweave-test.invalid":
            host = "127.0.0.1"
        return stdsocket.getaddrinfo(host, port, family, type, proto, flags)

    def gethostbyname(self, name):
        self._record("gethostbyname", name)
        return "127.0.0.1"

    def gethostbyname_ex(self, name):
        self._record("gethostbyname_ex", name)
        return (name, [], ["127.0.0.1"])

    def gethostbyaddr(self, addr):
        self._record("gethostbyaddr", addr)
        return ("host.example.test", ["alias"], [addr])

    def getnameinfo(self, sockaddr, flags):
        self._record("getnameinfo", sockaddr, flags)
        return ("localhost", str(sockaddr[1]))

    def close(self):
        pass


# -- the module -------------------------------------------------------------------


def test_reexports_every_public_name_of_the_standard_module():
    missing = [n for n in stdsocket.__all__ if not hasattr(gsocket, n)]
    assert missing == []
    assert gsocket.timeout is TimeoutError
    assert gsocket.error is OSError
    assert gsocket.gaierror is stdsocket.gaierror
    assert gsocket.AF_INET == stdsocket.AF_INET
    for name in ("wait_read", "wait_write", "wait_readwrite", "cancel_wait", "create_server",
                 "create_connection", "socketpair", "fromfd", "has_dualstack_ipv6"):
        assert callable(getattr(gsocket, name)), name
    assert gsocket.SocketType is gsocket.socket


def test_socket_is_a_standard_socket_with_a_non_blocking_descriptor():
    with gsocket.socket() as s:
        assert isinstance(s, stdsocket.socket)
        assert s.gettimeout() is None
        assert s.getblocking()
        assert s.timeout is None
        assert s.type == stdsocket.SOCK_STREAM
        assert s.family == stdsocket.AF_INET
        assert os.get_blocking(s.fileno()) is False
        assert "greenweave.socket.socket" in repr(s)
    assert s._closed
    assert s.fileno() == -1


def test_settimeout_validation_and_modes():
    with gsocket.socket() as s:
        s.settimeout(1)
        assert s.gettimeout() == 1.0 and isinstance(s.gettimeout(), float)
        s.settimeout(0)
        assert s.gettimeout() == 0.0 and not s.getblocking()
        s.settimeout(None)
        assert s.gettimeout() is None and s.getblocking()
        s.setblocking(False)
        assert s.gettimeout() == 0.0
        s.setblocking(True)
        assert s.gettimeout() is None
        with pytest.raises(ValueError, match="out of range"):
            s.settimeout(-1)
        with pytest.raises(TypeError):
            s.settimeout("1")
        with pytest.raises(ValueError):
            s.settimeout(float("nan"))
        # The descriptor stays non-blocking whatever the emulated mode.
        assert os.get_blocking(s.fileno()) is False


def test_default_timeout_applies_to_new_and_accepted_sockets():
    old = gsocket.getdefaulttimeout()
    lst = _listener()
    try:
        gsocket.setdefaulttimeout(7.5)
        s = gsocket.socket()
        assert s.gettimeout() == 7.5
        s.connect(lst.getsockname())
        conn, _ = lst.accept()
        assert conn.gettimeout() == 7.5
        assert os.get_blocking(conn.fileno()) is False
        conn.close()
        s.close()
    finally:
        gsocket.setdefaulttimeout(old)
        lst.close()


# -- basic exchanges -------------------------------------------------------------


def test_socketpair_ping_pong():
    a, b = gsocket.socketpair()
    assert isinstance(a, gsocket.socket) and isinstance(b, gsocket.socket)
    n = 500

    def pong():
        for _ in range(n):
            b.sendall(b.recv(16))

    g = greenweave.spawn(pong)
    for i in range(n):
        msg = b"%d" % i
        a.sendall(msg)
        assert a.recv(16) == msg
    g.join()
    assert g.successful()
    a.close()
    b.close()


def test_200_concurrent_clients_against_an_accept_loop():
    lst = _listener(backlog=512)
    addr = lst.getsockname()
    handlers = []

    def handle(conn):
        with conn:
            f = conn.makefile("rb")
            line = f.readline()
            f.close()
            conn.sendall(line.upper())

    def accept_loop():
        while True:
            conn, _ = lst.accept()
            handlers.append(greenweave.spawn(handle, conn))

    def client(i):
        with gsocket.create_connection(addr) as c:
            c.sendall(b"client number %d\n" % i)
            data = b""
            while True:
                chunk = c.recv(100)
                if not chunk:
                    break
                data += chunk
            return data

    acceptor = greenweave.spawn(accept_loop)
    clients = [greenweave.spawn(client, i) for i in range(200)]
    greenweave.joinall(clients, timeout=20)
    acceptor.kill()
    lst.close()
    assert all(c.successful() for c in clients), [c.exception for c in clients if c.exception]
    assert [c.value for c in clients] == [b"CLIENT NUMBER %d\n" % i for i in range(200)]
    assert len(handlers) == 200


def test_a_greenlet_keeps_ticking_while_another_blocks_in_recv():
    a, b = gsocket.socketpair()
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            greenweave.sleep(0.01)

    def late_sender():
        greenweave.sleep(0.3)
        b.sendall(b"done")

    t = greenweave.spawn(ticker)
    greenweave.spawn(late_sender)
    assert a.recv(10) == b"done"  # blocks this greenlet only
    t.kill()
    assert len(ticks) >= 10
    a.close()
    b.close()


def test_udp_sendto_recvfrom_and_into():
    r = gsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 0))
    s = gsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    result = {}

    def receiver():
        result["a"] = r.recvfrom(100)
        buf = bytearray(100)
        n, addr = r.recvfrom_into(buf)
        result["b"] = (bytes(buf[:n]), addr)

    g = greenweave.spawn(receiver)
    greenweave.sleep(0.05)  # the receiver is blocked now
    s.sendto(b"first", r.getsockname())
    s.sendto(b"second", 0, r.getsockname())
    g.join(timeout=5)
    assert g.successful(), g.exception
    assert result["a"] == (b"first", s.getsockname())
    assert result["b"] == (b"second", s.getsockname())
    r.close()
    s.close()


def test_unix_stream(tmp_path):
    path = str(tmp_path / "stream.sock")
    lst = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(5)

    def server():
        conn, _ = lst.accept()
        with conn:
            conn.sendall(conn.recv(100) * 2)

    g = greenweave.spawn(server)
    c = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    c.connect(path)
    c.sendall(b"unix")
    assert c.recv(100) == b"unixunix"
    g.join(timeout=5)
    assert g.successful()
    c.close()
    lst.close()


def test_unix_datagram(tmp_path):
    rpath = str(tmp_path / "r.sock")
    spath = str(tmp_path / "s.sock")
    r = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_DGRAM)
    r.bind(rpath)
    s = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_DGRAM)
    s.bind(spath)
    g = greenweave.spawn(r.recvfrom, 100)
    greenweave.sleep(0.05)
    s.sendto(b"dgram", rpath)
    assert g.get(timeout=5) == (b"dgram", spath)
    r.close()
    s.close()


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
def test_ipv6_tcp_and_udp():
    lst = _listener(family=stdsocket.AF_INET6, host="::1")
    port = lst.getsockname()[1]

    def server():
        conn, addr = lst.accept()
        with conn:
            conn.sendall(conn.recv(10) + b"6")

    g = greenweave.spawn(server)
    c = gsocket.create_connection(("::1", port), timeout=5)
    assert c.family == stdsocket.AF_INET6
    c.sendall(b"ip")
    assert c.recv(10) == b"ip6"
    g.join(timeout=5)
    c.close()
    lst.close()

    u1 = gsocket.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM)
    u1.bind(("::1", 0))
    u2 = gsocket.socket(stdsocket.AF_INET6, stdsocket.SOCK_DGRAM)
    g = greenweave.spawn(u1.recvfrom, 10)
    greenweave.sleep(0.02)
    u2.sendto(b"v6", u1.getsockname())
    data, _addr = g.get(timeout=5)
    assert data == b"v6"
    u1.close()
    u2.close()


# -- timeouts on every blocking method ---------------------------------------------


def _assert_times_out(fn, *args, seconds=0.2):
    elapsed, exc = _elapsed(fn, *args)
    assert isinstance(exc, TimeoutError), exc
    assert isinstance(exc, gsocket.timeout)
    assert "timed out" in str(exc)
    assert seconds * 0.9 <= elapsed < seconds + 5
    return exc


@pytest.mark.parametrize("method", ["recv", "recv_into", "recvfrom", "recvfrom_into",
                                    "recvmsg", "recvmsg_into"])
def test_read_methods_time_out(method):
    a, b = gsocket.socketpair()
    a.settimeout(0.2)
    args = {
        "recv": (10,),
        "recv_into": (bytearray(10),),
        "recvfrom": (10,),
        "recvfrom_into": (bytearray(10),),
        "recvmsg": (10,),
        "recvmsg_into": ([bytearray(10)],),
    }[method]
    _assert_times_out(getattr(a, method), *args)
    # The socket still works afterwards.
    b.sendall(b"after")
    assert a.recv(10) == b"after"
    a.close()
    b.close()


def test_udp_recvfrom_times_out():
    r = gsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    r.bind(("127.0.0.1", 0))
    r.settimeout(0.2)
    _assert_times_out(r.recvfrom, 10)
    r.close()


def test_accept_times_out():
    lst = _listener()
    lst.settimeout(0.2)
    _assert_times_out(lst.accept)
    lst.close()


def test_connect_times_out_when_the_backlog_is_full():
    lst = _listener(backlog=0)
    addr = lst.getsockname()
    fillers = []
    try:
        # Fill the accept queue: once it is full, the kernel drops further SYNs
        # and a connect stays pending.
        for _ in range(8):
            s = gsocket.socket()
            s.setblocking(False)
            fillers.append(s)
            err = s.connect_ex(addr)
            assert err in (0, errno.EINPROGRESS)
            try:
                gsocket.wait_write(s.fileno(), timeout=0.2)
            except TimeoutError:
                break  # this one is pending: the queue is full
        else:
            pytest.skip("could not fill the listen backlog")
        c = gsocket.socket()
        c.settimeout(0.3)
        _assert_times_out(c.connect, addr, seconds=0.3)
        c.close()
        c = gsocket.socket()
        c.settimeout(0.3)
        assert c.connect_ex(addr) == errno.EAGAIN
        c.close()
    finally:
        for s in fillers:
            s.close()
        lst.close()


def test_unix_connect_times_out_when_the_backlog_is_full(tmp_path):
    path = str(tmp_path / "full.sock")
    lst = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(0)
    fillers = []
    try:
        for _ in range(8):
            s = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            try:
                s.connect(path)
            except BlockingIOError:
                break
        else:
            pytest.skip("could not fill the UNIX listen backlog")
        c = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        c.settimeout(0.3)
        _assert_times_out(c.connect, path, seconds=0.3)
        c.close()

        # ...and it connects as soon as the listener makes room.
        def make_room():
            greenweave.sleep(0.1)
            lst.accept()[0].close()

        greenweave.spawn(make_room)
        c = gsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(path)
        c.close()
    finally:
        for s in fillers:
            s.close()
        lst.close()


def test_send_and_sendall_time_out_into_a_peer_that_never_reads():
    a, b = _tcp_pair()
    a.settimeout(0.2)
    big = b"x" * (64 * 1024 * 1024)
    exc = _assert_times_out(a.sendall, big)
    assert 0 < exc.bytes_sent < len(big)
    assert f"sent {exc.bytes_sent} of {len(big)} bytes" in str(exc)
    # Fill whatever room is left, then a plain send times out too.
    a.setblocking(False)
    try:
        while True:
            a.send(b"y" * 65536)
    except BlockingIOError:
        pass
    a.settimeout(0.2)
    _assert_times_out(a.send, b"y" * 65536)
    a.close()
    b.close()


def test_sendall_timeout_is_for_the_whole_call():
    a, b = _tcp_pair()
    a.settimeout(0.4)
    stop = []

    def slow_reader():
        # Reads a little every 50 ms: each wait is short, the whole is long.
        while not stop:
            greenweave.sleep(0.05)
            try:
                b.recv(65536)
            except OSError:
                return

    g = greenweave.spawn(slow_reader)
    _assert_times_out(a.sendall, b"z" * (64 * 1024 * 1024), seconds=0.4)
    stop.append(1)
    g.join(timeout=2)
    a.close()
    b.close()


# -- non-blocking mode -----------------------------------------------------------


def test_non_blocking_mode_raises_blocking_io_error():
    a, b = _tcp_pair()
    a.setblocking(False)
    for call in (lambda: a.recv(10), lambda: a.recv_into(bytearray(10)),
                 lambda: a.recvfrom(10)):
        with pytest.raises(BlockingIOError):
            call()
    with pytest.raises(BlockingIOError):
        while True:
            a.send(b"x" * 65536)
    lst = _listener()
    lst.settimeout(0)
    with pytest.raises(BlockingIOError):
        lst.accept()
    c = gsocket.socket()
    c.setblocking(False)
    with pytest.raises(BlockingIOError) as info:
        c.connect(lst.getsockname())
    assert info.value.errno == errno.EINPROGRESS
    for s in (a, b, lst, c):
        s.close()


def test_msg_dontwait_does_not_wait_even_on_a_blocking_socket():
    a, b = gsocket.socketpair()
    assert a.gettimeout() is None
    with pytest.raises(BlockingIOError):
        a.recv(10, stdsocket.MSG_DONTWAIT)
    with pytest.raises(BlockingIOError):
        a.recv_into(bytearray(10), 0, stdsocket.MSG_DONTWAIT)
    b.sendall(b"now")
    assert a.recv(10, stdsocket.MSG_DONTWAIT) == b"now"
    a.close()
    b.close()


# -- closing and cancelling while waiting ---------------------------------------------


@pytest.mark.parametrize("op", ["recv", "accept", "sendall"])
def test_close_from_another_greenlet_wakes_the_waiter_with_ebadf(op):
    a, b = _tcp_pair()
    lst = _listener()
    if op == "recv":
        target, call = a, lambda: a.recv(10)
    elif op == "accept":
        target, call = lst, lst.accept
    else:
        target, call = a, lambda: a.sendall(b"x" * (64 * 1024 * 1024))
    g = greenweave.spawn(call)
    greenweave.sleep(0.1)
    assert not g.ready()  # it is parked
    t0 = time.monotonic()
    target.close()
    g.join(timeout=5)
    assert g.ready()
    assert time.monotonic() - t0 < 2
    assert isinstance(g.exception, OSError)
    assert g.exception.errno == errno.EBADF
    for s in (a, b, lst):
        s.close()


def test_close_wakes_reader_and_writer_and_the_fd_number_can_be_reused():
    a, b = _tcp_pair()
    reader = greenweave.spawn(a.recv, 10)
    writer = greenweave.spawn(a.sendall, b"x" * (64 * 1024 * 1024))
    greenweave.sleep(0.1)
    a.close()
    greenweave.joinall([reader, writer], timeout=5)
    assert reader.exception.errno == errno.EBADF
    assert writer.exception.errno == errno.EBADF
    # A new socket probably gets the same descriptor number; it must work.
    c, d = gsocket.socketpair()
    g = greenweave.spawn(c.recv, 10)
    greenweave.sleep(0.02)
    d.sendall(b"fresh")
    assert g.get(timeout=5) == b"fresh"
    for s in (b, c, d):
        s.close()


def test_two_readers_get_concurrent_object_use_error():
    a, b = gsocket.socketpair()
    first = greenweave.spawn(a.recv, 10)
    greenweave.sleep(0.02)
    second = greenweave.spawn(a.recv, 10)
    second.join(timeout=5)
    assert isinstance(second.exception, ConcurrentObjectUseError)
    assert "greenweave.socket.socket" in str(second.exception)
    assert "read" in str(second.exception)
    # The first reader was not disturbed and still gets the data.
    b.sendall(b"mine")
    assert first.get(timeout=5) == b"mine"
    a.close()
    b.close()


def test_two_writers_get_concurrent_object_use_error():
    a, b = _tcp_pair()
    big = b"x" * (64 * 1024 * 1024)
    first = greenweave.spawn(a.sendall, big)
    greenweave.sleep(0.05)
    second = greenweave.spawn(a.sendall, big)
    second.join(timeout=5)
    assert isinstance(second.exception, ConcurrentObjectUseError)
    assert "write" in str(second.exception)
    first.kill()
    a.close()
    b.close()


def test_killed_waiter_leaves_the_socket_usable():
    a, b = gsocket.socketpair()
    g = greenweave.spawn(a.recv, 10)
    greenweave.sleep(0.02)
    g.kill()
    with greenweave.Timeout(0.1, False):
        a.recv(10)  # no ConcurrentObjectUseError: the killed waiter is gone
    b.sendall(b"ok")
    assert a.recv(10) == b"ok"
    a.close()
    b.close()


def test_shutdown_wakes_a_reader_with_eof():
    a, b = _tcp_pair()
    g = greenweave.spawn(a.recv, 10)
    greenweave.sleep(0.05)
    a.shutdown(stdsocket.SHUT_RDWR)
    assert g.get(timeout=5) == b""
    a.close()
    b.close()


def test_blocking_call_from_the_hub_is_refused(fresh_hub):
    a, b = gsocket.socketpair()
    a.settimeout(None)
    seen = []

    def in_hub():
        try:
            a.recv(10)
        except BlockingSwitchOutError as exc:
            seen.append(exc)

    fresh_hub.loop.run_callback(in_hub)
    greenweave.sleep(0.01)
    assert len(seen) == 1
    a.close()
    b.close()


# -- big transfers ----------------------------------------------------------------------


def test_sendall_32_mib_checked_byte_for_byte_with_a_slow_reader():
    a, b = _tcp_pair()
    payload = os.urandom(1024 * 1024) * 32
    expected = hashlib.sha256(payload).hexdigest()

    def reader():
        h = hashlib.sha256()
        n = 0
        i = 0
        while True:
            chunk = b.recv(256 * 1024)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            i += 1
            if i % 16 == 0:
                greenweave.sleep(0.001)  # slow down now and then
        return n, h.hexdigest()

    g = greenweave.spawn(reader)
    assert a.sendall(payload) is None
    a.shutdown(stdsocket.SHUT_WR)
    assert g.get(timeout=25) == (len(payload), expected)
    a.close()
    b.close()


def test_sendall_accepts_any_buffer():
    import array

    a, b = gsocket.socketpair()
    arr = array.array("i", range(1000))
    g = greenweave.spawn(a.sendall, arr)
    got = b""
    while len(got) < arr.itemsize * len(arr):
        got += b.recv(65536)
    g.join()
    assert got == arr.tobytes()
    a.sendall(memoryview(b"abcdef")[2:])
    assert b.recv(10) == b"cdef"
    a.sendall(bytearray(b"ba"))
    assert b.recv(10) == b"ba"
    a.close()
    b.close()


# -- makefile, sendfile, recvmsg/sendmsg ----------------------------------------------


def test_makefile_read_write_binary_and_text():
    a, b = gsocket.socketpair()
    wf = a.makefile("wb")
    rf = b.makefile("rb")

    def writer():
        for i in range(100):
            wf.write(b"line %d\n" % i)
        wf.flush()
        wf.close()
        a.close()  # the file holds a reference: really closed now

    g = greenweave.spawn(writer)
    lines = rf.readlines()
    assert lines == [b"line %d\n" % i for i in range(100)]
    g.join()
    rf.close()

    c, d = gsocket.socketpair()
    tw = c.makefile("w", encoding="utf-8")
    tr = d.makefile("r", encoding="utf-8")
    tw.write("héllo\nwörld\n")
    tw.flush()
    assert tr.readline() == "héllo\n"
    assert tr.readline() == "wörld\n"
    for f in (tw, tr):
        f.close()
    for s in (b, c, d):
        s.close()


def test_makefile_read_times_out():
    a, b = gsocket.socketpair()
    b.settimeout(0.1)
    f = b.makefile("rb")
    with pytest.raises(TimeoutError):
        f.read(10)
    f.close()
    a.close()
    b.close()


def test_sendfile_regular_file_with_offset_and_count(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "payload.bin"
    path.write_bytes(data)
    a, b = _tcp_pair()

    def reader(n):
        got = bytearray()
        while len(got) < n:
            chunk = b.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        return bytes(got)

    g = greenweave.spawn(reader, len(data))
    with open(path, "rb") as f:
        assert a.sendfile(f) == len(data)
        assert f.tell() == len(data)
    assert g.get(timeout=10) == data

    g = greenweave.spawn(reader, 1000)
    with open(path, "rb") as f:
        assert a.sendfile(f, offset=100, count=1000) == 1000
        assert f.tell() == 1100
    assert g.get(timeout=10) == data[100:1100]
    a.close()
    b.close()


def test_sendfile_falls_back_to_send_for_non_files():
    a, b = gsocket.socketpair()
    data = os.urandom(200_000)
    g = greenweave.spawn(lambda: a.sendfile(io.BytesIO(data)))
    got = bytearray()
    while len(got) < len(data):
        got += b.recv(65536)
    assert g.get(timeout=5) == len(data)
    assert bytes(got) == data
    a.close()
    b.close()


@pytest.mark.skipif(not hasattr(stdsocket, "send_fds"), reason="needs send_fds")
def test_sendmsg_recvmsg_pass_a_descriptor():
    a, b = gsocket.socketpair()
    r, w = os.pipe()
    try:
        g = greenweave.spawn(gsocket.recv_fds, b, 10, 1)
        greenweave.sleep(0.02)
        gsocket.send_fds(a, [b"fds"], [w])
        msg, fds, _flags, _addr = g.get(timeout=5)
        assert msg == b"fds" and len(fds) == 1
        os.write(fds[0], b"via passed fd")
        assert os.read(r, 100) == b"via passed fd"
        os.close(fds[0])
    finally:
        os.close(r)
        os.close(w)
        a.close()
        b.close()


# -- dup, detach, fromfd -------------------------------------------------------------------


def test_dup_detach_fromfd():
    a, b = gsocket.socketpair()
    a.settimeout(3)
    d = a.dup()
    assert isinstance(d, gsocket.socket)
    assert d.fileno() != a.fileno()
    assert d.gettimeout() == 3
    d.sendall(b"via dup")
    assert b.recv(100) == b"via dup"
    d.close()

    fd = a.detach()
    assert a.fileno() == -1
    f = gsocket.fromfd(fd, stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    os.close(fd)  # fromfd duplicated it
    assert isinstance(f, gsocket.socket)
    g = greenweave.spawn(f.recv, 100)
    greenweave.sleep(0.02)
    b.sendall(b"via fromfd")
    assert g.get(timeout=5) == b"via fromfd"
    f.close()
    b.close()


def test_detach_while_waiting_wakes_the_waiter():
    a, b = gsocket.socketpair()
    g = greenweave.spawn(a.recv, 10)
    greenweave.sleep(0.02)
    fd = a.detach()
    g.join(timeout=5)
    assert isinstance(g.exception, OSError) and g.exception.errno == errno.EBADF
    # The descriptor itself is intact and usable by a new owner.
    s = gsocket.socket(fileno=fd)
    b.sendall(b"still here")
    assert s.recv(100) == b"still here"
    s.close()
    b.close()


def test_socket_from_a_blocking_descriptor_is_made_non_blocking():
    x, y = stdsocket.socketpair()
    assert os.get_blocking(x.fileno())
    s = gsocket.socket(fileno=x.detach())
    assert os.get_blocking(s.fileno()) is False
    assert s.gettimeout() is None
    g = greenweave.spawn(s.recv, 10)
    greenweave.sleep(0.02)
    y.sendall(b"ok")
    assert g.get(timeout=5) == b"ok"
    s.close()
    y.close()


# -- connecting -------------------------------------------------------------------------


def test_connect_refused():
    lst = _listener()
    addr = lst.getsockname()
    lst.close()  # nothing listens there now
    c = gsocket.socket()
    with pytest.raises(ConnectionRefusedError):
        c.connect(addr)
    c.close()
    c = gsocket.socket()
    assert c.connect_ex(addr) == errno.ECONNREFUSED
    c.close()
    with pytest.raises(ConnectionRefusedError):
        gsocket.create_connection(addr, timeout=5)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_create_connection_all_errors_raises_an_exception_group(fresh_hub):
    lst = _listener()
    addr = lst.getsockname()
    lst.close()
    with pytest.raises(ExceptionGroup) as info:  # noqa: F821 - 3.11+
        gsocket.create_connection(addr, timeout=5, all_errors=True)
    assert all(isinstance(e, ConnectionRefusedError) for e in info.value.exceptions)


def test_create_connection_to_a_literal_address_does_not_use_the_resolver(fresh_hub):
    fresh_hub.resolver = _RecordingResolver(fail=True)
    lst = _listener()
    host, port = lst.getsockname()
    c = gsocket.create_connection((host, port), timeout=5, source_address=("127.0.0.1", 0))
    assert c.gettimeout() == 5
    assert c.getpeername() == (host, port)
    conn, _ = lst.accept()
    c.sendall(b"hi")
    assert conn.recv(2) == b"hi"
    for s in (c, conn, lst):
        s.close()
    assert fresh_hub.resolver.calls == []


def test_host_names_are_resolved_by_the_hubs_resolver(fresh_hub):
    resolver = fresh_hub.resolver = _RecordingResolver()
    lst = _listener()
    port = lst.getsockname()[1]
    c = gsocket.create_connection(("greenweave-test.invalid", port), timeout=5)
    assert ("getaddrinfo", "greenweave-test.invalid", port) in resolver.calls
    c.close()
    resolver.calls.clear()
    s = gsocket.socket()
    s.connect(("greenweave-test.invalid", port))  # connect() resolves too
    assert resolver.calls and resolver.calls[0][:2] == ("getaddrinfo", "greenweave-test.invalid")
    s.close()
    lst.close()


def test_dns_functions_delegate_or_short_circuit(fresh_hub):
    resolver = fresh_hub.resolver = _RecordingResolver()
    # Literal addresses: answered directly, identical to the standard library.
    assert gsocket.getaddrinfo("127.0.0.1", 80) == stdsocket.getaddrinfo("127.0.0.1", 80)
    assert gsocket.getaddrinfo(None, "8080", stdsocket.AF_INET, stdsocket.SOCK_STREAM) == \
        stdsocket.getaddrinfo(None, "8080", stdsocket.AF_INET, stdsocket.SOCK_STREAM)
    assert gsocket.gethostbyname("127.0.0.1") == "127.0.0.1"
    assert gsocket.gethostbyname_ex("127.0.0.1") == stdsocket.gethostbyname_ex("127.0.0.1")
    flags = stdsocket.NI_NUMERICHOST | stdsocket.NI_NUMERICSERV
    assert gsocket.getnameinfo(("127.0.0.1", 80), flags) == ("127.0.0.1", "80")
    if _has_ipv6():
        assert gsocket.getaddrinfo("::1", 80, stdsocket.AF_INET6)[0][4][:2] == ("::1", 80)
    assert resolver.calls == []
    # Names: the resolver.
    infos = gsocket.getaddrinfo("greenweave-test.invalid", 80, stdsocket.AF_INET,
                                stdsocket.SOCK_STREAM)
    assert infos[0][0] is stdsocket.AF_INET and infos[0][1] is stdsocket.SOCK_STREAM
    assert infos[0][4] == ("127.0.0.1", 80)
    assert gsocket.gethostbyname("somewhere.invalid") == "127.0.0.1"
    assert gsocket.gethostbyname_ex("somewhere.invalid")[2] == ["127.0.0.1"]
    assert gsocket.gethostbyaddr("127.0.0.1")[0] == "host.example.test"
    assert gsocket.getnameinfo(("127.0.0.1", 80), 0) == ("localhost", "80")
    assert gsocket.getfqdn("127.0.0.1") == "host.example.test"
    kinds = [c[0] for c in resolver.calls]
    assert kinds == ["getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
                     "getnameinfo", "gethostbyaddr"]


def test_still_works_once_the_standard_module_is_patched_with_it(monkeypatch):
    # What monkey-patching does: the standard module's names become ours.  Our
    # functions must not call back into them (infinite recursion).
    for name in ("socket", "SocketType", "getaddrinfo", "gethostbyname", "gethostname",
                 "create_connection", "socketpair", "fromfd", "getfqdn"):
        monkeypatch.setattr(stdsocket, name, getattr(gsocket, name))
    assert gsocket.getaddrinfo("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)
    assert gsocket.gethostbyname("127.0.0.1") == "127.0.0.1"
    lst = _listener()
    c = gsocket.create_connection(lst.getsockname(), timeout=5)
    conn, _ = lst.accept()
    d = c.dup()
    assert isinstance(d, gsocket.socket)
    f = c.makefile("rwb")
    f.write(b"patched\n")
    f.flush()
    assert conn.makefile("rb").readline() == b"patched\n"
    for obj in (f, d, c, conn, lst):
        obj.close()


def test_create_server_and_dualstack():
    srv = gsocket.create_server(("127.0.0.1", 0), backlog=10)
    assert isinstance(srv, gsocket.socket)
    assert srv.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_REUSEADDR)
    g = greenweave.spawn(srv.accept)
    c = gsocket.create_connection(srv.getsockname(), timeout=5)
    conn, _ = g.get(timeout=5)
    assert isinstance(conn, gsocket.socket)
    for s in (c, conn, srv):
        s.close()
    if gsocket.has_dualstack_ipv6() and _has_ipv6():
        srv = gsocket.create_server(("", 0), family=stdsocket.AF_INET6, dualstack_ipv6=True)
        port = srv.getsockname()[1]
        g = greenweave.spawn(srv.accept)
        c = gsocket.create_connection(("127.0.0.1", port), timeout=5)
        conn, _ = g.get(timeout=5)
        c.close()
        conn.close()
        srv.close()
    with pytest.raises(ValueError):
        gsocket.create_server(("127.0.0.1", 0), dualstack_ipv6=True)


# -- wait_read / wait_write / cancel_wait -----------------------------------------------


def test_wait_read_write_readwrite():
    a, b = gsocket.socketpair()
    gsocket.wait_write(a.fileno(), timeout=1)  # writable right away
    gsocket.wait_readwrite(a.fileno(), timeout=1)
    elapsed, exc = _elapsed(gsocket.wait_read, a.fileno(), 0.2)
    assert isinstance(exc, TimeoutError) and elapsed >= 0.18

    class Custom(Exception):
        pass

    with pytest.raises(Custom):
        gsocket.wait_read(a.fileno(), timeout=0.05, timeout_exc=Custom)
    with pytest.raises(Custom, match="inst"):
        gsocket.wait_read(a.fileno(), timeout=0.05, timeout_exc=Custom("inst"))
    g = greenweave.spawn(gsocket.wait_read, a)  # objects with fileno() are accepted
    greenweave.sleep(0.02)
    b.sendall(b"x")
    g.join(timeout=5)
    assert g.successful()
    a.close()
    b.close()


def test_wait_read_wakes_on_pipe_hangup():
    r, w = os.pipe()
    os.set_blocking(r, False)

    def closer():
        greenweave.sleep(0.05)
        os.close(w)

    greenweave.spawn(closer)
    gsocket.wait_read(r, timeout=5)
    assert os.read(r, 10) == b""
    os.close(r)


def test_cancel_wait_raises_in_the_waiter(fresh_hub):
    a, b = gsocket.socketpair()
    watcher = fresh_hub.loop.io(a.fileno(), 1)

    def waiter():
        fresh_hub.wait(watcher)

    g = greenweave.spawn(waiter)
    greenweave.sleep(0.02)
    gsocket.cancel_wait(watcher)
    g.join(timeout=5)
    assert isinstance(g.exception, OSError) and g.exception.errno == errno.EBADF
    g = greenweave.spawn(waiter)
    greenweave.sleep(0.02)
    gsocket.cancel_wait(watcher, ValueError("custom"))
    g.join(timeout=5)
    assert isinstance(g.exception, ValueError)
    watcher.close()
    a.close()
    b.close()


def test_greenweave_timeout_interrupts_recv_and_socket_stays_usable():
    a, b = gsocket.socketpair()
    with pytest.raises(greenweave.Timeout):
        with greenweave.Timeout(0.05):
            a.recv(10)
    b.sendall(b"later")
    assert a.recv(10) == b"later"
    a.close()
    b.close()


@pytest.mark.skipif(sys.platform != "linux", reason="Linux fd semantics")
def test_closed_socket_is_unregistered_even_when_a_dup_keeps_it_open(fresh_hub):
    # A dup keeps the open file description (and so its epoll registration)
    # alive after close(); the socket must unregister *before* closing, or the
    # loop would spin on a readable descriptor nobody can name any more.
    a, b = gsocket.socketpair()
    g = greenweave.spawn(a.recv, 10)
    greenweave.sleep(0.02)
    keep = os.dup(a.fileno())
    a.close()  # with a waiter parked on it
    g.join(timeout=5)
    assert g.exception.errno == errno.EBADF
    b.sendall(b"unread data")  # level-triggered readable from now on
    loop = fresh_hub.loop
    before = loop.iteration
    for _ in range(20):
        greenweave.sleep(0.01)
    spins = loop.iteration - before
    assert spins < 500, f"the loop spun {spins} times in 20 sleeps"
    os.close(keep)
    b.close()
