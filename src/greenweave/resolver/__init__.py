"""Name resolution: the ``getaddrinfo`` family behind :mod:`greenweave.socket`.

Each hub has a resolver (``get_hub().resolver``), an instance of the class
named by ``config.resolver`` / ``GREENWEAVE_RESOLVER``:

``thread`` (default, :mod:`greenweave.resolver.thread`)
    the standard library's functions run in the hub's native thread pool, so
    a lookup blocks only its greenlet; answers are exactly the system's.
``blocking`` (:mod:`greenweave.resolver.blocking`)
    the standard library's functions called directly: every lookup blocks the
    whole thread.  For debugging, or programs that never resolve names.
``dnspython`` (:mod:`greenweave.resolver.dnspython`, needs ``dnspython``)
    pure-Python lookups: ``/etc/hosts`` and numeric addresses answered
    directly, other names asked of the name servers over cooperative sockets.

Every resolver has ``getaddrinfo(host, port, family=0, type=0, proto=0,
flags=0)``, ``gethostbyname(hostname)``, ``gethostbyname_ex(hostname)``,
``gethostbyaddr(ip_address)``, ``getnameinfo(sockaddr, flags)`` and
``close()``, with the standard library's signatures, results and errors
(:class:`socket.gaierror` / :class:`socket.herror` with the standard codes).

The standard functions are taken from the ``_socket`` C module, which monkey
patching never replaces, so a resolver never calls back into itself.
"""

from __future__ import annotations

import _socket
import socket as _stdsocket
from typing import Any

__all__ = ["AbstractResolver"]

# The C implementations (never monkey-patched).
_getaddrinfo = _socket.getaddrinfo
_gethostbyname = _socket.gethostbyname
_gethostbyname_ex = _socket.gethostbyname_ex
_gethostbyaddr = _socket.gethostbyaddr
_getnameinfo = _socket.getnameinfo

AI_NUMERICHOST = _socket.AI_NUMERICHOST
NI_NUMERICHOST = _socket.NI_NUMERICHOST
NI_NUMERICSERV = _socket.NI_NUMERICSERV
EAI_NONAME = _socket.EAI_NONAME

# Integer -> enum member, as socket.getaddrinfo() reports them.
_FAMILIES: dict[int, Any] = {int(m): m for m in _stdsocket.AddressFamily}
_KINDS: dict[int, Any] = {int(m): m for m in _stdsocket.SocketKind}


def convert_addrinfo(entries: list) -> list:
    """``_socket.getaddrinfo`` output with the enum types ``socket.getaddrinfo``
    returns (``AddressFamily``, ``SocketKind``)."""
    families = _FAMILIES
    kinds = _KINDS
    return [(families.get(af, af), kinds.get(kind, kind), proto, canon, sa)
            for af, kind, proto, canon, sa in entries]


def maybe_numeric(host: Any) -> bool:
    """Cheap pre-check: could ``host`` be a numeric address (or need no lookup)?

    IPv6 literals contain ':'; every IPv4 form ``inet_aton`` accepts starts
    with a digit.  A false positive only costs one failed numeric parse.
    Non-string hosts return True so the C function raises the standard
    ``TypeError`` right away.
    """
    if isinstance(host, str):
        return host[:1].isdigit() or ":" in host
    if isinstance(host, (bytes, bytearray)):
        return host[:1].isdigit() or b":" in host
    return True


def numeric_getaddrinfo(host: Any, port: Any, family: int, type: int, proto: int,
                        flags: int) -> list | None:
    """The answer when ``host`` needs no lookup (None, numeric), else None.

    Errors other than "not numeric" (bad port, family, socket type...) are
    raised as the standard library raises them.
    """
    if host is None or flags & AI_NUMERICHOST:
        return convert_addrinfo(_getaddrinfo(host, port, family, type, proto, flags))
    if not maybe_numeric(host):
        return None
    try:
        return convert_addrinfo(
            _getaddrinfo(host, port, family, type, proto, flags | AI_NUMERICHOST))
    except _socket.gaierror as exc:
        if exc.errno == EAI_NONAME:
            return None
        raise


def is_ipv4(host: Any) -> bool:
    """True if ``host`` (str) is a dotted-quad IPv4 address."""
    try:
        _socket.inet_pton(_socket.AF_INET, host)
    except (OSError, TypeError, ValueError):
        return False
    return True


class AbstractResolver:
    """The resolver interface (see the module docstring)."""

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        raise NotImplementedError

    def gethostbyname(self, hostname: str) -> str:
        raise NotImplementedError

    def gethostbyname_ex(self, hostname: str) -> tuple[str, list[str], list[str]]:
        raise NotImplementedError

    def gethostbyaddr(self, ip_address: str) -> tuple[str, list[str], list[str]]:
        raise NotImplementedError

    def getnameinfo(self, sockaddr: tuple, flags: int) -> tuple[str, str]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the resolver holds (nothing for the built-in ones)."""

    def _on_fork(self) -> None:
        """Called in a forked child (nothing to do for the built-in ones)."""

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} at {id(self):#x}>"
