"""Event and AsyncResult: waiting, timeouts, links, kills, threads."""

from __future__ import annotations

import sys
import threading
import time
import traceback

import pytest

import greenweave
from greenweave import GreenletExit, Timeout
from greenweave._core.park import ParkingLot
from greenweave.event import AsyncResult, Event
from greenweave.exceptions import LoopExit

pytestmark = pytest.mark.timeout(10)


def _raiser(msg: str = "boom") -> None:
    raise ValueError(msg)


# -- Event: the flag -----------------------------------------------------


def test_event_starts_clear_and_set_clear_toggle_the_flag():
    e = Event()
    assert not e.is_set() and not e.isSet() and not e.ready()
    e.set()
    assert e.is_set() and e.isSet() and e.ready()
    e.clear()
    assert not e.is_set()


def test_event_truthiness_is_the_objects_not_the_flags():
    # As in gevent: no __bool__, so an unset Event is still true.
    assert bool(Event())


def test_wait_on_a_set_event_returns_true_at_once():
    e = Event()
    e.set()
    assert e.wait() is True
    assert e.wait(0) is True
    assert e.wait(timeout=5) is True


def test_wait_times_out_and_returns_the_flag():
    e = Event()
    start = time.monotonic()
    assert e.wait(0.05) is False
    assert time.monotonic() - start >= 0.04


def test_wait_zero_or_negative_lets_ready_greenlets_run_once():
    e = Event()
    greenweave.spawn(e.set)
    assert e.wait(0) is True
    e = Event()
    greenweave.spawn(e.set)
    assert e.wait(-1) is True
    assert Event().wait(0) is False


def test_set_wakes_every_waiter_in_fifo_order():
    e = Event()
    order = []

    def waiter(i):
        assert e.wait() is True
        order.append(i)

    gs = [greenweave.spawn(waiter, i) for i in range(5)]
    greenweave.sleep(0)
    assert order == []
    e.set()
    greenweave.joinall(gs)
    assert order == [0, 1, 2, 3, 4]


def test_waiter_woken_by_set_returns_true_even_if_cleared_before_it_ran():
    e = Event()
    g = greenweave.spawn(e.wait)
    greenweave.sleep(0)
    e.set()
    e.clear()
    assert g.get(timeout=2) is True


def test_waiter_with_timeout_is_woken_by_set():
    e = Event()
    g = greenweave.spawn(e.wait, 5)
    greenweave.sleep(0)
    e.set()
    assert g.get(timeout=2) is True


def test_killed_waiter_leaves_the_others_waiting_and_woken():
    e = Event()
    gs = [greenweave.spawn(e.wait) for _ in range(3)]
    greenweave.sleep(0)
    gs[0].kill()
    assert isinstance(gs[0].value, GreenletExit)
    e.set()
    greenweave.joinall(gs[1:])
    assert [g.value for g in gs[1:]] == [True, True]


def test_timeout_context_interrupts_wait():
    e = Event()
    with pytest.raises(Timeout):
        with Timeout(0.02):
            e.wait()
    # The abandoned wait left nothing behind: a later set/wait still works.
    e.set()
    assert e.wait(0.1) is True


def test_wait_with_nobody_to_set_raises_loopexit(fresh_hub):
    e = Event()
    with pytest.raises(LoopExit):
        e.wait()


def test_many_waiters_on_one_event():
    e = Event()
    gs = [greenweave.spawn(e.wait) for _ in range(500)]
    greenweave.sleep(0)
    e.set()
    greenweave.joinall(gs, timeout=5)
    assert all(g.value is True for g in gs)


# -- Event: links ----------------------------------------------------------


def test_rawlink_runs_from_the_hub_after_set_in_a_batch_and_once():
    e = Event()
    calls = []
    e.rawlink(lambda ev: calls.append(("a", ev)))
    e.rawlink(lambda ev: calls.append(("b", ev)))
    assert e.linkcount() == 2
    e.set()
    assert calls == []  # not synchronously
    greenweave.sleep(0)
    assert calls == [("a", e), ("b", e)]
    assert e.linkcount() == 0
    e.clear()
    e.set()
    greenweave.sleep(0)
    assert len(calls) == 2  # links are one-shot


def test_rawlink_on_a_set_event_fires_soon():
    e = Event()
    e.set()
    calls = []
    e.rawlink(calls.append)
    greenweave.sleep(0)
    assert calls == [e]


def test_waiters_wake_before_links_run():
    e = Event()
    order = []

    def waiter():
        e.wait()
        order.append("waiter")

    greenweave.spawn(waiter)
    greenweave.sleep(0)
    e.rawlink(lambda ev: order.append("link"))
    e.set()
    greenweave.sleep(0)
    greenweave.sleep(0)
    assert order == ["waiter", "link"]


def test_unlink_removes_a_callback_and_tolerates_unknown_ones():
    e = Event()
    calls = []

    def cb(ev):
        calls.append(ev)

    e.rawlink(cb)
    e.unlink(cb)
    e.unlink(cb)
    e.unlink(lambda ev: None)
    e.set()
    greenweave.sleep(0)
    assert calls == []


