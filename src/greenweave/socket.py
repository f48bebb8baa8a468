"""Cooperative sockets: a drop-in for the standard :mod:`socket` module.

Every public name of :mod:`socket` is re-exported; the blocking parts are
replaced.  A blocking call blocks only the calling greenlet: the other
greenlets of the thread run meanwhile.

How a blocking method works
---------------------------
The OS-level descriptor is *always* non-blocking; the socket's timeout
(``settimeout``/``gettimeout``, ``None`` = block, ``0.0`` = non-blocking) is
emulated in Python.  Every I/O method first tries the system call; only when
it fails with ``EAGAIN`` (``BlockingIOError``) does the greenlet wait for the
descriptor to become ready and try again.  In non-blocking mode the
``BlockingIOError`` is raised to the caller, as with the standard library;
when a timeout is set and expires, :class:`TimeoutError` (``socket.timeout``)
``"timed out"`` is raised.

Each socket keeps one read and one write I/O watcher for its whole life
(created on the first wait, closed with the descriptor).  Waiting is
``watcher.start`` + a switch to the hub + ``watcher.stop``: the loop narrows
the kernel registration lazily, so a socket that waits over and over costs a
single ``epoll_ctl`` in its lifetime.  A timer is armed only when a socket
with a timeout actually has to wait.

Why a subclass of :class:`socket.socket` (gevent wraps instead)
---------------------------------------------------------------
:class:`socket` here *is a* standard ``socket.socket`` (and so a
``_socket.socket``).  The C methods are called directly on ``self``
(``_socket.socket.recv(self, n)``): no attribute delegation to an inner
object, so the hot path is one Python frame plus the system call; every
method that never blocks (``bind``, ``listen``, ``getsockopt``, ``fileno``,
...) is the C method itself with no Python overhead at all; and
``isinstance(sock, socket.socket)`` holds, which ``ssl``, ``asyncio`` and
other standard-library code check.  gevent's wrapper exists largely for
historical (Python 2) reasons.

Waiting conflicts
-----------------
Closing a socket (or detaching it) while another greenlet waits on it wakes
that greenlet with ``OSError(EBADF)``.  Two greenlets waiting to read (or
to write) the same socket at the same time is a bug in the caller: the second
one gets :class:`~greenweave.exceptions.ConcurrentObjectUseError`.
``shutdown()`` cancels nothing: as with a blocking socket, a parked reader
then wakes up and sees end-of-file (gevent instead cancels it with EBADF).

Name resolution (``getaddrinfo``, ``gethostbyname``, ...; also host names
given to ``connect``) goes through the hub's resolver (``get_hub().resolver``,
chosen by ``config.resolver``), except for literal addresses, which the
standard functions answer without any I/O.

A socket belongs to the hub of the thread in which it first waits; use it
from that thread only (as with gevent).
"""

from __future__ import annotations

import _socket
import errno as _errno
import os as _os
import socket as __socket__
from math import isnan as _isnan
from operator import index as _index
from time import monotonic as _monotonic
from typing import Any

from greenlet import getcurrent as _getcurrent
from greenlet import greenlet as _RawGreenlet

from ._core.hub import get_hub
from .exceptions import BlockingSwitchOutError, ConcurrentObjectUseError

# -- re-export the standard module ---------------------------------------
_std_names = [n for n in __socket__.__all__ if hasattr(__socket__, n)]
for _name in _std_names:
    globals()[_name] = getattr(__socket__, _name)
del _name

#: Names this module implements itself (cooperatively) rather than re-exports.
__implements__ = [
    "socket",
    "SocketType",
    "create_connection",
    "create_server",
    "socketpair",
    "fromfd",
    "getaddrinfo",
    "gethostbyname",
    "gethostbyname_ex",
    "gethostbyaddr",
    "getnameinfo",
    "getfqdn",
]
#: Names gevent adds to the standard ones.
__extensions__ = ["wait_read", "wait_write", "wait_readwrite", "cancel_wait", "cancel_wait_ex"]

__all__ = sorted(set(_std_names) | set(__implements__) | set(__extensions__)
                 | {"recv_fds", "send_fds", "SocketIO"} & set(dir(__socket__)))

