"""The same workloads for eventlet and for asyncio on uvloop: what users pick instead.

Only cases where the comparison means the same thing get an implementation
here: the socketpair ping-pong, the TCP echo (at every concurrency of the
scaling series) and the two memory cases.  Each one mirrors the gevent-API
case in ``cases.py`` step for step: same message sizes and counts, same
server shape (one handler per connection), same setup outside the timer,
same checks after it.

* eventlet: its green ``socket`` module and ``eventlet.spawn`` (default hub).
* asyncio + uvloop: the idiomatic high-level API, streams
  (``asyncio.start_server`` / ``open_connection``, ``write`` + ``drain``,
  ``readexactly``), run with ``uvloop.run``.  asyncio transports set
  TCP_NODELAY themselves.

``ALTS[case_name][lib]`` is a function ``(timer, size) -> extra dict | None``,
``lib`` being ``"eventlet"`` or ``"uvloop"``.  The libraries are imported
inside the functions, so this module imports without them.
"""

from __future__ import annotations

import gc
import socket as _std_socket
from collections.abc import Callable
from typing import Any

from cases import CONNECT_BATCH, rss_bytes

NODELAY = (_std_socket.IPPROTO_TCP, _std_socket.TCP_NODELAY, 1)
PAYLOAD = b"x" * 64

AltFunc = Callable[[Any, int], "dict[str, float] | None"]
ALTS: dict[str, dict[str, AltFunc]] = {}


def alt(case_name: str, lib: str):
    """Register ``func`` as ``lib``'s implementation of case ``case_name``."""

    def register(func):
        ALTS.setdefault(case_name, {})[lib] = func
        return func

    return register