def test_rawlink_rejects_non_callables():
    with pytest.raises(TypeError, match="Expected callable"):
        Event().rawlink(42)
    with pytest.raises(TypeError):
        AsyncResult().rawlink(None)


def test_failing_link_is_reported_and_the_others_still_run(capsys):
    e = Event()
    calls = []

    def bad(ev):
        raise ZeroDivisionError("bad link")

    e.rawlink(bad)
    e.rawlink(calls.append)
    e.set()
    greenweave.sleep(0)
    assert calls == [e]
    assert "ZeroDivisionError" in capsys.readouterr().err


def test_wait_module_function_works_with_events():
    a, b = Event(), Event()
    greenweave.spawn_later(0.01, b.set)
    done = greenweave.wait([a, b], count=1, timeout=2)
    assert done == [b]


# -- Event: native threads -----------------------------------------------------


def test_set_from_another_thread_wakes_a_waiting_greenlet():
    e = Event()

    def setter():
        time.sleep(0.05)
        e.set()

    t = threading.Thread(target=setter)
    t.start()
    try:
        assert e.wait(timeout=5) is True
    finally:
        t.join()


def test_set_from_another_thread_wakes_many_greenlets():
    e = Event()
    gs = [greenweave.spawn(e.wait, 5) for _ in range(20)]
    greenweave.sleep(0)
    t = threading.Thread(target=e.set)
    t.start()
    greenweave.joinall(gs, timeout=5)
    t.join()
    assert all(g.value is True for g in gs)


def test_links_run_in_the_registering_hub_when_set_from_another_thread():
    e = Event()
    seen = []
    me = threading.get_ident()
    e.rawlink(lambda ev: seen.append(threading.get_ident()))
    t = threading.Thread(target=e.set)
    t.start()
    t.join()
    assert e.wait(1)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        greenweave.sleep(0.01)
    assert seen == [me]


def test_greenlets_in_two_threads_wait_on_one_event():
    e = Event()
    results = []

    def other_thread():
        results.append(e.wait(5))

    t = threading.Thread(target=other_thread)
    t.start()
    time.sleep(0.05)  # let it park in its own hub
    greenweave.spawn_later(0.02, e.set)
    assert e.wait(5) is True
    t.join(5)
    assert results == [True]


def test_racing_threads_never_lose_a_wakeup():
    # Many rounds of "check, then park" against a set() from another thread:
    # a lost wake-up would turn a round into a timeout.
    for _ in range(50):
        e = Event()
        t = threading.Thread(target=e.set)
        t.start()
        assert e.wait(5) is True
        t.join()


class _SlowLot(ParkingLot):
    """A ParkingLot whose park() first lets other native threads run for a
    while: it holds the lost-wake-up window (between a waiter's state check
    and its park) wide open, so a set() from another thread lands in it."""

    __slots__ = ("entered",)

    def park(self, timeout=None):
        self.entered.set()
        time.sleep(0.02)  # releases the GIL
        return ParkingLot.park(self, timeout)


def _slow_lot() -> _SlowLot:
    lot = _SlowLot()
    lot.entered = threading.Event()
    return lot


@pytest.mark.parametrize("kind", ["event", "asyncresult"])
def test_set_from_a_thread_between_check_and_park_is_not_lost(kind):
    obj = Event() if kind == "event" else AsyncResult()
    obj._lot = lot = _slow_lot()

    def setter():
        lot.entered.wait(5)
        obj.set()

    t = threading.Thread(target=setter)
    t.start()
    start = time.monotonic()
    try:
        assert obj.wait(5) in (True, None)
        # A lost wake-up would only end at the 5 s timeout.
        assert time.monotonic() - start < 2.5
        assert obj.ready()
    finally:
        t.join()


# -- AsyncResult -----------------------------------------------------------


def test_asyncresult_starts_unset():
    r = AsyncResult()
    assert not r.ready() and not r.successful()
    assert r.value is None and r.exception is None and r.exc_info == ()


def test_asyncresult_set_value():
    r = AsyncResult()
    r.set(5)
    assert r.ready() and r.successful()
    assert r.get() == 5 and r.get_nowait() == 5 and r.wait() == 5
    assert r.value == 5 and r.exception is None and r.exc_info == ()
    r.set(6)
    assert r.get() == 6
    r2 = AsyncResult()
    r2.set()
    assert r2.get() is None and r2.successful()


def test_asyncresult_get_not_ready_raises_timeout():
    r = AsyncResult()
    with pytest.raises(Timeout):
        r.get_nowait()
    with pytest.raises(Timeout):
        r.get(block=False)
    start = time.monotonic()
    with pytest.raises(Timeout) as info:
        r.get(timeout=0.05)
    assert time.monotonic() - start >= 0.04
    assert info.value.seconds == 0.05
    assert r.wait(0.01) is None


