"""A pure-Python resolver built on dnspython; lookups block only their greenlet.

Needs the optional ``dnspython`` package (``pip install 'greenweave[dnspython]'``).
Select it with ``GREENWEAVE_RESOLVER=dnspython`` or
``config.resolver = 'dnspython'``.

How a name is resolved:

1. numeric addresses (and ``host=None``) are answered directly;
2. names in the hosts file (``/etc/hosts``, re-read when it changes) are
   answered from it;
3. RFC 6761 special names are answered locally: ``localhost`` and
   ``*.localhost`` are loopback addresses, ``*.invalid`` never exists;
4. everything else is asked of the name servers, using dnspython's stub
   resolver (search list, ``ndots``, CNAME chasing, retries and TCP fallback
   as configured in ``/etc/resolv.conf``).  The queries go over sockets
   driven by the hub's loop, so many lookups run at once and other greenlets
   keep running meanwhile.

Configuration: the name servers default to those of ``/etc/resolv.conf``;
``config.resolver_nameservers`` (``GREENWEAVE_RESOLVER_NAMESERVERS``, e.g.
``"10.0.0.53, [2001:db8::53]:5353"``) or the ``nameservers`` argument replace
them.  ``config.resolver_timeout`` or the ``timeout`` argument bounds each
lookup, in seconds (dnspython's default otherwise: 5 s).

Differences from the system resolver: no NSS modules (mDNS, LDAP...), no
``AI_ADDRCONFIG`` filtering beyond what the numeric formatting does, and for
``AF_UNSPEC`` IPv4 addresses come before IPv6 ones (no RFC 6724 sorting).

The queries use dnspython's asynchronous API with a small backend whose
"async" operations complete in place by blocking the greenlet, so the
coroutines never actually suspend and are run to completion synchronously.
"""

from __future__ import annotations

import _socket
import errno
import os
import socket as _stdsocket
from time import monotonic
from typing import Any

try:
    import dns.asyncbackend
    import dns.asyncresolver
    import dns.exception
    import dns.inet
    import dns.name
    import dns.nameserver
    import dns.rdatatype
    import dns.resolver
    import dns.reversename
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "the greenweave dnspython resolver needs the dnspython package: "
        "install the 'dnspython' extra (pip install 'greenweave[dnspython]') "
        f"or pip install dnspython ({exc})"
    ) from exc

from .._config import config
from .._core.hub import get_hub
from .._core.hub import sleep as _sleep
from ..timeout import Timeout
from . import (
    AbstractResolver,
    _getaddrinfo,
    _gethostbyname,
    _gethostbyname_ex,
    _getnameinfo,
    convert_addrinfo,
    maybe_numeric,
    numeric_getaddrinfo,
)

__all__ = ["Resolver"]

AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
AF_UNSPEC = _socket.AF_UNSPEC
gaierror = _stdsocket.gaierror
herror = _stdsocket.herror

EAI_NONAME = _socket.EAI_NONAME
EAI_AGAIN = _socket.EAI_AGAIN
EAI_FAIL = _socket.EAI_FAIL
EAI_FAMILY = _socket.EAI_FAMILY
EAI_NODATA = getattr(_socket, "EAI_NODATA", EAI_NONAME)
_GAI_MESSAGES = {
    EAI_NONAME: "Name or service not known",
    EAI_AGAIN: "Temporary failure in name resolution",
    EAI_FAIL: "Non-recoverable failure in name resolution",
    EAI_FAMILY: "ai_family not supported",
    EAI_NODATA: "No address associated with hostname",
}
# h_errno values and the messages socket.herror carries for them.
HOST_NOT_FOUND, TRY_AGAIN, NO_RECOVERY = 1, 2, 3
_H_MESSAGES = {HOST_NOT_FOUND: "Unknown host", TRY_AGAIN: "Host name lookup failure",
               NO_RECOVERY: "Unknown server error"}

