"""greenweave.wait / greenweave.iwait: waiting on many things at once."""

from __future__ import annotations

import gc
import time

import pytest

import greenweave
from greenweave import Greenlet

pytestmark = pytest.mark.timeout(10)


def _sleepers(*delays: float) -> list[Greenlet]:
    return [greenweave.spawn(greenweave.sleep, d) for d in delays]


def _linked(objs) -> list:
    """The objects that still hold any link."""
    return [o for o in objs if o.has_links]


class Flag:
    """A minimal waitable: anything with rawlink/unlink works."""

    def __init__(self) -> None:
        self.links: list = []
        self.ready = False

    def rawlink(self, cb) -> None:
        self.links.append(cb)
        if self.ready:
            greenweave.get_hub().loop.run_callback(cb, self)

    def unlink(self, cb) -> None:
        if cb in self.links:
            self.links.remove(cb)

    def fire(self) -> None:
        self.ready = True
        for cb in list(self.links):
            cb(self)


def test_iwait_yields_in_completion_order():
    gs = _sleepers(0.03, 0.01, 0.02)
    assert [gs.index(g) for g in greenweave.iwait(gs)] == [1, 2, 0]


def test_iwait_yields_ready_objects_first_and_at_once():
    done = greenweave.spawn(lambda: 1)
    done.join()
    pending = greenweave.spawn(greenweave.sleep, 0.05)
    it = greenweave.iwait([pending, done])
    start = time.monotonic()
    assert next(it) is done
    assert time.monotonic() - start < 0.04
    assert next(it) is pending


def test_wait_returns_all_when_done():
    gs = _sleepers(0.01, 0.02, 0.0)
    done = greenweave.wait(gs)
    assert sorted(map(id, done)) == sorted(map(id, gs))
    assert all(g.dead for g in gs)


def test_wait_count():
    gs = _sleepers(0.05, 0.01, 0.02, 10)
    done = greenweave.wait(gs, count=2)
    assert done == [gs[1], gs[2]]
    assert not gs[0].dead
    assert _linked(gs) == []
    gs[3].kill()


def test_iwait_count_zero_and_empty():
    gs = _sleepers(10)
    assert list(greenweave.iwait(gs, count=0)) == []
    assert greenweave.wait([]) == []
    assert list(greenweave.iwait([])) == []
    assert _linked(gs) == []
    gs[0].kill()


def test_wait_timeout_returns_what_finished():
    gs = _sleepers(0.01, 10, 10)
    start = time.monotonic()
    done = greenweave.wait(gs, timeout=0.1)
    assert done == [gs[0]]
    assert 0.05 < time.monotonic() - start < 2
    assert _linked(gs) == []
    greenweave.killall(gs)


def test_iwait_timeout_stops_iteration():
    gs = _sleepers(10, 10)
    start = time.monotonic()
    assert list(greenweave.iwait(gs, timeout=0.05)) == []
    assert 0.03 < time.monotonic() - start < 2
    assert _linked(gs) == []
    greenweave.killall(gs)


def test_iwait_stopped_early_with_close_unlinks_everything():
    gs = _sleepers(0.01, 10, 10)
    it = greenweave.iwait(gs)
    assert next(it) is gs[0]
    assert len(_linked(gs)) == 2
    it.close()
    assert _linked(gs) == []
    assert list(it) == []
    greenweave.killall(gs)


def test_iwait_as_context_manager_unlinks_on_exit():
    gs = _sleepers(0.01, 10, 10)
    with greenweave.iwait(gs) as it:
        for g in it:
            assert g is gs[0]
            break
        assert len(_linked(gs)) == 2
    assert _linked(gs) == []
    greenweave.killall(gs)


def test_iwait_dropped_early_unlinks():
    gs = _sleepers(0.01, 10, 10)
    for g in greenweave.iwait(gs):
        assert g is gs[0]
        break
    gc.collect()
    assert _linked(gs) == []
    greenweave.killall(gs)


def test_iwait_in_killed_greenlet_unlinks_once_the_greenlet_is_gone():
    gs = _sleepers(10, 10)
    waiter = greenweave.spawn(lambda: list(greenweave.iwait(gs)))
    greenweave.sleep(0.01)
    assert len(_linked(gs)) == 2
    waiter.kill()
    # The GreenletExit in waiter.value holds the iterator's frame through its
    # traceback; once the dead waiter is dropped, the links go too.
    del waiter
    greenweave.sleep(0)  # let the hub drop its last callback's arguments
    gc.collect()
    assert _linked(gs) == []
    greenweave.killall(gs)


def test_iwait_links_nothing_until_iterated():
    gs = _sleepers(10)
    it = greenweave.iwait(gs)
    assert _linked(gs) == []
    it.close()
    gs[0].kill()


def test_wait_without_objects_waits_for_the_loop():
    g = greenweave.spawn(greenweave.sleep, 0.05)
    start = time.monotonic()
    assert greenweave.wait() is True
    assert g.dead and time.monotonic() - start >= 0.03


def test_wait_without_objects_times_out():
    g = greenweave.spawn(greenweave.sleep, 10)
    greenweave.sleep(0)
    start = time.monotonic()
    assert greenweave.wait(timeout=0.05) is False
    assert time.monotonic() - start < 2
    g.kill()


def test_works_with_any_rawlink_object():
    a, b = Flag(), Flag()
    greenweave.get_hub().loop.timer(0.02).start(b.fire)
    greenweave.get_hub().loop.timer(0.04).start(a.fire)
    assert list(greenweave.iwait([a, b])) == [b, a]
    assert a.links == [] and b.links == []


def test_many_waiters_on_the_same_objects():
    gs = _sleepers(0.02, 0.01)
    w1 = greenweave.spawn(greenweave.wait, gs)
    w2 = greenweave.spawn(greenweave.wait, gs, count=1)
    assert len(w1.get()) == 2
    assert w2.get() == [gs[1]]


def test_concurrent_waits_finish_together():
    # 100 waits over 0.2 s sleepers finish in about 0.2 s, not 20 s.
    start = time.monotonic()
    waiters = [greenweave.spawn(greenweave.wait, _sleepers(0.2)) for _ in range(100)]
    greenweave.joinall(waiters)
    assert time.monotonic() - start < 2
    assert all(len(w.value) == 1 for w in waiters)


# -- with events ------------------------------------------------------------


def test_iwait_with_events_and_async_results():
    event = pytest.importorskip("greenweave.event")
    ev = event.Event()
    ar = event.AsyncResult()
    g = greenweave.spawn(greenweave.sleep, 0.03)
    greenweave.spawn_later(0.01, ar.set, 42)
    greenweave.spawn_later(0.02, ev.set)
    assert list(greenweave.iwait([g, ev, ar])) == [ar, ev, g]
    assert ar.get() == 42


def test_wait_on_event_timeout_and_unlink():
    event = pytest.importorskip("greenweave.event")
    ev = event.Event()
    assert greenweave.wait([ev], timeout=0.02) == []
    ev.set()
    assert greenweave.wait([ev], timeout=1) == [ev]


def test_iwait_on_event_set_before_iterating():
    event = pytest.importorskip("greenweave.event")
    ev = event.Event()
    ev.set()
    assert list(greenweave.iwait([ev])) == [ev]


def test_greenlet_linked_to_async_result_is_waitable():
    event = pytest.importorskip("greenweave.event")
    ar = event.AsyncResult()
    g = greenweave.spawn(lambda: 7)
    g.link(ar)
    assert greenweave.wait([ar], timeout=2) == [ar]
    assert ar.get() == 7
