"""greenweave.ssl over real TLS on loopback, with a CA and certificates made here
by trustme: client and server in greenlets, many concurrent clients, large
transfers, SNI, ALPN, client certificates, failed verification, timeouts of
every blocking step, unwrap, makefile, sendfile, ragged EOFs, close from another
greenlet, non-blocking mode, get_server_certificate, the legacy wrap_socket,
and contexts used after monkey-patching."""

from __future__ import annotations

import errno
import hashlib
import os
import socket as stdsocket
import ssl as stdssl
import time
import warnings

import pytest
import trustme

import greenweave
from greenweave import socket as gsocket
from greenweave import ssl as gssl
from greenweave.exceptions import ConcurrentObjectUseError

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    return fresh_hub


@pytest.fixture(scope="module")
def ca():
    return trustme.CA()


@pytest.fixture(scope="module")
def server_cert(ca):
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture
def sctx(server_cert):
    ctx = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(ctx)
    return ctx


@pytest.fixture
def cctx(ca):
    ctx = gssl.create_default_context(cafile=None)
    ca.configure_trust(ctx)
    return ctx


@pytest.fixture
def ca_file(ca, tmp_path):
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class _Server:
    """A TLS server on 127.0.0.1: an accept loop that wraps each connection
    (server side) and runs ``handler(ssl_sock)`` in its own greenlet.  Errors
    raised by handlers are collected in ``errors`` rather than printed."""

    def __init__(self, context, handler, handshake: bool = True) -> None:
        self.context = context
        self.handler = handler
        self.handshake = handshake
        self.errors: list[BaseException] = []
        self.results: list = []
        self.listener = gsocket.create_server(("127.0.0.1", 0), backlog=256)
        self.addr = self.listener.getsockname()
        self.handlers: list = []
        self.loop = greenweave.spawn(self._accept_loop)

    def _accept_loop(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.handlers.append(greenweave.spawn(self._handle, conn))

    def _handle(self, conn) -> None:
        try:
            sock = self.context.wrap_socket(conn, server_side=True,
                                            do_handshake_on_connect=self.handshake)
        except (OSError, ValueError) as exc:
            self.errors.append(exc)
            conn.close()
            return
        try:
            self.results.append(self.handler(sock))
        except Exception as exc:
            self.errors.append(exc)
        finally:
            sock.close()

    def close(self, join_timeout: float = 5) -> None:
        """Stop accepting; give handlers ``join_timeout`` to finish, then kill them."""
        self.loop.kill()
        self.listener.close()
        greenweave.joinall(self.handlers, timeout=join_timeout)
        greenweave.killall(self.handlers, timeout=5)


@pytest.fixture
def serve():
    servers: list[_Server] = []

    def start(context, handler, handshake: bool = True) -> _Server:
        server = _Server(context, handler, handshake)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close(join_timeout=1)


def _echo(sock) -> int:
    total = 0
    while True:
        data = sock.recv(65536)
        if not data:
            return total
        total += len(data)
        sock.sendall(data)


def _connect(cctx, addr, hostname="localhost", timeout=None, **kwargs):
    raw = gsocket.create_connection(addr, timeout=timeout)
    return cctx.wrap_socket(raw, server_hostname=hostname, **kwargs)


def _recv_exactly(sock, n: int) -> bytes:
    chunks = []
    while n:
        data = sock.recv(min(n, 65536))
        assert data, "unexpected end of stream"
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


# -- the module -----------------------------------------------------------------------


def test_reexports_every_public_name_of_the_standard_module():
    public = [n for n, v in vars(stdssl).items()
              if not n.startswith("_") and not isinstance(v, type(os))]
    missing = [n for n in public if not hasattr(gssl, n)]
    assert not missing
    # Constants and exceptions keep their identity (for `except` clauses).
    assert gssl.SSLError is stdssl.SSLError
    assert gssl.SSLWantReadError is stdssl.SSLWantReadError
    assert gssl.CERT_REQUIRED is stdssl.CERT_REQUIRED
    # The socket-making names are ours.
    assert gssl.socket is gsocket.socket
    assert gssl.create_connection is gsocket.create_connection
    assert set(gssl.__implements__) >= {"SSLContext", "SSLSocket", "wrap_socket",
                                        "get_server_certificate", "create_default_context"}


def test_classes_and_constructor():
    assert issubclass(gssl.SSLContext, stdssl.SSLContext)
    assert issubclass(gssl.SSLSocket, stdssl.SSLSocket)
    assert issubclass(gssl.SSLSocket, gsocket.socket)
    assert gssl.SSLContext.sslsocket_class is gssl.SSLSocket
    assert isinstance(gssl.create_default_context(), gssl.SSLContext)
    assert isinstance(gssl.create_default_context(gssl.Purpose.CLIENT_AUTH), gssl.SSLContext)
    assert isinstance(gssl._create_unverified_context(), gssl.SSLContext)
    with pytest.raises(TypeError, match="wrap_socket"):
        gssl.SSLSocket()
    with pytest.raises(TypeError):
        gssl.create_default_context("not a purpose")


# -- basic client/server ------------------------------------------------------------------


def test_echo_with_certificate_checks_and_connection_details(serve, sctx, cctx):
    sctx.set_alpn_protocols(["h2", "http/1.1"])
    cctx.set_alpn_protocols(["http/1.1"])

    def handler(sock):
        details = (sock.version(), sock.selected_alpn_protocol(), sock.getpeercert())
        _echo(sock)
        return details

    server = serve(sctx, handler)
    with _connect(cctx, server.addr) as s:
        assert isinstance(s, gssl.SSLSocket) and isinstance(s, stdssl.SSLSocket)
        assert s.server_hostname == "localhost" and not s.server_side
        cert = s.getpeercert()
        assert ("DNS", "localhost") in cert["subjectAltName"]
        assert ("IP Address", "127.0.0.1") in cert["subjectAltName"]
        assert isinstance(s.getpeercert(binary_form=True), bytes)
        assert s.version() in ("TLSv1.2", "TLSv1.3")
        assert s.cipher()[1] == s.version()
        assert s.selected_alpn_protocol() == "http/1.1"
        assert s.pending() == 0
        assert s.send(b"hello") == 5
        assert s.recv(1024) == b"hello"
        s.write(b"again")
        assert s.read(5) == b"again"
        buf = bytearray(10)
        s.sendall(b"into")
        assert s.recv_into(buf) == 4 and bytes(buf[:4]) == b"into"
    server.close()
    assert not server.errors
    version, alpn, peercert = server.results[0]
    assert version in ("TLSv1.2", "TLSv1.3")
    assert alpn == "http/1.1"
    assert peercert is None  # no client certificate was asked for


def test_client_certificate(serve, ca, sctx, cctx):
    sctx.verify_mode = gssl.CERT_REQUIRED
    ca.configure_trust(sctx)
    ca.issue_cert("client.example").configure_cert(cctx)

    server = serve(sctx, lambda sock: (sock.getpeercert()["subjectAltName"], _echo(sock)))
    with _connect(cctx, server.addr) as s:
        s.sendall(b"x")
        assert s.recv(1) == b"x"
    server.close()
    assert not server.errors
    assert server.results[0][0] == (("DNS", "client.example"),)


def test_sni_reaches_the_server(serve, sctx, cctx):
    seen = []

    def sni(sslsock, server_name, context):
        seen.append((type(sslsock), server_name))

    sctx.sni_callback = sni
    server = serve(sctx, _echo)
    with _connect(cctx, server.addr, hostname="localhost") as s:
        s.sendall(b"ping")
        assert s.recv(4) == b"ping"
    assert seen == [(gssl.SSLSocket, "localhost")]


def test_many_concurrent_clients_on_a_tls_listener(sctx, cctx):
    # The listening socket itself is wrapped: accept() hands out SSLSockets.
    listener = sctx.wrap_socket(gsocket.create_server(("127.0.0.1", 0), backlog=256),
                                server_side=True, do_handshake_on_connect=False)
    assert isinstance(listener, gssl.SSLSocket)
    addr = listener.getsockname()
    accepted = []

    def handle(conn):
        with conn:
            conn.do_handshake()
            _echo(conn)

    def accept_loop():
        while True:
            conn, _ = listener.accept()
            accepted.append(type(conn))
            greenweave.spawn(handle, conn)

    def client(i):
        with _connect(cctx, addr) as s:
            for j in range(5):
                msg = f"client {i} message {j}".encode()
                s.sendall(msg)
                assert _recv_exactly(s, len(msg)) == msg
        return i

    acceptor = greenweave.spawn(accept_loop)
    clients = [greenweave.spawn(client, i) for i in range(100)]
    greenweave.joinall(clients, timeout=25, raise_error=True)
    assert sorted(c.value for c in clients) == list(range(100))
    assert accepted == [gssl.SSLSocket] * 100
    acceptor.kill()
    listener.close()


def test_large_transfer_both_ways_at_once(serve, sctx, cctx):
    size = 8 << 20
    payload = os.urandom(size)
    server = serve(sctx, _echo)
    ticks = 0
    done = False

    def ticker():
        nonlocal ticks
        while not done:
            ticks += 1
            greenweave.sleep(0)

    raw = gsocket.create_connection(server.addr)
    # Small kernel buffers: the transfer has to wait (and let others run) often.
    raw.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_SNDBUF, 1 << 16)
    raw.setsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_RCVBUF, 1 << 16)
    with cctx.wrap_socket(raw, server_hostname="localhost") as s:
        tick = greenweave.spawn(ticker)
        # One greenlet writes while another reads the same TLS socket.
        writer = greenweave.spawn(s.sendall, payload)
        digest = hashlib.sha256()
        buf = bytearray(1 << 16)
        received = 0
        while received < size:
            n = s.recv_into(buf)
            assert n
            digest.update(memoryview(buf)[:n])
            received += n
        writer.get(timeout=10)
        done = True
        tick.join(timeout=5)
    assert digest.hexdigest() == hashlib.sha256(payload).hexdigest()
    assert ticks > 10  # the transfer kept yielding to other greenlets