_NI_NUMERIC = _socket.NI_NUMERICHOST | _socket.NI_NUMERICSERV
_LOOPBACK = ((AF_INET, "127.0.0.1"), (AF_INET6, "::1"))
_READ, _WRITE = 1, 2


def _gai(code: int) -> gaierror:
    return gaierror(code, _GAI_MESSAGES[code])


def _herr(code: int) -> herror:
    return herror(code, _H_MESSAGES[code])


# ---------------------------------------------------------------------------
# The hosts file
# ---------------------------------------------------------------------------


def _parse_address(text: str) -> tuple[int, str] | None:
    """``(family, canonical text)`` for an IPv4/IPv6 address, else None."""
    base, _, scope = text.partition("%")
    for af in (AF_INET, AF_INET6):
        try:
            packed = _socket.inet_pton(af, base)
        except (OSError, ValueError):
            continue
        if af == AF_INET and scope:
            return None
        canonical = _socket.inet_ntop(af, packed)
        return af, canonical + ("%" + scope if scope else "")
    return None


class _HostsFile:
    """A parsed hosts file, re-read when it changes (checked at most once a second)."""

    CHECK_INTERVAL = 1.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._key: Any = object()
        self._checked = float("-inf")
        # lower-case name -> [canonical, aliases, [(family, address)...]]
        self._names: dict[str, list] = {}
        # address -> (canonical, aliases) of its first line
        self._addrs: dict[str, tuple[str, list[str]]] = {}

    def _refresh(self) -> None:
        now = monotonic()
        if now - self._checked < self.CHECK_INTERVAL:
            return
        self._checked = now
        try:
            st = os.stat(self.path)
            key: Any = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            key = None
        if key == self._key:
            return
        self._key = key
        data = b""
        if key is not None:
            try:
                with open(self.path, "rb") as f:
                    data = f.read()
            except OSError:
                pass
        names: dict[str, list] = {}
        addrs: dict[str, tuple[str, list[str]]] = {}
        for raw in data.splitlines():
            fields = raw.split(b"#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                text = [f.decode("ascii") for f in fields]
            except UnicodeDecodeError:
                continue
            parsed = _parse_address(text[0])
            if parsed is None:
                continue
            hostnames = text[1:]
            canonical, aliases = hostnames[0], hostnames[1:]
            for hostname in hostnames:
                entry = names.get(hostname.lower())
                if entry is None:
                    entry = names[hostname.lower()] = [canonical, aliases, []]
                if parsed not in entry[2]:
                    entry[2].append(parsed)
            addrs.setdefault(parsed[1], (canonical, aliases))
        self._names = names
        self._addrs = addrs

    def lookup(self, name: str) -> list | None:
        """``[canonical, aliases, [(family, address)...]]`` for ``name``, or None."""
        self._refresh()
        key = name.lower()
        if key.endswith("."):
            key = key[:-1]
        return self._names.get(key)

    def reverse(self, address: str) -> tuple[str, list[str]] | None:
        """``(canonical, aliases)`` of the first line with ``address``, or None."""
        self._refresh()
        return self._addrs.get(address)


_hosts_files: dict[str, _HostsFile] = {}


def _hosts_file(path: str) -> _HostsFile:
    hosts = _hosts_files.get(path)
    if hosts is None:
        hosts = _hosts_files[path] = _HostsFile(path)
    return hosts


# ---------------------------------------------------------------------------
# A dnspython async backend whose operations complete by blocking the greenlet
# ---------------------------------------------------------------------------


class _GreenSocket(dns.asyncbackend.DatagramSocket):
    """A non-blocking socket whose waits park the greenlet on the hub's loop.

    Implements both dnspython socket interfaces (datagram and stream).
    """

    def __init__(self, sock: _socket.socket) -> None:
        super().__init__(sock.family, sock.type)
        self._sock = sock
        self._watchers: dict[int, Any] = {}

    def _wait(self, events: int, timeout: float | None) -> None:
        hub = get_hub()
        watcher = self._watchers.get(events)
        if watcher is None:
            watcher = self._watchers[events] = hub.loop.io(self._sock.fileno(), events)
        if timeout is None:
            hub.wait(watcher)
            return
        if timeout <= 0:
            raise dns.exception.Timeout()
        t = Timeout(timeout, dns.exception.Timeout)
        t.start()
        try:
            hub.wait(watcher)
        finally:
            t.cancel()

    def connect(self, address: Any, timeout: float | None) -> None:
        err = self._sock.connect_ex(address)
        if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self._wait(_WRITE, timeout)
            err = self._sock.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))

    async def sendto(self, what: bytes, destination: Any, timeout: float | None) -> int:
        sock = self._sock
        while True:
            try:
                if destination is None:
                    return sock.send(what)
                return sock.sendto(what, destination)
            except BlockingIOError:
                self._wait(_WRITE, timeout)

    async def recvfrom(self, size: int, timeout: float | None) -> tuple[bytes, Any]:
        sock = self._sock
        while True:
            try:
                return sock.recvfrom(size)
            except BlockingIOError:
                self._wait(_READ, timeout)

    async def sendall(self, what: bytes, timeout: float | None) -> None:
        sock = self._sock
        view = memoryview(what)
        while view:
            try:
                view = view[sock.send(view):]
            except BlockingIOError:
                self._wait(_WRITE, timeout)

    async def recv(self, size: int, timeout: float | None) -> bytes:
        sock = self._sock
        while True:
            try:
                return sock.recv(size)
            except BlockingIOError:
                self._wait(_READ, timeout)

    async def close(self) -> None:
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers.clear()
        self._sock.close()

    async def getpeername(self) -> Any:
        return self._sock.getpeername()

    async def getsockname(self) -> Any:
        return self._sock.getsockname()

    async def getpeercert(self, timeout: float | None) -> Any:
        raise NotImplementedError("TLS is not supported by the greenweave dnspython backend")


