"""greenweave.gunicorn.Worker under a real gunicorn master (subprocess): several
workers serving concurrent requests, patching before the app is imported,
worker_connections, max_requests, keepalive, graceful shutdown, access log,
--reload.  Clients are plain blocking sockets/http.client in this process."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("gunicorn")

pytestmark = pytest.mark.timeout(90)

APP = '''
import os, socket, time
import greenweave.socket

PATCHED_AT_IMPORT = socket.socket is greenweave.socket.socket
VERSION = "v1"

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or 0.3))  # patched: cooperative
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"{os.getpid()} {PATCHED_AT_IMPORT} {VERSION}".encode()]
'''


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gunicorn:
    def __init__(self, tmp_path, *args, app=APP):
        (tmp_path / "gapp.py").write_text(app)
        self.path = tmp_path / "gapp.py"
        self.port = _free_port()
        self.log = tmp_path / "gunicorn.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-k", "greenweave.gunicorn.Worker",
             "-b", f"127.0.0.1:{self.port}", "--no-control-socket", *args, "gapp:app"],
            cwd=tmp_path, stdout=open(self.log, "wb"), stderr=subprocess.STDOUT,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited:\n{self.output()}")
            try:
                self.get("/")
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"gunicorn did not start:\n{self.output()}")

    def output(self):
        return self.log.read_text(errors="replace")

    def get(self, path, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode()
        finally:
            conn.close()

    def concurrent(self, path, n):
        results = [None] * n

        def run(i):
            results[i] = self.get(path)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return results

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def gunicorn(tmp_path):
    started = []

    def start(*args, **kwargs):
        g = Gunicorn(tmp_path, *args, **kwargs)
        started.append(g)
        return g

    yield start
    for g in started:
        g.stop()


def test_two_workers_serve_concurrent_requests(gunicorn):
    # worker_connections=4 per worker: 8 slow requests at once need both workers.
    g = gunicorn("-w", "2", "--worker-connections", "4", "--access-logfile", "-")
    t0 = time.monotonic()
    results = g.concurrent("/slow?0.5", 8)
    elapsed = time.monotonic() - t0
    assert all(r is not None and r[0] == 200 for r in results), results
    pids = {r[1].split()[0] for r in results}
    assert len(pids) == 2
    assert all(r[1].split()[1] == "True" for r in results)  # patched before app import
    assert elapsed < 3  # 8 x 0.5 s one after another would be 4 s
    g.stop()
    out = g.output()
    assert out.count('"GET /slow?0.5 HTTP/1.1" 200') == 8
    assert "Traceback" not in out


def test_worker_connections_limits_concurrency(gunicorn):
    g = gunicorn("-w", "1", "--worker-connections", "2")
    t0 = time.monotonic()
    results = g.concurrent("/slow?0.4", 6)
    elapsed = time.monotonic() - t0
    assert all(r[0] == 200 for r in results)
    assert elapsed >= 1.1  # three rounds of two: the third connection waits its turn


def test_max_requests_restarts_the_worker(gunicorn):
    g = gunicorn("-w", "1", "--max-requests", "3")
    pids = []
    deadline = time.monotonic() + 30
    while len(set(pids)) < 2 and time.monotonic() < deadline:
        try:
            pids.append(g.get("/")[1].split()[0])
        except OSError:
            time.sleep(0.1)
    assert len(set(pids)) >= 2, g.output()
    assert pids.count(pids[0]) <= 3
    assert "Autorestarting worker after current request." in g.output()


def test_graceful_shutdown_finishes_requests_in_flight(gunicorn):
    g = gunicorn("-w", "1", "--graceful-timeout", "10")
    results = []
    t = threading.Thread(target=lambda: results.append(g.get("/slow?1.0")))
    t.start()
    time.sleep(0.4)
    g.proc.send_signal(signal.SIGTERM)
    t.join(20)
    assert results and results[0][0] == 200
    assert g.proc.wait(20) == 0


def test_keepalive_setting_closes_idle_connections(gunicorn):
    g = gunicorn("-w", "1", "--keep-alive", "1")
    with socket.create_connection(("127.0.0.1", g.port), timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        data = c.recv(65536)
        assert data.startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        while c.recv(65536):
            pass
        assert 0.5 < time.monotonic() - t0 < 5


def test_reload_picks_up_a_changed_app(gunicorn):
    g = gunicorn("-w", "1", "--reload")
    assert g.get("/")[1].endswith("v1")
    time.sleep(1.1)  # a newer mtime than the one the reloader saw
    g.path.write_text(APP.replace('"v1"', '"v2"'))
    os.utime(g.path)
    deadline = time.monotonic() + 30
    body = ""
    while time.monotonic() < deadline:
        try:
            body = g.get("/")[1]
            if body.endswith("v2"):
                break
        except OSError:
            pass
        time.sleep(0.2)
    assert body.endswith("v2"), g.output()


def test_tls(gunicorn, tmp_path):
    trustme = pytest.importorskip("trustme")
    import ssl

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = (tmp_path / "cert.pem", tmp_path / "key.pem",
                                 tmp_path / "ca.pem")
    cert.private_key_pem.write_to_path(str(keyfile))
    with open(certfile, "wb") as f:
        for pem in cert.cert_chain_pems:
            f.write(pem.bytes())
    ca.cert_pem.write_to_path(str(cafile))

    class TLSGunicorn(Gunicorn):
        def get(self, path, timeout=10):
            ctx = ssl.create_default_context(cafile=str(cafile))
            conn = http.client.HTTPSConnection("localhost", self.port, timeout=timeout,
                                               context=ctx)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, resp.read().decode()
            finally:
                conn.close()

    g = TLSGunicorn(tmp_path, "-w", "1", "--certfile", str(certfile), "--keyfile", str(keyfile))
    try:
        results = g.concurrent("/slow?0.2", 5)
        assert all(r is not None and r[0] == 200 for r in results), g.output()
    finally:
        g.stop()
