"""Serve a hello-world WSGI app with one library's WSGIServer, for the HTTP benchmarks.

Usage::

    python bench/_http_server.py LIB     # LIB: greenweave, gevent or gevent-nodelay

Starts ``LIB.pywsgi.WSGIServer`` on 127.0.0.1, port 0 (the kernel picks one),
prints one JSON line ``{"ok": true, "port": N, "version": ...}`` (or
``{"ok": false, "error": ...}``) and serves until killed.  ``bench/run.py``
starts a fresh one of these per measurement and points ``wrk`` at it.

Both libraries get exactly the same app and the same server options: access
logging off (``log=None``: writing a log line per request would measure the
logger) and a listen backlog of :data:`BACKLOG` (so thousands of connecting
clients are not dropped by a short default queue; the two libraries' defaults
differ).

``gevent-nodelay`` is a reference variant, not a library default: gevent's
server with ``TCP_NODELAY`` set on each accepted socket (as greenweave's
server does by default).  gevent's WSGI handler writes the status line and
headers and then the body with two ``send()`` calls; without TCP_NODELAY,
Nagle's algorithm holds the body back until the client acknowledges the
headers, which a client with delayed ACKs does after ~40 ms.  The variant
shows how much of a keep-alive result is that stall rather than CPU.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import traceback

from _worker import import_library, raise_nofile_limit

BACKLOG = 2048
BODY = b"Hello, World!"


def app(environ, start_response):
    """The hello-world WSGI application (the PEP 3333 shape, with a Content-Length)."""
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "13")])
    return [BODY]


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in ("greenweave", "gevent", "gevent-nodelay"):
        raise SystemExit(__doc__)
    lib = sys.argv[1]
    try:
        raise_nofile_limit()
        module = import_library("gevent" if lib == "gevent-nodelay" else lib)
        __import__(f"{module.__name__}.pywsgi")
        pywsgi = sys.modules[f"{module.__name__}.pywsgi"]
        server_class = pywsgi.WSGIServer
        if lib == "gevent-nodelay":

            class NoDelayWSGIServer(pywsgi.WSGIServer):
                def handle(self, sock, address):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    return super().handle(sock, address)

            server_class = NoDelayWSGIServer
        server = server_class(("127.0.0.1", 0), app, log=None, backlog=BACKLOG)
        server.start()
        port = server.server_port
    except Exception as exc:
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}",
                          "traceback": traceback.format_exc()}), flush=True)
        os._exit(1)
    print(json.dumps({"ok": True, "port": port, "lib": lib,
                      "version": str(getattr(module, "__version__", "unknown"))}), flush=True)
    try:
        server.serve_forever()
    finally:
        os._exit(0)


if __name__ == "__main__":
    main()
