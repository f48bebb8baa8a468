"""TCP and UDP servers: :class:`StreamServer` and :class:`DatagramServer`.

::

    def echo(sock, address):
        with sock:
            while data := sock.recv(4096):
                sock.sendall(data)

    StreamServer(("127.0.0.1", 8000), echo).serve_forever()

Accepted TCP sockets are cooperative :class:`greenweave.socket.socket`
objects with ``TCP_NODELAY`` set (a request/response protocol must not wait
on Nagle's algorithm).  TLS: pass ``ssl_context=`` (a
:class:`greenweave.ssl.SSLContext`) or the classic ``keyfile=``/``certfile=``
(and ``ca_certs``, ``cert_reqs``, ``ciphers``...) keyword arguments; the
handshake happens in the connection's own greenlet, never in the accept loop.
"""

from __future__ import annotations

import _socket
import os
from typing import Any, Callable

from . import socket as _gsocket
from .baseserver import BaseServer

__all__ = ["StreamServer", "DatagramServer"]

DEFAULT_REUSE_ADDR = 1 if os.name == "posix" else None

_ss_accept = _socket.socket._accept
_ss_recvfrom = _socket.socket.recvfrom
_TCP_FAMILIES = frozenset({_socket.AF_INET, _socket.AF_INET6})
_IPPROTO_TCP = _socket.IPPROTO_TCP
_TCP_NODELAY = _socket.TCP_NODELAY
_SOCK_STREAM = _socket.SOCK_STREAM

#: ``ssl_args`` keywords that configure the context; the rest go to wrap_socket.
_CONTEXT_ARGS = ("keyfile", "certfile", "ca_certs", "cert_reqs", "ssl_version", "ciphers",
                 "password")
_WRAP_ARGS = ("do_handshake_on_connect", "suppress_ragged_eofs", "server_side")


def _tcp_listener(address: Any, backlog: int = 50, reuse_addr: Any = None,
                  family: int = _socket.AF_INET) -> Any:
    """A cooperative TCP socket bound to ``address`` and listening."""
    sock = _gsocket.socket(family, _socket.SOCK_STREAM)
    try:
        if reuse_addr is not None:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, reuse_addr)
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror}: (while binding to {address!r})") from None
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def _udp_socket(address: Any, reuse_addr: Any = None, family: int = _socket.AF_INET) -> Any:
    sock = _gsocket.socket(family, _socket.SOCK_DGRAM)
    try:
        if reuse_addr is not None:
            sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, reuse_addr)
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror}: (while binding to {address!r})") from None
    except BaseException:
        sock.close()
        raise
    return sock


