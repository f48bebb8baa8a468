"""A fast, strict WSGI (PEP 3333) HTTP/1.1 server: :class:`WSGIServer`.

::

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"Hello, world!"]

    WSGIServer(("127.0.0.1", 8000), app).serve_forever()

or from the shell: ``python -m greenweave.pywsgi module:app --bind 127.0.0.1:8000``.

How a connection is served
--------------------------
Each connection runs one :class:`WSGIHandler` in its own greenlet.  Requests
are parsed by ``httptools`` (llhttp, the parser behind uvicorn and Node.js):
the handler feeds it whatever ``recv`` returned and the parser's callbacks
collect each request's method, URL and headers into a small record; finished
heads are queued, so *pipelined* requests are answered one after another, in
order.  A request's body is fed to the same parser only when the application
reads ``wsgi.input`` (so ``Expect: 100-continue`` is answered only then).

A response's status line, headers and (small) body leave in a single
``sendall``; the server adds ``Date``, ``Content-Length`` (when the body is a
list it can measure) or ``Transfer-Encoding: chunked`` (HTTP/1.1, length
unknown) and ``Connection`` as needed.  Accepted sockets have
``TCP_NODELAY``, so keep-alive clients never wait on Nagle's algorithm.

Abuse
-----
A malformed request line or header gets ``400``; a request line longer than
``max_request_line`` ``414``; a header block larger than ``max_header_size``
``431``; an invalid ``Content-Length``, or ``Content-Length`` together with
``Transfer-Encoding`` (request smuggling) ``400``; an HTTP version other than
1.0/1.1 ``505``.  A client has ``header_timeout`` seconds to deliver a request
head (slowloris), ``keepalive_timeout`` seconds of idleness between requests,
and ``body_timeout`` seconds per read or write after that.  An application
that raises gets its client a ``500`` (its traceback goes to the error log
only); a response header containing CR or LF makes ``start_response`` raise
``ValueError`` before anything is sent.  In every case the other connections
are unaffected.
"""

from __future__ import annotations

import _socket
import errno
import os
import sys
import traceback
from collections import deque
from datetime import datetime
from time import gmtime, monotonic, time
from typing import Any, Callable, Iterable
from urllib.parse import unquote_to_bytes

import httptools
from greenlet import GreenletExit

from .server import StreamServer

__all__ = [
    "WSGIServer",
    "WSGIHandler",
    "LoggingLogAdapter",
    "Environ",
    "SecureEnviron",
    "WSGISecureEnviron",
]

MAX_REQUEST_LINE = 8192
MAX_HEADER_SIZE = 65536
_RECV_SIZE = 65536

_HttpParserError = httptools.HttpParserError
_HttpParserUpgrade = httptools.HttpParserUpgrade
_HttpParserCallbackError = httptools.HttpParserCallbackError
_HttpRequestParser = httptools.HttpRequestParser

_SHUT_RD = _socket.SHUT_RD
_MSG_MORE = getattr(_socket, "MSG_MORE", 0)

#: Errors on the client's socket that just mean "the client went away".
_CLIENT_GONE_ERRNOS = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ESHUTDOWN,
                                 errno.ECONNABORTED, errno.ENOTCONN, errno.EBADF,
                                 errno.ETIMEDOUT})

_REASONS = {
    100: "Continue", 200: "OK", 400: "Bad Request", 408: "Request Timeout",
    413: "Content Too Large", 414: "URI Too Long", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 505: "HTTP Version Not Supported",
}

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = (None, "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
           "Dec")


def format_date_time(timestamp: float) -> str:
    """An RFC 7231 date (``Sun, 06 Nov 1994 08:49:37 GMT``) for ``timestamp``."""
    t = gmtime(timestamp)
    return (f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} GMT")


_date_cache: list = [0, b""]


def _date_line() -> bytes:
    """``Date: ...\\r\\n`` for now, recomputed at most once a second."""
    now = int(time())
    if now != _date_cache[0]:
        _date_cache[1] = f"Date: {format_date_time(now)}\r\n".encode("ascii")
        _date_cache[0] = now
    return _date_cache[1]


# -- environ classes ----------------------------------------------------------


class Environ(dict):
    """The class of WSGI environ dicts a server may use (a plain dict plus
    ``copy()`` keeping the class)."""

    __slots__ = ()

    def copy(self) -> Environ:
        return type(self)(self)

    def iteritems(self) -> Iterable:
        return iter(self.items())


