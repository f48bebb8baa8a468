"""Micro-benchmark cases, shared verbatim by greenweave and gevent.

Every case is a function ``case(gevent, timer, size)``:

* ``gevent`` is the library's top-level module: ``gevent`` itself, or
  ``greenweave`` imported as ``gevent``.  Submodules are reached through
  :func:`sub` (``sub(gevent, "queue")``), which uses ``importlib`` so the very
  same code imports ``gevent.queue`` or ``greenweave.queue``.
* ``timer`` is an accumulating stopwatch (see ``_worker.Timer``).  Only code
  inside ``with timer:`` is measured; setup, sanity checks and teardown stay
  outside.  A case may enter the timer several times; the laps are summed.
* ``size`` is the case's main parameter (what it means is in the docstring).

A case may return a dict of derived metrics (e.g. messages per second); the
runner reports their medians next to the timings.  Cases check their results
*after* the timed region and raise on wrong results, so a fast but broken
library shows up as an error rather than as a good number.  There are no
timing assertions anywhere.

Stdlib ``socket`` is used only for constants (AF_INET, TCP_NODELAY, ...), which
are plain integers; every socket object comes from the library under test.
"""

from __future__ import annotations

import importlib
import random
import socket as _std_socket
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any


@dataclass(frozen=True)
class Case:
    name: str
    func: Callable[[ModuleType, Any, int], dict[str, float] | None]
    size: int
    quick_size: int
    doc: str
    #: "time": the runner reports the timed region; "memory": the runner
    #: reports the case's ``bytes/...`` metric (the timer only covers setup).
    kind: str = "time"
    #: Smallest size the case works with (``--size-scale`` never goes below).
    min_size: int = 1
    #: False for cases that only exist as points of a scaling series; they
    #: are not in the main table.
    main: bool = True


#: All cases, in registration (= report) order.
CASES: dict[str, Case] = {}


def case(size: int, quick: int, **options: Any):
    """Register a case with its default size and its ``--quick`` size.

    ``options`` are the optional :class:`Case` fields (``kind``, ``min_size``,
    ``main``).
    """

    def register(func):
        doc = (func.__doc__ or "").strip().splitlines()[0]
        CASES[func.__name__] = Case(func.__name__, func, size, quick, doc, **options)
        return func

    return register


def sub(gevent: ModuleType, name: str) -> ModuleType:
    """Import submodule ``name`` of whichever library ``gevent`` is."""
    return importlib.import_module(f"{gevent.__name__}.{name}")


def check_greenlets(greenlets) -> None:
    """Raise the first failure among finished greenlets (call outside the timer)."""
    for g in greenlets:
        if not g.ready():
            raise RuntimeError(f"greenlet {g!r} did not finish")
        if not g.successful():
            raise RuntimeError(f"greenlet failed: {g.exception!r}") from g.exception


def _noop(*_args):
    return None


# --------------------------------------------------------------------------
# Greenlets and the hub


@case(size=100_000, quick=20_000)
def spawn_join(gevent, timer, n):
    """Spawn N greenlets running a trivial function, then joinall them."""
    with timer:
        greenlets = [gevent.spawn(_noop) for _ in range(n)]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)


@case(size=1_000_000, quick=200_000, min_size=100)
def sleep0(gevent, timer, n):
    """100 greenlets each calling sleep(0) in a loop; N sleep(0) calls in total."""
    workers = 100
    per_worker = n // workers
    sleep = gevent.sleep

    def loop():
        for _ in range(per_worker):
            sleep(0)
        return per_worker

    with timer:
        greenlets = [gevent.spawn(loop) for _ in range(workers)]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)


@case(size=10_000, quick=2_000)
def timers(gevent, timer, n):
    """N greenlets each sleeping a random 0-50 ms (seeded), then joinall."""
    rng = random.Random(1234)  # same delays for every run and both libraries
    delays = [rng.uniform(0.0, 0.050) for _ in range(n)]
    with timer:
        greenlets = [gevent.spawn(gevent.sleep, d) for d in delays]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)


