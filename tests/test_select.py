"""greenweave.select: select() and poll() over real sockets and pipes; they block
only the calling greenlet."""

from __future__ import annotations

import os
import select as stdselect
import socket as stdsocket
import time

import pytest

import greenweave
from greenweave import select as gselect
from greenweave import socket as gsocket

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(autouse=True)
def _hub(fresh_hub):
    return fresh_hub


@pytest.fixture
def pair():
    a, b = gsocket.socketpair()
    yield a, b
    a.close()
    b.close()


def _ticker(ticks):
    while True:
        ticks.append(time.monotonic())
        greenweave.sleep(0.01)


def test_names():
    assert gselect.error is OSError
    assert gselect.POLLIN == stdselect.POLLIN
    assert gselect.select is not stdselect.select
    assert gselect.poll is not stdselect.poll
    for name in ("error", "poll", "select"):
        assert name in gselect.__all__


# -- select() -----------------------------------------------------------------------


def test_select_returns_immediately_ready_descriptors(pair):
    a, b = pair
    b.sendall(b"x")
    r, w, x = gselect.select([a, b], [a], [], 5)
    assert r == [a]
    assert w == [a]
    assert x == []
    # Plain integers work too, and a zero timeout just looks.
    assert gselect.select([a.fileno()], [], [], 0) == ([a.fileno()], [], [])
    assert gselect.select([b.fileno()], [], [], 0) == ([], [], [])


def test_select_times_out_with_empty_lists_while_others_run(pair):
    a, _b = pair
    ticks = []
    t = greenweave.spawn(_ticker, ticks)
    t0 = time.monotonic()
    assert gselect.select([a], [], [], 0.3) == ([], [], [])
    elapsed = time.monotonic() - t0
    t.kill()
    assert 0.27 <= elapsed < 5
    assert len(ticks) >= 10  # the ticker kept running: only we were blocked


def test_select_wakes_when_data_arrives(pair):
    a, b = pair

    def later():
        greenweave.sleep(0.1)
        b.sendall(b"ping")

    greenweave.spawn(later)
    r, w, x = gselect.select([a], [], [], 5)
    assert r == [a]
    assert a.recv(10) == b"ping"


def test_select_wakes_for_writability(pair):
    a, b = pair
    a.setblocking(False)
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    assert gselect.select([], [a], [], 0) == ([], [], [])

    def drain():
        greenweave.sleep(0.05)
        while True:
            try:
                b.recv(1 << 20, stdsocket.MSG_DONTWAIT)
            except BlockingIOError:
                break

    greenweave.spawn(drain)
    assert gselect.select([], [a], [], 5)[1] == [a]


def test_select_reports_every_ready_descriptor_and_keeps_order():
    pairs = [gsocket.socketpair() for _ in range(5)]
    readers = [p[0] for p in pairs]

    def later():
        greenweave.sleep(0.05)
        for _a, b in pairs[1::2]:
            b.sendall(b"!")

    greenweave.spawn(later)
    r, _w, _x = gselect.select(readers, [], [], 5)
    assert r  # at least one woke us; all ready ones are reported in input order
    assert r == [s for s in readers if s in r]
    greenweave.sleep(0.01)
    r, _w, _x = gselect.select(readers, [], [], 5)
    assert r == readers[1::2]
    for a, b in pairs:
        a.close()
        b.close()


def test_select_without_timeout_blocks_until_ready(pair):
    a, b = pair
    g = greenweave.spawn(gselect.select, [a], [], [])
    greenweave.sleep(0.1)
    assert not g.ready()
    b.sendall(b"x")
    assert g.get(timeout=5) == ([a], [], [])


def test_select_on_pipe_hangup():
    r, w = os.pipe()

    def closer():
        greenweave.sleep(0.05)
        os.close(w)

    greenweave.spawn(closer)
    assert gselect.select([r], [], [], 5) == ([r], [], [])
    os.close(r)


def test_select_validates_like_the_standard_library(pair):
    a, _b = pair
    with pytest.raises(ValueError):
        gselect.select([a], [], [], -1)
    with pytest.raises(TypeError):
        gselect.select([object()], [], [], 0)
    with pytest.raises(TypeError):
        gselect.select([a], [], [], "soon")
    bad = gsocket.socket()
    bad_fd = os.dup(bad.fileno())
    bad.close()
    os.close(bad_fd)
    with pytest.raises(OSError):
        gselect.select([bad_fd], [], [], 0)


def test_select_killed_while_waiting_leaves_nothing_behind(pair, fresh_hub):
    a, b = pair
    g = greenweave.spawn(gselect.select, [a], [], [])
    greenweave.sleep(0.02)
    g.kill()
    assert g.dead
    assert fresh_hub.loop._fds.get(a.fileno()) is None  # watchers closed
    b.sendall(b"x")
    assert gselect.select([a], [], [], 1) == ([a], [], [])


# -- poll() -----------------------------------------------------------------------------


def test_poll_register_modify_unregister(pair):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    p.register(b.fileno())  # default mask includes POLLOUT
    result = dict(p.poll(0))
    assert a.fileno() not in result
    assert result[b.fileno()] & gselect.POLLOUT
    p.modify(b, gselect.POLLIN)
    assert p.poll(0) == []
    b.sendall(b"x")
    assert p.poll(1000) == [(a.fileno(), gselect.POLLIN)]
    p.unregister(a)
    assert p.poll(0) == []
    with pytest.raises(KeyError):
        p.unregister(a)
    with pytest.raises(FileNotFoundError):
        p.modify(a, gselect.POLLIN)
    with pytest.raises(TypeError):
        p.register("not a file")


def test_poll_blocks_only_this_greenlet_and_times_out(pair):
    a, _b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    ticks = []
    t = greenweave.spawn(_ticker, ticks)
    t0 = time.monotonic()
    assert p.poll(300) == []
    elapsed = time.monotonic() - t0
    t.kill()
    assert 0.27 <= elapsed < 5
    assert len(ticks) >= 10


def test_poll_wakes_on_data_and_repeatedly(pair):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    for i in range(20):
        def later(i=i):
            greenweave.sleep(0.005)
            b.sendall(b"%d" % i)

        greenweave.spawn(later)
        assert p.poll() == [(a.fileno(), gselect.POLLIN)]
        assert a.recv(10) == b"%d" % i


def test_poll_reports_hangup(pair):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)

    def closer():
        greenweave.sleep(0.05)
        b.close()

    greenweave.spawn(closer)
    [(fd, events)] = p.poll(5000)
    assert fd == a.fileno()
    assert events & (gselect.POLLIN | gselect.POLLHUP)


def test_poll_concurrent_invocation_is_refused(pair):
    a, _b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    g = greenweave.spawn(p.poll)
    greenweave.sleep(0.02)
    with pytest.raises(RuntimeError, match="concurrent"):
        p.poll(10)
    g.kill()
    assert p.poll(0) == []  # usable again


def test_poll_negative_or_none_timeout_waits(pair):
    a, b = pair
    p = gselect.poll()
    p.register(a, gselect.POLLIN)
    for timeout in (None, -1):
        g = greenweave.spawn(p.poll, timeout)
        greenweave.sleep(0.05)
        assert not g.ready()
        b.sendall(b"x")
        assert g.get(timeout=5) == [(a.fileno(), gselect.POLLIN)]
        a.recv(10)