class SecureEnviron(Environ):
    """An environ whose ``repr``/``str`` does not reveal its values.

    Meant to keep secrets (cookies, authorization headers) out of logs and
    tracebacks.  ``secure_repr`` (default :attr:`default_secure_repr`) turns
    the masking on; ``whitelist_keys`` (default :attr:`default_whitelist_keys`)
    names keys whose values may be shown; ``print_masked_keys`` (default
    :attr:`default_print_masked_keys`) says whether the other keys appear
    with a masked value or are only counted.  Each can be set per instance.
    """

    __slots__ = ("__dict__",)

    default_secure_repr = True
    default_whitelist_keys: Any = ()
    default_print_masked_keys = True

    @property
    def secure_repr(self) -> bool:
        return self.__dict__.get("secure_repr", self.default_secure_repr)

    @secure_repr.setter
    def secure_repr(self, value: bool) -> None:
        self.__dict__["secure_repr"] = value

    @property
    def whitelist_keys(self) -> Any:
        return self.__dict__.get("whitelist_keys", self.default_whitelist_keys)

    @whitelist_keys.setter
    def whitelist_keys(self, value: Any) -> None:
        self.__dict__["whitelist_keys"] = value

    @property
    def print_masked_keys(self) -> bool:
        return self.__dict__.get("print_masked_keys", self.default_print_masked_keys)

    @print_masked_keys.setter
    def print_masked_keys(self, value: bool) -> None:
        self.__dict__["print_masked_keys"] = value

    def __repr__(self) -> str:
        if not self.secure_repr:
            return dict.__repr__(self)
        whitelist = self.whitelist_keys
        if not whitelist:
            return f"<pywsgi.{type(self).__name__} dict (keys: {len(self)}) at {id(self)}>"
        if self.print_masked_keys:
            shown = [f"{k!r}: {v!r}" if k in whitelist else f"{k!r}: '<MASKED>'"
                     for k, v in self.items()]
            return "{" + ", ".join(shown) + "}"
        shown = [f"{k!r}: {v!r}" for k, v in self.items() if k in whitelist]
        hidden = len(self) - len(shown)
        return "{" + ", ".join(shown) + f", (hidden keys: {hidden})" + "}"

    __str__ = __repr__


class WSGISecureEnviron(SecureEnviron):
    """A :class:`SecureEnviron` showing only the client's address and the Host
    header (what the server puts in error reports)."""

    __slots__ = ()

    default_whitelist_keys = ("REMOTE_ADDR", "REMOTE_PORT", "HTTP_HOST")
    default_print_masked_keys = False


class LoggingLogAdapter:
    """Make a :mod:`logging` logger usable where a file is expected (the
    server's ``log``/``error_log``): each ``write`` becomes one log record at
    ``level``.  Other attributes are the logger's."""

    __slots__ = ("_logger", "_level")

    def __init__(self, logger: Any, level: int = 20) -> None:
        object.__setattr__(self, "_logger", logger)
        object.__setattr__(self, "_level", level)

    def write(self, msg: str) -> None:
        if msg and msg.endswith("\n"):
            msg = msg[:-1]
        self._logger.log(self._level, msg)

    def flush(self) -> None:
        """Nothing to flush: records go straight to the logger."""

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._logger, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in LoggingLogAdapter.__slots__:
            object.__setattr__(self, name, value)
        else:
            setattr(self._logger, name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._logger, name)


class _NoopLog:
    """The log used when logging is off: writes go nowhere."""

    __slots__ = ()

    def write(self, *args: Any, **kwargs: Any) -> None:
        pass

    def flush(self) -> None:
        pass

    def writelines(self, *args: Any, **kwargs: Any) -> None:
        pass


# -- request state --------------------------------------------------------------


class _ClientError(Exception):
    """Raised from a parser callback: answer ``status`` and close."""

    def __init__(self, status: int, message: str) -> None:
        Exception.__init__(self, status, message)
        self.status = status
        self.message = message


class _InvalidClientInput(OSError):
    """The request body could not be read (malformed, truncated or too slow).

    Raised to the application from ``wsgi.input``; if it escapes, the client
    gets a 4xx (not a 500) and the connection is closed.
    """

    status = 400


class _Request:
    """One request as the parser delivered it."""

    __slots__ = ("url", "headers", "method", "version", "keep_alive", "body", "complete",
                 "error", "upgrade", "discard", "received")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list = []
        self.method = b""
        self.version = ""
        self.keep_alive = False
        self.body = bytearray()
        self.complete = False
        self.error: _ClientError | None = None
        self.upgrade = False
        self.discard = False
        self.received = 0


class Input:
    """``wsgi.input``: the request body, read on demand from the connection.

    ``read``/``readline``/``readlines``/iteration follow PEP 3333 (a read
    never goes past the body; at its end reads return ``b""``).  The first read
    that must wait for the client sends ``100 Continue`` if the client asked
    for it.  A body that turns out malformed, truncated or too slow raises
    an ``OSError`` subclass.
    """

    __slots__ = ("_handler", "_req", "content_length", "chunked_input", "position",
                 "socket", "rfile")

    def __init__(self, handler: WSGIHandler, req: _Request, content_length: int | None,
                 chunked: bool) -> None:
        self._handler = handler
        self._req = req
        self.content_length = content_length
        self.chunked_input = chunked
        self.position = 0
        self.socket = handler.socket
        self.rfile = None

    def _fill(self) -> None:
        self._handler._read_body_more(self._req)

    def read(self, size: int | None = None) -> bytes:
        req = self._req
        body = req.body
        if size is None or size < 0:
            while not req.complete:
                self._fill()
            data = bytes(body)
            body.clear()
        else:
            while len(body) < size and not req.complete:
                self._fill()
            data = bytes(body[:size])
            del body[:size]
        self.position += len(data)
        return data

    def readline(self, size: int | None = None) -> bytes:
        req = self._req
        body = req.body
        start = 0
        while True:
            pos = body.find(b"\n", start)
            if pos >= 0:
                end = pos + 1
                break
            if req.complete or (size is not None and 0 <= size <= len(body)):
                end = len(body)
                break
            start = len(body)
            self._fill()
        if size is not None and 0 <= size < end:
            end = size
        data = bytes(body[:end])
        del body[:end]
        self.position += len(data)
        return data

    def readlines(self, hint: int | None = None) -> list[bytes]:
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                break
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Input:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    next = __next__