def test_asyncresult_get_blocks_until_set():
    r = AsyncResult()
    greenweave.spawn_later(0.01, r.set, "v")
    assert r.get(timeout=5) == "v"


def test_asyncresult_wakes_all_getters():
    r = AsyncResult()
    gs = [greenweave.spawn(r.get) for _ in range(5)]
    greenweave.sleep(0)
    r.set(7)
    greenweave.joinall(gs)
    assert [g.value for g in gs] == [7] * 5


def test_asyncresult_exception_keeps_its_traceback():
    r = AsyncResult()
    try:
        _raiser("kept")
    except ValueError as ex:
        r.set_exception(ex)
    assert r.ready() and not r.successful()
    assert isinstance(r.exception, ValueError) and r.value is None
    assert r.exc_info[0] is ValueError and r.exc_info[1] is r.exception
    assert r.wait() is None  # wait() never raises
    with pytest.raises(ValueError, match="kept") as info:
        r.get()
    frames = [f.name for f in traceback.extract_tb(info.tb)]
    assert "_raiser" in frames


def test_asyncresult_exception_with_explicit_exc_info():
    r = AsyncResult()
    try:
        _raiser("explicit")
    except ValueError as ex:
        r.set_exception(ex, sys.exc_info())
    with pytest.raises(ValueError) as info:
        r.get()
    assert "_raiser" in [f.name for f in traceback.extract_tb(info.tb)]
    # Raised again: the traceback does not keep growing.
    with pytest.raises(ValueError) as info2:
        r.get()
    assert len(traceback.extract_tb(info2.tb)) == len(traceback.extract_tb(info.tb))


def test_asyncresult_exception_class_and_waiting_getter():
    r = AsyncResult()
    g = greenweave.spawn(r.get)
    greenweave.sleep(0)
    r.set_exception(KeyError)
    greenweave.joinall([g])
    assert isinstance(g.exception, KeyError)
    with pytest.raises(KeyError):
        r.get()


def test_asyncresult_set_after_exception_replaces_it():
    r = AsyncResult()
    r.set_exception(ValueError("x"))
    r.set(1)
    assert r.successful() and r.exception is None and r.get() == 1


def test_link_asyncresult_to_a_greenlet_value():
    g = greenweave.spawn(lambda: 42)
    r = AsyncResult()
    g.link(r)
    assert r.get(timeout=2) == 42


def test_link_asyncresult_to_a_failing_greenlet_keeps_traceback():
    g = greenweave.spawn(_raiser, "linked")
    r = AsyncResult()
    g.link(r)
    with pytest.raises(ValueError, match="linked") as info:
        r.get(timeout=2)
    assert "_raiser" in [f.name for f in traceback.extract_tb(info.tb)]


def test_asyncresult_called_directly_with_a_finished_greenlet():
    g = greenweave.spawn(lambda: "done")
    g.join()
    r = AsyncResult()
    r(g)
    assert r.get() == "done"


def test_asyncresult_futures_api():
    r = AsyncResult()
    assert not r.done() and not r.cancel() and not r.cancelled()
    r.set_result(3)
    assert r.done() and r.result() == 3


def test_asyncresult_links():
    r = AsyncResult()
    calls = []
    r.rawlink(calls.append)
    r.set(1)
    greenweave.sleep(0)
    assert calls == [r]


def test_asyncresult_killed_getter_does_not_disturb_others():
    r = AsyncResult()
    gs = [greenweave.spawn(r.get) for _ in range(3)]
    greenweave.sleep(0)
    gs[1].kill()
    r.set("x")
    greenweave.joinall(gs)
    assert gs[0].value == "x" and gs[2].value == "x"


def test_asyncresult_set_from_another_thread():
    r = AsyncResult()

    def setter():
        time.sleep(0.05)
        r.set("from thread")

    t = threading.Thread(target=setter)
    t.start()
    try:
        assert r.get(timeout=5) == "from thread"
    finally:
        t.join()


def test_asyncresult_exception_from_another_thread():
    r = AsyncResult()

    def setter():
        try:
            _raiser("thread")
        except ValueError as ex:
            r.set_exception(ex)

    t = threading.Thread(target=setter)
    t.start()
    t.join()
    with pytest.raises(ValueError, match="thread"):
        r.get(timeout=5)


def test_asyncresult_get_with_nobody_to_set_raises_loopexit(fresh_hub):
    with pytest.raises(LoopExit):
        AsyncResult().get()


def test_reprs_are_informative():
    e = Event()
    assert "clear" in repr(e)
    e.set()
    assert "set" in repr(e)
    r = AsyncResult()
    assert "unset" in repr(r)
    r.set(12345)
    assert "12345" in repr(r)


def test_link_that_relinks_itself_runs_once_per_notification():
    e = Event()
    e.set()
    calls = []

    def relink(ev):
        calls.append(ev)
        if len(calls) < 3:
            ev.rawlink(relink)

    e.rawlink(relink)
    greenweave.sleep(0)
    assert len(calls) == 1
    greenweave.sleep(0)
    greenweave.sleep(0)
    assert len(calls) == 3
