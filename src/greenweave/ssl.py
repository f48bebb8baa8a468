"""Cooperative TLS: a drop-in for the standard :mod:`ssl` module.

Every public name of :mod:`ssl` is re-exported.  What differs:
:class:`SSLContext` (whose ``wrap_socket`` returns a cooperative
:class:`SSLSocket`), :class:`SSLSocket` itself, and the functions that build
contexts or sockets (:func:`create_default_context`, :func:`wrap_socket`,
:func:`get_server_certificate`, ``create_connection``), which build ours.

How an :class:`SSLSocket` is made
---------------------------------
It is the standard :class:`ssl.SSLSocket` *on top of* greenweave's
cooperative socket: ``class SSLSocket(ssl.SSLSocket, greenweave.socket.socket)``.
So the standard library's own code does all the TLS bookkeeping (creation,
connect-then-handshake, SNI encoding, ``getpeercert``, ``cipher``,
``makefile``, ``sendfile``, ``recv``/``recv_into`` via ``read``...) and its
``super()`` calls for plain-socket work (``connect``, ``accept``, ``recv`` of
an unwrapped socket...) land in greenweave's socket, which blocks only the
calling greenlet.  ``isinstance(s, ssl.SSLSocket)`` holds.

The descriptor is always non-blocking at the OS level (and the C socket's own
timeout is always 0), so OpenSSL never blocks: an operation that cannot
complete raises ``SSLWantReadError``/``SSLWantWriteError``.  The few methods
that drive OpenSSL (``read``, ``write``, ``send``, ``sendall``,
``do_handshake``, ``unwrap``) catch those and, unless the socket is in
non-blocking mode (timeout 0, where the standard library raises them too),
wait on the socket's read or write watcher and call OpenSSL again.  A
greenlet therefore never sees them in blocking mode.

Timeouts follow the standard library: each ``read``/``write``/handshake/
``unwrap`` call has the socket's timeout to complete, ``sendall`` has it for
the whole call, and expiry raises ``socket.timeout`` (``TimeoutError``) "The
read (write, handshake) operation timed out".  Closing the socket while
another greenlet waits on it wakes that greenlet with ``OSError(EBADF)``.
"""

from __future__ import annotations

import os as _os
import ssl as __ssl__
import sys as _sys
import types as _types
from time import monotonic as _monotonic
from typing import Any

from . import socket as _gsocket

_std_SSLContext = __ssl__.SSLContext
_std_SSLSocket = __ssl__.SSLSocket

# -- re-export the standard module -----------------------------------------------
# The standard module has no __all__: its public names are those without a
# leading underscore, minus the modules it imported.
__imports__ = [n for n, v in vars(__ssl__).items()
               if not n.startswith("_") and not isinstance(v, _types.ModuleType)]
for _name in __imports__:
    globals()[_name] = getattr(__ssl__, _name)
del _name

#: Names this module implements itself (what monkey-patching replaces in ``ssl``).
__implements__ = [
    "SSLContext",
    "SSLSocket",
    "wrap_socket",
    "get_server_certificate",
    "create_default_context",
    "_create_unverified_context",
    "_create_default_https_context",
    "_create_stdlib_context",
]
#: Standard names bound here to greenweave's cooperative versions instead.
_ours = ("socket", "create_connection")
__imports__ = [n for n in __imports__ if n not in __implements__ and n not in _ours]

__all__ = sorted(set(__imports__) | set(_ours)
                 | {n for n in __implements__ if not n.startswith("_")})

# Explicit bindings of what this module uses (also keeps linters informed).
SSLError = __ssl__.SSLError
SSLWantReadError = __ssl__.SSLWantReadError
SSLWantWriteError = __ssl__.SSLWantWriteError
SSL_ERROR_EOF = __ssl__.SSL_ERROR_EOF
CERT_NONE = __ssl__.CERT_NONE
CERT_REQUIRED = __ssl__.CERT_REQUIRED
PROTOCOL_TLS_CLIENT = __ssl__.PROTOCOL_TLS_CLIENT
PROTOCOL_TLS_SERVER = __ssl__.PROTOCOL_TLS_SERVER
Purpose = __ssl__.Purpose
DER_cert_to_PEM_cert = __ssl__.DER_cert_to_PEM_cert
_ASN1Object = __ssl__._ASN1Object
#: The legacy ``wrap_socket`` default (deprecated by the standard library, kept
#: as gevent keeps it).
_PROTOCOL_TLS = getattr(__ssl__, "PROTOCOL_TLS", PROTOCOL_TLS_CLIENT)

# Our socket, and a create_connection that makes our sockets.
socket = _gsocket.socket
create_connection = _gsocket.create_connection
_timeout = _gsocket.timeout
_GLOBAL_DEFAULT_TIMEOUT = _gsocket._GLOBAL_DEFAULT_TIMEOUT