class FileWrapper:
    """``wsgi.file_wrapper``: a file to send as the response body.

    For a regular file on a plain (non-TLS) socket the server sends it with
    ``sendfile``; anything else is read ``blksize`` bytes at a time.
    """

    __slots__ = ("filelike", "blksize", "close")

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize
        close = getattr(filelike, "close", None)
        if close is not None:
            self.close = close

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.blksize)
        if data:
            return data
        raise StopIteration


# -- the connection handler --------------------------------------------------------


_header_keys: dict[bytes, str | None] = {}
_methods: dict[bytes, str] = {}
_status_lines: dict[str, bytes] = {}
_NO_BODY_CODES = frozenset({204, 304})


def _environ_key(name: bytes) -> str | None:
    """CGI key of header ``name`` (``HTTP_X_FOO``); None for names with an
    underscore (dropped, as gevent does: ``X_Foo`` must not pose as ``X-Foo``)."""
    key = _header_keys.get(name)
    if key is None and name not in _header_keys:
        text = name.decode("latin-1")
        if "_" in text:
            key = None
        else:
            key = text.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
        if len(_header_keys) < 1024:
            _header_keys[name] = key
    return key


class WSGIHandler:
    """Serves one connection: parses requests, calls the application, writes
    responses (see the module docstring).

    Per-request attributes (valid while a request is served and in
    :meth:`format_request`): ``environ``, ``status``, ``code``,
    ``response_headers``, ``headers_sent``, ``response_length``,
    ``close_connection``, ``command``, ``path``, ``request_version``,
    ``requestline``, ``time_start``, ``time_finish``, ``result``.
    """

    protocol_version = "HTTP/1.1"

    #: OSError errnos from the client's socket that are not worth a traceback.
    ignored_socket_errors = (errno.EPIPE, errno.ECONNRESET)

    # Defaults of the per-request state (instances override as they go).
    status: str | None = None
    code: int | None = None
    response_headers: list | None = None
    headers_sent = False
    response_length = 0
    close_connection = False
    environ: dict | None = None
    result: Any = None
    command: str | None = None
    path: str | None = None
    request_version: str | None = None
    requestline: str | None = None
    time_start = 0.0
    time_finish = 0.0
    content_length: int | None = None
    response_use_chunked = False
    provided_content_length: int | None = None
    provided_date = False
    connection_upgraded = False
    _head_length = 0

    def __init__(self, sock: Any, address: Any, server: WSGIServer, rfile: Any = None) -> None:
        self.socket = sock
        self.client_address = address
        self.server = server
        self.rfile = rfile
        self.application = server.application
        self._queue: deque[_Request] = deque()
        self._parsing: _Request | None = None
        self._parser: Any = None
        self._parser_dead = False
        self._in_head = False
        self._head_bytes = 0
        self._url_len = 0
        self._header_bytes = 0
        self._timeout: float | None = -1.0
        self._client_gone = False
        self._leftover = b""

    # -- parser callbacks (called from feed_data) -------------------------
    def on_message_begin(self) -> None:
        self._parsing = _Request()
        self._in_head = True
        self._head_bytes = 0
        self._url_len = 0
        self._header_bytes = 0

    def on_url(self, url: bytes) -> None:
        req = self._parsing
        req.url += url
        if len(req.url) > self.server.max_request_line:
            raise _ClientError(414, "Request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parsing.headers.append((name, value))
        size = self._header_bytes = self._header_bytes + len(name) + len(value) + 4
        if size > self.server.max_header_size:
            raise _ClientError(431, "Request header block too large")

    def on_headers_complete(self) -> None:
        req = self._parsing
        parser = self._parser
        req.method = parser.get_method()
        req.version = parser.get_http_version()
        req.keep_alive = parser.should_keep_alive()
        self._in_head = False
        self._queue.append(req)

    def on_body(self, body: bytes) -> None:
        req = self._parsing
        req.received += len(body)
        if not req.discard:
            req.body += body

    def on_message_complete(self) -> None:
        self._parsing.complete = True

    # -- feeding the parser -------------------------------------------------------
    def _feed(self, data: bytes) -> None:
        """Give ``data`` to the parser; a parse error queues an error response."""
        try:
            self._parser.feed_data(data)
        except _HttpParserUpgrade as exc:
            # The head (and message) was complete; what follows is not HTTP.
            self._parser_dead = True
            if self._queue:
                self._queue[-1].upgrade = True
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            self._leftover = data[offset:]
            return
        except _HttpParserCallbackError as exc:
            cause = exc.__context__
            if isinstance(cause, _ClientError):
                self._parse_failed(cause)
            else:
                self._parse_failed(_ClientError(400, "Bad request"))
            return
        except _HttpParserError as exc:
            self._parse_failed(_ClientError(400, str(exc) or "Bad request"))
            return
        if self._in_head:
            n = self._head_bytes = self._head_bytes + len(data)
            server = self.server
            # Coarse bound: httptools accumulates a header that is still
            # arriving; cut off a head that cannot possibly be within limits.
            if n > server.max_request_line + server.max_header_size + _RECV_SIZE:
                self._parse_failed(_ClientError(431, "Request header block too large"))

    def _parse_failed(self, error: _ClientError) -> None:
        self._parser_dead = True
        self._in_head = False
        parsing = self._parsing
        if parsing is not None and self._queue and self._queue[-1] is parsing \
                and not parsing.complete:
            # The error is in the body of a request already being served.
            parsing.error = error
            return
        req = _Request()
        req.error = error
        self._queue.append(req)

    def _settimeout(self, value: float | None) -> None:
        if value != self._timeout:
            self._timeout = value
            self.socket.settimeout(value)

    def _read_head(self, first: bool) -> bool:
        """Read until a request head is queued; False: close the connection.

        Waiting for the first byte of a request on a kept-alive connection may
        take ``keepalive_timeout``; from the first byte (from the accept for a
        connection's first request) the whole head must arrive within
        ``header_timeout``.
        """
        server = self.server
        sock = self.socket
        header_timeout = server.header_timeout
        deadline = None
        if first:
            if header_timeout is not None:
                deadline = self._accepted_at + header_timeout
                self._settimeout(max(deadline - monotonic(), 0.001))
            else:
                self._settimeout(None)
        else:
            self._settimeout(server.keepalive_timeout)
        idle_set = server._idle_sockets
        idle_set.add(sock)
        queue = self._queue
        try:
            while True:
                try:
                    data = sock.recv(_RECV_SIZE)
                except (TimeoutError, _socket.timeout):
                    if first or deadline is not None:
                        self._send_error(408, "Request head not received in time")
                    return False
                except OSError:
                    return False
                if not data:
                    return False
                if deadline is None and header_timeout is not None:
                    deadline = monotonic() + header_timeout
                idle_set.discard(sock)
                self._feed(data)
                if queue:
                    return True
                if self._parser_dead:
                    return False
                if deadline is not None:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        self._send_error(408, "Request head not received in time")
                        return False
                    self._settimeout(remaining)
                elif first or header_timeout is None:
                    self._settimeout(None)
        finally:
            idle_set.discard(sock)

    def _read_body_more(self, req: _Request) -> None:
        """Receive more of the body of ``req`` (the request being served)."""
        if req.error is not None:
            raise _InvalidClientInput(req.error.message)
        if self._parser_dead:
            raise _InvalidClientInput("request body cannot be read")
        if self._expect_continue:
            self._expect_continue = False
            if not self.headers_sent:
                self._sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        self._settimeout(self.server.body_timeout)
        try:
            data = self.socket.recv(_RECV_SIZE)
        except (TimeoutError, _socket.timeout):
            self._client_gone = True
            raise _InvalidClientInput(errno.ETIMEDOUT, "timed out reading the request body")
        except OSError:
            self._client_gone = True
            raise
        if not data:
            self._client_gone = True
            raise _InvalidClientInput("unexpected end of file while reading the request body")
        self._feed(data)
        if req.error is not None:
            raise _InvalidClientInput(req.error.message)

    # -- serving --------------------------------------------------------------
    def handle(self) -> None:
        """Serve requests on the connection until it closes; then close the socket."""
        self._accepted_at = monotonic()
        try:
            self._serve()
        finally:
            try:
                self.socket.close()
            except OSError:
                pass
            self.socket = None  # type: ignore[assignment]

    def _serve(self) -> None:
        server = self.server
        self._parser = _HttpRequestParser(self)
        queue = self._queue
        first = True
        while True:
            if not queue:
                if self._parser_dead or not self._read_head(first):
                    return
            first = False
            req = queue[0]
            error = req.error
            if error is not None and not req.method:
                self.requestline = None
                self.environ = None
                self._send_error(error.status, error.message)
                return
            keep_alive = self.handle_one_request(req)
            queue.popleft()
            if not keep_alive or server._closing:
                return
            if not req.complete:
                # The application left body unread: skip it, or give up.
                if not self._drain(req):
                    return

    def _drain(self, req: _Request) -> bool:
        req.discard = True
        req.body.clear()
        limit = self.server.max_drain
        start = req.received
        if self.content_length is not None and self.content_length - start > limit:
            return False
        try:
            while not req.complete:
                if req.error is not None or req.received - start > limit:
                    return False
                self._read_body_more(req)
        except OSError:
            return False
        return req.error is None

    def handle_one_request(self, req: _Request) -> bool:
        """Serve one parsed request; returns whether the connection may be kept."""
        version = req.version
        if version != "1.1" and version != "1.0":
            self._send_error(505, "HTTP version not supported")
            return False
        # Per-request state.
        self.status = None
        self.code = None
        self.response_headers = None
        self.headers_sent = False
        self.response_length = 0
        self.response_use_chunked = False
        self.provided_content_length = None
        self.provided_date = False
        self._provided_connection = None
        self.result = None
        self._head_request = req.method == b"HEAD"
        self.close_connection = not req.keep_alive or req.upgrade
        self._version10 = version == "1.0"
        self._expect_continue = False
        self._req = req
        log_on = self.server._log_on
        if log_on:
            self.requestline = (f"{req.method.decode('latin-1')} {req.url.decode('latin-1')} "
                                f"HTTP/{version}")
            self.time_start = time()
        try:
            env = self.environ = self.get_environ(req)
        except _ClientError as exc:
            self._send_error(exc.status, exc.message)
            return False
        try:
            self.run_application()
        except GreenletExit:
            self.close_connection = True
            raise
        except BaseException as exc:
            self._handle_app_error(exc)
        if self.provided_content_length is not None and self.headers_sent \
                and self.response_length - self._head_length != self.provided_content_length \
                and not self._no_body():
            self.close_connection = True
        if not req.complete and self._expect_continue:
            # We never asked for the body: the client may not send it.
            self.close_connection = True
        if log_on:
            self.time_finish = time()
            self.log_request()
        self.environ = env = None  # noqa: F841 - drop references early
        return not self.close_connection

    # -- the environ ------------------------------------------------------------
    def get_environ(self, req: _Request | None = None) -> dict:
        """Build the WSGI environ of ``req`` (the request being served)."""
        if req is None:
            req = self._req
        server = self.server
        env = server.get_environ()
        address = self.client_address
        if type(address) is tuple:
            env["REMOTE_ADDR"] = address[0]
            env["REMOTE_PORT"] = str(address[1])
        else:
            env["REMOTE_ADDR"] = address or ""
            env["REMOTE_PORT"] = ""
        method = _methods.get(req.method)
        if method is None:
            method = _methods[req.method] = req.method.decode("latin-1")
        env["REQUEST_METHOD"] = method
        self.command = method
        url = req.url
        if url[:1] != b"/" and b"://" in url:
            # Absolute form (proxy style): keep only path and query.
            rest = url.split(b"://", 1)[1]
            slash = rest.find(b"/")
            url = rest[slash:] if slash >= 0 else b"/"
        qpos = url.find(b"?")
        if qpos >= 0:
            path = url[:qpos]
            query = url[qpos + 1:]
            hpos = query.find(b"#")
            if hpos >= 0:
                query = query[:hpos]
            env["QUERY_STRING"] = query.decode("latin-1")
        else:
            path = url
            hpos = path.find(b"#")
            if hpos >= 0:
                path = path[:hpos]
            env["QUERY_STRING"] = ""
        if b"%" in path:
            path = unquote_to_bytes(path)
        env["PATH_INFO"] = self.path = path.decode("latin-1")
        protocol = "HTTP/1.1" if req.version == "1.1" else "HTTP/" + req.version
        env["SERVER_PROTOCOL"] = self.request_version = protocol
        for name, value in req.headers:
            key = _header_keys.get(name)
            if key is None:
                key = _environ_key(name)
                if key is None:
                    continue
            text = value.decode("latin-1")
            if key in env:
                env[key] += "," + text
            else:
                env[key] = text
        chunked = False
        content_length = None
        if "CONTENT_LENGTH" in env:
            # llhttp has validated it (digits only, no conflicting duplicates).
            content_length = int(env["CONTENT_LENGTH"].split(",")[0])
        elif "HTTP_TRANSFER_ENCODING" in env:
            chunked = "chunked" in env["HTTP_TRANSFER_ENCODING"].lower()
        self.content_length = content_length
        expect = env.get("HTTP_EXPECT")
        if expect is not None and req.version == "1.1" and not req.complete \
                and expect.lower() == "100-continue":
            self._expect_continue = True
        env["wsgi.input"] = Input(self, req, content_length, chunked)
        return env

    # -- the application -----------------------------------------------------------
    def run_application(self) -> None:
        """Call the application and send what it returns."""
        self.result = self.application(self.environ, self.start_response)
        try:
            self.process_result()
        finally:
            close = getattr(self.result, "close", None)
            if close is not None:
                close()
            self.result = None

    def process_result(self) -> None:
        """Send the application's result (fast paths for lists and file wrappers)."""
        result = self.result
        cls = type(result)
        if (cls is list or cls is tuple) and not self.headers_sent:
            n = len(result)
            if n == 1:
                data = result[0]
                if type(data) is not bytes:
                    data = self._check_data(data)
            elif n == 0:
                data = b""
            else:
                data = b"".join(result)
            self._write_whole(data)
            return
        if cls is FileWrapper and not self.headers_sent and self._sendfile(result):
            return
        write = self.write
        for data in result:
            if data:
                write(data)
        if not self.headers_sent:
            self._write_whole(b"")
        elif self.response_use_chunked and not self._no_body():
            self._sendall(b"0\r\n\r\n")

    @staticmethod
    def _check_data(data: Any) -> bytes:
        if isinstance(data, (bytes, bytearray, memoryview)):
            return bytes(data)
        raise TypeError(f"The application returned {type(data).__name__}, not bytes: "
                        f"{data!r:.100}")

    def start_response(self, status: str, headers: list, exc_info: Any = None) -> Callable:
        """The WSGI ``start_response``: check and remember the status and headers.

        Raises ``ValueError`` for a header (or status) containing CR or LF,
        or one that is not latin-1, and ``TypeError`` for non-``str`` values,
        before anything is sent.  With ``exc_info`` after the headers were
        sent, re-raises that exception (PEP 3333).
        """
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        if type(status) is not str:
            raise TypeError(f"The status must be a str, not {type(status).__name__}: "
                            f"{status!r}")
        code = status[:3]
        if len(status) < 3 or not code.isdigit() or status[3:4] not in ("", " ") \
                or "\r" in status or "\n" in status:
            raise ValueError(f"Invalid status {status!r}: expected '<3 digits> <reason>'")
        code = int(code)
        provided_cl = None
        provided_date = False
        connection = None
        parts = []
        append = parts.append
        for header in headers:
            name, value = header
            if type(name) is not str or type(value) is not str:
                raise TypeError(f"Header names and values must be str: {header!r}")
            if "\r" in value or "\n" in value:
                raise ValueError("carriage return or newline in header value", value)
            if "\r" in name or "\n" in name or ":" in name:
                raise ValueError("invalid character in header name", name)
            n = len(name)
            if n == 14 or n == 4 or n == 10:
                lname = name.lower()
                if lname == "content-length":
                    try:
                        provided_cl = int(value)
                        if provided_cl < 0:
                            raise ValueError
                    except ValueError:
                        raise ValueError(f"Invalid Content-Length header: {value!r}") from None
                elif lname == "date":
                    provided_date = True
                elif lname == "connection":
                    connection = value.lower()
            append(f"{name}: {value}\r\n")
        block = "".join(parts).encode("latin-1")
        status_line = _status_lines.get(status)
        if status_line is None:
            status_line = f"HTTP/1.1 {status}\r\n".encode("latin-1")
            if len(_status_lines) < 256:
                _status_lines[status] = status_line
        self.status = status
        self.code = code
        self.response_headers = headers
        self.provided_content_length = provided_cl
        self.provided_date = provided_date
        self._provided_connection = connection
        self._header_block = status_line + block
        if connection is not None and "close" in connection:
            self.close_connection = True
        return self.write

    def _no_body(self) -> bool:
        code = self.code
        return self._head_request or code < 200 or code in _NO_BODY_CODES

    def _finish_headers(self, length: int | None) -> bytes:
        """The complete head; ``length`` is the body length if known."""
        if self.status is None:
            raise AssertionError("The application did not call start_response()")
        head = self._header_block
        extra = b"" if self.provided_date else _date_line()
        code = self.code
        if self.provided_content_length is None and code >= 200 and code not in _NO_BODY_CODES:
            if length is not None:
                extra += b"Content-Length: %d\r\n" % length
            elif self._head_request:
                pass  # no body follows whatever its length: framing is not an issue
            elif not self._version10:
                self.response_use_chunked = True
                extra += b"Transfer-Encoding: chunked\r\n"
            else:
                self.close_connection = True
        req = self._req
        if not req.complete and (self.content_length is None or self._expect_continue
                                 or self.content_length - req.received > self.server.max_drain):
            # Unread body we won't skip: the connection ends with this response.
            self.close_connection = True
        close = self.close_connection or self.server._closing
        if close:
            self.close_connection = True
            if self._provided_connection is None:
                extra += b"Connection: close\r\n"
        elif self._version10 and self._provided_connection is None:
            extra += b"Connection: keep-alive\r\n"
        head = head + extra + b"\r\n"
        self._head_length = len(head)
        return head

    def _write_whole(self, data: bytes) -> None:
        """Send head and whole body at once (Content-Length known)."""
        head = self._finish_headers(len(data))
        self.headers_sent = True
        if self._no_body():
            self._sendall(head)
            self.response_length = len(head)
            return
        if len(data) <= 65536:
            self._sendall(head + data)
        else:
            self._sendall(head, _MSG_MORE)
            self._sendall(data)
        self.response_length = len(head) + len(data)

    def write(self, data: bytes) -> None:
        """The WSGI ``write`` callable (also used for iterated results)."""
        if type(data) is not bytes:
            data = self._check_data(data)
        if not self.headers_sent:
            head = self._finish_headers(None)
            self.headers_sent = True
            self.response_length = len(head)
            if self._no_body():
                self._sendall(head)
                return
            if self.response_use_chunked:
                if data:
                    self._sendall(head + b"%x\r\n" % len(data) + data + b"\r\n")
                else:
                    self._sendall(head)
            else:
                self._sendall(head + data)
            self.response_length += len(data)
            return
        if not data or self._no_body():
            return
        if self.response_use_chunked:
            self._sendall(b"%x\r\n" % len(data) + data + b"\r\n")
        else:
            self._sendall(data)
        self.response_length += len(data)

    def _sendfile(self, wrapper: FileWrapper) -> bool:
        """Send a regular file with sendfile(); False if this file can't be."""
        filelike = wrapper.filelike
        try:
            fd = filelike.fileno()
            st = os.fstat(fd)
            offset = filelike.tell() if hasattr(filelike, "tell") else 0
        except (AttributeError, OSError, ValueError):
            return False
        import stat

        if not stat.S_ISREG(st.st_mode) or not hasattr(self.socket, "sendfile") \
                or self.server.ssl_enabled:
            return False
        length = max(st.st_size - offset, 0)
        if self.provided_content_length is not None:
            length = min(length, self.provided_content_length)
        head = self._finish_headers(length)
        self.headers_sent = True
        self._sendall(head, _MSG_MORE if length else 0)
        self.response_length = len(head)
        if self._no_body() or not length:
            return True
        try:
            sent = self.socket.sendfile(filelike, offset, length)
        except OSError:
            self._client_gone = True
            raise
        self.response_length += sent
        return True

    def _sendall(self, data: bytes, flags: int = 0) -> None:
        self._settimeout(self.server.body_timeout)
        try:
            self.socket.sendall(data, flags)
        except OSError:
            self._client_gone = True
            raise

    # -- errors ---------------------------------------------------------------
    def _handle_app_error(self, exc: BaseException) -> None:
        self.close_connection = True
        if isinstance(exc, _InvalidClientInput) or self._client_gone:
            if not self.headers_sent and not self._client_gone:
                self._send_error(getattr(exc, "status", 400), "Invalid request body", log=False)
            elif not self.headers_sent and isinstance(exc, _InvalidClientInput) \
                    and exc.errno == errno.ETIMEDOUT:
                self._send_error(408, "Request body not received in time", log=False)
            return
        if not isinstance(exc, Exception):
            raise exc
        self.handle_error(type(exc), exc, exc.__traceback__)

    def handle_error(self, typ: type, value: BaseException, tb: Any) -> None:
        """The application raised: log the traceback, answer 500 if still possible."""
        self._log_error(typ, value, tb)
        if not self.headers_sent:
            self.status = "500 Internal Server Error"
            self.code = 500
            body = b"Internal Server Error"
            data = (b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                    b"Connection: close\r\n" + _date_line()
                    + b"Content-Length: %d\r\n\r\n" % len(body) + body)
            try:
                self._sendall(data)
            except OSError:
                pass
            self.headers_sent = True
            self.response_length = len(data)
            self._head_length = len(data) - len(body)

    def _log_error(self, typ: type, value: BaseException, tb: Any) -> None:
        """Write the traceback and a line naming the request to the error log."""
        env = self.environ
        server = self.server
        if env is not None and not isinstance(env, server.secure_environ_class):
            env = server.secure_environ_class(env)
        try:
            text = "".join(traceback.format_exception(typ, value, tb))
            when = datetime.now().strftime("%Y-%m-%dT%H:%M:%S")
            server.error_log.write(f"{text}{when} {env!r} failed with {typ.__name__}\n\n")
            server.error_log.flush()
        except Exception:  # pragma: no cover - a broken log must not kill the server
            pass

    def log_error(self, msg: str, *args: Any) -> None:
        """Write one line to the error log."""
        try:
            message = msg % args if args else msg
        except Exception:
            message = f"{msg!r} {args!r}"
        try:
            self.server.error_log.write(f"{self.client_address}: {message}\n")
        except Exception:  # pragma: no cover
            pass

    def _send_error(self, status: int, message: str, log: bool = True) -> None:
        """Answer a bad request with ``status`` and close (best effort)."""
        reason = _REASONS.get(status, "Error")
        body = f"{reason}: {message}\n".encode("latin-1", "replace")
        self.status = f"{status} {reason}"
        self.code = status
        self.close_connection = True
        data = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
                f"Content-Type: text/plain; charset=latin-1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
        self.headers_sent = True
        self._head_length = len(data) - len(body)
        sock = self.socket
        try:
            sock.settimeout(1.0)
            self._timeout = 1.0
            sock.sendall(data)
            self.response_length = len(data)
        except OSError:
            pass
        if log and self.server._log_on:
            if self.requestline is None:
                self.requestline = "-"
            self.time_start = self.time_finish = time()
            self.log_request()

    # -- access log -------------------------------------------------------------
    def log_request(self) -> None:
        """Write the access log line of the request just served."""
        self.server.log.write(self.format_request() + "\n")

    def format_request(self) -> str:
        """The access log line, per the server's ``access_log_format``."""
        address = self.client_address
        client_ip = address[0] if isinstance(address, tuple) else address
        env = self.environ or {}
        fields = {
            "client_ip": client_ip or "-",
            "client_port": address[1] if isinstance(address, tuple) else "-",
            "time": datetime.now().replace(microsecond=0),
            "request_line": self.requestline or "",
            "method": self.command or "-",
            "path": self.path or "-",
            "status": (self.status or "000").split()[0],
            "length": self.response_length or "-",
            "duration": max(self.time_finish - self.time_start, 0.0),
            "user_agent": env.get("HTTP_USER_AGENT", "-"),
            "referer": env.get("HTTP_REFERER", "-"),
        }
        return self.server.access_log_format % fields


# -- the server ------------------------------------------------------------------


def _as_log(value: Any, level: int) -> Any:
    if value == "default":
        return sys.stderr
    if value is None:
        return _NoopLog()
    if not hasattr(value, "write") and hasattr(value, "log"):
        return LoggingLogAdapter(value, level)
    return value


class WSGIServer(StreamServer):
    """A WSGI server (see the module docstring).

    ``log``: where access log lines go (a file-like object, a
    :mod:`logging` logger, ``'default'`` = stderr, or None for no access
    log at all); ``error_log`` likewise for application tracebacks.
    ``environ``: extra keys for every request's environ.  The limits and
    timeouts (``max_request_line``, ``max_header_size``, ``header_timeout``,
    ``keepalive_timeout``, ``body_timeout``, ``max_drain``) and
    ``access_log_format`` can be given as keywords or set on a subclass.
    Remaining keyword arguments are TLS settings (as for StreamServer).
    """

    handler_class: type = WSGIHandler
    environ_class: type = dict
    secure_environ_class: type = WSGISecureEnviron
    application: Any = None

    #: Longest request line (the URL, really) accepted, in bytes: beyond, 414.
    max_request_line = MAX_REQUEST_LINE
    #: Largest header block accepted, in bytes: beyond, 431.
    max_header_size = MAX_HEADER_SIZE
    #: Seconds a client has to send a complete request head (slowloris guard).
    header_timeout: float | None = 30.0
    #: Seconds an idle keep-alive connection is kept open.
    keepalive_timeout: float | None = 60.0
    #: Seconds allowed for each read of the body and each write of the response.
    body_timeout: float | None = 60.0
    #: Unread request body (bytes) the server skips to keep a connection alive.
    max_drain = 1 << 20
    #: %-format of access log lines; keys: client_ip, client_port, time,
    #: request_line, method, path, status, length, duration, user_agent, referer.
    access_log_format = '%(client_ip)s - - [%(time)s] "%(request_line)s" %(status)s ' \
                        '%(length)s %(duration).6f'

    base_env = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "greenweave/%s Python/%d.%d" % (
            "0.1", sys.version_info[0], sys.version_info[1]),
        "SCRIPT_NAME": "",
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }

    def __init__(self, listener: Any, application: Callable | None = None,
                 backlog: int | None = None, spawn: Any = "default", log: Any = "default",
                 error_log: Any = "default", handler_class: type | None = None,
                 environ: dict | None = None, max_accept: int | None = None, *,
                 max_request_line: int | None = None, max_header_size: int | None = None,
                 header_timeout: Any = -1, keepalive_timeout: Any = -1,
                 body_timeout: Any = -1, max_drain: int | None = None,
                 access_log_format: str | None = None, **ssl_args: Any) -> None:
        if application is not None:
            self.application = application
        if self.application is None:
            raise TypeError("WSGIServer needs an application")
        if not callable(self.application):
            raise TypeError(f"The application must be callable, not {self.application!r}")
        if handler_class is not None:
            self.handler_class = handler_class
        if max_request_line is not None:
            self.max_request_line = max_request_line
        if max_header_size is not None:
            self.max_header_size = max_header_size
        if header_timeout != -1:
            self.header_timeout = header_timeout
        if keepalive_timeout != -1:
            self.keepalive_timeout = keepalive_timeout
        if body_timeout != -1:
            self.body_timeout = body_timeout
        if max_drain is not None:
            self.max_drain = max_drain
        if access_log_format is not None:
            self.access_log_format = access_log_format
        self._log_on = log is not None
        self.log = _as_log(log, 20)
        self.error_log = _as_log(error_log, 40)
        self._closing = False
        self._idle_sockets: set = set()
        StreamServer.__init__(self, listener, backlog=backlog, spawn=spawn, **ssl_args)
        self.set_environ(environ)
        if max_accept is not None:
            self.max_accept = max_accept
        else:
            self.set_max_accept()

    def set_environ(self, environ: dict | None = None) -> None:
        """Set the base environ (``base_env`` plus ``environ``'s keys)."""
        if environ is not None:
            self.environ = environ
        extra = getattr(self, "environ", None)
        env = self.environ_class(self.base_env)
        env["wsgi.url_scheme"] = "https" if self.ssl_enabled else "http"
        if extra is not None and extra is not env:
            env.update(extra)
        env.setdefault("wsgi.errors", self.error_log)
        self.environ = env

    def set_max_accept(self) -> None:
        """One connection per accept wake-up when serving from several processes
        (spreads connections across them)."""
        if self.environ.get("wsgi.multiprocess"):
            self.max_accept = 1

    def get_environ(self) -> dict:
        """A fresh copy of the base environ for one request."""
        env = self.environ
        if type(env) is dict:
            return env.copy()
        return self.environ_class(env)

    def init_socket(self) -> None:
        StreamServer.init_socket(self)
        self.update_environ()

    def update_environ(self) -> None:
        """Fill ``SERVER_NAME``/``SERVER_PORT`` from the bound address."""
        address = self.address
        if isinstance(address, tuple):
            if "SERVER_NAME" not in self.environ:
                host = address[0]
                name = host
                if host in ("", "0.0.0.0", "::", "127.0.0.1", "::1"):
                    try:
                        from . import socket as _gsocket

                        name = _gsocket.getfqdn(host)
                    except Exception:
                        name = host
                self.environ["SERVER_NAME"] = name or host
            self.environ.setdefault("SERVER_PORT", str(address[1]))
        else:
            self.environ.setdefault("SERVER_NAME", "")
            self.environ.setdefault("SERVER_PORT", "")

    def start(self) -> None:
        self._closing = False
        StreamServer.start(self)

    def close(self) -> None:
        """Stop accepting; idle keep-alive connections are closed, busy ones
        are closed after their current response."""
        self._closing = True
        try:
            StreamServer.close(self)
        finally:
            for sock in list(self._idle_sockets):
                try:
                    sock.shutdown(_SHUT_RD)
                except OSError:
                    pass

    def handle(self, sock: Any, address: Any) -> None:
        """Serve one connection with :attr:`handler_class`."""
        handler = self.handler_class(sock, address, self)
        handler.handle()


