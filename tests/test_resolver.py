"""Tests for greenweave.resolver: the thread, blocking and dnspython resolvers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import greenweave as gw
from greenweave import config
from greenweave.resolver import blocking as resolver_blocking
from greenweave.resolver import thread as resolver_thread
from greenweave.threadpool import ThreadPool

try:
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.rrset

    from greenweave.resolver import dnspython as resolver_dnspython
except ImportError:  # pragma: no cover - dnspython is an optional extra
    resolver_dnspython = None

needs_dnspython = pytest.mark.skipif(resolver_dnspython is None, reason="dnspython not installed")


class Ticker:
    """A greenlet counting 10 ms sleeps: proof the hub keeps running."""

    def __init__(self) -> None:
        self.ticks = 0
        self.glet = gw.spawn(self._run)

    def _run(self) -> None:
        while True:
            self.ticks += 1
            gw.sleep(0.01)

    def stop(self) -> int:
        self.glet.kill()
        return self.ticks


def _outcome(fn, *args):
    """``('ok', result)`` or ``('error', type, errno)`` of a call."""
    try:
        return ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - comparing outcomes
        return ("error", type(exc), getattr(exc, "errno", None))


# ---------------------------------------------------------------------------
# A tiny DNS server (UDP and TCP on 127.0.0.1) built with dnspython's message API
# ---------------------------------------------------------------------------


class TinyDNS:
    """Answers from ``records`` ({name: {rdtype: [rdata text]}}); unknown names
    get NXDOMAIN.  ``delays`` holds back answers for some names, ``drop``
    names get no answer, ``truncate`` names are answered over UDP with the TC
    flag (and fully over TCP), ``servfail`` names get SERVFAIL."""

    def __init__(self, records, delays=None, drop=(), truncate=(), servfail=()) -> None:
        self.records = records
        self.delays = delays or {}
        self.drop = set(drop)
        self.truncate = set(truncate)
        self.servfail = set(servfail)
        self.queries: list[tuple[str, str, str]] = []
        for _ in range(20):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            break
        else:  # pragma: no cover
            raise RuntimeError("no port free for both UDP and TCP")
        tcp.listen(16)
        self.udp, self.tcp, self.port = udp, tcp, port
        self._threads = [threading.Thread(target=self._serve_udp, daemon=True),
                         threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self._threads:
            t.start()

    def _answer(self, wire: bytes, transport: str) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype, transport))
        if name in self.drop:
            return None
        response = dns.message.make_response(query)
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response.to_wire()
        if name in self.truncate and transport == "udp":
            response.flags |= dns.flags.TC
            return response.to_wire()
        records = self.records.get(name)
        if records is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        owner = name
        if "CNAME" in records:
            target = records["CNAME"][0]
            response.answer.append(dns.rrset.from_text(name, 60, "IN", "CNAME", target))
            owner, records = target, self.records.get(target, {})
        if rdtype in records:
            response.answer.append(dns.rrset.from_text(owner, 60, "IN", rdtype, *records[rdtype]))
        return response.to_wire()

    def _serve_udp(self) -> None:
        while True:
            try:
                wire, addr = self.udp.recvfrom(65535)
            except OSError:
                return
            reply = self._answer(wire, "udp")
            if reply is None:
                continue
            delay = self.delays.get(self.queries[-1][0])
            if delay:
                threading.Timer(delay, self._send_late, (reply, addr)).start()
            else:
                self.udp.sendto(reply, addr)

    def _send_late(self, reply: bytes, addr) -> None:
        try:
            self.udp.sendto(reply, addr)
        except OSError:
            pass

    def _serve_tcp(self) -> None:
        while True:
            try:
                conn, _ = self.tcp.accept()
            except OSError:
                return
            with conn:
                try:
                    length = int.from_bytes(self._recv_exactly(conn, 2), "big")
                    reply = self._answer(self._recv_exactly(conn, length), "tcp")
                    if reply is not None:
                        conn.sendall(len(reply).to_bytes(2, "big") + reply)
                except OSError:
                    pass

    @staticmethod
    def _recv_exactly(conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("connection closed")
            data += chunk
        return data

    def names_asked(self) -> set[str]:
        return {q[0] for q in self.queries}

    def close(self) -> None:
        self.udp.close()
        self.tcp.close()


RECORDS = {
    "www.example.test.": {"A": ["192.0.2.10", "192.0.2.11"], "AAAA": ["2001:db8::10"]},
    "alias.example.test.": {"CNAME": ["www.example.test."]},
    "v4only.example.test.": {"A": ["192.0.2.20"]},
    "v6only.example.test.": {"AAAA": ["2001:db8::20"]},
    "slow.example.test.": {"A": ["192.0.2.30"]},
    "nodata.example.test.": {"TXT": ['"no addresses here"']},
    "big.example.test.": {"A": [f"192.0.2.{i}" for i in range(100, 140)]},
    "10.2.0.192.in-addr.arpa.": {"PTR": ["www.example.test."]},
    "20.2.0.192.in-addr.arpa.": {"PTR": ["v4only.example.test."]},
    "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.": {
        "PTR": ["www.example.test."]},
}


@pytest.fixture(scope="module")
def dns_server():
    if resolver_dnspython is None:  # pragma: no cover
        pytest.skip("dnspython not installed")
    server = TinyDNS(RECORDS, delays={"slow.example.test.": 0.4},
                     drop={"drop.example.test."}, truncate={"big.example.test."},
                     servfail={"broken.example.test."})
    yield server
    server.close()


@pytest.fixture
def dnsr(dns_server):
    """A dnspython resolver asking only the test server."""
    return resolver_dnspython.Resolver(nameservers=[f"127.0.0.1:{dns_server.port}"], timeout=2)


def _make(kind: str, dns_server=None):
    if kind == "thread":
        return resolver_thread.Resolver()
    if kind == "blocking":
        return resolver_blocking.Resolver()
    return resolver_dnspython.Resolver(nameservers=[f"127.0.0.1:{dns_server.port}"], timeout=2)


KINDS = ["thread", "blocking", pytest.param("dnspython", marks=needs_dnspython)]


@pytest.fixture(params=KINDS)
def any_resolver(request):
    server = request.getfixturevalue("dns_server") if request.param == "dnspython" else None
    return _make(request.param, server)


# ---------------------------------------------------------------------------
# Every resolver: the basics agree with the standard library
# ---------------------------------------------------------------------------


def test_localhost_getaddrinfo(any_resolver):
    expected = socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    got = any_resolver.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    assert got == expected
    assert isinstance(got[0][0], socket.AddressFamily)
    assert isinstance(got[0][1], socket.SocketKind)
    expected_all = set(socket.getaddrinfo("localhost", 80))
    assert set(any_resolver.getaddrinfo("localhost", 80)) == expected_all
    assert any_resolver.getaddrinfo("localhost", "http", socket.AF_INET, socket.SOCK_STREAM) == \
        socket.getaddrinfo("localhost", "http", socket.AF_INET, socket.SOCK_STREAM)


@pytest.mark.parametrize("args", [
    ("127.0.0.1", 80),
    ("127.0.0.1", None, socket.AF_INET, socket.SOCK_DGRAM),
    ("::1", 443, socket.AF_INET6, socket.SOCK_STREAM),
    ("::1", 0),
    (None, 8080, 0, socket.SOCK_STREAM, 0, socket.AI_PASSIVE),
    ("127.0.0.1", 80, 0, 0, 0, socket.AI_CANONNAME),
    (b"127.0.0.1", b"80"),
])
def test_numeric_getaddrinfo_matches_stdlib(any_resolver, args):
    assert any_resolver.getaddrinfo(*args) == socket.getaddrinfo(*args)


@pytest.mark.parametrize("args", [
    ("localhost", "no-such-service-xyz"),
    ("localhost", 80, 12345),
    ("localhost", 80, 0, 12345),
    ("localhost", 80.5),
    (123, 80),
    (None, None),
    ("", 80),
    ("nonexistent.invalid", 80, 0, 0, 0, socket.AI_NUMERICHOST),
])
def test_getaddrinfo_errors_match_stdlib(any_resolver, args):
    expected = _outcome(socket.getaddrinfo, *args)
    assert expected[0] == "error"
    assert _outcome(any_resolver.getaddrinfo, *args) == expected


def test_gethostbyname(any_resolver):
    assert any_resolver.gethostbyname("localhost") == socket.gethostbyname("localhost")
    assert any_resolver.gethostbyname("127.0.0.1") == "127.0.0.1"
    assert _outcome(any_resolver.gethostbyname, "::1") == _outcome(socket.gethostbyname, "::1")


def test_gethostbyname_ex(any_resolver):
    expected = socket.gethostbyname_ex("localhost")
    got = any_resolver.gethostbyname_ex("localhost")
    assert got[0] == expected[0] and sorted(got[2]) == sorted(expected[2])
    assert any_resolver.gethostbyname_ex("127.0.0.1") == ("127.0.0.1", [], ["127.0.0.1"])


def test_gethostbyaddr(any_resolver):
    expected = socket.gethostbyaddr("127.0.0.1")
    got = any_resolver.gethostbyaddr("127.0.0.1")
    assert got[0] == expected[0] and got[2] == expected[2]
    outcome = _outcome(any_resolver.gethostbyaddr, "::1")
    if outcome[0] == "ok":
        assert outcome[1][2] == ["::1"]
    else:
        assert outcome[1] is socket.herror and outcome[2] == 1


def test_getnameinfo(any_resolver):
    for args in [(("127.0.0.1", 80), 0),
                 (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
                 (("127.0.0.1", 8080), socket.NI_NUMERICSERV),
                 (("::1", 80, 0, 0), socket.NI_NUMERICHOST)]:
        assert any_resolver.getnameinfo(*args) == socket.getnameinfo(*args), args
    for args in [(("localhost", 80), 0), (("127.0.0.1",), 0), ("x", 0)]:
        expected = _outcome(socket.getnameinfo, *args)
        assert _outcome(any_resolver.getnameinfo, *args) == expected, args


@pytest.mark.timeout(40)
def test_invalid_name_fails(any_resolver):
    # RFC 6761: .invalid never resolves.  Without a network the system
    # resolver fails fast; with one, the name server says NXDOMAIN.
    ok_codes = {socket.EAI_NONAME, socket.EAI_AGAIN, getattr(socket, "EAI_NODATA", -5)}
    with pytest.raises(socket.gaierror) as info:
        any_resolver.getaddrinfo("nonexistent.invalid", 80)
    assert info.value.errno in ok_codes
    with pytest.raises(socket.gaierror):
        any_resolver.gethostbyname("nonexistent.invalid")
    with pytest.raises(socket.gaierror):
        any_resolver.gethostbyname_ex("nonexistent.invalid")
    with pytest.raises((socket.gaierror, socket.herror)):
        any_resolver.gethostbyaddr("nonexistent.invalid")


def test_close(any_resolver):
    any_resolver.close()
    any_resolver.close()
    assert "Resolver" in repr(any_resolver)


# ---------------------------------------------------------------------------
# Selection through config / the hub
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name, module", [
    ("thread", "greenweave.resolver.thread"),
    ("blocking", "greenweave.resolver.blocking"),
    pytest.param("dnspython", "greenweave.resolver.dnspython", marks=needs_dnspython),
])
def test_hub_resolver_from_config(fresh_hub, name, module):
    config.resolver = name
    try:
        r = fresh_hub.resolver
        assert type(r).__module__ == module
        assert fresh_hub.resolver is r
        assert r.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM)[0][4] == \
            ("127.0.0.1", 80)
    finally:
        config.reset("resolver")


def test_default_resolver_is_thread(fresh_hub):
    config.reset("resolver")
    if os.environ.get("GREENWEAVE_RESOLVER"):  # pragma: no cover
        pytest.skip("GREENWEAVE_RESOLVER is set")
    assert isinstance(fresh_hub.resolver, resolver_thread.Resolver)
    assert fresh_hub.resolver.hub is fresh_hub


@needs_dnspython
def test_resolver_chosen_by_environment():
    code = ("import greenweave as gw; r = gw.get_hub().resolver; "
            "print(type(r).__module__, r.getaddrinfo('localhost', 80, 2, 1)[0][4])")
    env = dict(os.environ, GREENWEAVE_RESOLVER="dnspython")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "greenweave.resolver.dnspython"


def test_dnspython_missing_names_the_extra():
    code = ("import sys; sys.modules['dns'] = None\n"
            "try:\n"
            "    import greenweave.resolver.dnspython\n"
            "except ImportError as exc:\n"
            "    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "greenweave[dnspython]" in out.stdout


def test_greenweave_socket_uses_the_hub_resolver(fresh_hub):
    gsocket = pytest.importorskip("greenweave.socket")
    assert gsocket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM) == \
        socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    assert gsocket.gethostbyname("localhost") == socket.gethostbyname("localhost")


# ---------------------------------------------------------------------------
# The thread resolver: lookups run in the pool, other greenlets keep going
# ---------------------------------------------------------------------------


def test_thread_resolver_lookup_runs_in_the_pool(fresh_hub):
    pool = fresh_hub.threadpool = ThreadPool(1, hub=fresh_hub)
    r = resolver_thread.Resolver(fresh_hub)
    assert r.pool is pool
    # Occupy the only worker thread: the lookup queues behind it (a "slow
    # lookup"), and only its greenlet waits.
    busy = pool.spawn(time.sleep, 0.3)
    ticker = Ticker()
    start = time.monotonic()
    result = r.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    elapsed = time.monotonic() - start
    ticks = ticker.stop()
    assert result == socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
    assert busy.ready()
    assert elapsed >= 0.2
    assert ticks >= 10
    pool.kill()


def test_thread_resolver_numeric_needs_no_thread(fresh_hub):
    pool = fresh_hub.threadpool = ThreadPool(1, hub=fresh_hub)
    r = resolver_thread.Resolver(fresh_hub)
    assert r.getaddrinfo("127.0.0.1", 80) == socket.getaddrinfo("127.0.0.1", 80)
    assert r.gethostbyname("10.1.2.3") == "10.1.2.3"
    assert r.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV) == \
        ("127.0.0.1", "80")
    assert pool.size == 0  # no worker thread was ever started


@pytest.mark.timeout(30)
def test_thread_resolver_many_concurrent_lookups(fresh_hub):
    r = fresh_hub.resolver if isinstance(fresh_hub.resolver, resolver_thread.Resolver) \
        else resolver_thread.Resolver(fresh_hub)
    expected = socket.getaddrinfo("localhost", 80)
    glets = [gw.spawn(r.getaddrinfo, "localhost", 80) for _ in range(100)]
    gw.joinall(glets, timeout=20)
    assert all(g.successful() and g.value == expected for g in glets)


def test_resolver_in_a_native_thread_uses_that_threads_hub():
    out = []

    def worker():
        hub = gw.get_hub()
        out.append((hub.resolver.hub is hub,
                    hub.resolver.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)))

    t = threading.Thread(target=worker)
    t.start()
    t.join(10)
    assert out and out[0][0]
    assert out[0][1] == socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)


# ---------------------------------------------------------------------------
# The dnspython resolver against the test server
# ---------------------------------------------------------------------------


@needs_dnspython
def test_dnspython_forward_lookups(dnsr, dns_server):
    got = dnsr.getaddrinfo("www.example.test", 80, 0, socket.SOCK_STREAM)
    # IPv4 first, then IPv6 (the order within an RRset is the server's).
    assert sorted(e[4] for e in got[:2]) == [("192.0.2.10", 80), ("192.0.2.11", 80)]
    assert got[2][4] == ("2001:db8::10", 80, 0, 0)
    assert got[0][:3] == (socket.AF_INET, socket.SOCK_STREAM, 6)
    v6 = dnsr.getaddrinfo("www.example.test", 80, socket.AF_INET6, socket.SOCK_STREAM)
    assert [e[4] for e in v6] == [("2001:db8::10", 80, 0, 0)]
    assert dnsr.gethostbyname("www.example.test") in ("192.0.2.10", "192.0.2.11")
    assert dnsr.gethostbyname("v4only.example.test") == "192.0.2.20"
    name, aliases, addrs = dnsr.gethostbyname_ex("www.example.test")
    assert (name, aliases, sorted(addrs)) == ("www.example.test", [], ["192.0.2.10", "192.0.2.11"])
    assert dnsr.getaddrinfo("v6only.example.test", 80, 0, socket.SOCK_DGRAM)[0][4] == \
        ("2001:db8::20", 80, 0, 0)
    assert ("www.example.test.", "A", "udp") in dns_server.queries


@needs_dnspython
def test_dnspython_cname_and_canonname(dnsr):
    got = dnsr.getaddrinfo("alias.example.test", 443, socket.AF_INET, socket.SOCK_STREAM, 0,
                           socket.AI_CANONNAME)
    assert got[0][3] == "www.example.test"
    assert all(e[3] == "" for e in got[1:])
    assert sorted(e[4] for e in got) == [("192.0.2.10", 443), ("192.0.2.11", 443)]
    name, aliases, addrs = dnsr.gethostbyname_ex("alias.example.test")
    assert (name, aliases) == ("www.example.test", ["alias.example.test"])
    assert sorted(addrs) == ["192.0.2.10", "192.0.2.11"]


@needs_dnspython
def test_dnspython_v4mapped(dnsr):
    got = dnsr.getaddrinfo("v4only.example.test", 80, socket.AF_INET6, socket.SOCK_STREAM, 0,
                           socket.AI_V4MAPPED)
    assert got[0][4][0] == "::ffff:192.0.2.20"
    with pytest.raises(socket.gaierror):
        dnsr.getaddrinfo("v4only.example.test", 80, socket.AF_INET6, socket.SOCK_STREAM)


@needs_dnspython
def test_dnspython_errors(dnsr, dns_server):
    with pytest.raises(socket.gaierror) as info:
        dnsr.getaddrinfo("missing.example.test", 80)
    assert info.value.errno == socket.EAI_NONAME
    assert info.value.strerror == "Name or service not known"
    with pytest.raises(socket.gaierror) as info:
        dnsr.getaddrinfo("nodata.example.test", 80)
    assert info.value.errno == getattr(socket, "EAI_NODATA", socket.EAI_NONAME)
    with pytest.raises(socket.gaierror) as info:
        dnsr.gethostbyname("broken.example.test")
    assert info.value.errno == socket.EAI_AGAIN
    with pytest.raises(socket.gaierror):
        dnsr.getaddrinfo("www.example.test", "no-such-service-xyz")
    # .invalid is answered locally (RFC 6761), never sent to the server.
    with pytest.raises(socket.gaierror) as info:
        dnsr.getaddrinfo("nonexistent.invalid", 80)
    assert info.value.errno == socket.EAI_NONAME
    assert not any(n.endswith("invalid.") for n in dns_server.names_asked())
    with pytest.raises(UnicodeError):
        dnsr.getaddrinfo("a..b", 80)


@needs_dnspython
@pytest.mark.timeout(20)
def test_dnspython_timeout_gives_eai_again(dns_server):
    r = resolver_dnspython.Resolver(nameservers=[f"127.0.0.1:{dns_server.port}"], timeout=0.5)
    start = time.monotonic()
    with pytest.raises(socket.gaierror) as info:
        r.getaddrinfo("drop.example.test", 80)
    assert info.value.errno == socket.EAI_AGAIN
    assert time.monotonic() - start < 5


@needs_dnspython
def test_dnspython_tcp_fallback_on_truncation(dnsr, dns_server):
    got = dnsr.getaddrinfo("big.example.test", 80, socket.AF_INET, socket.SOCK_STREAM)
    assert len(got) == 40
    assert ("big.example.test.", "A", "tcp") in dns_server.queries


@needs_dnspython
def test_dnspython_reverse_lookups(dnsr):
    assert dnsr.gethostbyaddr("192.0.2.10") == ("www.example.test", [], ["192.0.2.10"])
    assert dnsr.gethostbyaddr("2001:db8::10")[0] == "www.example.test"
    with pytest.raises(socket.herror) as info:
        dnsr.gethostbyaddr("192.0.2.99")
    assert info.value.errno == 1
    # A name is resolved first, then its address looked up.
    assert dnsr.gethostbyaddr("v4only.example.test") == \
        ("v4only.example.test", [], ["192.0.2.20"])
    assert dnsr.getnameinfo(("192.0.2.10", 80), 0) == ("www.example.test", "http")
    assert dnsr.getnameinfo(("192.0.2.10", 80), socket.NI_NOFQDN)[0] == "www"
    assert dnsr.getnameinfo(("192.0.2.99", 8080), socket.NI_NUMERICSERV) == ("192.0.2.99", "8080")
    with pytest.raises(socket.gaierror):
        dnsr.getnameinfo(("192.0.2.99", 80), socket.NI_NAMEREQD)


@needs_dnspython
def test_dnspython_hosts_file(tmp_path, dns_server):
    hosts = tmp_path / "hosts"
    hosts.write_text("# test hosts\n"
                     "192.0.2.55  box.example.test box   # a comment\n"
                     "2001:db8::55 box.example.test\n"
                     "bogus-line\n")
    r = resolver_dnspython.Resolver(nameservers=[f"127.0.0.1:{dns_server.port}"], timeout=2,
                                    hosts_file=str(hosts))
    asked = set(dns_server.names_asked())
    got = r.getaddrinfo("BOX.example.TEST", 80, 0, socket.SOCK_STREAM, 0, socket.AI_CANONNAME)
    assert [e[4][0] for e in got] == ["192.0.2.55", "2001:db8::55"]
    assert got[0][3] == "box.example.test"
    assert [e[4][0] for e in r.getaddrinfo("box", 80, 0, socket.SOCK_STREAM)] == ["192.0.2.55"]
    assert r.gethostbyname_ex("box") == ("box.example.test", ["box"], ["192.0.2.55"])
    assert r.gethostbyaddr("192.0.2.55") == ("box.example.test", ["box"], ["192.0.2.55"])
    # RFC 6761: localhost answers even if the hosts file does not list it.
    assert r.gethostbyname("localhost") == "127.0.0.1"
    assert r.getaddrinfo("localhost", 80, socket.AF_INET6, socket.SOCK_STREAM)[0][4][0] == "::1"
    assert dns_server.names_asked() == asked  # nothing was sent to the server
    # The file is re-read when it changes.
    hosts.write_text("192.0.2.56 other.example.test\n")
    os.utime(hosts, (time.time() + 5, time.time() + 5))
    r._hosts._checked = float("-inf")
    assert r.gethostbyname("other.example.test") == "192.0.2.56"


@needs_dnspython
def test_dnspython_nameservers_from_config(dns_server):
    config.resolver_nameservers = f"127.0.0.1:{dns_server.port}"
    config.resolver_timeout = 2
    try:
        r = resolver_dnspython.Resolver()
        assert r.gethostbyname("v4only.example.test") == "192.0.2.20"
        assert r.resolver.lifetime == 2
    finally:
        config.reset("resolver_nameservers")
        config.reset("resolver_timeout")


@needs_dnspython
@pytest.mark.parametrize("spec", ["not-an-ip", "127.0.0.1:notaport", "127.0.0.1:0", "[::1", 53])
def test_dnspython_bad_nameserver(spec):
    with pytest.raises(ValueError, match="name server"):
        resolver_dnspython.Resolver(nameservers=[spec])


@needs_dnspython
def test_dnspython_bad_timeout():
    with pytest.raises(ValueError, match="timeout"):
        resolver_dnspython.Resolver(nameservers=["127.0.0.1"], timeout=0)


@needs_dnspython
def test_dnspython_nameserver_forms():
    r = resolver_dnspython.Resolver(nameservers=["192.0.2.1", "192.0.2.2:5353", "[2001:db8::1]:54",
                                                 "2001:db8::2", ("192.0.2.3", 55)])
    assert [(ns.address, ns.port) for ns in r.resolver.nameservers] == [
        ("192.0.2.1", 53), ("192.0.2.2", 5353), ("2001:db8::1", 54), ("2001:db8::2", 53),
        ("192.0.2.3", 55)]


@needs_dnspython
@pytest.mark.timeout(20)
def test_dnspython_slow_lookup_does_not_block_other_greenlets(dnsr):
    ticker = Ticker()
    start = time.monotonic()
    result = dnsr.getaddrinfo("slow.example.test", 80, socket.AF_INET, socket.SOCK_STREAM)
    elapsed = time.monotonic() - start
    ticks = ticker.stop()
    assert result[0][4] == ("192.0.2.30", 80)
    assert elapsed >= 0.3
    assert ticks >= 10


@needs_dnspython
@pytest.mark.timeout(20)
def test_dnspython_lookups_run_concurrently(dnsr):
    start = time.monotonic()
    glets = [gw.spawn(dnsr.gethostbyname, "slow.example.test") for _ in range(30)]
    gw.joinall(glets, timeout=15)
    elapsed = time.monotonic() - start
    assert [g.value for g in glets] == ["192.0.2.30"] * 30
    assert elapsed < 3  # 30 x 0.4 s one after the other would be 12 s


@needs_dnspython
def test_dnspython_through_greenweave_socket(fresh_hub, dns_server):
    gsocket = pytest.importorskip("greenweave.socket")
    fresh_hub.resolver = resolver_dnspython.Resolver(
        nameservers=[f"127.0.0.1:{dns_server.port}"], timeout=2)
    assert gsocket.gethostbyname("v4only.example.test") == "192.0.2.20"
    assert gsocket.getaddrinfo("v4only.example.test", 80, socket.AF_INET,
                               socket.SOCK_STREAM)[0][4] == ("192.0.2.20", 80)