_WANT = (SSLWantReadError, SSLWantWriteError)
#: Largest single write handed to OpenSSL (the C layer refuses > INT_MAX).
_MAX_WRITE = 1 << 30


# -- SSLContext -------------------------------------------------------------------


class SSLContext(_std_SSLContext):
    """A standard :class:`ssl.SSLContext` whose :meth:`wrap_socket` returns
    greenweave's cooperative :class:`SSLSocket`."""

    sslsocket_class: Any = None  # SSLSocket, assigned below

    def wrap_socket(self, sock: Any, server_side: bool = False,
                    do_handshake_on_connect: bool = True, suppress_ragged_eofs: bool = True,
                    server_hostname: str | bytes | None = None,
                    session: Any = None) -> SSLSocket:
        """Wrap the connected (or yet to be connected) stream socket ``sock``.

        ``sock`` may be a greenweave socket or a standard one; either way it is
        detached and a cooperative :class:`SSLSocket` takes over its descriptor
        (with its timeout).  With ``do_handshake_on_connect`` the handshake of a
        connected socket happens here (blocking only this greenlet).
        """
        return self.sslsocket_class._create(
            sock=sock, server_side=server_side,
            do_handshake_on_connect=do_handshake_on_connect,
            suppress_ragged_eofs=suppress_ragged_eofs,
            server_hostname=server_hostname, context=self, session=session)


def _rebind_std_setters() -> None:
    """Give :class:`SSLContext` the standard property setters, re-bound so that
    the name ``SSLContext`` in their bodies means the *standard* class.

    Why: the standard setters (``options``, ``verify_mode``,
    ``minimum_version``, ``_msg_callback``...) call
    ``super(SSLContext, SSLContext).X.__set__`` with the module-global
    ``SSLContext``.  Monkey-patching rebinds that global to our class, and the
    lookup would then find the standard property again: infinite recursion.
    The re-bound copies run the standard code unchanged, whatever the global.
    """
    namespace = dict(vars(__ssl__))
    namespace["SSLContext"] = _std_SSLContext
    for name, prop in list(vars(_std_SSLContext).items()):
        if not isinstance(prop, property) or prop.fset is None:
            continue
        fset = prop.fset
        if "SSLContext" not in fset.__code__.co_names:
            continue
        rebound = _types.FunctionType(fset.__code__, namespace, fset.__name__,
                                      fset.__defaults__, fset.__closure__)
        setattr(SSLContext, name, property(prop.fget, rebound, prop.fdel, prop.__doc__))


_rebind_std_setters()


# -- SSLSocket --------------------------------------------------------------------


class _SSLSocketBase(_std_SSLSocket, _gsocket.socket):
    """The standard SSLSocket over greenweave's socket (internal layer).

    ``ssl.SSLSocket._create`` initialises the socket part with
    ``super(SSLSocket, self).__init__(...)``, ``SSLSocket`` being the *global*
    name of the standard module.  Normally that skips the standard class and
    reaches greenweave's socket ``__init__``; once monkey-patching has made
    the global name our :class:`SSLSocket`, it reaches this class instead,
    hence the same ``__init__`` here.
    """

    __init__ = _gsocket.socket.__init__  # type: ignore[assignment]