# -- command line -----------------------------------------------------------------


def _load_app(spec: str) -> Callable:
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"error: expected MODULE:APP, got {spec!r}")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemExit(f"error: cannot import {module_name!r}: {exc}") from None
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise SystemExit(f"error: {module_name!r} has no attribute {attr!r}") from None
    if not callable(obj):
        raise SystemExit(f"error: {spec} is not callable")
    return obj


def main(argv: list[str] | None = None) -> int:
    """``python -m greenweave.pywsgi module:app [--bind HOST:PORT] [--certfile F
    --keyfile F] [--no-access-log]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m greenweave.pywsgi",
                                     description="Serve a WSGI application with greenweave.")
    parser.add_argument("app", help="the application, as MODULE:NAME")
    parser.add_argument("--bind", "-b", default="127.0.0.1:8000",
                        help="address to listen on, HOST:PORT (default 127.0.0.1:8000)")
    parser.add_argument("--certfile", help="TLS certificate chain (PEM); enables HTTPS")
    parser.add_argument("--keyfile", help="TLS private key (PEM)")
    parser.add_argument("--no-access-log", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    if args.keyfile and not args.certfile:
        parser.error("--keyfile needs --certfile")
    app = _load_app(args.app)
    ssl_args = {}
    if args.certfile:
        ssl_args["certfile"] = args.certfile
        if args.keyfile:
            ssl_args["keyfile"] = args.keyfile
    server = WSGIServer(args.bind, app, log=None if args.no_access_log else "default",
                        **ssl_args)
    server.start()
    scheme = "https" if ssl_args else "http"
    host = server.server_host
    if isinstance(host, str) and ":" in host:
        host = f"[{host}]"
    sys.stderr.write(f"Serving {args.app} on {scheme}://{host}:{server.server_port}/ "
                     f"(Ctrl-C to stop)\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