@case(size=100_000, quick=20_000)
def timeout(gevent, timer, n):
    """N times: t = Timeout(10); t.start(); t.cancel()."""
    Timeout = gevent.Timeout
    with timer:
        for _ in range(n):
            t = Timeout(10)
            t.start()
            t.cancel()


# --------------------------------------------------------------------------
# Synchronisation primitives


@case(size=100_000, quick=20_000)
def queue_pingpong(gevent, timer, n):
    """Two greenlets ping-pong through two Queues; N round trips."""
    queue = sub(gevent, "queue")
    to_pong, to_ping = queue.Queue(), queue.Queue()

    def ping():
        for i in range(n):
            to_pong.put(i)
            to_ping.get()
        return n

    def pong():
        for _ in range(n):
            to_ping.put(to_pong.get())

    with timer:
        greenlets = [gevent.spawn(ping), gevent.spawn(pong)]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)


@case(size=1_000, quick=200)
def event_wakeup(gevent, timer, n):
    """N greenlets wait on one Event, which is then set; 20 cycles, fresh Event each.

    Only set() -> "all N waiters have run" is timed; spawning the waiters and
    letting them block on the Event is setup.
    """
    event_mod = sub(gevent, "event")
    cycles = 20
    for _ in range(cycles):
        event = event_mod.Event()
        waiters = [gevent.spawn(event.wait) for _ in range(n)]
        # One trip through the hub starts every waiter (they were scheduled
        # before this sleep), and each one blocks in event.wait().
        gevent.sleep(0)
        if any(w.ready() for w in waiters):
            raise RuntimeError("waiters finished before the Event was set")
        with timer:
            event.set()
            gevent.joinall(waiters)
        check_greenlets(waiters)
        if not all(w.value for w in waiters):
            raise RuntimeError("Event.wait() did not return True")


@case(size=1_000, quick=200)
def semaphore(gevent, timer, n):
    """Semaphore(10) shared by N greenlets, each doing acquire/sleep(0)/release 10 times."""
    lock = sub(gevent, "lock")
    sem = lock.Semaphore(10)
    sleep = gevent.sleep

    def worker():
        for _ in range(10):
            sem.acquire()
            sleep(0)
            sem.release()

    with timer:
        greenlets = [gevent.spawn(worker) for _ in range(n)]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)


@case(size=100_000, quick=20_000)
def pool_imap(gevent, timer, n):
    """Pool(100).imap_unordered over N trivial calls, consuming every result."""
    pool_mod = sub(gevent, "pool")
    pool = pool_mod.Pool(100)
    total = 0
    with timer:
        for x in pool.imap_unordered(abs, range(n)):
            total += x
    if total != n * (n - 1) // 2:
        raise RuntimeError(f"imap_unordered returned wrong results (sum {total})")


# --------------------------------------------------------------------------
# I/O


@case(size=50_000, quick=10_000)
def socketpair_pingpong(gevent, timer, n):
    """Greenlets on both ends of socket.socketpair() exchange 1-byte messages; N round trips."""
    socket = sub(gevent, "socket")
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
            greenlets = [gevent.spawn(ping), gevent.spawn(pong)]
            gevent.joinall(greenlets)
        check_greenlets(greenlets)
    finally:
        a.close()
        b.close()