class SSLSocket(_SSLSocketBase):
    """A cooperative :class:`ssl.SSLSocket`: same methods and semantics, but a
    blocking call blocks only the calling greenlet.

    Instances come from :meth:`SSLContext.wrap_socket` (or :func:`wrap_socket`).
    See the module docstring for how want-read/want-write and timeouts are
    handled.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"{self.__class__.__name__} does not have a public constructor. "
            f"Instances are returned by SSLContext.wrap_socket()."
        )

    # -- the retry loop -------------------------------------------------------
    def _ssl_retry(self, meth: Any, args: tuple, want_read: bool, deadline: float | None,
                   what: str | None) -> Any:
        """Slow path: ``meth(*args)`` (an OpenSSL call) said want-read or
        want-write; wait for that, call again, until it completes, fails or
        ``deadline`` passes (``socket.timeout`` "The <what> operation timed out";
        ``what`` None names the direction waited for)."""
        if self._read_w is None:
            self._make_watchers()
        wait = self._wait
        while True:
            try:
                wait(self._read_w if want_read else self._write_w, deadline)
            except TimeoutError:
                op = what or ("read" if want_read else "write")
                raise _timeout(f"The {op} operation timed out") from None
            try:
                return meth(*args)
            except SSLWantReadError:
                want_read = True
            except SSLWantWriteError:
                want_read = False

    def _deadline(self) -> float | None:
        timeout_ = self._timeout
        return None if timeout_ is None else _monotonic() + timeout_

    # -- the methods that drive OpenSSL -----------------------------------------
    def read(self, len: int = 1024, buffer: Any = None) -> Any:
        """Read up to ``len`` decrypted bytes (into ``buffer`` if given, returning
        the count); ``b''``/0 at end of stream."""
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Read on closed or unwrapped SSL socket.")
        try:
            try:
                if buffer is None:
                    return sslobj.read(len)
                return sslobj.read(len, buffer)
            except _WANT as exc:
                if self._timeout == 0.0:
                    raise
                want_read = isinstance(exc, SSLWantReadError)
            args = (len,) if buffer is None else (len, buffer)
            return self._ssl_retry(sslobj.read, args, want_read, self._deadline(), "read")
        except SSLError as exc:
            # The peer closed the TCP connection without a TLS close_notify.
            if exc.args[0] == SSL_ERROR_EOF and self.suppress_ragged_eofs:
                return b"" if buffer is None else 0
            raise

    def write(self, data: Any) -> int:
        """Encrypt and send ``data``; returns its length (OpenSSL writes all of it)."""
        sslobj = self._sslobj
        if sslobj is None:
            raise ValueError("Write on closed or unwrapped SSL socket.")
        try:
            return sslobj.write(data)
        except _WANT as exc:
            if self._timeout == 0.0:
                raise
            want_read = isinstance(exc, SSLWantReadError)
        return self._ssl_retry(sslobj.write, (data,), want_read, self._deadline(), "write")

    def send(self, data: Any, flags: int = 0) -> int:
        sslobj = self._sslobj
        if sslobj is None:
            return _gsocket.socket.send(self, data, flags)
        if flags != 0:
            raise ValueError(f"non-zero flags not allowed in calls to send() on {self.__class__}")
        try:
            return sslobj.write(data)
        except _WANT as exc:
            if self._timeout == 0.0:
                raise
            want_read = isinstance(exc, SSLWantReadError)
        return self._ssl_retry(sslobj.write, (data,), want_read, self._deadline(), "write")

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send every byte of ``data`` or raise; with a timeout, the whole call
        has that long (as a plain socket's ``sendall``)."""
        sslobj = self._sslobj
        if sslobj is None:
            return _gsocket.socket.sendall(self, data, flags)
        if flags != 0:
            raise ValueError(
                f"non-zero flags not allowed in calls to sendall() on {self.__class__}")
        nonblocking = self._timeout == 0.0
        deadline = None if nonblocking else self._deadline()
        write = sslobj.write
        with memoryview(data) as view, view.cast("B") as byte_view:
            amount = byte_view.nbytes
            count = 0
            while count < amount:
                chunk = byte_view[count:count + _MAX_WRITE]
                try:
                    count += write(chunk)
                    continue
                except _WANT as exc:
                    if nonblocking:
                        raise
                    want_read = isinstance(exc, SSLWantReadError)
                count += self._ssl_retry(write, (chunk,), want_read, deadline, "write")
        return None

    def do_handshake(self, block: bool = False) -> None:
        """Perform the TLS handshake.  ``block=True`` waits even in
        non-blocking mode (the socket's timeout is left unchanged)."""
        self._check_connected()
        timeout_ = self._timeout
        if timeout_ == 0.0 and block:
            timeout_ = None
        sslobj = self._sslobj
        try:
            sslobj.do_handshake()
            return
        except _WANT as exc:
            if timeout_ == 0.0:
                raise
            want_read = isinstance(exc, SSLWantReadError)
        deadline = None if timeout_ is None else _monotonic() + timeout_
        self._ssl_retry(sslobj.do_handshake, (), want_read, deadline, "handshake")

    def unwrap(self) -> Any:
        """Shut TLS down (close_notify both ways) and return the socket, now
        carrying plain data."""
        sslobj = self._sslobj
        if not sslobj:
            raise ValueError("No SSL wrapper around " + str(self))
        try:
            sock = sslobj.shutdown()
        except _WANT as exc:
            if self._timeout == 0.0:
                raise
            sock = self._ssl_retry(sslobj.shutdown, (), isinstance(exc, SSLWantReadError),
                                   self._deadline(), None)
        self._sslobj = None
        return sock


SSLContext.sslsocket_class = SSLSocket


# -- module-level functions ---------------------------------------------------------