class StreamServer(BaseServer):
    """A TCP server: calls ``handle(socket, address)`` for each connection.

    ``backlog`` is the listen queue length (default :attr:`backlog`); extra
    keyword arguments enable TLS (see the module docstring).
    """

    #: Listen backlog used when none is given.
    backlog = 256
    #: SO_REUSEADDR value set on sockets this server creates (None: leave alone).
    reuse_addr = DEFAULT_REUSE_ADDR

    def __init__(self, listener: Any, handle: Callable[..., Any] | None = None,
                 backlog: int | None = None, spawn: Any = "default", **ssl_args: Any) -> None:
        self.ssl_args = ssl_args
        self._ssl_context: Any = None
        if backlog is not None:
            if hasattr(listener, "accept"):
                raise TypeError("backlog must be None when a socket instance is passed")
            self.backlog = backlog
        BaseServer.__init__(self, listener, handle=handle, spawn=spawn)

    @property
    def ssl_enabled(self) -> bool:  # type: ignore[override]
        """True when TLS arguments were given."""
        return bool(self.ssl_args)

    def set_handle(self, handle: Callable[..., Any] | None) -> None:
        BaseServer.set_handle(self, handle)
        if self.ssl_enabled:
            self._handle = self.wrap_socket_and_handle

    def set_listener(self, listener: Any) -> None:
        BaseServer.set_listener(self, listener)

    def init_socket(self) -> None:
        """Bind and listen on the address given as listener (if not a socket)."""
        if self.socket is None:
            self.socket = self.get_listener(self.address, self.backlog, self.family)
            self.address = self.socket.getsockname()
        elif not self.socket.getsockopt(_socket.SOL_SOCKET, _socket.SO_ACCEPTCONN):
            self.socket.listen(self.backlog)
        if self.ssl_enabled and self._ssl_context is None:
            self._ssl_context = self._make_ssl_context()

    @classmethod
    def get_listener(cls, address: Any, backlog: int | None = None,
                     family: int | None = None) -> Any:
        """A listening cooperative socket for ``address``."""
        if backlog is None:
            backlog = cls.backlog
        return _tcp_listener(address, backlog=backlog, reuse_addr=cls.reuse_addr,
                             family=family if family is not None else _socket.AF_INET)

    def do_read(self) -> Any:
        """Accept one connection (non-blocking): ``(socket, address)`` or None."""
        listener = self.socket
        try:
            fd, address = _ss_accept(listener)
        except BlockingIOError:
            return None
        family = self.family
        sock = _gsocket.socket(family, _SOCK_STREAM, 0, fd)
        if family in _TCP_FAMILIES:
            try:
                sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
            except OSError:  # the peer may already be gone
                pass
        return sock, address

    def do_close(self, sock: Any, *args: Any) -> None:
        """Close a connection that could not be handed to a handler."""
        sock.close()

    # -- TLS -----------------------------------------------------------
    def _make_ssl_context(self) -> Any:
        from . import ssl as _gssl

        args = self.ssl_args
        context = args.get("ssl_context")
        if context is not None:
            return context
        version = args.get("ssl_version")
        context = _gssl.SSLContext(version if version is not None else _gssl.PROTOCOL_TLS_SERVER)
        certfile = args.get("certfile")
        if certfile:
            context.load_cert_chain(certfile, args.get("keyfile"), args.get("password"))
        cert_reqs = args.get("cert_reqs")
        if cert_reqs is not None:
            context.verify_mode = cert_reqs
        ca_certs = args.get("ca_certs")
        if ca_certs:
            context.load_verify_locations(ca_certs)
        ciphers = args.get("ciphers")
        if ciphers:
            context.set_ciphers(ciphers)
        return context

    def wrap_socket(self, sock: Any, **kwargs: Any) -> Any:
        """Wrap an accepted socket for TLS as the server's ssl arguments say."""
        context = self._ssl_context
        if context is None:
            context = self._ssl_context = self._make_ssl_context()
        return context.wrap_socket(
            sock, server_side=True,
            do_handshake_on_connect=kwargs.get("do_handshake_on_connect", True),
            suppress_ragged_eofs=kwargs.get("suppress_ragged_eofs", True))

    def wrap_socket_and_handle(self, client_socket: Any, address: Any) -> Any:
        """Do the TLS handshake (in the connection's greenlet), then ``handle``."""
        try:
            ssl_socket = self.wrap_socket(client_socket, **{
                k: v for k, v in self.ssl_args.items() if k in _WRAP_ARGS})
        except BaseException:
            client_socket.close()
            raise
        return self.handle(ssl_socket, address)


class DatagramServer(BaseServer):
    """A UDP server: calls ``handle(data, address)`` for each datagram; answer
    with :meth:`sendto`."""

    reuse_addr = DEFAULT_REUSE_ADDR
    #: Largest datagram read (bigger ones are truncated by the kernel).
    max_datagram_size = 65536

    def __init__(self, listener: Any, handle: Callable[..., Any] | None = None,
                 spawn: Any = "default") -> None:
        BaseServer.__init__(self, listener, handle=handle, spawn=spawn)

    def init_socket(self) -> None:
        if self.socket is None:
            self.socket = self.get_listener(self.address, self.family)
            self.address = self.socket.getsockname()

    @classmethod
    def get_listener(cls, address: Any, family: int | None = None) -> Any:
        return _udp_socket(address, reuse_addr=cls.reuse_addr,
                           family=family if family is not None else _socket.AF_INET)

    def do_read(self) -> Any:
        """Read one datagram (non-blocking): ``(data, address)`` or None."""
        try:
            return _ss_recvfrom(self.socket, self.max_datagram_size)
        except BlockingIOError:
            return None

    def sendto(self, data: bytes, address: Any) -> int:
        """Send ``data`` to ``address`` from the server's socket."""
        sock = self.socket
        if sock is None:
            raise OSError(9, "DatagramServer is closed")
        return sock.sendto(data, address)