class _Backend(dns.asyncbackend.Backend):
    """dnspython async backend for greenweave (UDP and TCP, no TLS/HTTPS/QUIC)."""

    def name(self) -> str:
        return "greenweave"

    async def make_socket(self, af: int, socktype: int, proto: int = 0, source: Any = None,
                          destination: Any = None, timeout: float | None = None,
                          ssl_context: Any = None, server_hostname: str | None = None) -> Any:
        if ssl_context is not None:
            raise NotImplementedError(
                "DNS over TLS is not supported by the greenweave dnspython resolver")
        sock = _socket.socket(af, socktype, proto)
        try:
            sock.setblocking(False)
            if source:
                sock.bind(dns.inet.low_level_address_tuple(source, af))
            green = _GreenSocket(sock)
            if destination:
                green.connect(dns.inet.low_level_address_tuple(destination, af), timeout)
        except BaseException:
            sock.close()
            raise
        return green

    def datagram_connection_required(self) -> bool:
        return False

    async def sleep(self, interval: float) -> None:
        _sleep(interval)

    def get_transport_class(self) -> Any:
        raise NotImplementedError(
            "DNS over HTTPS is not supported by the greenweave dnspython resolver")

    async def wait_for(self, awaitable: Any, timeout: float | None) -> Any:
        t = Timeout._start_new_or_dummy(timeout, dns.exception.Timeout)
        try:
            return await awaitable
        finally:
            t.cancel()


