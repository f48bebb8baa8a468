"""Why an I/O-bound WSGI site gets faster on greenweave's server, measured.

The application below is an ordinary WSGI callable whose every request waits
0.1 s on "I/O" (``time.sleep`` stands in for a database query or an HTTP call
to another service).  It is served twice and hit with 10 concurrent requests:

* by ``wsgiref`` (the standard library's reference server), which handles
  one request at a time: the requests queue up, 10 x 0.1 s = 1 s;
* by ``greenweave.pywsgi.WSGIServer``, which gives every connection its own
  greenlet: while one request waits on I/O the others run, so all 10 finish
  in about 0.1 s.

Nothing in the application changed.  ``monkey.patch_all()`` at the top is
what makes its blocking calls (``time.sleep`` here; a database driver's
socket reads in real life) wait cooperatively.
"""

from greenweave import monkey

monkey.patch_all()

import http.client  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from wsgiref.simple_server import WSGIRequestHandler, make_server  # noqa: E402

import greenweave  # noqa: E402
from greenweave.pywsgi import WSGIServer  # noqa: E402

N = 10


def application(environ, start_response):
    time.sleep(0.1)  # the "database query"
    body = b"done\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def hit(port: int) -> float:
    """N concurrent GET requests; returns the wall-clock time for all of them."""

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"done\n"
        conn.close()

    started = time.perf_counter()
    greenweave.joinall([greenweave.spawn(one) for _ in range(N)], raise_error=True)
    return time.perf_counter() - started


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


# 1. the standard library's server: one request at a time
reference = make_server("127.0.0.1", 0, application, handler_class=QuietHandler)
threading.Thread(target=reference.serve_forever, daemon=True).start()
serial = hit(reference.server_port)
reference.shutdown()
print(f"wsgiref, {N} concurrent requests of 0.1 s: {serial:.2f} s")

# 2. greenweave's server: one greenlet per connection
server = WSGIServer(("127.0.0.1", 0), application, log=None)
server.start()
concurrent = hit(server.server_port)
server.stop()
print(f"greenweave.pywsgi, {N} concurrent requests of 0.1 s: {concurrent:.2f} s")
print(f"speed-up: {serial / concurrent:.0f}x")

# expect: ^wsgiref, 10 concurrent requests of 0\.1 s: (0\.9\d|1\.\d\d) s$
# expect: ^greenweave\.pywsgi, 10 concurrent requests of 0\.1 s: 0\.[1-4]\d s$
