"""greenweave.selectors: GreenweaveSelector (= DefaultSelector = GeventSelector)
over real sockets; select() blocks only the calling greenlet."""

from __future__ import annotations

import selectors as stdselectors
import time

import pytest

import greenweave
from greenweave import selectors as gselectors
from greenweave import socket as gsocket

pytestmark = pytest.mark.timeout(20)

EVENT_READ = gselectors.EVENT_READ
EVENT_WRITE = gselectors.EVENT_WRITE


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    return fresh_hub


@pytest.fixture
def pair():
    a, b = gsocket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_names():
    assert gselectors.DefaultSelector is gselectors.GreenweaveSelector
    assert gselectors.GeventSelector is gselectors.GreenweaveSelector
    assert issubclass(gselectors.GreenweaveSelector, stdselectors.BaseSelector)
    assert gselectors.SelectorKey is stdselectors.SelectorKey
    assert gselectors.EVENT_READ == stdselectors.EVENT_READ


def test_register_select_modify_unregister(pair):
    a, b = pair
    with gselectors.DefaultSelector() as sel:
        key = sel.register(a, EVENT_READ, data="a-data")
        assert key.fd == a.fileno() and key.data == "a-data"
        assert sel.get_key(a) == key
        assert len(sel.get_map()) == 1 and a.fileno() in sel.get_map()
        assert sel.select(0) == []
        b.sendall(b"x")
        assert sel.select(1) == [(key, EVENT_READ)]
        key2 = sel.modify(a, EVENT_READ | EVENT_WRITE, data="both")
        assert key2.events == EVENT_READ | EVENT_WRITE and key2.data == "both"
        assert sel.select(1) == [(key2, EVENT_READ | EVENT_WRITE)]
        key3 = sel.modify(a, EVENT_READ | EVENT_WRITE, data="only data")
        assert key3.data == "only data"
        assert sel.unregister(a) == key3
        assert sel.get_map() is not None and len(sel.get_map()) == 0
        with pytest.raises(KeyError):
            sel.unregister(a)
        with pytest.raises(KeyError):
            sel.get_key(a)
    assert sel.get_map() is None


def test_register_errors(pair):
    a, _b = pair
    sel = gselectors.DefaultSelector()
    with pytest.raises(ValueError):
        sel.register(a, 0)
    with pytest.raises(ValueError):
        sel.register(a, 8)
    with pytest.raises(ValueError):
        sel.register(-1, EVENT_READ)
    with pytest.raises(ValueError):
        sel.register(object(), EVENT_READ)
    sel.register(a, EVENT_READ)
    with pytest.raises(KeyError):
        sel.register(a.fileno(), EVENT_WRITE)
    with pytest.raises(KeyError):
        sel.modify(_b, EVENT_READ)
    sel.close()


def test_select_blocks_only_this_greenlet_and_times_out(pair):
    a, _b = pair
    sel = gselectors.DefaultSelector()
    sel.register(a, EVENT_READ)
    ticks = []

    def ticker():
        while True:
            ticks.append(1)
            greenweave.sleep(0.01)

    t = greenweave.spawn(ticker)
    t0 = time.monotonic()
    assert sel.select(0.3) == []
    elapsed = time.monotonic() - t0
    t.kill()
    assert 0.27 <= elapsed < 5
    assert len(ticks) >= 10
    sel.close()


def test_select_wakes_for_data_from_another_greenlet(pair):
    a, b = pair
    sel = gselectors.DefaultSelector()
    key = sel.register(a, EVENT_READ, "reader")

    def later():
        greenweave.sleep(0.1)
        b.sendall(b"data")

    greenweave.spawn(later)
    assert sel.select() == [(key, EVENT_READ)]
    sel.close()


def test_echo_server_driven_by_a_selector():
    """A classic single-greenlet selector loop serving several clients, while
    the clients themselves are other greenlets."""
    lst = gsocket.create_server(("127.0.0.1", 0))
    lst.setblocking(False)
    addr = lst.getsockname()
    sel = gselectors.DefaultSelector()
    sel.register(lst, EVENT_READ, "accept")
    n_clients = 20
    served = []

    def server():
        open_conns = 0
        while len(served) < n_clients or open_conns:
            for key, _ev in sel.select(5):
                if key.data == "accept":
                    conn, _ = lst.accept()
                    conn.setblocking(False)
                    sel.register(conn, EVENT_READ, "conn")
                    open_conns += 1
                else:
                    conn = key.fileobj
                    data = conn.recv(100)
                    if data:
                        conn.sendall(data[::-1])
                        served.append(data)
                    else:
                        sel.unregister(conn)
                        conn.close()
                        open_conns -= 1

    def client(i):
        with gsocket.create_connection(addr, timeout=5) as c:
            msg = b"msg-%03d" % i
            c.sendall(msg)
            return c.recv(100) == msg[::-1]

    srv = greenweave.spawn(server)
    clients = [greenweave.spawn(client, i) for i in range(n_clients)]
    greenweave.joinall(clients, timeout=10)
    assert [c.value for c in clients] == [True] * n_clients
    srv.join(timeout=10)
    assert srv.successful(), srv.exception
    sel.close()
    lst.close()


def test_closed_file_object_can_still_be_unregistered(pair):
    a, _b = pair
    s = gsocket.socket()
    sel = gselectors.DefaultSelector()
    sel.register(s, EVENT_READ)
    s.close()  # fileno() is -1 now
    key = sel.unregister(s)
    assert key.fileobj is s
    sel.close()