def test_a_greenlet_keeps_ticking_while_another_waits_in_tls_recv(serve, sctx, cctx):
    def slow(sock):
        greenweave.sleep(0.5)
        sock.sendall(b"late")
        sock.recv(1)

    server = serve(sctx, slow)
    ticks = []

    def ticker():
        while True:
            ticks.append(time.monotonic())
            greenweave.sleep(0.01)

    with _connect(cctx, server.addr) as s:
        tick = greenweave.spawn(ticker)
        assert s.recv(4) == b"late"
        tick.kill()
    assert len(ticks) >= 10


# -- verification failures ----------------------------------------------------------------


def test_wrong_hostname_fails_verification(serve, sctx, cctx):
    server = serve(sctx, _echo)  # its failed handshake is collected, not printed
    with pytest.raises(gssl.SSLCertVerificationError) as info:
        _connect(cctx, server.addr, hostname="wrong.example")
    assert info.value.verify_code == 62  # X509_V_ERR_HOSTNAME_MISMATCH
    assert "wrong.example" in info.value.verify_message


def test_unknown_ca_fails_verification(serve, sctx):
    other = gssl.create_default_context()
    trustme.CA().configure_trust(other)
    server = serve(sctx, _echo)
    with pytest.raises(gssl.SSLCertVerificationError) as info:
        _connect(other, server.addr)
    assert info.value.verify_code == 20  # unable to get local issuer certificate