def _run(coro: Any) -> Any:
    """Run a dnspython coroutine whose awaits all complete in place."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise RuntimeError("a dnspython coroutine tried to suspend; the greenweave backend "
                       "cannot drive it (unsupported transport?)")


def _gai_error(exc: BaseException) -> BaseException:
    """The ``socket.gaierror`` the system resolver would give for a dnspython error."""
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return _gai(EAI_NONAME)
    if isinstance(exc, dns.resolver.NoAnswer):
        return _gai(EAI_NODATA)
    if isinstance(exc, (dns.exception.Timeout, dns.resolver.NoNameservers)):
        return _gai(EAI_AGAIN)
    if isinstance(exc, (dns.name.NameTooLong, dns.name.LabelTooLong, dns.name.EmptyLabel,
                        dns.exception.SyntaxError)):
        return _gai(EAI_NONAME)
    if isinstance(exc, dns.exception.DNSException):
        return _gai(EAI_FAIL)
    return exc


def _herror(exc: BaseException) -> BaseException:
    """The ``socket.herror`` for a failed reverse lookup."""
    if isinstance(exc, (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)):
        return _herr(HOST_NOT_FOUND)
    if isinstance(exc, (dns.exception.Timeout, dns.resolver.NoNameservers)):
        return _herr(TRY_AGAIN)
    if isinstance(exc, dns.exception.DNSException):
        return _herr(NO_RECOVERY)
    return exc


def _parse_nameserver(spec: Any) -> tuple[str, int]:
    """``'ip'``, ``'ip:port'``, ``'[ipv6]:port'`` or ``(ip, port)`` -> ``(ip, port)``."""
    if isinstance(spec, tuple) and len(spec) == 2:
        address, port = spec
    elif isinstance(spec, str):
        text = spec.strip()
        address, port = text, 53
        if text.startswith("["):
            address, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"invalid name server {spec!r}: expected [IPv6]:port")
            if rest:
                port = rest[1:]
        elif text.count(":") == 1:
            address, port = text.split(":")
    else:
        raise ValueError(f"invalid name server {spec!r}: expected an IP address string, "
                         "optionally with :port, or an (address, port) tuple")
    if not dns.inet.is_address(address):
        raise ValueError(f"invalid name server {spec!r}: {address!r} is not an IP address")
    try:
        port = int(port)
    except (TypeError, ValueError):
        raise ValueError(f"invalid name server {spec!r}: bad port {port!r}")
    if not 0 < port < 65536:
        raise ValueError(f"invalid name server {spec!r}: port {port} out of range")
    return address, port


def _host_text(host: Any) -> str:
    """The ASCII name to look up, encoded as the standard library does."""
    if isinstance(host, str):
        return host.encode("idna").decode("ascii")
    if isinstance(host, (bytes, bytearray)):
        try:
            return bytes(host).decode("ascii")
        except UnicodeDecodeError:
            raise _gai(EAI_NONAME)
    raise TypeError(f"host must be a str, bytes or None, not {type(host).__name__}")


def _is_numeric(host: Any) -> bool:
    if not maybe_numeric(host):
        return False
    try:
        _getaddrinfo(host, None, 0, _socket.SOCK_STREAM, 0, _socket.AI_NUMERICHOST)
    except (OSError, TypeError, UnicodeError):
        return False
    return True


class Resolver(AbstractResolver):
    """Resolves names with dnspython, cooperatively (see the module docstring).

    ``nameservers``: a list of ``"ip"``, ``"ip:port"``, ``"[ipv6]:port"`` or
    ``(ip, port)`` (default: ``config.resolver_nameservers``, else
    ``/etc/resolv.conf``).  ``timeout``: seconds a whole lookup may take
    (default: ``config.resolver_timeout``, else dnspython's).  ``hosts_file``
    and ``resolv_conf`` name the files to read.
    """

    def __init__(self, hub: Any = None, nameservers: Any = None, timeout: float | None = None,
                 hosts_file: str = "/etc/hosts", resolv_conf: str = "/etc/resolv.conf") -> None:
        self.hub = hub
        if nameservers is None:
            nameservers = config.resolver_nameservers
        elif isinstance(nameservers, str):
            nameservers = [s for s in nameservers.replace(",", " ").split() if s]
        self._nameservers = [_parse_nameserver(ns) for ns in nameservers] if nameservers \
            else None
        if timeout is None:
            timeout = config.resolver_timeout
        if timeout is not None:
            timeout = float(timeout)
            if not timeout > 0:
                raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self._timeout = timeout
        self._resolv_conf = resolv_conf
        self._hosts = _hosts_file(hosts_file)
        self._dns: dns.asyncresolver.Resolver | None = None
        self._backend = _Backend()

    @property
    def resolver(self) -> dns.asyncresolver.Resolver:
        """The underlying ``dns.asyncresolver.Resolver`` (created on first use)."""
        r = self._dns
        if r is None:
            try:
                r = dns.asyncresolver.Resolver(filename=self._resolv_conf, configure=True)
            except (dns.resolver.NoResolverConfiguration, OSError):
                r = dns.asyncresolver.Resolver(configure=False)
                r.nameservers = ["127.0.0.1"]  # what the C library assumes
            if self._nameservers:
                r.nameservers = [dns.nameserver.Do53Nameserver(address, port)
                                 for address, port in self._nameservers]
            if self._timeout is not None:
                r.lifetime = self._timeout
                r.timeout = min(r.timeout, self._timeout)
            self._dns = r
        return r

    def _query(self, qname: Any, rdtype: Any, search: bool) -> Any:
        return _run(self.resolver.resolve(qname, rdtype, raise_on_no_answer=False,
                                          search=search, backend=self._backend))

    # -- forward lookups -----------------------------------------------------
    def _lookup(self, name: str, family: int) -> tuple[str, list[str], list[tuple[int, str]]]:
        """``(canonical name, aliases, [(family, address)...])`` or gaierror."""
        if not name:
            raise _gai(EAI_NONAME)
        entry = self._hosts.lookup(name)
        if entry is not None:
            canonical, aliases, addrs = entry
            addrs = [a for a in addrs if family == AF_UNSPEC or a[0] == family]
            if not addrs:
                raise _gai(EAI_NONAME)
            return canonical, list(aliases), addrs
        key = name.lower().rstrip(".")
        if key == "invalid" or key.endswith(".invalid"):
            raise _gai(EAI_NONAME)  # RFC 6761 6.4: never exists, never asked
        if key == "localhost" or key.endswith(".localhost"):
            return name, [], [a for a in _LOOPBACK if family == AF_UNSPEC or a[0] == family]
        if family == AF_INET:
            rdtypes = (dns.rdatatype.A,)
        elif family == AF_INET6:
            rdtypes = (dns.rdatatype.AAAA,)
        else:
            rdtypes = (dns.rdatatype.A, dns.rdatatype.AAAA)
        canonical = name
        aliases: list[str] = []
        addrs = []
        qname: Any = name
        for i, rdtype in enumerate(rdtypes):
            try:
                answer = self._query(qname, rdtype, search=(i == 0))
            except Exception as exc:
                if addrs:
                    break  # keep the IPv4 answer if the AAAA query failed
                raise _gai_error(exc)
            if i == 0:
                qname = answer.qname  # the absolute name the search list settled on
                canonical = answer.canonical_name.to_text(omit_final_dot=True)
                queried = answer.qname.to_text(omit_final_dot=True)
                if queried != canonical:
                    aliases.append(queried)
            af = AF_INET if rdtype == dns.rdatatype.A else AF_INET6
            for rdata in answer.rrset or ():
                addrs.append((af, rdata.address))
        if not addrs:
            raise _gai(EAI_NODATA)
        return canonical, aliases, addrs

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        result = numeric_getaddrinfo(host, port, family, type, proto, flags)
        if result is not None:
            return result
        name = _host_text(host)
        if family not in (AF_UNSPEC, AF_INET, AF_INET6):
            raise _gai(EAI_FAMILY)
        # Bad port / socket type / protocol: the standard errors, before any lookup.
        _getaddrinfo("::" if family == AF_INET6 else "0.0.0.0", port, family or AF_INET, type,
                     proto, _socket.AI_NUMERICHOST | (flags & _socket.AI_NUMERICSERV))
        v4mapped = family == AF_INET6 and flags & _socket.AI_V4MAPPED
        canonical, _, addrs = self._lookup(name, AF_UNSPEC if v4mapped else family)
        if v4mapped:
            v6 = [a for a in addrs if a[0] == AF_INET6]
            mapped = [(AF_INET6, "::ffff:" + ip) for af, ip in addrs if af == AF_INET]
            addrs = v6 + mapped if flags & _socket.AI_ALL else (v6 or mapped)
        sub_flags = (flags | _socket.AI_NUMERICHOST) & ~_socket.AI_CANONNAME
        entries: list = []
        error: BaseException | None = None
        for af, address in addrs:
            try:
                entries.extend(_getaddrinfo(address, port, af, type, proto, sub_flags))
            except gaierror as exc:  # e.g. filtered out by AI_ADDRCONFIG
                error = exc
        if not entries:
            raise error if error is not None else _gai(EAI_NONAME)
        if flags & _socket.AI_CANONNAME:
            first = entries[0]
            entries[0] = (first[0], first[1], first[2], canonical, first[4])
        return convert_addrinfo(entries)

    def gethostbyname(self, hostname: str) -> str:
        if hostname in ("", "<broadcast>") or _is_numeric(hostname):
            return _gethostbyname(hostname)
        return self._lookup(_host_text(hostname), AF_INET)[2][0][1]

    def gethostbyname_ex(self, hostname: str) -> tuple[str, list[str], list[str]]:
        if hostname in ("", "<broadcast>") or _is_numeric(hostname):
            return _gethostbyname_ex(hostname)
        canonical, aliases, addrs = self._lookup(_host_text(hostname), AF_INET)
        return canonical, aliases, [address for _, address in addrs]

    # -- reverse lookups -------------------------------------------------------
    def _reverse(self, address: str) -> tuple[str, list[str]]:
        """``(name, aliases)`` for a numeric address, or raise herror."""
        entry = self._hosts.reverse(address)
        if entry is None and "%" in address:
            entry = self._hosts.reverse(address.partition("%")[0])
        if entry is not None:
            return entry[0], list(entry[1])
        try:
            qname = dns.reversename.from_address(address.partition("%")[0])
            answer = self._query(qname, dns.rdatatype.PTR, search=False)
        except Exception as exc:
            raise _herror(exc)
        names = [rdata.target.to_text(omit_final_dot=True) for rdata in answer.rrset or ()]
        if not names:
            raise _herr(HOST_NOT_FOUND)
        return names[0], names[1:]

    def gethostbyaddr(self, ip_address: str) -> tuple[str, list[str], list[str]]:
        if _is_numeric(ip_address):
            entries = _getaddrinfo(ip_address, None, 0, _socket.SOCK_STREAM, 0,
                                   _socket.AI_NUMERICHOST)
            address = entries[0][4][0]
        else:
            address = self._lookup(_host_text(ip_address), AF_UNSPEC)[2][0][1]
            parsed = _parse_address(address)
            address = parsed[1] if parsed else address
        name, aliases = self._reverse(address)
        return name, aliases, [address.partition("%")[0]]

    def getnameinfo(self, sockaddr: tuple, flags: int) -> tuple[str, str]:
        # The C function validates the arguments and formats the numbers
        # exactly as the standard library does.
        host, port = _getnameinfo(sockaddr, (flags & ~_socket.NI_NAMEREQD) | _NI_NUMERIC)
        if not flags & _socket.NI_NUMERICHOST:
            try:
                name = self._reverse(host)[0]
            except (herror, gaierror):
                if flags & _socket.NI_NAMEREQD:
                    raise _gai(EAI_NONAME)
            else:
                if flags & _socket.NI_NOFQDN:
                    name = name.partition(".")[0]
                host = name
        if not flags & _socket.NI_NUMERICSERV:
            try:
                port = _socket.getservbyport(int(port),
                                             "udp" if flags & _socket.NI_DGRAM else "tcp")
            except (OSError, OverflowError, ValueError):
                pass
        return host, port
