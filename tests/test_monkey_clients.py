"""Real standard-library clients and servers after ``monkey.patch_all()``.

Each case runs in a fresh interpreter that patches first, starts a local
server whose handler sleeps 0.2 s, then fires many requests from threads
(green threads, after patching).  Run serially that would take N x 0.2 s;
patched, everything overlaps, so the elapsed time stays far below that.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(90)

PRELUDE = """\
from greenweave import monkey
monkey.patch_all()
import threading, time, sys

MAIN_NATIVE_ID = threading.get_native_id()
NATIVE_IDS = set()

def note():
    '''Record which OS thread runs this code (all of it must be the main one).'''
    NATIVE_IDS.add(threading.get_native_id())

def concurrently(fn, n):
    '''Run fn(i) for i in range(n) in threads; return (results, elapsed seconds).'''
    results = [None] * n
    errors = []
    def call(i):
        note()
        try:
            results[i] = fn(i)
        except BaseException as exc:
            errors.append(repr(exc))
    start = time.monotonic()
    threads = [threading.Thread(target=call, args=(i,)) for i in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    elapsed = time.monotonic() - start
    assert not errors, errors[:3]
    return results, elapsed
"""

HTTP_SERVER = """\
import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        note()
        time.sleep(0.2)
        body = self.path.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
threading.Thread(target=server.serve_forever, daemon=True).start()
PORT = server.server_address[1]
"""


CHECK_ONE_OS_THREAD = """
# Clients and handlers were green threads: they all ran in the main OS thread.
assert NATIVE_IDS == {MAIN_NATIVE_ID}, NATIVE_IDS
"""


def run_ok(tmp_path, body: str, setup: str = "", timeout: float = 80) -> str:
    script = tmp_path / "prog.py"
    script.write_text(PRELUDE + setup + textwrap.dedent(body) + CHECK_ONE_OS_THREAD
                      + "\nprint('OK')\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=timeout, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
    return proc.stdout


def test_socketserver_threading_tcp_server_100_requests(tmp_path):
    out = run_ok(tmp_path, """
        import socketserver, socket
        class Upper(socketserver.StreamRequestHandler):
            def handle(self):
                note()
                line = self.rfile.readline()
                time.sleep(0.2)
                self.wfile.write(line.upper())
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Upper)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever).start()
        port = server.server_address[1]
        def request(i):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(b"hello %d\\n" % i)
                return s.makefile("rb").readline()
        results, elapsed = concurrently(request, 100)
        assert results == [b"HELLO %d\\n" % i for i in range(100)]
        assert elapsed < 5, elapsed  # serially: 100 x 0.2 s = 20 s
        print("elapsed", round(elapsed, 2))
        server.shutdown()
        server.server_close()
    """)
    assert "elapsed" in out


def test_urllib_request(tmp_path):
    run_ok(tmp_path, setup=HTTP_SERVER, body="""
        import urllib.request
        def fetch(i):
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/item/{i}", timeout=10) as r:
                return r.status, r.read().decode()
        results, elapsed = concurrently(fetch, 50)
        assert results == [(200, f"/item/{i}") for i in range(50)]
        assert elapsed < 5, elapsed
    """)


def test_http_client(tmp_path):
    run_ok(tmp_path, setup=HTTP_SERVER, body="""
        import http.client
        def fetch(i):
            conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
            try:
                out = []
                for j in range(2):  # two requests on one keep-alive connection
                    conn.request("GET", f"/c/{i}/{j}")
                    resp = conn.getresponse()
                    out.append(resp.read().decode())
                return out
            finally:
                conn.close()
        results, elapsed = concurrently(fetch, 50)
        assert results == [[f"/c/{i}/0", f"/c/{i}/1"] for i in range(50)]
        assert elapsed < 5, elapsed  # serially: 100 x 0.2 s
    """)


@pytest.mark.skipif(importlib.util.find_spec("requests") is None, reason="requests not installed")
def test_requests(tmp_path):
    run_ok(tmp_path, setup=HTTP_SERVER, body="""
        import requests
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=50)
        session.mount("http://", adapter)
        def fetch(i):
            r = session.get(f"http://127.0.0.1:{PORT}/r/{i}", timeout=10)
            r.raise_for_status()
            return r.text
        results, elapsed = concurrently(fetch, 50)
        assert results == [f"/r/{i}" for i in range(50)]
        assert elapsed < 5, elapsed
        assert requests.get(f"http://127.0.0.1:{PORT}/plain", timeout=10).text == "/plain"
    """)


def test_smtplib_against_a_local_smtp_server(tmp_path):
    run_ok(tmp_path, """
        import socketserver, smtplib
        from email.message import EmailMessage
        received = []
        class SMTPHandler(socketserver.StreamRequestHandler):
            '''Just enough SMTP for smtplib.send_message.'''
            def reply(self, line):
                self.wfile.write(line.encode() + b"\\r\\n")
            def handle(self):
                note()
                self.reply("220 localhost test SMTP")
                sender, rcpts = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode().strip()
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb == "EHLO":
                        self.reply("250-localhost")
                        self.reply("250 8BITMIME")
                    elif verb == "HELO":
                        self.reply("250 localhost")
                    elif verb == "MAIL":
                        sender = cmd.split(":", 1)[1].strip().split()[0]
                        self.reply("250 OK")
                    elif verb == "RCPT":
                        rcpts.append(cmd.split(":", 1)[1].strip())
                        self.reply("250 OK")
                    elif verb == "DATA":
                        self.reply("354 End data with <CR><LF>.<CR><LF>")
                        data = []
                        while True:
                            chunk = self.rfile.readline()
                            if chunk in (b".\\r\\n", b""):
                                break
                            data.append(chunk)
                        time.sleep(0.2)  # slow mail server
                        received.append((sender, rcpts, b"".join(data)))
                        self.reply("250 Queued")
                    elif verb == "RSET":
                        sender, rcpts = None, []
                        self.reply("250 OK")
                    elif verb == "QUIT":
                        self.reply("221 Bye")
                        return
                    else:
                        self.reply("502 Command not implemented")
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SMTPHandler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.server_address[1]
        def send(i):
            msg = EmailMessage()
            msg["From"] = f"sender{i}@example.com"
            msg["To"] = "rcpt@example.com"
            msg["Subject"] = f"message {i}"
            msg.set_content(f"body {i}")
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.send_message(msg)
            return i
        results, elapsed = concurrently(send, 30)
        assert results == list(range(30))
        assert elapsed < 4, elapsed  # serially: 30 x 0.2 s
        assert len(received) == 30
        subjects = sorted(int(data.split(b"Subject: message ")[1].split(b"\\r\\n")[0])
                          for _, _, data in received)
        assert subjects == list(range(30))
        assert all(r == ["<rcpt@example.com>"] for _, r, _ in received)
    """)


def test_xmlrpc_client_and_server(tmp_path):
    run_ok(tmp_path, """
        import socketserver, xmlrpc.client, xmlrpc.server
        class Server(socketserver.ThreadingMixIn, xmlrpc.server.SimpleXMLRPCServer):
            daemon_threads = True
        server = Server(("127.0.0.1", 0), logRequests=False, allow_none=True)
        def slow_add(a, b):
            note()
            time.sleep(0.2)
            return a + b
        server.register_function(slow_add)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = "http://127.0.0.1:%d/" % server.server_address[1]
        def call(i):
            with xmlrpc.client.ServerProxy(url) as proxy:
                return proxy.slow_add(i, 1)
        results, elapsed = concurrently(call, 50)
        assert results == [i + 1 for i in range(50)]
        assert elapsed < 5, elapsed
    """)


def test_threadpool_dns_and_blocking_calls_coexist(tmp_path):
    # getaddrinfo goes through the hub's resolver (native threads) while green
    # threads keep running; locks and events shared with those threads work.
    run_ok(tmp_path, """
        import socket
        def resolve(i):
            return socket.getaddrinfo("localhost", 80 + i, proto=socket.IPPROTO_TCP)[0][4][1]
        results, elapsed = concurrently(resolve, 20)
        assert results == [80 + i for i in range(20)]
        ticks = []
        def tick():
            for _ in range(5):
                time.sleep(0.01); ticks.append(1)
        t = threading.Thread(target=tick); t.start()
        socket.gethostbyname("localhost")
        t.join()
        assert len(ticks) == 5
    """)