error = __socket__.error
timeout = __socket__.timeout
gaierror = __socket__.gaierror
herror = __socket__.herror
getdefaulttimeout = _socket.getdefaulttimeout
setdefaulttimeout = _socket.setdefaulttimeout
has_ipv6 = __socket__.has_ipv6
has_dualstack_ipv6 = __socket__.has_dualstack_ipv6
if hasattr(__socket__, "recv_fds"):
    recv_fds = __socket__.recv_fds
    send_fds = __socket__.send_fds
SocketIO = __socket__.SocketIO
AddressFamily = __socket__.AddressFamily
SocketKind = __socket__.SocketKind

AF_INET = __socket__.AF_INET
AF_INET6 = __socket__.AF_INET6
AF_UNSPEC = __socket__.AF_UNSPEC
SOCK_STREAM = __socket__.SOCK_STREAM
SOL_SOCKET = __socket__.SOL_SOCKET
SO_ERROR = __socket__.SO_ERROR
SO_REUSEADDR = __socket__.SO_REUSEADDR
AI_NUMERICHOST = __socket__.AI_NUMERICHOST
AI_NUMERICSERV = __socket__.AI_NUMERICSERV
NI_NUMERICHOST = __socket__.NI_NUMERICHOST
NI_NUMERICSERV = __socket__.NI_NUMERICSERV

# Standard functions captured at import: monkey-patching may later replace the
# standard module's attributes with ours, and calling through the module would
# then recurse.
_std_getaddrinfo = __socket__.getaddrinfo
_std_gethostname = __socket__.gethostname
_GiveupOnSendfile = __socket__._GiveupOnSendfile

#: The sentinel the standard library uses for "no timeout argument given";
#: shared so that code passing ``socket._GLOBAL_DEFAULT_TIMEOUT`` works.
_GLOBAL_DEFAULT_TIMEOUT = __socket__._GLOBAL_DEFAULT_TIMEOUT

_SOCK_NONBLOCK = int(getattr(__socket__, "SOCK_NONBLOCK", 0))
_MSG_DONTWAIT = int(getattr(__socket__, "MSG_DONTWAIT", 0))
_AF_UNIX = getattr(__socket__, "AF_UNIX", None)

# The C methods, called directly on our instances.
_ss = _socket.socket
_ss_init = _ss.__init__
_ss_recv = _ss.recv
_ss_recv_into = _ss.recv_into
_ss_recvfrom = _ss.recvfrom
_ss_recvfrom_into = _ss.recvfrom_into
_ss_send = _ss.send
_ss_sendall = _ss.sendall
_ss_sendto = _ss.sendto
_ss_accept = _ss._accept
_ss_connect = _ss.connect
_ss_connect_ex = _ss.connect_ex
_ss_close = _ss.close
_ss_detach = _ss.detach
_ss_fileno = _ss.fileno
_ss_gettimeout = _ss.gettimeout
_ss_setblocking = _ss.setblocking
_ss_getsockopt = _ss.getsockopt
_ss_family = _ss.family.__get__
_ss_type = _ss.type.__get__
_ss_proto = _ss.proto.__get__
_ss_recvmsg = getattr(_ss, "recvmsg", None)
_ss_recvmsg_into = getattr(_ss, "recvmsg_into", None)
_ss_sendmsg = getattr(_ss, "sendmsg", None)

_switch = _RawGreenlet.switch
_TIMED_OUT = object()
_NONE = object()

_CONNECT_PENDING = frozenset({_errno.EINPROGRESS, _errno.EALREADY, _errno.EWOULDBLOCK,
                              _errno.EAGAIN})


class cancel_wait_ex(OSError):
    """Raised in a greenlet whose socket was closed (by another greenlet) while
    it waited on it: an ``OSError`` with ``errno`` ``EBADF``."""

    def __init__(self, *args: Any) -> None:
        if not args:
            args = (_errno.EBADF, "File descriptor was closed in another greenlet")
        OSError.__init__(self, *args)


def _in_hub_error() -> BlockingSwitchOutError:
    return BlockingSwitchOutError(
        "Impossible to call a blocking function in the event loop callback "
        "(a socket operation would block the hub)"
    )


