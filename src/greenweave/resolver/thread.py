"""The default resolver: the standard library's functions in the thread pool.

Each lookup runs ``_socket.getaddrinfo`` (etc.) in a native thread of the
hub's pool (``get_hub().threadpool``), so it blocks only the calling greenlet
and answers exactly as the system resolver does (``/etc/nsswitch.conf``,
``/etc/hosts``, DNS, mDNS...).  Requests that need no lookup at all (numeric
addresses, ``host=None``, numeric-only ``getnameinfo``) are answered right
away without a thread hop.

How many lookups run at once is bounded by the pool's size
(``config.threadpool_size``); further ones queue.
"""

from __future__ import annotations

from typing import Any

from . import (
    NI_NUMERICHOST,
    NI_NUMERICSERV,
    AbstractResolver,
    _getaddrinfo,
    _gethostbyaddr,
    _gethostbyname,
    _gethostbyname_ex,
    _getnameinfo,
    convert_addrinfo,
    is_ipv4,
    numeric_getaddrinfo,
)

__all__ = ["Resolver"]

_NUMERIC_NI = NI_NUMERICHOST | NI_NUMERICSERV


class Resolver(AbstractResolver):
    """Runs the system resolver in ``hub``'s thread pool (see module docstring)."""

    def __init__(self, hub: Any = None) -> None:
        if hub is None:
            from .._core.hub import get_hub

            hub = get_hub()
        self.hub = hub

    @property
    def pool(self) -> Any:
        """The thread pool the lookups run in: the hub's."""
        return self.hub.threadpool

    def _apply(self, func: Any, args: tuple) -> Any:
        # (ThreadPool.apply raises errors here without printing them.)
        return self.hub.threadpool.apply(func, args)

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        result = numeric_getaddrinfo(host, port, family, type, proto, flags)
        if result is not None:
            return result
        return convert_addrinfo(
            self._apply(_getaddrinfo, (host, port, family, type, proto, flags)))

    def gethostbyname(self, hostname: str) -> str:
        if is_ipv4(hostname):
            return hostname
        return self._apply(_gethostbyname, (hostname,))

    def gethostbyname_ex(self, hostname: str) -> tuple[str, list[str], list[str]]:
        if is_ipv4(hostname):
            return (hostname, [], [hostname])
        return self._apply(_gethostbyname_ex, (hostname,))

    def gethostbyaddr(self, ip_address: str) -> tuple[str, list[str], list[str]]:
        return self._apply(_gethostbyaddr, (ip_address,))

    def getnameinfo(self, sockaddr: tuple, flags: int) -> tuple[str, str]:
        if isinstance(flags, int) and flags & _NUMERIC_NI == _NUMERIC_NI:
            return _getnameinfo(sockaddr, flags)
        return self._apply(_getnameinfo, (sockaddr, flags))
