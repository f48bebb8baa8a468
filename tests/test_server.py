"""greenweave.server / greenweave.baseserver over real loopback sockets: listener
forms, life cycle and properties, every spawn mode (including a pool that limits
concurrency), handler errors, graceful stop, DatagramServer, TLS, and the
EMFILE back-off (in a subprocess with a lowered RLIMIT_NOFILE)."""

from __future__ import annotations

import io
import socket as stdsocket
import subprocess
import sys
import textwrap
import time

import pytest

import greenweave
from greenweave import socket as gsocket
from greenweave.baseserver import BaseServer
from greenweave.event import Event
from greenweave.server import DatagramServer, StreamServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    fresh_hub.exception_stream = io.StringIO()
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


def _echo(sock, address):
    with sock:
        while True:
            data = sock.recv(4096)
            if not data:
                return
            sock.sendall(data)


def _roundtrip(address, payload=b"ping", timeout=5):
    host, port = address[0], address[1]
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    with gsocket.create_connection((host, port), timeout=timeout) as c:
        c.sendall(payload)
        got = b""
        while len(got) < len(payload):
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
        return got


# -- listener forms and properties -----------------------------------------------


def test_properties_before_and_after_start_and_stop():
    server = StreamServer(("127.0.0.1", 0), _echo)
    assert server.closed and not server.started
    assert server.address == ("127.0.0.1", 0)
    assert server.server_host == "127.0.0.1" and server.server_port == 0
    assert server.socket is None and server.pool is None
    assert server.loop is greenweave.get_hub().loop
    assert not server.ssl_enabled
    assert isinstance(server.max_accept, int) and server.min_delay < server.max_delay
    server.start()
    try:
        assert server.started and not server.closed
        port = server.server_port
        assert port > 0 and server.address == ("127.0.0.1", port)
        assert f"address=127.0.0.1:{port}" in repr(server) and "fileno=" in str(server)
        assert _roundtrip(server.address) == b"ping"
        with pytest.raises(AssertionError, match="already started"):
            server.start()
    finally:
        server.stop()
    assert server.closed and not server.started
    with pytest.raises(RuntimeError, match="closed"):
        server.start()