class socket(__socket__.socket):
    """A cooperative ``socket.socket``: same constructor, methods and semantics.

    See the module docstring for how blocking calls wait and time out.
    """

    __slots__ = ("_timeout", "_read_w", "_write_w", "_hub")

    def __init__(self, family: int = -1, type: int = -1, proto: int = -1,
                 fileno: int | None = None) -> None:
        if fileno is None:
            if family == -1:
                family = AF_INET
            if type == -1:
                type = SOCK_STREAM
            if proto == -1:
                proto = 0
            # Created non-blocking by socket(2) itself: no extra fcntl/ioctl.
            _ss_init(self, family, type | _SOCK_NONBLOCK, proto)
            if not _SOCK_NONBLOCK:  # pragma: no cover - platforms without it
                _ss_setblocking(self, False)
        else:
            # Always (re)set O_NONBLOCK: the descriptor may be blocking whatever
            # ``type`` claims.
            _ss_init(self, family, type, proto, fileno)
            _ss_setblocking(self, False)
        self._io_refs = 0
        self._closed = False
        self._timeout = _socket.getdefaulttimeout()
        self._read_w = None
        self._write_w = None
        self._hub = None

    # -- timeouts ---------------------------------------------------------
    def settimeout(self, value: float | None) -> None:
        """Set the timeout of blocking operations: ``None`` blocks, ``0``
        makes the socket non-blocking, ``x > 0`` raises ``timeout`` after x s."""
        if value is None:
            self._timeout = None
            return
        if value.__class__ is not float:
            if isinstance(value, float):
                value = float(value)
            else:
                value = float(_index(value))
        if _isnan(value):
            raise ValueError("Invalid value NaN (not a number)")
        if value < 0.0:
            raise ValueError("Timeout value out of range")
        self._timeout = value

    def gettimeout(self) -> float | None:
        """The timeout in seconds (``None``: blocking; ``0.0``: non-blocking)."""
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        """``setblocking(True)`` is ``settimeout(None)``; ``False`` is ``settimeout(0)``."""
        self._timeout = None if flag else 0.0

    def getblocking(self) -> bool:
        """False only in non-blocking mode (timeout 0)."""
        return self._timeout != 0.0

    @property
    def timeout(self) -> float | None:
        return self._timeout

    # -- waiting ------------------------------------------------------------
    def _make_watchers(self) -> None:
        fd = _ss_fileno(self)
        if fd < 0:
            raise OSError(_errno.EBADF, "Bad file descriptor")
        hub = self._hub = get_hub()
        loop = hub.loop
        self._write_w = loop.io(fd, 2)
        self._read_w = loop.io(fd, 1)

    def _wait(self, watcher: Any, deadline: float | None) -> None:
        """Block this greenlet until ``watcher`` fires or ``deadline`` passes."""
        if watcher.callback is not None:
            raise self._concurrent_use(watcher)
        hub = self._hub
        cur = _getcurrent()
        if cur is hub:
            raise _in_hub_error()
        if deadline is None:
            try:
                watcher.start(cur.switch)
                _switch(hub)
            finally:
                watcher.stop()
            return
        remaining = deadline - _monotonic()
        if remaining <= 0.0:
            raise timeout("timed out")
        timer = hub.loop.timer(remaining)
        try:
            watcher.start(cur.switch)
            timer.start(cur.switch, _TIMED_OUT)
            result = _switch(hub)
        finally:
            watcher.stop()
            timer.stop()
        if result is _TIMED_OUT:
            raise timeout("timed out")

    def _concurrent_use(self, watcher: Any) -> ConcurrentObjectUseError:
        what = "read from" if watcher is self._read_w else "write to"
        return ConcurrentObjectUseError(
            f"another greenlet is already waiting to {what} {self!r} "
            f"(waiter: {watcher.callback!r})"
        )

    def _retry_until(self, watcher: Any, meth: Any, args: tuple) -> Any:
        """Wait-and-retry loop for a socket with a timeout."""
        deadline = _monotonic() + self._timeout
        wait = self._wait
        while True:
            wait(watcher, deadline)
            try:
                return meth(self, *args)
            except BlockingIOError:
                pass

    # The slow paths of every read and write: ``meth`` said EAGAIN, so wait
    # on the direction's watcher and retry.  The loop is kept flat (no
    # helper calls inside) for a socket without timeout.

    def _read_retry(self, meth: Any, *args: Any) -> Any:
        """Slow path of the read methods."""
        watcher = self._read_w
        if watcher is None:
            self._make_watchers()
            watcher = self._read_w
        return self._wait_retry(watcher, meth, args)

    def _write_retry(self, meth: Any, *args: Any) -> Any:
        """Slow path of the write methods."""
        watcher = self._write_w
        if watcher is None:
            self._make_watchers()
            watcher = self._write_w
        return self._wait_retry(watcher, meth, args)

    def _wait_retry(self, watcher: Any, meth: Any, args: tuple) -> Any:
        if self._timeout is not None:
            return self._retry_until(watcher, meth, args)
        hub = self._hub
        while True:
            if watcher.callback is not None:
                raise self._concurrent_use(watcher)
            cur = _getcurrent()
            if cur is hub:
                raise _in_hub_error()
            try:
                watcher.start(cur.switch)
                _switch(hub)
            finally:
                watcher.stop()
            try:
                return meth(self, *args)
            except BlockingIOError:
                pass

    # -- reading ------------------------------------------------------------
    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        try:
            return _ss_recv(self, bufsize, flags)
        except BlockingIOError:
            if self._timeout == 0.0 or flags & _MSG_DONTWAIT:
                raise
        return self._read_retry(_ss_recv, bufsize, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        try:
            return _ss_recv_into(self, buffer, nbytes, flags)
        except BlockingIOError:
            if self._timeout == 0.0 or flags & _MSG_DONTWAIT:
                raise
        return self._read_retry(_ss_recv_into, buffer, nbytes, flags)

    def recvfrom(self, bufsize: int, flags: int = 0) -> tuple[bytes, Any]:
        try:
            return _ss_recvfrom(self, bufsize, flags)
        except BlockingIOError:
            if self._timeout == 0.0 or flags & _MSG_DONTWAIT:
                raise
        return self._read_retry(_ss_recvfrom, bufsize, flags)

    def recvfrom_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> tuple[int, Any]:
        try:
            return _ss_recvfrom_into(self, buffer, nbytes, flags)
        except BlockingIOError:
            if self._timeout == 0.0 or flags & _MSG_DONTWAIT:
                raise
        return self._read_retry(_ss_recvfrom_into, buffer, nbytes, flags)

    if _ss_recvmsg is not None:

        def recvmsg(self, *args: Any) -> tuple:
            try:
                return _ss_recvmsg(self, *args)
            except BlockingIOError:
                if self._timeout == 0.0:
                    raise
            return self._read_retry(_ss_recvmsg, *args)

        def recvmsg_into(self, *args: Any) -> tuple:
            try:
                return _ss_recvmsg_into(self, *args)
            except BlockingIOError:
                if self._timeout == 0.0:
                    raise
            return self._read_retry(_ss_recvmsg_into, *args)

    def accept(self) -> tuple[socket, Any]:
        """Wait for a connection; return ``(new_socket, address)``.

        The new socket has the default timeout (``getdefaulttimeout()``).
        """
        try:
            fd, addr = _ss_accept(self)
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
            fd, addr = self._read_retry(_ss_accept)
        return socket(_ss_family(self), _ss_type(self), _ss_proto(self), fd), addr

    # -- writing ------------------------------------------------------------
    def send(self, data: Any, flags: int = 0) -> int:
        try:
            return _ss_send(self, data, flags)
        except BlockingIOError:
            if self._timeout == 0.0 or flags & _MSG_DONTWAIT:
                raise
        return self._write_retry(_ss_send, data, flags)

    def sendto(self, *args: Any) -> int:
        """``sendto(data, address)`` or ``sendto(data, flags, address)``."""
        try:
            return _ss_sendto(self, *args)
        except BlockingIOError:
            if self._timeout == 0.0:
                raise
        return self._write_retry(_ss_sendto, *args)

    if _ss_sendmsg is not None:

        def sendmsg(self, *args: Any) -> int:
            try:
                return _ss_sendmsg(self, *args)
            except BlockingIOError:
                if self._timeout == 0.0:
                    raise
            return self._write_retry(_ss_sendmsg, *args)

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send every byte of ``data`` or raise.

        With a timeout, the whole call has that long (as in the standard
        library); the ``timeout`` raised then says how many bytes were sent
        (also available as its ``bytes_sent`` attribute).
        """
        timeout_ = self._timeout
        if timeout_ == 0.0:
            return _ss_sendall(self, data, flags)
        try:
            sent = _ss_send(self, data, flags)
        except BlockingIOError:
            sent = 0
        else:
            if data.__class__ is bytes and sent == len(data):
                return None
        with memoryview(data) as raw:
            with raw.cast("B") as view:
                total = view.nbytes
                if sent >= total:
                    return None
                if self._read_w is None:
                    self._make_watchers()
                deadline = None if timeout_ is None else _monotonic() + timeout_
                wait = self._wait
                watcher = self._write_w
                while sent < total:
                    try:
                        wait(watcher, deadline)
                    except TimeoutError:
                        exc = timeout(f"timed out (sent {sent} of {total} bytes)")
                        exc.bytes_sent = sent  # type: ignore[attr-defined]
                        raise exc from None
                    try:
                        sent += _ss_send(self, view[sent:], flags)
                    except BlockingIOError:
                        pass
        return None

    def _sendfile_use_sendfile(self, file: Any, offset: int = 0, count: int | None = None) -> int:
        # The standard version waits with a blocking selector; this one waits
        # cooperatively.  Giving up (not a regular file, ...) falls back to
        # _sendfile_use_send, which is built on our send().
        self._check_sendfile_params(file, offset, count)
        giveup = _GiveupOnSendfile
        try:
            fileno = file.fileno()
        except (AttributeError, OSError, ValueError) as err:  # io.UnsupportedOperation
            raise giveup(err)
        try:
            fsize = _os.fstat(fileno).st_size
        except OSError as err:
            raise giveup(err)
        if not fsize:
            return 0
        timeout_ = self._timeout
        if timeout_ == 0.0:
            raise ValueError("non-blocking sockets are not supported")
        blocksize = min(count or fsize, 2 ** 30)
        sockno = _ss_fileno(self)
        total_sent = 0
        try:
            while True:
                if count:
                    blocksize = min(count - total_sent, blocksize)
                    if blocksize <= 0:
                        break
                try:
                    sent = _os.sendfile(sockno, fileno, offset, blocksize)
                except BlockingIOError:
                    if self._read_w is None:
                        self._make_watchers()
                    self._wait(self._write_w,
                               None if timeout_ is None else _monotonic() + timeout_)
                    continue
                except OSError as err:
                    if total_sent == 0:
                        # Not supported for this file/socket: fall back to send().
                        raise giveup(err)
                    raise err from None
                if sent == 0:
                    break  # EOF
                offset += sent
                total_sent += sent
            return total_sent
        finally:
            if total_sent > 0 and hasattr(file, "seek"):
                file.seek(offset)

    # -- connecting ---------------------------------------------------------
    def connect(self, address: Any) -> None:
        """Connect to ``address``; host names are resolved cooperatively first."""
        if self._timeout == 0.0:
            return _ss_connect(self, _resolve_addr(self, address))
        err = self._connect(address)
        if err:
            raise OSError(err, _os.strerror(err))

    def connect_ex(self, address: Any) -> int:
        """Like :meth:`connect` but return an errno (0 on success) instead of
        raising; a timeout gives ``EAGAIN``.  Resolution errors still raise."""
        if self._timeout == 0.0:
            return _ss_connect_ex(self, _resolve_addr(self, address))
        try:
            return self._connect(address)
        except TimeoutError:
            return _errno.EAGAIN
        except OSError as exc:
            if isinstance(exc, (gaierror, herror)) or not exc.errno:
                raise
            return exc.errno

    def _connect(self, address: Any) -> int:
        address = _resolve_addr(self, address)
        err = _ss_connect_ex(self, address)
        if not err or err == _errno.EISCONN:
            return 0
        if err not in _CONNECT_PENDING:
            return err
        timeout_ = self._timeout
        deadline = None if timeout_ is None else _monotonic() + timeout_
        unix_backoff = 0.001
        while True:
            if err in (_errno.EAGAIN, _errno.EWOULDBLOCK) and _ss_family(self) == _AF_UNIX:
                # A UNIX listener's backlog is full.  The socket reports
                # writable all along, so poll with a growing sleep instead.
                if deadline is not None and _monotonic() + unix_backoff > deadline:
                    remaining = deadline - _monotonic()
                    if remaining > 0:
                        _sleep(remaining)
                    raise timeout("timed out")
                _sleep(unix_backoff)
                unix_backoff = min(unix_backoff * 2, 0.05)
            else:
                if self._read_w is None:
                    self._make_watchers()
                self._wait(self._write_w, deadline)
                err = _ss_getsockopt(self, SOL_SOCKET, SO_ERROR)
                if err:
                    return err
            err = _ss_connect_ex(self, address)
            if not err or err == _errno.EISCONN:
                return 0
            if err not in _CONNECT_PENDING:
                return err

    # -- life cycle ---------------------------------------------------------
    def _drop_watchers(self, closing: bool) -> None:
        """Forget our watchers; wake any greenlet waiting on them with EBADF."""
        read_w, write_w = self._read_w, self._write_w
        self._read_w = self._write_w = None
        hub = self._hub
        if closing and not hub.loop.closed:
            # Unregister from the kernel *before* the descriptor is closed:
            # a dup() elsewhere would otherwise keep the registration alive.
            hub.loop.closing_fd(read_w.fd)
        for watcher in (read_w, write_w):
            if watcher.callback is not None:
                hub.cancel_wait(watcher, cancel_wait_ex(), True)
            else:
                watcher.close()

    def _real_close(self, _ss: Any = _ss) -> None:
        if self._read_w is not None:
            self._drop_watchers(True)
        _ss_close(self)

    def detach(self) -> int:
        """Give up the descriptor without closing it; returns it."""
        if self._read_w is not None:
            self._drop_watchers(False)
        self._closed = True
        return _ss_detach(self)

    def dup(self) -> socket:
        """A new socket object on a duplicate of the descriptor (same timeout)."""
        sock = socket(_ss_family(self), _ss_type(self), _ss_proto(self), _socket.dup(self.fileno()))
        sock._timeout = self._timeout
        return sock


SocketType = socket


def _sleep(seconds: float) -> None:
    from ._core.hub import sleep

    sleep(seconds)


# -- module-level functions ---------------------------------------------------


def socketpair(family: int | None = None, type: int = SOCK_STREAM, proto: int = 0
               ) -> tuple[socket, socket]:
    """A pair of connected cooperative sockets (AF_UNIX by default)."""
    if family is None:
        family = _AF_UNIX if _AF_UNIX is not None else AF_INET
    a, b = _socket.socketpair(family, type | _SOCK_NONBLOCK, proto)
    try:
        return (socket(family, type | _SOCK_NONBLOCK, proto, a.detach()),
                socket(family, type | _SOCK_NONBLOCK, proto, b.detach()))
    finally:
        a.close()
        b.close()


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> socket:
    """A socket on a duplicate of ``fd``.

    Note: the duplicate shares the open file description, so ``fd`` becomes
    non-blocking too (inevitable with cooperative sockets; gevent does the same).
    """
    return socket(family, type, proto, _socket.dup(fd))


def create_connection(address: tuple[str | None, int], timeout: Any = _GLOBAL_DEFAULT_TIMEOUT,
                      source_address: tuple[str, int] | None = None, *,
                      all_errors: bool = False) -> socket:
    """Connect to ``(host, port)``, trying each address ``getaddrinfo`` gives.

    ``timeout`` (if given) is set on the socket before connecting;
    ``source_address`` is bound first.  If every address fails, the last
    error is raised (or, with ``all_errors``, an ``ExceptionGroup`` of all).
    """
    host, port = address
    errors: list[BaseException] = []
    for family, socktype, proto, _canon, sockaddr in getaddrinfo(host, port, 0, SOCK_STREAM):
        sock = None
        try:
            sock = socket(family, socktype, proto)
            if timeout is not _GLOBAL_DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            errors.clear()
            return sock
        except OSError as exc:
            if not all_errors:
                errors.clear()
            errors.append(exc)
            if sock is not None:
                sock.close()
        except BaseException:
            if sock is not None:
                sock.close()
            raise
    if errors:
        try:
            if all_errors and _ExceptionGroup is not None:
                raise _ExceptionGroup("create_connection failed", errors)
            raise errors[-1]
        finally:
            errors = []
    raise error("getaddrinfo returns an empty list")


try:
    _ExceptionGroup: Any = ExceptionGroup  # type: ignore[name-defined]
except NameError:  # pragma: no cover - Python 3.10
    _ExceptionGroup = None


def create_server(address: tuple[str, int] | str, *, family: int = AF_INET,
                  backlog: int | None = None, reuse_port: bool = False,
                  dualstack_ipv6: bool = False) -> socket:
    """A cooperative listening TCP socket bound to ``address``.

    As :func:`socket.create_server`: ``SO_REUSEADDR`` is set on POSIX,
    ``reuse_port`` sets ``SO_REUSEPORT``, ``dualstack_ipv6`` (with
    ``family=AF_INET6``) accepts IPv4 connections too.
    """
    if reuse_port and not hasattr(__socket__, "SO_REUSEPORT"):
        raise ValueError("SO_REUSEPORT not supported on this platform")
    if dualstack_ipv6:
        if not has_dualstack_ipv6():
            raise ValueError("dualstack_ipv6 not supported on this platform")
        if family != AF_INET6:
            raise ValueError("dualstack_ipv6 requires AF_INET6 family")
    sock = socket(family, SOCK_STREAM)
    try:
        if _os.name not in ("nt", "cygwin") and hasattr(__socket__, "SO_REUSEADDR"):
            try:
                sock.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
            except OSError:
                pass  # e.g. AF_UNIX
        if reuse_port:
            sock.setsockopt(SOL_SOCKET, __socket__.SO_REUSEPORT, 1)
        if has_ipv6 and family == AF_INET6:
            v6only = 0 if dualstack_ipv6 else 1
            if hasattr(__socket__, "IPPROTO_IPV6"):
                sock.setsockopt(__socket__.IPPROTO_IPV6, __socket__.IPV6_V6ONLY, v6only)
        try:
            sock.bind(address)
        except OSError as exc:
            raise OSError(exc.errno, f"{exc.strerror} (while attempting to bind on "
                                     f"address {address!r})") from None
        if backlog is None:
            sock.listen()
        else:
            sock.listen(backlog)
        return sock
    except BaseException:
        sock.close()
        raise


# -- waiting on raw descriptors ---------------------------------------------------


def _wait_fd(fileno: Any, events: int, timeout_: float | None, timeout_exc: Any) -> None:
    if not isinstance(fileno, int):
        fileno = fileno.fileno()
    hub = get_hub()
    cur = _getcurrent()
    if cur is hub:
        raise BlockingSwitchOutError(
            "Impossible to call a blocking function in the event loop callback")
    loop = hub.loop
    watcher = loop.io(fileno, events)
    timer = None
    try:
        watcher.start(cur.switch)
        if timeout_ is not None:
            timer = loop.timer(timeout_)
            timer.start(cur.switch, _TIMED_OUT)
        result = _switch(hub)
    finally:
        watcher.close()
        if timer is not None:
            timer.stop()
    if result is _TIMED_OUT:
        if timeout_exc is _NONE:
            raise timeout("timed out")
        if isinstance(timeout_exc, type):
            raise timeout_exc()
        raise timeout_exc


def wait_read(fileno: int, timeout: float | None = None, timeout_exc: Any = _NONE) -> None:
    """Block this greenlet until ``fileno`` is readable.

    After ``timeout`` seconds raise ``timeout_exc`` (default
    ``socket.timeout('timed out')``; a class is instantiated).
    """
    _wait_fd(fileno, 1, timeout, timeout_exc)


def wait_write(fileno: int, timeout: float | None = None, timeout_exc: Any = _NONE,
               event: Any = None) -> None:
    """Block this greenlet until ``fileno`` is writable (see :func:`wait_read`)."""
    _wait_fd(fileno, 2, timeout, timeout_exc)


def wait_readwrite(fileno: int, timeout: float | None = None, timeout_exc: Any = _NONE,
                   event: Any = None) -> None:
    """Block this greenlet until ``fileno`` is readable or writable."""
    _wait_fd(fileno, 3, timeout, timeout_exc)


def cancel_wait(watcher: Any, error: Any = cancel_wait_ex) -> None:
    """Wake the greenlet waiting on ``watcher`` by raising ``error`` in it
    (a class is instantiated)."""
    if isinstance(error, type):
        error = error()
    get_hub().cancel_wait(watcher, error)


# -- name resolution --------------------------------------------------------------

_inet_pton = _socket.inet_pton


def _is_numeric_host(host: Any) -> bool:
    """True for None and literal IPv4/IPv6 addresses (no lookup needed)."""
    if host is None:
        return True
    if isinstance(host, bytes):
        try:
            host = host.decode("ascii")
        except UnicodeDecodeError:
            return False
    if not isinstance(host, str) or not host:
        return False
    if ":" in host:
        addr = host.partition("%")[0]
        try:
            _inet_pton(AF_INET6, addr)
            return True
        except (OSError, ValueError):
            return False
    if not host[0].isdigit():
        return False
    try:
        _inet_pton(AF_INET, host)
        return True
    except (OSError, ValueError):
        return False


def _is_numeric_port(port: Any) -> bool:
    if port is None or isinstance(port, int):
        return True
    if isinstance(port, bytes):
        return port.isdigit()
    return isinstance(port, str) and port.isdigit()


def _resolver() -> Any:
    return get_hub().resolver


def _to_enum(value: int, enum: Any) -> Any:
    try:
        return enum(value)
    except ValueError:
        return value


def getaddrinfo(host: Any, port: Any, family: int = 0, type: int = 0, proto: int = 0,
                flags: int = 0) -> list[tuple]:
    """Cooperative :func:`socket.getaddrinfo`: names are looked up by the hub's
    resolver; literal addresses are answered directly (no thread, no I/O)."""
    if _is_numeric_host(host) and _is_numeric_port(port):
        return _std_getaddrinfo(host, port, family, type, proto,
                                      flags | AI_NUMERICHOST | AI_NUMERICSERV)
    result = _resolver().getaddrinfo(host, port, family, type, proto, flags)
    if result and (result[0][0].__class__ is int or result[0][1].__class__ is int):
        # A resolver that returns plain integers: give the standard enums.
        result = [(_to_enum(af, AddressFamily), _to_enum(st, SocketKind), pr, canon, sa)
                  for af, st, pr, canon, sa in result]
    return result


def _is_ipv4_literal(hostname: Any) -> bool:
    """True for a dotted IPv4 address, which needs no lookup (and no thread)."""
    if isinstance(hostname, str) and hostname[:1].isdigit() and ":" not in hostname:
        try:
            _inet_pton(AF_INET, hostname)
        except OSError:
            return False
        return True
    return False


def gethostbyname(hostname: str) -> str:
    """Cooperative :func:`socket.gethostbyname` (IPv4 literals answered directly)."""
    if _is_ipv4_literal(hostname):
        return _socket.gethostbyname(hostname)
    return _resolver().gethostbyname(hostname)


def gethostbyname_ex(hostname: str) -> tuple[str, list[str], list[str]]:
    """Cooperative :func:`socket.gethostbyname_ex` (IPv4 literals answered directly)."""
    if _is_ipv4_literal(hostname):
        return _socket.gethostbyname_ex(hostname)
    return _resolver().gethostbyname_ex(hostname)


def gethostbyaddr(ip_address: str) -> tuple[str, list[str], list[str]]:
    """Cooperative :func:`socket.gethostbyaddr` (always a lookup)."""
    return _resolver().gethostbyaddr(ip_address)


def getnameinfo(sockaddr: tuple, flags: int) -> tuple[str, str]:
    """Cooperative :func:`socket.getnameinfo`; fully numeric requests are answered
    directly."""
    if (flags & NI_NUMERICHOST and flags & NI_NUMERICSERV and isinstance(sockaddr, tuple)
            and sockaddr and _is_numeric_host(sockaddr[0])):
        return _socket.getnameinfo(sockaddr, flags)
    return _resolver().getnameinfo(sockaddr, flags)


def getfqdn(name: str = "") -> str:
    """Cooperative :func:`socket.getfqdn`: the first dotted name among the
    host name and aliases of ``name`` (default: this host)."""
    name = name.strip()
    if not name or name in ("0.0.0.0", "::"):
        name = _std_gethostname()
    try:
        hostname, aliases, _ipaddrs = gethostbyaddr(name)
    except error:
        return name
    for candidate in [hostname, *aliases]:
        if "." in candidate:
            return candidate
    return hostname


def _resolve_addr(sock: Any, address: Any) -> Any:
    """Resolve a host name in an AF_INET/AF_INET6 address through the hub's
    resolver (the C connect() would block the whole thread in getaddrinfo)."""
    family = _ss_family(sock)
    if family != AF_INET and family != AF_INET6:
        return address
    if not isinstance(address, tuple) or len(address) < 2:
        return address
    host = address[0]
    if _is_numeric_host(host) or host == "<broadcast>" or not isinstance(host, (str, bytes)):
        return address
    port = address[1]
    infos = getaddrinfo(host, port, family, _ss_type(sock), _ss_proto(sock))
    if not infos:
        raise gaierror(_socket.EAI_NONAME, "Name or service not known")
    sockaddr = infos[0][4]
    if family == AF_INET6 and len(address) > 2:
        sockaddr = (sockaddr[0], sockaddr[1], *address[2:])
    return sockaddr
