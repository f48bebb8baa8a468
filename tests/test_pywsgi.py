"""greenweave.pywsgi over real loopback sockets: PEP 3333 behaviour (environ,
wsgi.input, write(), exc_info, file_wrapper), HTTP/1.0 and 1.1 framing
(keep-alive, pipelining, chunked both ways, 100-continue, HEAD, bodiless
statuses), every kind of bad input (raw bytes, checking the status and that
the server goes on serving), slow and idle clients, graceful stop, logging,
the secure environ classes, TLS, the command line and a hypothesis fuzz test."""

from __future__ import annotations

import io
import logging
import os
import signal
import socket as stdsocket
import subprocess
import sys
import threading
import time

import pytest

import greenweave
from greenweave import pywsgi
from greenweave import socket as gsocket
from greenweave.pywsgi import (
    Environ,
    LoggingLogAdapter,
    SecureEnviron,
    WSGIHandler,
    WSGISecureEnviron,
    WSGIServer,
)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    fresh_hub.exception_stream = io.StringIO()
    return fresh_hub


# -- helpers ------------------------------------------------------------------------


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello, world!"]


def echo_app(environ, start_response):
    """Echo the request body; headers describe the request."""
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("X-Path", environ["PATH_INFO"].encode("latin-1").decode("latin-1")),
                              ("X-Method", environ["REQUEST_METHOD"])])
    return [body]


class Served:
    """A started WSGIServer plus its logs; stopped by the fixture."""

    def __init__(self, app, **kwargs):
        self.log = io.StringIO()
        self.error_log = io.StringIO()
        kwargs.setdefault("log", self.log)
        kwargs.setdefault("error_log", self.error_log)
        self.server = WSGIServer(("127.0.0.1", 0), app, **kwargs)
        self.server.start()
        self.address = ("127.0.0.1", self.server.server_port)

    def connect(self, timeout=5):
        return gsocket.create_connection(self.address, timeout=timeout)

    def raw(self, data, timeout=5, shut=False):
        """Send ``data`` on a new connection; everything received until close."""
        with self.connect(timeout) as c:
            c.sendall(data)
            if shut:
                c.shutdown(stdsocket.SHUT_WR)
            return read_all(c)

    def get(self, path="/", headers=b""):
        """One good request on a new connection; the parsed response."""
        with self.connect() as c:
            c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + headers
                      + b"Connection: close\r\n\r\n")
            return Reader(c).response()


@pytest.fixture
def serve():
    servers = []

    def start(app, **kwargs):
        s = Served(app, **kwargs)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.server.stop(timeout=1)


def read_all(sock):
    out = b""
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not data:
            break
        out += data
    return out


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.code = int(status.split()[1])
        self.headers = headers
        self.body = body

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return f"<Response {self.status!r} {self.headers!r} {self.body[:60]!r}>"


