"""The blocking resolver: the standard library's functions, called directly.

Every lookup blocks the whole native thread (every greenlet in it) until the
system resolver answers.  Useful for debugging, or in programs that only ever
resolve numeric addresses or ``/etc/hosts`` names.  Select it with
``GREENWEAVE_RESOLVER=blocking`` (or ``config.resolver = 'blocking'``).
"""

from __future__ import annotations

from typing import Any

from . import (
    AbstractResolver,
    _getaddrinfo,
    _gethostbyaddr,
    _gethostbyname,
    _gethostbyname_ex,
    _getnameinfo,
    convert_addrinfo,
)

__all__ = ["Resolver"]


class Resolver(AbstractResolver):
    """Calls the system resolver in the calling thread (see module docstring)."""

    def __init__(self, hub: Any = None) -> None:
        self.hub = hub

    def getaddrinfo(self, host: Any, port: Any, family: int = 0, type: int = 0,
                    proto: int = 0, flags: int = 0) -> list:
        return convert_addrinfo(_getaddrinfo(host, port, family, type, proto, flags))

    def gethostbyname(self, hostname: str) -> str:
        return _gethostbyname(hostname)

    def gethostbyname_ex(self, hostname: str) -> tuple[str, list[str], list[str]]:
        return _gethostbyname_ex(hostname)

    def gethostbyaddr(self, ip_address: str) -> tuple[str, list[str], list[str]]:
        return _gethostbyaddr(ip_address)

    def getnameinfo(self, sockaddr: tuple, flags: int) -> tuple[str, str]:
        return _getnameinfo(sockaddr, flags)