def test_check_hostname_requires_server_hostname(serve, sctx, cctx):
    server = serve(sctx, _echo)
    raw = gsocket.create_connection(server.addr)
    with raw, pytest.raises(ValueError, match="server_hostname"):
        cctx.wrap_socket(raw)


# -- timeouts -----------------------------------------------------------------------------


def _silent_listener():
    """Accepts TCP (via the kernel backlog) but never says a TLS word."""
    return gsocket.create_server(("127.0.0.1", 0))


def test_handshake_times_out_against_a_silent_server(cctx):
    with _silent_listener() as lst:
        raw = gsocket.create_connection(lst.getsockname(), timeout=0.3)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="handshake"):
            cctx.wrap_socket(raw, server_hostname="localhost")
        elapsed = time.monotonic() - t0
        assert 0.25 <= elapsed < 5
        assert raw.fileno() == -1  # detached into the SSLSocket, which was closed


def test_server_handshake_times_out_against_a_silent_client(sctx):
    with _silent_listener() as lst:
        cli = gsocket.create_connection(lst.getsockname())
        conn, _ = lst.accept()
        conn.settimeout(0.3)
        with cli, pytest.raises(stdsocket.timeout):
            sctx.wrap_socket(conn, server_side=True)


def test_recv_times_out_and_the_connection_stays_usable(serve, sctx, cctx):
    def late(sock):
        greenweave.sleep(0.6)
        sock.sendall(b"late")
        sock.recv(1)

    server = serve(sctx, late)
    with _connect(cctx, server.addr, timeout=0.2) as s:
        assert s.gettimeout() == 0.2
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="read operation timed out"):
            s.recv(10)
        assert 0.15 <= time.monotonic() - t0 < 5
        s.settimeout(5)
        assert s.recv(10) == b"late"


