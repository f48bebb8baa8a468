"""A gunicorn worker running greenweave's WSGI server: scale past one core.

::

    gunicorn -k greenweave.gunicorn.Worker -w 4 --worker-connections 1000 module:app

gunicorn's master pre-forks the workers; each one patches the standard
library (:func:`greenweave.monkey.patch_all`) *before* it imports the
application, then serves every listener with a
:class:`greenweave.pywsgi.WSGIServer` whose handlers run in a pool of
``worker_connections`` greenlets.  gunicorn's settings are honoured:

* ``worker_connections``: the pool size (the server stops accepting while full);
* ``timeout``: the worker notifies the master every second;
* ``graceful_timeout``: on SIGTERM the worker stops accepting, closes idle
  keep-alive connections and gives requests in flight that long to finish;
* ``keepalive``: seconds an idle keep-alive connection is kept;
* ``max_requests`` (+ jitter): the worker exits gracefully after that many
  requests and the master starts a fresh one;
* access and error logging go through gunicorn's logger (``--access-logfile``,
  ``--access-logformat``, ``--error-logfile``...; no access log work at all
  when it is off);
* ``--reload`` and TLS (``--certfile``/``--keyfile``) work as with other workers.

gunicorn is an optional dependency (``pip install gunicorn``).
"""

from __future__ import annotations

import os
import sys
import warnings
from datetime import timedelta
from time import monotonic
from typing import Any

from gunicorn.workers.base import Worker as _GunicornWorker

import greenweave

from .pywsgi import LoggingLogAdapter, WSGIHandler, WSGIServer

__all__ = ["Worker", "GunicornWSGIHandler", "GunicornWSGIServer"]


class _AccessResponse:
    """What gunicorn's access logger reads from a response."""

    __slots__ = ("status", "headers", "sent")

    def __init__(self, status: str, headers: list, sent: int) -> None:
        self.status = status
        self.headers = headers
        self.sent = sent


class GunicornWSGIHandler(WSGIHandler):
    """Adds gunicorn's environ keys, counts requests for ``max_requests`` and
    logs through gunicorn's access logger."""

    def get_environ(self, req: Any = None) -> dict:
        env = WSGIHandler.get_environ(self, req)
        env["gunicorn.sock"] = self.socket
        env["RAW_URI"] = self._req.url.decode("latin-1")
        return env

    def handle_one_request(self, req: Any) -> bool:
        keep_alive = WSGIHandler.handle_one_request(self, req)
        worker = self.server.worker
        if worker is not None:
            worker.nr += 1
            if worker.alive and worker.nr >= worker.max_requests:
                worker.log.info("Autorestarting worker after current request.")
                worker.alive = False
            if not worker.alive:
                self.server.close()  # accept nothing more; run() finishes the shutdown
                return False
        return keep_alive

    def log_request(self) -> None:
        worker = self.server.worker
        env = self.environ
        if env is None:  # a request that never got that far (bad input)
            env = {"REQUEST_METHOD": "-", "RAW_URI": self.requestline or "-",
                   "SERVER_PROTOCOL": "-", "REMOTE_ADDR": self.client_address[0]
                   if isinstance(self.client_address, tuple) else "-"}
        req = self._req if self.environ is not None else None
        req_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in req.headers] \
            if req is not None else []
        body_length = self.response_length - self._head_length if self.headers_sent \
            else self.response_length
        resp = _AccessResponse(self.status or "000", self.response_headers or [],
                               max(body_length, 0))
        elapsed = timedelta(seconds=max(self.time_finish - self.time_start, 0.0))
        worker.log.access(resp, req_headers, env, elapsed)


class GunicornWSGIServer(WSGIServer):
    """The WSGIServer each worker runs (one per listener)."""

    worker: Any = None


class Worker(_GunicornWorker):
    """``gunicorn -k greenweave.gunicorn.Worker``: see the module docstring."""

    server_class = GunicornWSGIServer
    wsgi_handler = GunicornWSGIHandler

    def patch(self) -> None:
        """Patch the standard library and make the listeners cooperative."""
        from greenweave import monkey
        from greenweave import socket as gsocket

        with warnings.catch_warnings():
            # gunicorn itself imported ssl before any worker exists; it only
            # reaches ssl through module attributes, which patching covers.
            warnings.filterwarnings("ignore", message=".*ssl.*", category=Warning)
            monkey.patch_all()
        self.sockets = [gsocket.socket(s.FAMILY, gsocket.SOCK_STREAM, fileno=s.sock.detach())
                        for s in self.sockets]

    def init_process(self) -> None:
        # Before gunicorn's init_process, which imports the application.
        self.patch()
        greenweave.reinit()
        super().init_process()

    def notify(self) -> None:
        super().notify()
        if self.ppid != os.getppid():
            self.log.info("Parent changed, shutting down: %s", self)
            sys.exit(0)

    def _make_server(self, listener: Any) -> WSGIServer:
        from gunicorn.http.wsgi import base_environ

        from .pool import Pool

        cfg = self.cfg
        ssl_args = {}
        if cfg.is_ssl:
            from gunicorn.sock import ssl_context

            ssl_args["ssl_context"] = ssl_context(cfg)
        environ = base_environ(cfg)
        environ.update({
            "wsgi.multithread": True,
            "wsgi.multiprocess": cfg.workers > 1,
            "SERVER_SOFTWARE": f"greenweave/{greenweave.__version__} gunicorn",
        })
        access_on = getattr(self.log, "access_log_enabled", True)
        server = self.server_class(
            listener, application=self.wsgi, spawn=Pool(cfg.worker_connections),
            log=self.log if access_on else None,
            error_log=LoggingLogAdapter(self.log.error_log, 40),
            handler_class=self.wsgi_handler, environ=environ,
            keepalive_timeout=cfg.keepalive if cfg.keepalive > 0 else 0.001,
            max_accept=1 if cfg.workers > 1 else None,
            **ssl_args)
        server.worker = self
        return server

    def run(self) -> None:
        servers = [self._make_server(listener) for listener in self.sockets]
        for server in servers:
            server.start()
        try:
            next_notify = 0.0
            while self.alive:
                now = monotonic()
                if now >= next_notify:
                    self.notify()
                    next_notify = now + 1.0
                greenweave.sleep(0.1)
        finally:
            self._shut_down(servers)

    def _shut_down(self, servers: list) -> None:
        """Stop accepting, let requests in flight finish (up to graceful_timeout)."""
        for server in servers:
            server.close()
        deadline = monotonic() + self.cfg.graceful_timeout
        while monotonic() < deadline:
            if all(s.pool.free_count() == s.pool.size for s in servers):
                return
            self.notify()
            greenweave.sleep(0.05)
        self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
        for server in servers:
            server.stop(timeout=0)

    # Signal handlers run between two bytecodes of whatever greenlet is
    # running (possibly the hub): do the real work in a greenlet of its own.
    def handle_quit(self, sig: int, frame: Any) -> None:
        greenweave.spawn(super().handle_quit, sig, frame)

    def handle_usr1(self, sig: int, frame: Any) -> None:
        greenweave.spawn(super().handle_usr1, sig, frame)