def _listen(socket_module):
    listener = socket_module.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
    listener.setsockopt(_std_socket.SOL_SOCKET, _std_socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    return listener


# --------------------------------------------------------------------------
# eventlet


def _eventlet_wait_for(predicate, what: str, seconds: float = 10.0) -> None:
    import eventlet

    for _ in range(int(seconds * 1000)):
        if predicate():
            return
        eventlet.sleep(0.001)
    raise RuntimeError(f"timed out waiting for {what}")


@alt("socketpair_pingpong", "eventlet")
def eventlet_socketpair_pingpong(timer, n):
    import eventlet
    from eventlet.green import socket

    a, b = socket.socketpair()

    def ping():
        for _ in range(n):
            a.sendall(b"x")
            if a.recv(1) != b"x":
                raise RuntimeError("bad echo")
        return n

    def pong():
        for _ in range(n):
            b.sendall(b.recv(1))

    try:
        with timer:
            threads = [eventlet.spawn(ping), eventlet.spawn(pong)]
            for t in threads:
                t.wait()
    finally:
        a.close()
        b.close()


def _eventlet_tcp_echo(timer, n, n_clients):
    import eventlet
    from eventlet.green import socket

    per_client = max(1, n // n_clients)
    total = per_client * n_clients
    listener = _listen(socket)
    address = listener.getsockname()
    handlers = []

    def handle(conn):
        conn.setsockopt(*NODELAY)
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                conn.sendall(data)
        finally:
            conn.close()

    def accept_loop():
        while True:
            conn, _ = listener.accept()
            handlers.append(eventlet.spawn(handle, conn))

    def client(sock):
        for _ in range(per_client):
            sock.sendall(PAYLOAD)
            missing = len(PAYLOAD)
            while missing:
                chunk = sock.recv(missing)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                missing -= len(chunk)
        return per_client

    acceptor = eventlet.spawn(accept_loop)
    clients = []
    try:
        for i in range(n_clients):
            sock = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
            sock.setsockopt(*NODELAY)
            sock.connect(address)
            clients.append(sock)
            if (i + 1) % CONNECT_BATCH == 0:
                _eventlet_wait_for(lambda: len(handlers) == len(clients), "the accept loop")
        _eventlet_wait_for(lambda: len(handlers) == n_clients, f"{n_clients} accepted clients")

        with timer:
            threads = [eventlet.spawn(client, sock) for sock in clients]
            results = [t.wait() for t in threads]
        if sum(results) != total:
            raise RuntimeError("clients did not exchange every message")
    finally:
        for sock in clients:
            sock.close()
        acceptor.kill()
        listener.close()
    return {"msg/s": total / timer.elapsed}


@alt("mem_idle_greenlet", "eventlet")
def eventlet_mem_idle_greenlet(timer, n):
    import eventlet
    import eventlet.event

    event = eventlet.event.Event()
    eventlet.sleep(0)
    gc.collect()
    before = rss_bytes()
    with timer:
        threads = [eventlet.spawn(event.wait) for _ in range(n)]
        eventlet.sleep(0)
    gc.collect()
    after = rss_bytes()
    if any(t.dead for t in threads):
        raise RuntimeError("a greenthread finished before the Event was sent")
    event.send(True)
    if not all(t.wait() for t in threads):
        raise RuntimeError("Event.wait() did not return the sent value")
    return {"bytes/greenlet": (after - before) / n}


@alt("mem_idle_connection", "eventlet")
def eventlet_mem_idle_connection(timer, n):
    import eventlet
    from eventlet.green import socket

    listener = _listen(socket)
    address = listener.getsockname()
    handlers = []

    def handle(conn):
        try:
            return conn.recv(1)
        finally:
            conn.close()

    def accept_loop():
        while True:
            conn, _ = listener.accept()
            handlers.append(eventlet.spawn(handle, conn))

    acceptor = eventlet.spawn(accept_loop)
    clients = []
    try:
        eventlet.sleep(0)
        gc.collect()
        before = rss_bytes()
        with timer:
            for i in range(n):
                clients.append(_std_socket.create_connection(address))
                if (i + 1) % CONNECT_BATCH == 0:
                    _eventlet_wait_for(lambda: len(handlers) == len(clients), "the accept loop")
            _eventlet_wait_for(lambda: len(handlers) == n, f"{n} accepted connections")
            eventlet.sleep(0)
        gc.collect()
        after = rss_bytes()
        if any(h.dead for h in handlers):
            raise RuntimeError("a handler finished while its client was idle")
    finally:
        for sock in clients:
            sock.close()
        acceptor.kill()
        listener.close()
    for h in handlers:
        h.wait()
    return {"bytes/connection": (after - before) / n}


# --------------------------------------------------------------------------
# asyncio on uvloop


def _uvloop_run(main):
    import uvloop

    return uvloop.run(main())


async def _async_wait_for(predicate, what: str, seconds: float = 10.0) -> None:
    import asyncio

    for _ in range(int(seconds * 1000)):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise RuntimeError(f"timed out waiting for {what}")


@alt("socketpair_pingpong", "uvloop")
def uvloop_socketpair_pingpong(timer, n):
    import asyncio

    async def main():
        a, b = _std_socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)

        async def ping():
            for _ in range(n):
                wa.write(b"x")
                await wa.drain()
                if await ra.readexactly(1) != b"x":
                    raise RuntimeError("bad echo")
            return n

        async def pong():
            for _ in range(n):
                wb.write(await rb.readexactly(1))
                await wb.drain()

        try:
            with timer:
                await asyncio.gather(ping(), pong())
        finally:
            wa.close()
            wb.close()

    _uvloop_run(main)


def _uvloop_tcp_echo(timer, n, n_clients):
    import asyncio

    per_client = max(1, n // n_clients)
    total = per_client * n_clients

    async def main():
        handlers = []

        async def handle(reader, writer):
            handlers.append(writer)
            try:
                while True:
                    data = await reader.read(4096)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        address = server.sockets[0].getsockname()

        async def client(reader, writer):
            for _ in range(per_client):
                writer.write(PAYLOAD)
                await writer.drain()
                await reader.readexactly(len(PAYLOAD))
            return per_client

        clients = []
        try:
            for i in range(n_clients):
                clients.append(await asyncio.open_connection(*address))
                if (i + 1) % CONNECT_BATCH == 0:
                    await _async_wait_for(lambda: len(handlers) == len(clients), "the server")
            await _async_wait_for(lambda: len(handlers) == n_clients, "accepted clients")

            with timer:
                results = await asyncio.gather(*(client(r, w) for r, w in clients))
            if sum(results) != total:
                raise RuntimeError("clients did not exchange every message")
        finally:
            for _reader, writer in clients:
                writer.close()
            server.close()

    _uvloop_run(main)
    return {"msg/s": total / timer.elapsed}


@alt("mem_idle_greenlet", "uvloop")
def uvloop_mem_idle_task(timer, n):
    import asyncio

    async def main():
        event = asyncio.Event()
        await asyncio.sleep(0)
        gc.collect()
        before = rss_bytes()
        with timer:
            tasks = [asyncio.ensure_future(event.wait()) for _ in range(n)]
            await asyncio.sleep(0)
        gc.collect()
        after = rss_bytes()
        if any(t.done() for t in tasks):
            raise RuntimeError("a task finished before the Event was set")
        event.set()
        if not all(await asyncio.gather(*tasks)):
            raise RuntimeError("Event.wait() did not return True")
        return (after - before) / n

    return {"bytes/greenlet": _uvloop_run(main)}


@alt("mem_idle_connection", "uvloop")
def uvloop_mem_idle_connection(timer, n):
    import asyncio

    async def main():
        handlers = []

        async def handle(reader, writer):
            handlers.append(writer)
            try:
                await reader.read(1)
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        address = server.sockets[0].getsockname()
        clients = []
        try:
            await asyncio.sleep(0)
            gc.collect()
            before = rss_bytes()
            with timer:
                for i in range(n):
                    clients.append(_std_socket.create_connection(address))
                    if (i + 1) % CONNECT_BATCH == 0:
                        await _async_wait_for(lambda: len(handlers) == len(clients), "the server")
                await _async_wait_for(lambda: len(handlers) == n, f"{n} accepted connections")
                await asyncio.sleep(0)
            gc.collect()
            after = rss_bytes()
        finally:
            for sock in clients:
                sock.close()
            server.close()
        return (after - before) / n

    return {"bytes/connection": _uvloop_run(main)}


# The echo at every concurrency the gevent-API cases use.
for _name, _clients in (
    ("tcp_echo", 100),
    ("tcp_echo_10", 10),
    ("tcp_echo_1k", 1_000),
    ("tcp_echo_5k", 5_000),
):
    ALTS.setdefault(_name, {})["eventlet"] = (
        lambda timer, n, c=_clients: _eventlet_tcp_echo(timer, n, c)
    )
    ALTS[_name]["uvloop"] = lambda timer, n, c=_clients: _uvloop_tcp_echo(timer, n, c)