def test_sendall_times_out_when_the_peer_does_not_read(serve, sctx, cctx):
    server = serve(sctx, lambda sock: greenweave.sleep(20))  # killed at teardown
    with _connect(cctx, server.addr) as s:
        s.settimeout(0.3)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match="write operation timed out"):
            s.sendall(b"x" * (64 << 20))
        assert time.monotonic() - t0 < 5


def test_connect_and_handshake_on_an_unconnected_wrapped_socket(serve, sctx, cctx):
    server = serve(sctx, _echo)
    s = cctx.wrap_socket(gsocket.socket(), server_hostname="localhost")
    with s:
        s.settimeout(5)
        s.connect(server.addr)  # connects, then handshakes
        assert s.version() is not None
        s.sendall(b"abc")
        assert s.recv(3) == b"abc"
    s2 = cctx.wrap_socket(gsocket.socket(), server_hostname="localhost")
    with s2:
        assert s2.connect_ex(server.addr) == 0
        s2.sendall(b"def")
        assert s2.recv(3) == b"def"


# -- closing, EOFs, unwrap ---------------------------------------------------------------


@pytest.mark.parametrize("suppress", [True, False])
def test_ragged_eof(serve, sctx, cctx, suppress):
    def abrupt(sock):
        sock.sendall(b"bye")
        # close() sends no TLS close_notify: the peer sees a ragged EOF.

    server = serve(sctx, abrupt)
    with _connect(cctx, server.addr, suppress_ragged_eofs=suppress) as s:
        assert _recv_exactly(s, 3) == b"bye"
        if suppress:
            assert s.recv(10) == b""
            assert s.recv_into(bytearray(10)) == 0
        else:
            with pytest.raises(gssl.SSLEOFError):
                s.recv(10)


@pytest.mark.parametrize("where", ["recv", "handshake"])
def test_close_from_another_greenlet_wakes_the_waiter(serve, sctx, cctx, where):
    lst = _silent_listener()
    if where == "recv":
        server = serve(sctx, lambda sock: sock.recv(1))
        s = _connect(cctx, server.addr)
        wait = s.recv
    else:
        s = cctx.wrap_socket(gsocket.create_connection(lst.getsockname()),
                             server_hostname="localhost", do_handshake_on_connect=False)
        wait = s.do_handshake

    def waiter():
        try:
            wait()
        except OSError as exc:
            return exc
        return "returned"

    g = greenweave.spawn(waiter)
    greenweave.sleep(0.1)
    assert not g.ready()
    s.close()
    result = g.get(timeout=5)
    assert isinstance(result, OSError) and result.errno == errno.EBADF
    lst.close()


def test_two_readers_of_one_tls_socket_is_a_concurrent_use_error(serve, sctx, cctx):
    server = serve(sctx, lambda sock: sock.recv(1))
    with _connect(cctx, server.addr) as s:
        first = greenweave.spawn(s.recv, 10)
        greenweave.sleep(0.05)
        with pytest.raises(ConcurrentObjectUseError):
            s.recv(10)
        first.kill()