@pytest.mark.parametrize("listener", ["127.0.0.1:0", ":0", "0"])
def test_string_listeners(listener):
    server = StreamServer(listener, _echo)
    server.start()
    try:
        assert server.server_port > 0
        assert _roundtrip(("127.0.0.1", server.server_port)) == b"ping"
    finally:
        server.stop()


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
@pytest.mark.parametrize("listener", ["[::1]:0", ("::1", 0)])
def test_ipv6_listeners(listener):
    server = StreamServer(listener, _echo)
    server.start()
    try:
        assert server.family == stdsocket.AF_INET6 and server.server_host == "::1"
        assert _roundtrip(("::1", server.server_port)) == b"ping"
        assert f"address=[::1]:{server.server_port}" in repr(server)
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["greenweave", "stdlib", "stdlib-not-listening"])
def test_bound_socket_listener(kind):
    cls = gsocket.socket if kind == "greenweave" else stdsocket.socket
    sock = cls(stdsocket.AF_INET, stdsocket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    if kind != "stdlib-not-listening":
        sock.listen(10)
    server = StreamServer(sock, _echo)
    assert server.address == sock.getsockname() and server.socket is sock
    server.start()
    try:
        assert _roundtrip(server.address, b"x" * 10000) == b"x" * 10000
    finally:
        server.stop()
    assert sock.fileno() == -1  # the server closes its listener


@pytest.mark.parametrize("bad, exc", [("host:port", ValueError), ("x:99999", ValueError),
                                      (3.5, TypeError), ((), ValueError)])
def test_bad_listeners_raise_clearly(bad, exc):
    with pytest.raises(exc):
        StreamServer(bad, _echo)


def test_backlog_with_a_socket_instance_is_an_error():
    with gsocket.socket() as sock:
        with pytest.raises(TypeError, match="backlog"):
            StreamServer(sock, _echo, backlog=5)


def test_handle_is_required_and_may_be_a_method():
    with pytest.raises(TypeError, match="handle"):
        StreamServer(("127.0.0.1", 0))
    with pytest.raises(TypeError, match="callable"):
        StreamServer(("127.0.0.1", 0), handle=5)

    class Upper(StreamServer):
        def handle(self, sock, address):
            with sock:
                sock.sendall(sock.recv(100).upper())

    server = Upper(("127.0.0.1", 0))
    with server:
        server.start()
        assert _roundtrip(server.address, b"abc") == b"ABC"
    assert server.closed


def test_set_handle_set_spawn_set_listener():
    server = StreamServer(("127.0.0.1", 0), _echo)
    server.set_handle(lambda s, a: (s.sendall(b"new"), s.close()))
    server.set_spawn(None)
    server.set_listener("127.0.0.1:0")
    with pytest.raises(TypeError, match="spawn"):
        server.set_spawn("sometimes")
    server.start()
    try:
        with gsocket.create_connection(("127.0.0.1", server.server_port)) as c:
            assert c.recv(10) == b"new"
    finally:
        server.stop()


def test_accepted_tcp_sockets_have_nodelay_and_are_cooperative():
    seen = {}

    def handle(sock, address):
        seen["nodelay"] = sock.getsockopt(stdsocket.IPPROTO_TCP, stdsocket.TCP_NODELAY)
        seen["type"] = type(sock)
        seen["address"] = address
        sock.close()

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        with gsocket.create_connection(server.address) as c:
            assert c.recv(10) == b""
    finally:
        server.stop()
    assert seen["nodelay"] and seen["type"] is gsocket.socket
    assert seen["address"][0] == "127.0.0.1"


# -- spawning ---------------------------------------------------------------------


def test_default_spawn_handles_connections_concurrently():
    server = StreamServer(("127.0.0.1", 0), lambda s, a: (greenweave.sleep(0.3), _echo(s, a)))
    server.start()
    try:
        t0 = time.monotonic()
        results = [greenweave.spawn(_roundtrip, server.address, b"%d" % i) for i in range(50)]
        greenweave.joinall(results, raise_error=True)
        assert [g.value for g in results] == [b"%d" % i for i in range(50)]
        assert time.monotonic() - t0 < 3  # 50 x 0.3 s sequentially would be 15 s
    finally:
        server.stop()


def test_spawn_none_handles_inline_one_at_a_time():
    active = []
    peak = []

    def handle(sock, address):
        active.append(1)
        peak.append(len(active))
        try:
            _echo(sock, address)
        finally:
            active.pop()

    server = StreamServer(("127.0.0.1", 0), handle, spawn=None)
    server.start()
    try:
        assert server.pool is None
        results = [greenweave.spawn(_roundtrip, server.address, b"%d" % i) for i in range(5)]
        greenweave.joinall(results, raise_error=True)
        assert max(peak) == 1
    finally:
        server.stop()


@pytest.mark.parametrize("spawn", [2, "pool"])
def test_pool_limits_concurrent_handlers_and_accepting_resumes(spawn):
    from greenweave.pool import Pool

    if spawn == "pool":
        spawn = Pool(2)
    release = Event()
    running = []

    def handle(sock, address):
        running.append(address)
        release.wait()
        _echo(sock, address)

    server = StreamServer(("127.0.0.1", 0), handle, spawn=spawn)
    server.start()
    try:
        assert server.pool is not None and server.pool.size == 2
        clients = [greenweave.spawn(_roundtrip, server.address, b"c%d" % i) for i in range(5)]
        deadline = time.monotonic() + 5
        while len(running) < 2 and time.monotonic() < deadline:
            greenweave.sleep(0.01)
        greenweave.sleep(0.2)
        assert len(running) == 2  # the pool is full: no third handler
        assert server.full()
        release.set()
        greenweave.joinall(clients, raise_error=True, timeout=10)
        assert sorted(g.value for g in clients) == sorted(b"c%d" % i for i in range(5))
        assert len(running) == 5
    finally:
        server.stop()


def test_custom_spawn_callable():
    calls = []

    def spawn(fn, *args):
        calls.append(args[1])
        return greenweave.spawn(fn, *args)

    server = StreamServer(("127.0.0.1", 0), _echo, spawn=spawn)
    server.start()
    try:
        assert _roundtrip(server.address) == b"ping"
        assert len(calls) == 1
    finally:
        server.stop()


def test_handler_exceptions_are_logged_and_do_not_stop_the_server(fresh_hub):
    def handle(sock, address):
        data = sock.recv(10)
        if data == b"boom":
            sock.close()
            raise ValueError("handler exploded")
        sock.sendall(data)
        sock.close()

    for spawn in ("default", None):
        server = StreamServer(("127.0.0.1", 0), handle, spawn=spawn)
        server.start()
        try:
            for _ in range(3):
                with gsocket.create_connection(server.address) as c:
                    c.sendall(b"boom")
                    assert c.recv(10) == b""
                assert _roundtrip(server.address, b"ok") == b"ok"
            assert server.started
        finally:
            server.stop()
    log = fresh_hub.exception_stream.getvalue()
    assert log.count("ValueError: handler exploded") == 6


def test_many_connections_in_one_burst_are_all_served():
    server = StreamServer(("127.0.0.1", 0), _echo)
    server.max_accept = 7  # several wake-ups needed
    server.start()
    try:
        clients = [greenweave.spawn(_roundtrip, server.address, b"%d" % i) for i in range(200)]
        greenweave.joinall(clients, raise_error=True, timeout=20)
        assert sorted(g.value for g in clients) == sorted(b"%d" % i for i in range(200))
    finally:
        server.stop()


# -- stopping ---------------------------------------------------------------------------


@pytest.mark.parametrize("spawn", ["default", 10])
def test_stop_waits_for_handlers_in_flight(spawn):
    finished = []

    def handle(sock, address):
        sock.recv(10)
        greenweave.sleep(0.3)
        sock.sendall(b"done")
        sock.close()
        finished.append(address)

    server = StreamServer(("127.0.0.1", 0), handle, spawn=spawn)
    server.start()
    conns = [gsocket.create_connection(server.address) for _ in range(5)]
    for c in conns:
        c.sendall(b"go")
    greenweave.sleep(0.05)
    t0 = time.monotonic()
    server.stop(timeout=5)
    assert time.monotonic() - t0 < 3
    assert len(finished) == 5
    for c in conns:
        assert c.recv(10) == b"done"
        c.close()
    # The listener is gone: new connections are refused.
    with pytest.raises(OSError):
        gsocket.create_connection(server.address, timeout=2)


def test_stop_kills_handlers_that_outlive_the_timeout():
    killed = []

    def handle(sock, address):
        try:
            greenweave.sleep(30)
        except greenweave.GreenletExit:
            killed.append(address)
            raise
        finally:
            sock.close()

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    conns = [gsocket.create_connection(server.address) for _ in range(3)]
    greenweave.sleep(0.05)
    t0 = time.monotonic()
    server.stop(timeout=0.2)
    assert time.monotonic() - t0 < 2.5
    assert len(killed) == 3
    for c in conns:
        assert c.recv(10) == b""
        c.close()


def test_serve_forever_until_stopped_from_another_greenlet():
    server = StreamServer(("127.0.0.1", 0), _echo)
    runner = greenweave.spawn(server.serve_forever)
    greenweave.sleep(0.01)
    assert server.started
    assert _roundtrip(server.address) == b"ping"
    greenweave.spawn_later(0.05, server.stop)
    runner.join(timeout=5)
    assert runner.dead and runner.successful()
    assert server.closed


def test_killing_serve_forever_stops_the_server():
    server = StreamServer(("127.0.0.1", 0), _echo)
    runner = greenweave.spawn(server.serve_forever)
    greenweave.sleep(0.01)
    address = server.address
    runner.kill(timeout=5)
    assert runner.dead and server.closed
    with pytest.raises(OSError):
        gsocket.create_connection(address, timeout=2)


def test_close_is_idempotent_and_stop_before_start_is_harmless():
    server = StreamServer(("127.0.0.1", 0), _echo)
    server.stop()
    server.close()
    assert server.closed


# -- datagrams --------------------------------------------------------------------------


def test_datagram_server_echo():
    with pytest.raises(TypeError, match="handle"):
        DatagramServer(("127.0.0.1", 0))

    class Echo(DatagramServer):
        def handle(self, data, address):
            self.sendto(data.upper(), address)

    server = Echo("127.0.0.1:0")
    server.start()
    try:
        with gsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as c:
            c.settimeout(5)
            for i in range(20):
                c.sendto(b"msg%d" % i, server.address)
                data, addr = c.recvfrom(100)
                assert data == b"MSG%d" % i and addr == server.address
    finally:
        server.stop()
    with pytest.raises(OSError):
        server.sendto(b"x", ("127.0.0.1", 9))


def test_datagram_server_with_handle_function_and_bound_socket():
    sock = gsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    got = []
    server = DatagramServer(sock, lambda data, address: got.append(data))
    server.start()
    try:
        with gsocket.socket(stdsocket.AF_INET, stdsocket.SOCK_DGRAM) as c:
            for i in range(5):
                c.sendto(b"%d" % i, server.address)
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:
            greenweave.sleep(0.01)
        assert sorted(got) == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        server.stop()


def test_base_server_requires_do_read():
    class Odd(BaseServer):
        def handle(self, *args):
            pass

    server = Odd(("127.0.0.1", 0))
    assert server.do_read is not None and server.init_socket() is None
    server.close()


# -- TLS ------------------------------------------------------------------------------


def test_tls_stream_server(tmp_path):
    gssl = pytest.importorskip("greenweave.ssl")
    trustme = pytest.importorskip("trustme")
    import ssl as stdssl

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile = tmp_path / "cert.pem"
    keyfile = tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        with open(certfile, "ab") as f:
            f.write(pem.bytes())
    cert.private_key_pem.write_to_path(str(keyfile))

    server = StreamServer(("127.0.0.1", 0), _echo, certfile=str(certfile), keyfile=str(keyfile))
    assert server.ssl_enabled
    server.start()
    try:
        ctx = gssl.create_default_context()
        ca.configure_trust(ctx)
        with gsocket.create_connection(server.address, timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                tls.sendall(b"secret")
                assert tls.recv(100) == b"secret"
        # A plain-text client does not break the server.
        with gsocket.create_connection(server.address, timeout=5) as raw:
            raw.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                raw.recv(100)
            except OSError:
                pass
        ctx2 = gssl.SSLContext(stdssl.PROTOCOL_TLS_CLIENT)
        ca.configure_trust(ctx2)
        server2 = StreamServer(("127.0.0.1", 0), _echo, ssl_context=server._ssl_context)
        server2.start()
        try:
            with gsocket.create_connection(server2.address, timeout=5) as raw:
                with ctx2.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"again")
                    assert tls.recv(100) == b"again"
        finally:
            server2.stop()
    finally:
        server.stop()


# -- running out of descriptors ---------------------------------------------------------

_EMFILE_SERVER = textwrap.dedent("""
    import resource, sys
    import greenweave
    from greenweave.server import StreamServer

    def handle(sock, address):
        with sock:
            while True:
                data = sock.recv(100)
                if not data:
                    return
                sock.sendall(data)

    server = StreamServer(("127.0.0.1", 0), handle)
    server.min_delay = 0.01
    server.max_delay = 0.1
    server.start()
    import os
    used = len(os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (used + 20, used + 20))
    print(server.server_port, flush=True)
    from greenweave.socket import wait_read
    wait_read(sys.stdin.fileno())  # cooperatively: the server runs meanwhile
    sys.stdin.readline()
    print("still running", server.started, flush=True)
""")


@pytest.mark.timeout(60)
def test_emfile_backs_off_and_resumes_when_descriptors_free_up(tmp_path):
    script = tmp_path / "emfile_server.py"
    script.write_text(_EMFILE_SERVER)
    proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    conns = []
    try:
        port = int(proc.stdout.readline())
        # More clients than the server has descriptors: the kernel completes
        # the handshakes (backlog), the server's accept fails with EMFILE.
        for _ in range(40):
            c = stdsocket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(c)
        served = []
        for i, c in enumerate(conns[:15]):
            c.sendall(b"%d" % i)
            served.append(c.recv(10))
        assert served == [b"%d" % i for i in range(15)]
        # These are waiting in the backlog while the server is out of descriptors.
        late = conns[30:]
        for c in late:
            c.sendall(b"late")
        for c in late:
            c.settimeout(0.3)
            with pytest.raises(TimeoutError):
                c.recv(10)
        # Free descriptors: the server resumes accepting by itself.
        for c in conns[:25]:
            c.close()
        for c in late:
            c.settimeout(10)
            assert c.recv(10) == b"late"
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == b"still running True"
    finally:
        for c in conns:
            c.close()
        proc.kill()
        out, err = proc.communicate(timeout=10)
    assert b"Too many open files" in err