def create_default_context(purpose: Any = Purpose.SERVER_AUTH, *, cafile: Any = None,
                           capath: Any = None, cadata: Any = None) -> SSLContext:
    """:func:`ssl.create_default_context`, returning a greenweave :class:`SSLContext`.

    ``Purpose.SERVER_AUTH`` (for clients): verify the certificate and the host
    name, trusting ``cafile``/``capath``/``cadata`` or else the system's CAs.
    ``Purpose.CLIENT_AUTH``: a server context.
    """
    if not isinstance(purpose, _ASN1Object):
        raise TypeError(purpose)
    if purpose == Purpose.SERVER_AUTH:
        context = SSLContext(PROTOCOL_TLS_CLIENT)
        context.verify_mode = CERT_REQUIRED
        context.check_hostname = True
    elif purpose == Purpose.CLIENT_AUTH:
        context = SSLContext(PROTOCOL_TLS_SERVER)
    else:
        raise ValueError(purpose)
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    elif context.verify_mode != CERT_NONE:
        context.load_default_certs(purpose)
    _set_keylog_from_env(context)
    return context


def _create_unverified_context(protocol: Any = None, *, cert_reqs: Any = CERT_NONE,
                               check_hostname: bool = False, purpose: Any = Purpose.SERVER_AUTH,
                               certfile: Any = None, keyfile: Any = None, cafile: Any = None,
                               capath: Any = None, cadata: Any = None) -> SSLContext:
    """The standard library's context for its own modules (no verification by
    default), as a greenweave :class:`SSLContext`."""
    if not isinstance(purpose, _ASN1Object):
        raise TypeError(purpose)
    if purpose == Purpose.SERVER_AUTH:
        if protocol is None:
            protocol = PROTOCOL_TLS_CLIENT
    elif purpose == Purpose.CLIENT_AUTH:
        if protocol is None:
            protocol = PROTOCOL_TLS_SERVER
    else:
        raise ValueError(purpose)
    context = SSLContext(protocol)
    context.check_hostname = check_hostname
    if cert_reqs is not None:
        context.verify_mode = cert_reqs
    if check_hostname:
        context.check_hostname = True
    if keyfile and not certfile:
        raise ValueError("certfile must be specified")
    if certfile or keyfile:
        context.load_cert_chain(certfile, keyfile)
    if cafile or capath or cadata:
        context.load_verify_locations(cafile, capath, cadata)
    elif context.verify_mode != CERT_NONE:
        context.load_default_certs(purpose)
    _set_keylog_from_env(context)
    return context


def _set_keylog_from_env(context: SSLContext) -> None:
    """Log TLS secrets to $SSLKEYLOGFILE, as the standard contexts do."""
    if hasattr(context, "keylog_filename"):
        keylogfile = _os.environ.get("SSLKEYLOGFILE")
        if keylogfile and not _sys.flags.ignore_environment:
            context.keylog_filename = keylogfile


_create_stdlib_context = _create_unverified_context
_create_default_https_context = create_default_context


def wrap_socket(sock: Any, keyfile: Any = None, certfile: Any = None, server_side: bool = False,
                cert_reqs: Any = CERT_NONE, ssl_version: Any = _PROTOCOL_TLS,
                ca_certs: Any = None, do_handshake_on_connect: bool = True,
                suppress_ragged_eofs: bool = True, ciphers: str | None = None) -> SSLSocket:
    """The legacy module-level ``wrap_socket`` (gone from the standard library
    in 3.12; gevent keeps it): a fresh :class:`SSLContext` configured from the
    arguments wraps ``sock``.  Prefer ``SSLContext.wrap_socket``."""
    if server_side and not certfile:
        raise ValueError("certfile must be specified for server-side operations")
    if keyfile and not certfile:
        raise ValueError("certfile must be specified")
    context = SSLContext(ssl_version)
    context.verify_mode = cert_reqs
    if ca_certs:
        context.load_verify_locations(ca_certs)
    if certfile:
        context.load_cert_chain(certfile, keyfile)
    if ciphers:
        context.set_ciphers(ciphers)
    return context.wrap_socket(sock, server_side=server_side,
                               do_handshake_on_connect=do_handshake_on_connect,
                               suppress_ragged_eofs=suppress_ragged_eofs)


def get_server_certificate(addr: tuple[str, int], ssl_version: Any = PROTOCOL_TLS_CLIENT,
                           ca_certs: Any = None, timeout: Any = _GLOBAL_DEFAULT_TIMEOUT) -> str:
    """Connect to ``addr`` = ``(host, port)`` (cooperatively), and return the
    server's certificate as PEM.  With ``ca_certs`` the certificate must verify
    against those CAs (the host name is not checked); ``timeout`` applies to
    the connection and the handshake."""
    host, _port = addr
    cert_reqs = CERT_REQUIRED if ca_certs is not None else CERT_NONE
    context = _create_stdlib_context(ssl_version, cert_reqs=cert_reqs, cafile=ca_certs)
    with create_connection(addr, timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=host) as sslsock:
            dercert = sslsock.getpeercert(True)
    return DER_cert_to_PEM_cert(dercert)