def test_unwrap_then_plain_traffic(serve, sctx, cctx):
    def handler(sock):
        assert _recv_exactly(sock, 5) == b"hello"
        sock.sendall(b"world")
        plain = sock.unwrap()
        assert plain is sock and sock._sslobj is None
        assert _recv_exactly(plain, 6) == b"plain?"
        plain.sendall(b"plain!")
        plain.recv(1)
        return "ok"

    server = serve(sctx, handler)
    with _connect(cctx, server.addr) as s:
        s.sendall(b"hello")
        assert _recv_exactly(s, 5) == b"world"
        plain = s.unwrap()
        assert plain is s and s.version() is None
        with pytest.raises(ValueError):
            s.unwrap()
        plain.sendall(b"plain?")
        assert _recv_exactly(plain, 6) == b"plain!"
    server.close()
    assert server.results == ["ok"] and not server.errors


# -- file-like use --------------------------------------------------------------------------


def test_makefile_readline_and_write(serve, sctx, cctx):
    def handler(sock):
        with sock.makefile("rb") as rf, sock.makefile("wb") as wf:
            for line in rf:
                wf.write(b"echo: " + line)
                wf.flush()
                if line == b"quit\n":
                    return "done"

    server = serve(sctx, handler)
    with _connect(cctx, server.addr) as s:
        with s.makefile("rwb") as f:
            f.write(b"first line\nsecond")
            f.flush()
            greenweave.sleep(0.05)
            f.write(b" line\nquit\n")
            f.flush()
            assert f.readline() == b"echo: first line\n"
            assert f.readline() == b"echo: second line\n"
            assert f.readline() == b"echo: quit\n"
    server.close()
    assert server.results == ["done"]


def test_sendfile(serve, sctx, cctx, tmp_path):
    data = os.urandom((1 << 20) + 123)
    path = tmp_path / "blob"
    path.write_bytes(data)

    def handler(sock):
        digest = hashlib.sha256(_recv_exactly(sock, len(data))).hexdigest()
        sock.sendall(digest.encode())

    server = serve(sctx, handler)
    with _connect(cctx, server.addr) as s, open(path, "rb") as f:
        assert s.sendfile(f) == len(data)
        assert f.tell() == len(data)
        reply = _recv_exactly(s, 64).decode()
    assert reply == hashlib.sha256(data).hexdigest()


# -- non-blocking mode -------------------------------------------------------------------


def test_non_blocking_mode_raises_want_errors(serve, sctx, cctx):
    def handler(sock):
        greenweave.sleep(0.2)
        sock.sendall(b"data")
        sock.recv(1)

    server = serve(sctx, handler)
    raw = gsocket.create_connection(server.addr)
    raw.setblocking(False)
    with pytest.raises(ValueError, match="non-blocking"):
        cctx.wrap_socket(raw, server_hostname="localhost")  # do_handshake_on_connect

    raw = gsocket.create_connection(server.addr)
    raw.setblocking(False)
    s = cctx.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
    with s:
        assert s.gettimeout() == 0.0
        with pytest.raises(gssl.SSLWantReadError):
            s.do_handshake()
        s.do_handshake(block=True)  # waits although non-blocking
        assert s.gettimeout() == 0.0 and s.version() is not None
        with pytest.raises(gssl.SSLWantReadError):
            s.recv(10)
        while True:  # the standard non-blocking dance
            gsocket.wait_read(s.fileno(), timeout=5)
            try:
                data = s.recv(10)
                break
            except gssl.SSLWantReadError:
                continue
        assert data == b"data"


def test_non_blocking_write_raises_want_write(serve, sctx, cctx):
    server = serve(sctx, lambda sock: greenweave.sleep(20))  # killed at teardown
    with _connect(cctx, server.addr) as s:
        s.setblocking(False)
        with pytest.raises(gssl.SSLWantWriteError):
            for _ in range(10_000):
                s.send(b"y" * 65536)


# -- plain standard sockets, legacy API, get_server_certificate ---------------------------


def test_a_standard_socket_becomes_cooperative(serve, sctx, cctx):
    server = serve(sctx, _echo)
    std = stdsocket.create_connection(server.addr)
    std.settimeout(7)
    fd = std.fileno()
    # A blocking handshake here would hang: the server is a greenlet of this thread.
    s = cctx.wrap_socket(std, server_hostname="localhost")
    with s:
        assert isinstance(s, gssl.SSLSocket)
        assert std.fileno() == -1 and s.fileno() == fd
        assert s.gettimeout() == 7
        assert os.get_blocking(fd) is False
        s.sendall(b"coop")
        assert s.recv(4) == b"coop"


