"""``python -m greenweave.demo``: what greenweave is for, in a few seconds.

Part 1 starts 10,000 greenlets that each wait one second (as if on a slow
network peer); they all finish in about one second, because waiting greenlets
cost nothing while the hub runs the others.  Part 2 does the same with real
network I/O: a TCP echo server on 127.0.0.1 and hundreds of concurrent client
connections, all in one thread.  Part 3 serves a small WSGI app with
greenweave's HTTP server and loads it with many keep-alive clients, showing
requests per second.
"""

from __future__ import annotations

import argparse
import sys
import time

import greenweave
from greenweave import sleep, spawn


def _bar(done: int, total: int, width: int = 40) -> str:
    filled = int(width * done / total) if total else width
    return "[" + "#" * filled + "." * (width - filled) + f"] {done:>6}/{total}"


def _progress(label: str, done_count, total: int, stream) -> None:
    """Redraw a progress bar until done_count() reaches total (runs as a greenlet)."""
    tty = stream.isatty()
    last = -1
    while True:
        done = done_count()
        if tty:
            stream.write(f"\r  {label} {_bar(done, total)}")
            stream.flush()
        elif done != last and (done == total or done * 4 // total != last * 4 // max(total, 1)):
            stream.write(f"  {label} {done}/{total}\n")
        last = done
        if done >= total:
            break
        sleep(0.05)
    if tty:
        stream.write("\n")


def waits(tasks: int, seconds: float, stream) -> dict:
    """Part 1: ``tasks`` greenlets each wait ``seconds``."""
    finished = 0

    def task() -> None:
        nonlocal finished
        sleep(seconds)
        finished += 1

    start = time.perf_counter()
    greenlets = [spawn(task) for _ in range(tasks)]
    bar = spawn(_progress, "waiting", lambda: finished, tasks, stream)
    greenweave.joinall(greenlets)
    bar.join()
    wall = time.perf_counter() - start
    return {"tasks": tasks, "each": seconds, "wall": wall, "sequential": tasks * seconds}


def echo(clients: int, messages: int, stream) -> dict:
    """Part 2: a TCP echo server and ``clients`` concurrent connections."""
    from greenweave import socket

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]

    def handle(conn) -> None:
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            spawn(handle, conn)

    server = spawn(serve)
    done = 0
    payload = b"x" * 64

    def client() -> None:
        nonlocal done
        with socket.create_connection(("127.0.0.1", port)) as conn:
            for _ in range(messages):
                conn.sendall(payload)
                got = 0
                while got < len(payload):
                    chunk = conn.recv(len(payload) - got)
                    if not chunk:
                        raise ConnectionError("server closed early")
                    got += len(chunk)
        done += 1

    start = time.perf_counter()
    greenlets = [spawn(client) for _ in range(clients)]
    bar = spawn(_progress, "clients", lambda: done, clients, stream)
    greenweave.joinall(greenlets, raise_error=True)
    bar.join()
    wall = time.perf_counter() - start
    server.kill()
    listener.close()
    total = clients * messages
    return {"clients": clients, "messages": total, "wall": wall, "rate": total / wall}


def http(clients: int, requests: int, stream) -> dict:
    """Part 3: a WSGI app behind WSGIServer, loaded by ``clients`` keep-alive
    connections sending raw HTTP/1.1 requests."""
    from greenweave import socket
    from greenweave.pywsgi import WSGIServer

    body = b"Hello from greenweave!\n"

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    server = WSGIServer(("127.0.0.1", 0), app, log=None)
    server.start()
    port = server.server_port
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    done = 0
    answered = 0

    def client() -> None:
        nonlocal done, answered
        with socket.create_connection(("127.0.0.1", port)) as conn:
            buf = b""
            for _ in range(requests):
                conn.sendall(request)
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end >= 0 and len(buf) >= end + 4 + len(body):
                        break
                    chunk = conn.recv(65536)
                    if not chunk:
                        raise ConnectionError("server closed early")
                    buf += chunk
                if not buf.startswith(b"HTTP/1.1 200 "):
                    raise ConnectionError(f"unexpected response {buf[:40]!r}")
                buf = buf[end + 4 + len(body):]
                answered += 1
        done += 1

    start = time.perf_counter()
    greenlets = [spawn(client) for _ in range(clients)]
    bar = spawn(_progress, "clients", lambda: done, clients, stream)
    greenweave.joinall(greenlets, raise_error=True)
    bar.join()
    wall = time.perf_counter() - start
    server.stop()
    return {"clients": clients, "requests": answered, "wall": wall, "rate": answered / wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m greenweave.demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=10_000, help="greenlets in part 1")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long each one waits")
    parser.add_argument("--clients", type=int, default=500, help="TCP clients in part 2")
    parser.add_argument("--messages", type=int, default=100, help="round trips per client")
    parser.add_argument("--http-clients", type=int, default=200,
                        help="keep-alive HTTP clients in part 3")
    parser.add_argument("--http-requests", type=int, default=100,
                        help="requests per HTTP client")
    args = parser.parse_args(argv)
    out = sys.stdout

    out.write(f"greenweave {greenweave.__version__} demo: one thread, many greenlets\n\n")
    out.write(f"Part 1: {args.tasks:,} greenlets each wait {args.seconds:g} s\n")
    w = waits(args.tasks, args.seconds, out)
    out.write(f"Part 2: a TCP echo server and {args.clients:,} concurrent clients, "
              f"{args.messages} round trips each\n")
    try:
        e = echo(args.clients, args.messages, out)
    except ImportError as exc:  # networking not available in this build
        e = None
        out.write(f"  skipped: {exc}\n")

    out.write(f"Part 3: a WSGI server and {args.http_clients:,} concurrent keep-alive "
              f"HTTP clients, {args.http_requests} requests each\n")
    try:
        h = http(args.http_clients, args.http_requests, out)
    except ImportError as exc:  # httptools or the server not available
        h = None
        out.write(f"  skipped: {exc}\n")

    out.write("\nSummary\n-------\n")
    out.write(f"  waits: {w['tasks']:,} tasks x {w['each']:g} s = {w['sequential']:,.0f} s of "
              f"waiting if done one after another; took {w['wall']:.2f} s "
              f"({w['sequential'] / w['wall']:,.0f}x)\n")
    if e is not None:
        out.write(f"  echo:  {e['messages']:,} round trips over {e['clients']:,} connections in "
                  f"{e['wall']:.2f} s ({e['rate']:,.0f} round trips/s), all in one thread\n")
    if h is not None:
        out.write(f"  http:  {h['requests']:,} requests over {h['clients']:,} keep-alive "
                  f"connections in {h['wall']:.2f} s ({h['rate']:,.0f} requests/s, "
                  f"server and clients sharing one thread)\n")
    out.write("\nEach task is written as plain blocking code; greenweave switches between them\n"
              "whenever one would wait.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