class Reader:
    """Parse responses from a socket (Content-Length, chunked, or until close)."""

    def __init__(self, sock, head_request=False):
        self.sock = sock
        self.buf = b""
        self.head_request = head_request

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head_request=None):
        if head_request is None:
            head_request = self.head_request
        status = self._line().decode("latin-1")
        headers = []
        while True:
            line = self._line()
            if not line:
                break
            k, v = line.decode("latin-1").split(":", 1)
            headers.append((k, v.strip()))
        r = Response(status, headers, b"")
        if head_request or r.code in (204, 304) or r.code < 200:
            return r
        if (r.header("Transfer-Encoding") or "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                assert self._line() == b""
            r.body = body
        elif r.header("Content-Length") is not None:
            r.body = self._exact(int(r.header("Content-Length")))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            r.body, self.buf = self.buf, b""
        return r

    def closed(self, timeout=2):
        self.sock.settimeout(timeout)
        try:
            return self.buf == b"" and self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


def parse_all(data):
    """Parse every response in ``data`` (bytes received until close)."""
    a, b = gsocket.socketpair()
    try:
        b.sendall(data)
        b.close()
        reader = Reader(a)
        out = []
        while True:
            try:
                out.append(reader.response())
            except EOFError:
                return out
            if not reader.buf:
                try:
                    reader._fill()
                except EOFError:
                    return out
    finally:
        a.close()


def in_thread(fn, *args, **kwargs):
    """Run a blocking (non-greenweave) client in a native thread; wait cooperatively."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while t.is_alive() and time.monotonic() < deadline:
        greenweave.sleep(0.005)
    assert not t.is_alive(), "client thread hung"
    if "error" in box:
        raise box["error"]
    return box["value"]


def fd_count():
    return len(os.listdir("/proc/self/fd"))


# -- basics and the environ ---------------------------------------------------------------


def test_hello_world_one_write_with_date_and_length(serve):
    s = serve(hello)
    r = s.get()
    assert r.status == "HTTP/1.1 200 OK"
    assert r.body == b"Hello, world!"
    assert r.header("Content-Length") == "13"
    assert r.header("Date").endswith(" GMT")
    assert r.header("Connection") == "close"


def test_environ_contents(serve):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return [b""]

    s = serve(app)
    with s.connect() as c:
        c.sendall(b"POST /a%20b/c%2Fd%C3%A9?x=1%20&y=%2F#frag HTTP/1.1\r\n"
                  b"Host: example.org:8080\r\n"
                  b"Content-Type: text/x\r\nContent-Length: 3\r\nX-Multi: 1\r\nX-Multi: 2\r\n"
                  b"X_Spoof: evil\r\nUser-Agent: t\r\nConnection: close\r\n\r\nabc")
        Reader(c).response()
    port = s.server.server_port
    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["SCRIPT_NAME"] == ""
    assert seen["PATH_INFO"] == "/a b/c/d\xc3\xa9"  # percent-decoded, latin-1 (PEP 3333)
    assert seen["QUERY_STRING"] == "x=1%20&y=%2F"
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert seen["SERVER_PORT"] == str(port)
    assert seen["SERVER_NAME"]
    assert seen["REMOTE_ADDR"] == "127.0.0.1" and int(seen["REMOTE_PORT"]) > 0
    assert seen["CONTENT_TYPE"] == "text/x" and seen["CONTENT_LENGTH"] == "3"
    assert seen["HTTP_HOST"] == "example.org:8080"
    assert seen["HTTP_X_MULTI"] == "1,2"
    assert "HTTP_X_SPOOF" not in seen  # underscores: dropped, cannot pose as X-Spoof
    assert seen["HTTP_USER_AGENT"] == "t"
    assert seen["wsgi.version"] == (1, 0)
    assert seen["wsgi.url_scheme"] == "http"
    assert seen["wsgi.multithread"] is False and seen["wsgi.multiprocess"] is False
    assert seen["wsgi.run_once"] is False
    assert seen["wsgi.errors"] is s.error_log
    assert seen["wsgi.input_terminated"] is True
    assert callable(seen["wsgi.file_wrapper"])
    assert hasattr(seen["wsgi.input"], "read")
    assert seen["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert seen["SERVER_SOFTWARE"].startswith("greenweave/")
    assert all(type(k) is str for k in seen)
    assert all(type(v) is str for k, v in seen.items() if k.isupper())


def test_extra_environ_and_absolute_uri(serve):
    seen = {}

    def app(environ, start_response):
        seen.update(environ)
        start_response("200 OK", [])
        return []

    s = serve(app, environ={"custom.key": 42, "SERVER_NAME": "configured"})
    r = parse_all(s.raw(b"GET http://other.example/p/q?z=1 HTTP/1.1\r\nHost: x\r\n"
                        b"Connection: close\r\n\r\n"))[0]
    assert r.code == 200 and r.header("Content-Length") == "0"
    assert seen["custom.key"] == 42 and seen["SERVER_NAME"] == "configured"
    assert seen["PATH_INFO"] == "/p/q" and seen["QUERY_STRING"] == "z=1"


# -- connection management --------------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(serve):
    s = serve(echo_app)
    with s.connect() as c:
        reader = Reader(c)
        for i in range(20):
            c.sendall(b"GET /%d HTTP/1.1\r\nHost: t\r\n\r\n" % i)
            r = reader.response()
            assert r.code == 200 and r.header("X-Path") == "/%d" % i
            assert r.header("Connection") is None


def test_http10_closes_unless_keep_alive_is_asked(serve):
    s = serve(hello)
    data = s.raw(b"GET / HTTP/1.0\r\n\r\n")
    (r,) = parse_all(data)
    assert r.code == 200 and r.body == b"Hello, world!" and r.header("Connection") == "close"
    with s.connect() as c:
        reader = Reader(c)
        for _ in range(3):
            c.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = reader.response()
            assert r.header("Connection") == "keep-alive" and r.body == b"Hello, world!"


def test_connection_close_from_client_and_from_app(serve):
    def app(environ, start_response):
        headers = [("Connection", "close")] if environ["PATH_INFO"] == "/bye" else []
        start_response("200 OK", headers)
        return [b"x"]

    s = serve(app)
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"GET / HTTP/1.1\r\n\r\nGET /bye HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        assert reader.response().code == 200
        r = reader.response()
        assert r.header("Connection") == "close"
        assert reader.closed()


def test_pipelined_requests_are_answered_in_order(serve):
    s = serve(echo_app)
    data = (b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
            b"POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
            b"PUT /4 HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
            b"GET /5 HTTP/1.1\r\nConnection: close\r\n\r\n")
    for chunks in ([data], [data[i:i + 7] for i in range(0, len(data), 7)]):
        with s.connect() as c:
            for chunk in chunks:
                c.sendall(chunk)
            rs = parse_all(read_all(c))
        assert [r.header("X-Path") for r in rs] == ["/1", "/2", "/3", "/4", "/5"]
        assert [r.body for r in rs] == [b"", b"hello", b"abcde", b"", b""]
        assert [r.header("X-Method") for r in rs] == ["GET", "POST", "POST", "PUT", "GET"]


def test_many_pipelined_requests_in_one_packet(serve):
    s = serve(hello)
    data = b"GET / HTTP/1.1\r\n\r\n" * 300 + b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n"
    rs = parse_all(s.raw(data))
    assert len(rs) == 301 and all(r.body == b"Hello, world!" for r in rs)


def test_unread_body_is_skipped_to_keep_the_connection(serve):
    s = serve(hello)
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n")
        c.sendall(b"z" * 100000)
        assert reader.response().body == b"Hello, world!"
        c.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert reader.response().body == b"Hello, world!"


def test_huge_unread_body_closes_the_connection(serve):
    s = serve(hello, max_drain=1000)
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"z" * 5000)
        assert reader.response().header("Connection") == "close"
        assert reader.closed()


# -- bodies in and out ---------------------------------------------------------------------


def test_wsgi_input_methods(serve):
    results = {}

    def app(environ, start_response):
        inp = environ["wsgi.input"]
        path = environ["PATH_INFO"]
        if path == "/read":
            results[path] = [inp.read(3), inp.read(0), inp.read(4), inp.read(), inp.read()]
        elif path == "/readline":
            results[path] = [inp.readline(), inp.readline(2), inp.readline(), inp.readline(),
                             inp.readline()]
        elif path == "/readlines":
            results[path] = inp.readlines()
        elif path == "/iter":
            results[path] = list(inp)
        start_response("200 OK", [])
        return []

    s = serve(app)
    body = b"line1\nline2\n\nlast"
    for path in ("/read", "/readline", "/readlines", "/iter"):
        for framing in ("length", "chunked"):
            if framing == "length":
                req = (b"POST %s HTTP/1.1\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
                       % (path.encode(), len(body)) + body)
            else:
                req = (b"POST %s HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                       b"Connection: close\r\n\r\n" % path.encode()
                       + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:4], body[4:]))
                       + b"0\r\n\r\n")
            with s.connect() as c:
                # Trickle the request so reads really wait for data.
                for i in range(0, len(req), 9):
                    c.sendall(req[i:i + 9])
                    greenweave.sleep(0.001)
                assert Reader(c).response().code == 200
    assert results["/read"] == [b"lin", b"", b"e1\nl", b"ine2\n\nlast", b""]
    assert results["/readline"] == [b"line1\n", b"li", b"ne2\n", b"\n", b"last"]
    assert results["/readlines"] == [b"line1\n", b"line2\n", b"\n", b"last"]
    assert results["/iter"] == [b"line1\n", b"line2\n", b"\n", b"last"]


def test_chunked_response_when_length_unknown(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"ab"
        yield b""
        yield b"cde"

    s = serve(app)
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"GET / HTTP/1.1\r\n\r\n")
        r = reader.response()
        assert r.header("Transfer-Encoding") == "chunked" and r.body == b"abcde"
        c.sendall(b"GET / HTTP/1.1\r\n\r\n")  # still usable
        assert reader.response().body == b"abcde"
    # HTTP/1.0 has no chunking: the body ends with the connection.
    (r,) = parse_all(s.raw(b"GET / HTTP/1.0\r\n\r\n"))
    assert r.header("Transfer-Encoding") is None and r.body == b"abcde"


def test_write_callable_and_large_bodies(serve):
    big = os.urandom(300_000)

    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Length", str(len(big) + 3))])
        write(b"abc")
        write(big)
        return []

    def app_list(environ, start_response):
        start_response("200 OK", [])
        return [big, b"tail"]

    r = serve(app).get()
    assert r.body == b"abc" + big
    r = serve(app_list).get()
    assert r.body == big + b"tail" and r.header("Content-Length") == str(len(big) + 4)


def test_expect_100_continue_sent_only_when_the_body_is_read(serve):
    def reader_app(environ, start_response):
        body = environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"got " + body]

    def ignoring_app(environ, start_response):
        start_response("403 Forbidden", [])
        return [b"no"]

    s = serve(reader_app)
    with s.connect() as c:
        c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        assert c.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.sendall(b"data")
        r = Reader(c).response()
        assert r.body == b"got data"
    s2 = serve(ignoring_app)
    with s2.connect() as c:
        c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        reader = Reader(c)
        r = reader.response()
        assert r.code == 403 and r.body == b"no"
        assert b"100 Continue" not in reader.buf
        assert reader.closed()  # the body never came: the connection can't be reused
    # Body sent along anyway: no 100 needed, the connection stays usable.
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok"
                  b"GET / HTTP/1.1\r\n\r\n")
        r1 = reader.response()
        assert r1.body == b"got ok"
        assert reader.response().body == b"got "


def test_head_and_bodiless_statuses(serve):
    def app(environ, start_response):
        code = environ["PATH_INFO"][1:]
        start_response(f"{code} Whatever", [("Content-Type", "text/plain")])
        if environ["QUERY_STRING"] == "gen":
            return iter([b"body"])
        return [b"body"]

    s = serve(app)
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"HEAD /200 HTTP/1.1\r\n\r\n")
        r = reader.response(head_request=True)
        assert r.code == 200 and r.header("Content-Length") == "4"
        c.sendall(b"HEAD /200?gen HTTP/1.1\r\n\r\n")
        r = reader.response(head_request=True)
        assert r.header("Transfer-Encoding") is None and r.header("Connection") is None
        for code in (204, 304):
            c.sendall(b"GET /%d HTTP/1.1\r\n\r\n" % code)
            r = reader.response()
            assert r.code == code and r.header("Content-Length") is None
            assert r.header("Transfer-Encoding") is None
        c.sendall(b"GET /200 HTTP/1.1\r\n\r\n")
        assert reader.response().body == b"body"  # nothing stray was sent before it
        assert reader.buf == b""


def test_file_wrapper_regular_file_and_file_like(serve, tmp_path):
    content = os.urandom(200_000)
    path = tmp_path / "blob"
    path.write_bytes(content)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/file":
            f = open(path, "rb")
            f.seek(10)
            return environ["wsgi.file_wrapper"](f, 4096)
        return environ["wsgi.file_wrapper"](io.BytesIO(content), 1000)

    s = serve(app)
    before = fd_count()
    r = s.get("/file")
    assert r.body == content[10:] and r.header("Content-Length") == str(len(content) - 10)
    r = s.get("/bytes")
    assert r.body == content
    greenweave.sleep(0.05)
    assert fd_count() <= before  # the file was closed


def test_result_close_is_called(serve):
    closed = []

    class Result:
        def __iter__(self):
            return iter([b"a", b"b"])

        def close(self):
            closed.append(True)

    def app(environ, start_response):
        start_response("200 OK", [])
        return Result()

    assert serve(app).get().body == b"ab"
    assert closed == [True]


# -- the application's mistakes ---------------------------------------------------------------


def test_app_exception_gives_500_and_traceback_only_in_error_log(serve):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/boom":
            raise ZeroDivisionError("secret detail")
        return hello(environ, start_response)

    s = serve(app)
    r = s.get("/boom", headers=b"Cookie: session=topsecret\r\n")
    assert r.code == 500 and b"secret" not in r.body and b"Traceback" not in r.body
    log = s.error_log.getvalue()
    assert "ZeroDivisionError: secret detail" in log and "Traceback" in log
    assert "topsecret" not in log  # the environ in the report is masked
    assert "REMOTE_ADDR" in log
    assert s.get("/").code == 200  # and the server goes on


def test_crlf_in_response_header_raises_before_anything_is_sent(serve):
    errors = []

    def app(environ, start_response):
        try:
            start_response("200 OK", [("X-Evil", "a\r\nSet-Cookie: pwned=1")])
        except ValueError as exc:
            errors.append(exc)
        if environ["PATH_INFO"] == "/recover":
            start_response("200 OK", [("X-Fine", "yes")])
            return [b"ok"]
        start_response("200 OK", [("X-Evil\n", "v")])
        return [b"unreachable"]

    s = serve(app)
    r = s.get("/recover")
    assert r.code == 200 and r.header("X-Fine") == "yes" and r.header("Set-Cookie") is None
    r = s.get("/fail")
    assert r.code == 500 and r.header("Set-Cookie") is None
    assert len(errors) == 2 and all(isinstance(e, ValueError) for e in errors)


@pytest.mark.parametrize("status, headers, exc", [
    (b"200 OK", [], TypeError),
    ("OK", [], ValueError),
    ("200 OK\r\nX: y", [], ValueError),
    ("200 OK", [("X", 5)], TypeError),
    ("200 OK", [("X", "caf\u20ac")], ValueError),
    ("200 OK", [("Content-Length", "-3")], ValueError),
])
def test_start_response_validates(serve, status, headers, exc):
    caught = []

    def app(environ, start_response):
        try:
            start_response(status, headers)
        except Exception as e:  # noqa: BLE001
            caught.append(e)
        start_response("200 OK", [])
        return [b"ok"]

    assert serve(app).get().body == b"ok"
    assert len(caught) == 1 and isinstance(caught[0], exc)


def test_exc_info_before_and_after_headers_sent(serve):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/before":
            start_response("200 OK", [("X-Old", "1")])
            try:
                raise KeyError("oops")
            except KeyError:
                start_response("502 Bad Gateway", [("X-New", "1")], sys.exc_info())
            return [b"replaced"]
        write = start_response("200 OK", [])
        write(b"partial")
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Oops", [], sys.exc_info())  # re-raises: headers went out
        return [b"never"]

    s = serve(app)
    r = s.get("/before")
    assert r.code == 502 and r.header("X-New") == "1" and r.header("X-Old") is None
    assert r.body == b"replaced"
    data = s.raw(b"GET /after HTTP/1.1\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"7\r\npartial\r\n")
    assert "KeyError: 'late'" in s.error_log.getvalue()


def test_content_length_mismatch_closes_the_connection(serve):
    def app(environ, start_response):
        start_response("200 OK", [("Content-Length", "10")])
        return iter([b"short"])

    s = serve(app)
    with s.connect() as c:
        c.sendall(b"GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n")
        data = read_all(c)
    assert data.count(b"HTTP/1.1 200") == 1 and data.endswith(b"short")


# -- bad input ---------------------------------------------------------------------------

BAD_REQUESTS = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400),
    (b"GET /\x00 HTTP/1.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n : novalue\r\n\r\n", 400),
    (b"GET " + b"/a" * 5000 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"v" * 70000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000)
                                      for i in range(80)) + b"\r\n", 431),
    (b"POST / HTTP/1.1\r\nContent-Length: 3x\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\n\r\n\x16\x03\x01garbage after a good request", 400),
]


@pytest.mark.parametrize("data, status", BAD_REQUESTS)
def test_bad_input_gets_a_clear_status_and_the_server_goes_on(serve, data, status):
    s = serve(echo_app)
    rs = parse_all(s.raw(data))
    assert rs, "no response at all"
    assert rs[-1].code == status, rs
    assert rs[-1].header("Connection") == "close"
    assert s.get("/").code == 200


def test_bad_chunked_body_while_the_app_reads_it(serve):
    seen = []

    def app(environ, start_response):
        try:
            environ["wsgi.input"].read()
        except OSError as exc:
            seen.append(exc)
            raise
        start_response("200 OK", [])
        return [b"?"]

    s = serve(app)
    rs = parse_all(s.raw(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\nZZ\r\n"))
    assert rs[-1].code == 400 and len(seen) == 1
    assert "Traceback" not in s.error_log.getvalue()
    assert s.get("/").code == 200  # an empty body reads fine; the server goes on


def test_limits_are_configurable(serve):
    s = serve(hello, max_request_line=100, max_header_size=200)
    assert parse_all(s.raw(b"GET /" + b"a" * 150 + b" HTTP/1.1\r\n\r\n"))[0].code == 414
    assert parse_all(s.raw(b"GET / HTTP/1.1\r\nX: " + b"v" * 300 + b"\r\n\r\n"))[0].code == 431
    assert parse_all(s.raw(b"GET /" + b"a" * 50 + b" HTTP/1.1\r\nX: " + b"v" * 100
                           + b"\r\nConnection: close\r\n\r\n"))[0].code == 200


def test_slowloris_is_cut_off_while_others_are_served(serve):
    s = serve(hello, header_timeout=0.5)
    with s.connect() as slow:
        t0 = time.monotonic()
        slow.sendall(b"GET / HTTP/1.1\r\n")
        served = 0
        reader = Reader(slow)
        try:
            for i in range(40):
                slow.sendall(b"X-%d: y\r\n" % i)  # a header every 50 ms, never finishing
                if i % 4 == 0:
                    assert s.get("/").code == 200
                    served += 1
                greenweave.sleep(0.05)
        except OSError:
            pass
        r = reader.response()
        assert r.code == 408
        assert reader.closed()
        assert time.monotonic() - t0 < 2.5
        assert served >= 2
    # A silent connection is cut off too (the head never starts).
    with s.connect() as idle:
        t0 = time.monotonic()
        assert read_all(idle).startswith(b"HTTP/1.1 408")
        assert 0.3 < time.monotonic() - t0 < 3


def test_idle_keep_alive_connections_are_closed(serve):
    s = serve(hello, keepalive_timeout=0.3)
    with s.connect() as c:
        reader = Reader(c)
        c.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert reader.response().code == 200
        t0 = time.monotonic()
        assert reader.closed(timeout=5)
        assert 0.2 < time.monotonic() - t0 < 3


def test_slow_body_times_out(serve):
    def app(environ, start_response):
        environ["wsgi.input"].read()
        start_response("200 OK", [])
        return [b"never"]

    s = serve(app, body_timeout=0.3)
    with s.connect() as c:
        c.sendall(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc")
        data = read_all(c)
    assert data.startswith(b"HTTP/1.1 408")
    assert s.get("/").code == 200


# -- logging and environ classes ---------------------------------------------------------------


def test_access_log_default_custom_and_off(serve):
    s = serve(hello)
    s.get("/logged?q=1", headers=b"User-Agent: agent-x\r\n")
    line = s.log.getvalue()
    assert line.startswith("127.0.0.1 - - [")
    assert '"GET /logged?q=1 HTTP/1.1" 200 ' in line and line.endswith("\n")
    s2 = serve(hello, access_log_format="%(method)s %(path)s %(status)s %(user_agent)s")
    s2.get("/p", headers=b"User-Agent: agent-x\r\n")
    assert s2.log.getvalue() == "GET /p 200 agent-x\n"
    s3 = serve(hello, log=None)
    assert s3.get().code == 200 and s3.log.getvalue() == ""
    # Bad requests are logged too.
    s.raw(b"BROKEN\r\n\r\n")
    assert '" 400 ' in s.log.getvalue()


def test_logging_logger_as_log(serve, caplog):
    logger = logging.getLogger("greenweave.test.access")
    with caplog.at_level(logging.INFO, logger="greenweave.test.access"):
        s = serve(hello, log=logger, error_log=logger)
        assert isinstance(s.server.log, LoggingLogAdapter)
        s.get("/via-logging")
    records = [r for r in caplog.records if r.name == "greenweave.test.access"]
    assert any("/via-logging" in r.getMessage() and r.levelno == logging.INFO for r in records)
    assert not any(r.getMessage().endswith("\n") for r in records)


def test_logging_log_adapter():
    logger = logging.getLogger("greenweave.test.adapter")
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append((record.levelno, record.getMessage()))

    handler = Collect()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        adapter = LoggingLogAdapter(logger, logging.WARNING)
        adapter.write("one\n")
        adapter.writelines(["two\n", "three"])
        adapter.flush()
        assert records == [(30, "one"), (30, "two"), (30, "three")]
        assert adapter.name == "greenweave.test.adapter"  # attributes are the logger's
        adapter.custom_attr = 5
        assert logger.custom_attr == 5
        del adapter.custom_attr
        assert not hasattr(logger, "custom_attr")
    finally:
        logger.removeHandler(handler)


def test_environ_classes():
    env = Environ({"a": 1})
    assert type(env.copy()) is Environ and env.copy() == {"a": 1}
    assert list(env.iteritems()) == [("a", 1)]

    secret = {"REMOTE_ADDR": "1.2.3.4", "HTTP_HOST": "h", "HTTP_COOKIE": "topsecret"}
    s = SecureEnviron(secret)
    assert "topsecret" not in repr(s) and "(keys: 3)" in repr(s) and str(s) == repr(s)
    s.whitelist_keys = ("HTTP_HOST",)
    assert repr(s) == "{'REMOTE_ADDR': '<MASKED>', 'HTTP_HOST': 'h', 'HTTP_COOKIE': '<MASKED>'}"
    s.print_masked_keys = False
    assert repr(s) == "{'HTTP_HOST': 'h', (hidden keys: 2)}"
    s.secure_repr = False
    assert "topsecret" in repr(s)
    assert SecureEnviron(secret).secure_repr is True  # per instance
    w = WSGISecureEnviron(secret)
    assert repr(w) == "{'REMOTE_ADDR': '1.2.3.4', 'HTTP_HOST': 'h', (hidden keys: 1)}"

    class Custom(SecureEnviron):
        default_secure_repr = False

    assert "topsecret" in repr(Custom(secret))


def test_handler_class_and_server_subclass(serve):
    class Tagging(WSGIHandler):
        def run_application(self):
            self.environ["tag"] = "custom"
            WSGIHandler.run_application(self)

    class AppServer(WSGIServer):
        def application(self, environ, start_response):
            start_response("200 OK", [])
            return [environ.get("tag", "none").encode()]

    s = AppServer(("127.0.0.1", 0), handler_class=Tagging, log=None)
    s.start()
    try:
        with gsocket.create_connection(s.address) as c:
            c.sendall(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert Reader(c).response().body == b"custom"
    finally:
        s.stop()
    with pytest.raises(TypeError, match="application"):
        WSGIServer(("127.0.0.1", 0))
    with pytest.raises(TypeError, match="callable"):
        WSGIServer(("127.0.0.1", 0), "not an app")


def test_max_accept_and_multiprocess_environ():
    s = WSGIServer(("127.0.0.1", 0), hello, max_accept=7)
    assert s.max_accept == 7
    s2 = WSGIServer(("127.0.0.1", 0), hello, environ={"wsgi.multiprocess": True})
    assert s2.max_accept == 1
    s.close()
    s2.close()


# -- real clients ------------------------------------------------------------------------


def test_requests_client_from_a_native_thread(serve):
    requests = pytest.importorskip("requests")
    s = serve(echo_app)
    url = f"http://127.0.0.1:{s.server.server_port}"

    def client():
        with requests.Session() as session:
            out = [session.get(url + "/a b").headers["X-Path"]]
            out.append(session.post(url + "/post", data=b"x" * 100000).content)
            out.append(session.post(url + "/gen", data=(b"part%d" % i for i in range(3))).content)
            return out

    path, posted, generated = in_thread(client)
    assert path == "/a b" and posted == b"x" * 100000 and generated == b"part0part1part2"


def test_http_client_keep_alive_from_a_native_thread(serve):
    import http.client

    s = serve(hello)

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", s.server.server_port, timeout=5)
        bodies = []
        for _ in range(5):
            conn.request("GET", "/")
            bodies.append(conn.getresponse().read())
        conn.close()
        return bodies

    assert in_thread(client) == [b"Hello, world!"] * 5


# -- stopping -----------------------------------------------------------------------------


def test_graceful_stop_with_requests_in_flight(serve):
    started = []

    def slow(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            started.append(1)
            greenweave.sleep(0.5)
        start_response("200 OK", [])
        return [b"finished"]

    s = serve(slow)
    idle = s.connect()  # a kept-alive connection with nothing in flight
    idle.sendall(b"GET /fast HTTP/1.1\r\n\r\n")
    idle_reader = Reader(idle)
    assert idle_reader.response().body == b"finished"
    conns = [s.connect() for _ in range(10)]
    for c in conns:
        c.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
    deadline = time.monotonic() + 5
    while len(started) < 10 and time.monotonic() < deadline:
        greenweave.sleep(0.01)
    t0 = time.monotonic()
    s.server.stop(timeout=5)
    assert time.monotonic() - t0 < 3  # not the keep-alive timeout
    for c in conns:
        r = Reader(c).response()
        assert r.body == b"finished" and r.header("Connection") == "close"
        c.close()
    assert idle_reader.closed()
    idle.close()


def test_stop_timeout_kills_stuck_requests(serve):
    def stuck(environ, start_response):
        greenweave.sleep(60)

    s = serve(stuck)
    c = s.connect()
    c.sendall(b"GET / HTTP/1.1\r\n\r\n")
    greenweave.sleep(0.05)
    t0 = time.monotonic()
    s.server.stop(timeout=0.2)
    assert time.monotonic() - t0 < 2.5
    assert read_all(c) == b""
    c.close()


# -- TLS ----------------------------------------------------------------------------


@pytest.fixture
def tls_files(tmp_path):
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile = tmp_path / "cert.pem"
    keyfile = tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    with open(certfile, "wb") as f:
        for pem in cert.cert_chain_pems:
            f.write(pem.bytes())
    cafile = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(cafile))
    return str(certfile), str(keyfile), str(cafile)


def test_https(serve, tls_files):
    pytest.importorskip("greenweave.ssl")
    requests = pytest.importorskip("requests")
    certfile, keyfile, cafile = tls_files
    seen = {}

    def app(environ, start_response):
        seen["scheme"] = environ["wsgi.url_scheme"]
        return echo_app(environ, start_response)

    s = serve(app, certfile=certfile, keyfile=keyfile)
    assert s.server.ssl_enabled
    url = f"https://localhost:{s.server.server_port}/secure"

    def client():
        with requests.Session() as session:
            return [session.post(url, data=b"tls-body", verify=cafile).content,
                    session.get(url, verify=cafile).headers["X-Path"]]

    assert in_thread(client) == [b"tls-body", "/secure"]
    assert seen["scheme"] == "https"
    # A plain-HTTP client on the TLS port does not break anything.
    s.raw(b"GET / HTTP/1.1\r\n\r\n", timeout=2)
    assert in_thread(client)[0] == b"tls-body"


# -- the command line -------------------------------------------------------------------


def _free_port():
    with stdsocket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port, proc, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.communicate()}")
        try:
            stdsocket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("server did not start")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("access_log", [True, False])
def test_command_line(tmp_path, access_log):
    import http.client

    (tmp_path / "cli_app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'from the command line ' + environ['PATH_INFO'].encode()]\n")
    port = _free_port()
    cmd = [sys.executable, "-m", "greenweave.pywsgi", "cli_app:application",
           "--bind", f"127.0.0.1:{port}"]
    if not access_log:
        cmd.append("--no-access-log")
    # A shell's background jobs inherit SIGINT ignored: give the server the default.
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        _wait_for_port(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/hi")
        assert conn.getresponse().read() == b"from the command line /hi"
        conn.close()
        time.sleep(0.2)  # let the server write its log line
        proc.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            out, err = proc.communicate(timeout=10)
    assert b"Serving cli_app:application on http://127.0.0.1:" in err
    assert (b'"GET /hi HTTP/1.1" 200' in err) == access_log


def test_command_line_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "greenweave.pywsgi", "no_such_module:app"],
                       cwd=tmp_path, capture_output=True, timeout=30)
    assert r.returncode != 0 and b"cannot import" in r.stderr
    r = subprocess.run([sys.executable, "-m", "greenweave.pywsgi", "justamodule"],
                       cwd=tmp_path, capture_output=True, timeout=30)
    assert r.returncode != 0 and b"MODULE:APP" in r.stderr


@pytest.mark.timeout(60)
def test_command_line_tls(tmp_path, tls_files):
    pytest.importorskip("greenweave.ssl")
    import ssl

    certfile, keyfile, cafile = tls_files
    (tmp_path / "cli_tls_app.py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [environ['wsgi.url_scheme'].encode()]\n")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "greenweave.pywsgi", "cli_tls_app:app",
                             "--bind", f"127.0.0.1:{port}", "--certfile", certfile,
                             "--keyfile", keyfile, "--no-access-log"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for_port(port, proc)
        import http.client

        ctx = ssl.create_default_context(cafile=cafile)
        conn = http.client.HTTPSConnection("localhost", port, timeout=5, context=ctx)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"https"
        conn.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


# -- fuzzing ------------------------------------------------------------------------------

GOOD = (b"POST /path?q=1 HTTP/1.1\r\nHost: example\r\nContent-Length: 5\r\n"
        b"X-Header: value\r\n\r\nhello")


@pytest.mark.timeout(120)
def test_fuzz_random_and_mutated_requests(serve):
    pytest.importorskip("hypothesis")
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    s = serve(echo_app, header_timeout=2, body_timeout=1, keepalive_timeout=1)
    s.get("/")  # warm up: lazily created things exist before we count descriptors
    baseline = fd_count()

    def mutate(data, ops):
        data = bytearray(data)
        for kind, pos, byte in ops:
            if not data:
                break
            pos %= len(data)
            if kind == 0:
                data[pos] = byte
            elif kind == 1:
                data.insert(pos, byte)
            elif kind == 2:
                del data[pos]
            else:
                data[pos:pos] = data[pos:pos + 20]
        return bytes(data)

    mutations = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000),
                                   st.integers(0, 255)), max_size=8)
    payloads = st.one_of(
        st.binary(max_size=300),
        mutations.map(lambda ops: mutate(GOOD, ops)),
        st.tuples(mutations, st.integers(1, 4)).map(lambda t: mutate(GOOD, t[0]) * t[1]),
    )

    @settings(max_examples=120, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(payloads, st.booleans())
    def check(data, half_close):
        with s.connect(timeout=5) as c:
            try:
                c.sendall(data)
                if half_close:
                    c.shutdown(stdsocket.SHUT_WR)
                c.settimeout(0.2 if not half_close else 5)
                read_all(c)
            except OSError:
                pass
        r = s.get("/after")
        assert r.code == 200 and r.header("X-Path") == "/after"

    check()
    # Connections the fuzzer left waiting time out; then nothing may remain open.
    deadline = time.monotonic() + 10
    while fd_count() > baseline and time.monotonic() < deadline:
        greenweave.sleep(0.1)
    assert fd_count() <= baseline
    assert "Traceback" not in s.error_log.getvalue()


def test_no_descriptor_leak_after_many_connections(serve):
    s = serve(hello)
    s.get("/")
    before = fd_count()
    for i in range(50):
        if i % 2:
            s.raw(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        else:
            s.raw(b"NONSENSE\r\n\r\n")
    greenweave.sleep(0.05)
    assert fd_count() <= before


def test_module_exports():
    for name in pywsgi.__all__:
        assert hasattr(pywsgi, name)