def test_legacy_wrap_socket(server_cert, ca_file, tmp_path):
    certfile = tmp_path / "server.pem"
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    with _silent_listener() as lst:
        cli_raw = gsocket.create_connection(lst.getsockname())
        conn, _ = lst.accept()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # PROTOCOL_TLS
            server_side = greenweave.spawn(gssl.wrap_socket, conn, server_side=True,
                                           certfile=str(certfile))
            cli = gssl.wrap_socket(cli_raw, cert_reqs=gssl.CERT_REQUIRED, ca_certs=ca_file)
        srv = server_side.get(timeout=5)
        with cli, srv:
            assert isinstance(cli, gssl.SSLSocket) and isinstance(srv, gssl.SSLSocket)
            assert cli.getpeercert()["subjectAltName"][0] == ("DNS", "localhost")
            cli.sendall(b"legacy")
            assert srv.recv(6) == b"legacy"
    with gsocket.socket() as sock, pytest.raises(ValueError, match="certfile"):
        gssl.wrap_socket(sock, server_side=True)


def test_get_server_certificate(serve, sctx, server_cert, ca_file):
    server = serve(sctx, _echo)
    expected = stdssl.PEM_cert_to_DER_cert(server_cert.cert_chain_pems[0].bytes().decode())
    pem = gssl.get_server_certificate(server.addr, ca_certs=ca_file, timeout=5)
    assert stdssl.PEM_cert_to_DER_cert(pem) == expected
    pem = gssl.get_server_certificate(server.addr)  # no verification
    assert stdssl.PEM_cert_to_DER_cert(pem) == expected
    with pytest.raises(gssl.SSLCertVerificationError):
        other = trustme.CA()
        path = os.path.join(os.path.dirname(ca_file), "other.pem")
        other.cert_pem.write_to_path(path)
        gssl.get_server_certificate(server.addr, ca_certs=path)


def test_get_server_certificate_times_out():
    with _silent_listener() as lst:
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            gssl.get_server_certificate(lst.getsockname(), timeout=0.3)
        assert time.monotonic() - t0 < 5


# -- after monkey-patching ------------------------------------------------------------------


def test_contexts_work_when_the_standard_names_are_ours(monkeypatch, serve, ca, server_cert):
    # What monkey-patching does to the ssl module: its global SSLContext and
    # SSLSocket become ours.  The standard code that refers to those globals
    # (property setters, SSLSocket._create) must not recurse or break.
    monkeypatch.setattr(stdssl, "SSLContext", gssl.SSLContext)
    monkeypatch.setattr(stdssl, "SSLSocket", gssl.SSLSocket)
    cctx = stdssl.create_default_context()  # the standard function, now building ours
    assert type(cctx) is gssl.SSLContext
    ca.configure_trust(cctx)
    cctx.options |= gssl.OP_NO_COMPRESSION
    cctx.minimum_version = gssl.TLSVersion.TLSv1_2
    cctx.maximum_version = gssl.TLSVersion.MAXIMUM_SUPPORTED
    cctx.verify_flags |= gssl.VERIFY_X509_TRUSTED_FIRST
    cctx.verify_mode = gssl.CERT_REQUIRED
    messages = []
    cctx._msg_callback = lambda *args: messages.append(args[1])
    assert cctx.minimum_version == gssl.TLSVersion.TLSv1_2
    assert cctx.options & gssl.OP_NO_COMPRESSION

    sctx = gssl.SSLContext(gssl.PROTOCOL_TLS_SERVER)
    server_cert.configure_cert(sctx)
    server = serve(sctx, _echo)
    with _connect(cctx, server.addr) as s:
        assert type(s) is gssl.SSLSocket
        s.sendall(b"patched")
        assert _recv_exactly(s, 7) == b"patched"
    assert "read" in messages and "write" in messages
    cctx._msg_callback = None
    assert cctx._msg_callback is None