@case(size=50_000, quick=10_000, min_size=100)
def tcp_echo(gevent, timer, n):
    """100 client greenlets echo 64-byte messages via a TCP server on 127.0.0.1; N messages total.

    The server is a plain accept loop spawning one handler greenlet per
    connection, written with the library's socket module only (no
    StreamServer), so it works before greenweave grows a server module.
    Connecting the clients is setup; the timed region is the message exchange.
    """
    socket = sub(gevent, "socket")
    n_clients = 100
    per_client = max(1, n // n_clients)
    total = per_client * n_clients
    payload = b"x" * 64
    nodelay = (_std_socket.IPPROTO_TCP, _std_socket.TCP_NODELAY, 1)

    listener = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
    listener.setsockopt(_std_socket.SOL_SOCKET, _std_socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    address = listener.getsockname()
    handlers = []

    def handle(conn):
        conn.setsockopt(*nodelay)
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
            handlers.append(gevent.spawn(handle, conn))

    def client(sock):
        for _ in range(per_client):
            sock.sendall(payload)
            missing = len(payload)
            while missing:  # the echo may arrive in pieces
                chunk = sock.recv(missing)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                missing -= len(chunk)
        return per_client

    acceptor = gevent.spawn(accept_loop)
    clients = []
    try:
        for _ in range(n_clients):
            sock = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
            sock.setsockopt(*nodelay)
            sock.connect(address)
            clients.append(sock)
        # Let the accept loop pick up every connection before timing starts.
        for _ in range(5000):
            if len(handlers) == n_clients:
                break
            gevent.sleep(0.001)
        else:
            raise RuntimeError(f"server accepted only {len(handlers)}/{n_clients} clients")

        with timer:
            greenlets = [gevent.spawn(client, sock) for sock in clients]
            gevent.joinall(greenlets)
        check_greenlets(greenlets)
    finally:
        for sock in clients:
            sock.close()
        acceptor.kill()
        listener.close()
    return {"msg/s": total / timer.elapsed}


@case(size=50_000, quick=10_000, min_size=100)
def stream_server_echo(gevent, timer, n):
    """tcp_echo's workload served by the library's ``server.StreamServer``.

    100 client greenlets, 64-byte messages, N messages in total; the server
    spawns one handler greenlet per connection (spawn='default').  Time
    ratio = inverse throughput ratio (same number of messages for both).
    """
    socket = sub(gevent, "socket")
    server_mod = sub(gevent, "server")
    n_clients = 100
    per_client = max(1, n // n_clients)
    payload = b"x" * 64
    nodelay = (_std_socket.IPPROTO_TCP, _std_socket.TCP_NODELAY, 1)
    connected = []

    def handle(conn, _address):
        conn.setsockopt(*nodelay)
        connected.append(1)
        while True:
            data = conn.recv(4096)
            if not data:
                break
            conn.sendall(data)

    def client(sock):
        for _ in range(per_client):
            sock.sendall(payload)
            missing = len(payload)
            while missing:
                chunk = sock.recv(missing)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                missing -= len(chunk)
        return per_client

    server = server_mod.StreamServer(("127.0.0.1", 0), handle, backlog=1024)
    server.start()
    clients = []
    try:
        for _ in range(n_clients):
            sock = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
            sock.setsockopt(*nodelay)
            sock.connect(("127.0.0.1", server.server_port))
            clients.append(sock)
        for _ in range(5000):
            if len(connected) == n_clients:
                break
            gevent.sleep(0.001)
        else:
            raise RuntimeError(f"server took only {len(connected)}/{n_clients} clients")
        with timer:
            greenlets = [gevent.spawn(client, sock) for sock in clients]
            gevent.joinall(greenlets)
        check_greenlets(greenlets)
    finally:
        for sock in clients:
            sock.close()
        server.stop(timeout=1)
    return {"msg/s": per_client * n_clients / timer.elapsed}


CONNECT_BATCH = 250  # connect at most this many clients before letting the server accept


def _wait_for(gevent, predicate, what: str, seconds: float = 10.0) -> None:
    """Setup helper: yield to the hub until ``predicate()`` holds (or raise)."""
    for _ in range(int(seconds * 1000)):
        if predicate():
            return
        gevent.sleep(0.001)
    raise RuntimeError(f"timed out waiting for {what}")


def _tcp_echo(gevent, timer, n, n_clients):
    """The tcp_echo workload with ``n_clients`` connections (see :func:`tcp_echo`).

    Same server, client and timed region as ``tcp_echo``; only the setup
    differs: clients connect in batches and the accept loop catches up after
    each batch, so thousands of connections never overflow the listen queue
    (an overflow costs a 1 s SYN retransmit, in setup, but still).
    """
    socket = sub(gevent, "socket")
    per_client = max(1, n // n_clients)
    total = per_client * n_clients
    payload = b"x" * 64
    nodelay = (_std_socket.IPPROTO_TCP, _std_socket.TCP_NODELAY, 1)

    listener = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
    listener.setsockopt(_std_socket.SOL_SOCKET, _std_socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    address = listener.getsockname()
    handlers = []

    def handle(conn):
        conn.setsockopt(*nodelay)
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
            handlers.append(gevent.spawn(handle, conn))

    def client(sock):
        for _ in range(per_client):
            sock.sendall(payload)
            missing = len(payload)
            while missing:  # the echo may arrive in pieces
                chunk = sock.recv(missing)
                if not chunk:
                    raise RuntimeError("server closed the connection")
                missing -= len(chunk)
        return per_client

    acceptor = gevent.spawn(accept_loop)
    clients = []
    try:
        for i in range(n_clients):
            sock = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
            sock.setsockopt(*nodelay)
            sock.connect(address)
            clients.append(sock)
            if (i + 1) % CONNECT_BATCH == 0:
                _wait_for(gevent, lambda: len(handlers) == len(clients), "the accept loop")
        _wait_for(gevent, lambda: len(handlers) == n_clients, f"{n_clients} accepted clients")

        with timer:
            greenlets = [gevent.spawn(client, sock) for sock in clients]
            gevent.joinall(greenlets)
        check_greenlets(greenlets)
    finally:
        for sock in clients:
            sock.close()
        acceptor.kill()
        listener.close()
    return {"msg/s": total / timer.elapsed}


@case(size=50_000, quick=10_000, min_size=1_000)
def tcp_echo_1k(gevent, timer, n):
    """tcp_echo with 1,000 client connections; N messages total."""
    return _tcp_echo(gevent, timer, n, 1_000)


@case(size=50_000, quick=10_000, min_size=10, main=False)
def tcp_echo_10(gevent, timer, n):
    """tcp_echo with 10 client connections; N messages total (scaling series)."""
    return _tcp_echo(gevent, timer, n, 10)


@case(size=50_000, quick=10_000, min_size=5_000, main=False)
def tcp_echo_5k(gevent, timer, n):
    """tcp_echo with 5,000 client connections; N messages total (scaling series)."""
    return _tcp_echo(gevent, timer, n, 5_000)


@case(size=10_000, quick=2_000, min_size=100)
def getaddrinfo(gevent, timer, n):
    """100 greenlets doing N socket.getaddrinfo('localhost', 80) calls in total."""
    socket = sub(gevent, "socket")
    workers = 100
    per_worker = n // workers

    def resolve():
        for _ in range(per_worker):
            if not socket.getaddrinfo("localhost", 80):
                raise RuntimeError("getaddrinfo returned nothing")

    with timer:
        greenlets = [gevent.spawn(resolve) for _ in range(workers)]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)


@case(size=10_000, quick=2_000)
def threadpool_apply(gevent, timer, n):
    """N sequential get_hub().threadpool.apply(lambda: None) calls."""
    pool = gevent.get_hub().threadpool
    pool.apply(_noop)  # start the first worker thread outside the timed region
    with timer:
        for _ in range(n):
            pool.apply(_noop)


# --------------------------------------------------------------------------
# Subprocesses and file objects


@case(size=200, quick=200)
def check_output_true(gevent, timer, n):
    """N concurrent subprocess.check_output(['true']) calls, one greenlet each."""
    subprocess = sub(gevent, "subprocess")
    with timer:
        greenlets = [gevent.spawn(subprocess.check_output, ["true"]) for _ in range(n)]
        gevent.joinall(greenlets)
    check_greenlets(greenlets)
    if any(g.value != b"" for g in greenlets):
        raise RuntimeError("check_output(['true']) returned output")


@case(size=1 << 20, quick=1 << 20, min_size=1 << 14)
def pipe_posix(gevent, timer, n):
    """N bytes (1 MiB) through os.pipe() with FileObjectPosix; writer and reader greenlets.

    The writer writes 16 KiB chunks then closes; the reader reads 64 KiB at a
    time until end of file.
    """
    import os

    fileobject = sub(gevent, "fileobject")
    r, w = os.pipe()
    reader = fileobject.FileObjectPosix(r, "rb")
    writer = fileobject.FileObjectPosix(w, "wb")
    chunk = b"x" * 16384
    writes = n // len(chunk)

    def write():
        for _ in range(writes):
            writer.write(chunk)
        writer.close()

    def read():
        total = 0
        while True:
            data = reader.read(65536)
            if not data:
                return total
            total += len(data)

    try:
        with timer:
            greenlets = [gevent.spawn(read), gevent.spawn(write)]
            gevent.joinall(greenlets)
        check_greenlets(greenlets)
        if greenlets[0].value != writes * len(chunk):
            raise RuntimeError(f"read {greenlets[0].value} bytes, wrote {writes * len(chunk)}")
    finally:
        writer.close()
        reader.close()


# --------------------------------------------------------------------------
# Memory (kind="memory": the runner reports bytes per item, not time)


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm (Linux)."""
    import os

    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


@case(size=20_000, quick=5_000, kind="memory", min_size=100)
def mem_idle_greenlet(gevent, timer, n):
    """RSS per idle greenlet: spawn N greenlets that all block on one Event.

    RSS is read (after gc.collect()) before spawning and after every greenlet
    has started and parked in Event.wait(); the difference divided by N is
    what one parked greenlet costs: its greenlet object, saved stack slice and
    its place in the Event's waiters.
    """
    import gc

    event = sub(gevent, "event").Event()
    gevent.sleep(0)  # start the hub before the "before" reading
    gc.collect()
    before = rss_bytes()
    with timer:
        greenlets = [gevent.spawn(event.wait) for _ in range(n)]
        gevent.sleep(0)  # every greenlet runs up to event.wait() and parks
    gc.collect()
    after = rss_bytes()
    if any(g.ready() for g in greenlets):
        raise RuntimeError("a greenlet finished before the Event was set")
    event.set()
    gevent.joinall(greenlets)
    check_greenlets(greenlets)
    return {"bytes/greenlet": (after - before) / n}


@case(size=5_000, quick=1_000, kind="memory", min_size=100)
def mem_idle_connection(gevent, timer, n):
    """RSS per idle connection: N accepted TCP connections, each with a handler blocked in recv.

    The server (the library's socket module, one handler greenlet per
    connection, as in tcp_echo) runs in this process.  The clients are plain
    stdlib sockets, the same objects for every library, connected in batches
    the accept loop catches up with.  RSS after minus RSS before, divided by
    N, is the server-side cost of an idle connection (socket object, I/O
    watcher, handler greenlet) plus one stdlib client socket object.
    """
    import gc

    socket = sub(gevent, "socket")
    listener = socket.socket(_std_socket.AF_INET, _std_socket.SOCK_STREAM)
    listener.setsockopt(_std_socket.SOL_SOCKET, _std_socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    address = listener.getsockname()
    handlers = []

    def handle(conn):
        try:
            return conn.recv(1)  # parks until the client closes
        finally:
            conn.close()

    def accept_loop():
        while True:
            conn, _ = listener.accept()
            handlers.append(gevent.spawn(handle, conn))

    acceptor = gevent.spawn(accept_loop)
    clients = []
    try:
        gevent.sleep(0)
        gc.collect()
        before = rss_bytes()
        with timer:
            for i in range(n):
                clients.append(_std_socket.create_connection(address))
                if (i + 1) % CONNECT_BATCH == 0:
                    _wait_for(gevent, lambda: len(handlers) == len(clients), "the accept loop")
            _wait_for(gevent, lambda: len(handlers) == n, f"{n} accepted connections")
            gevent.sleep(0)  # the last handlers reach recv()
        gc.collect()
        after = rss_bytes()
        if any(h.ready() for h in handlers):
            raise RuntimeError("a handler finished while its client was idle")
    finally:
        for sock in clients:
            sock.close()
        acceptor.kill()
        listener.close()
    gevent.joinall(handlers, timeout=10)
    check_greenlets(handlers)
    return {"bytes/connection": (after - before) / n}
