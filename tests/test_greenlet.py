"""Greenlet life cycle, results, links, kill, joinall/killall, sleep/idle."""

from __future__ import annotations

import re
import sys
import time
import traceback
import weakref

import pytest
from greenlet import greenlet as RawGreenlet

import greenweave
from greenweave import Greenlet, GreenletExit, Timeout
from greenweave.exceptions import BlockingSwitchOutError

pytestmark = pytest.mark.timeout(10)


def _sleeper(seconds: float = 10.0) -> None:
    greenweave.sleep(seconds)


def _stubborn() -> None:
    """Ignores GreenletExit: only a non-GreenletExit exception ends it."""
    while True:
        try:
            greenweave.sleep(10)
        except GreenletExit:
            pass


def _boom(msg: str = "boom") -> None:
    raise ValueError(msg)


# -- spawning and starting ----------------------------------------------


def test_spawn_runs_with_args_and_returns_value():
    def add(a, b=0):
        return a + b

    g = greenweave.spawn(add, 1, b=2)
    assert isinstance(g, Greenlet)
    assert g.get() == 3
    assert g.value == 3


def test_spawn_does_not_run_until_the_spawner_yields():
    ran = []
    g = greenweave.spawn(ran.append, 1)
    assert ran == []
    assert g.started and not g.dead
    greenweave.sleep(0)
    assert ran == [1]
    assert g.dead


def test_greenlet_start_and_start_is_idempotent():
    ran = []
    g = Greenlet(ran.append, "x")
    assert not g.started
    g.start()
    g.start()  # a second start schedules nothing more
    g.join()
    greenweave.sleep(0)
    assert ran == ["x"]


def test_start_later_and_spawn_later_wait_before_running():
    ran = []
    g1 = Greenlet(ran.append, "later")
    g1.start_later(0.05)
    g2 = greenweave.spawn_later(0.05, ran.append, "spawn_later")
    assert g1.started and g2.started
    greenweave.sleep(0.01)
    assert ran == []
    greenweave.joinall([g1, g2])
    assert sorted(ran) == ["later", "spawn_later"]


def test_spawn_later_killed_before_it_fires_never_runs():
    ran = []
    g = greenweave.spawn_later(0.02, ran.append, 1)
    g.kill()
    greenweave.sleep(0.06)
    assert ran == []
    assert g.dead and g.ready() and g.successful()


def test_spawn_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        greenweave.spawn(5)
    with pytest.raises(TypeError, match="callable"):
        Greenlet(5)


def test_spawn_raw_runs_function_with_args_and_kwargs():
    got = []
    g = greenweave.spawn_raw(lambda a, b=0: got.append((a, b)), 1, b=2)
    assert isinstance(g, RawGreenlet)
    greenweave.sleep(0)
    assert got == [(1, 2)]
    assert g.dead


def test_spawn_raw_rejects_non_callable():
    with pytest.raises(TypeError, match="callable"):
        greenweave.spawn_raw(5)


def test_spawn_raw_error_is_reported_by_hub(capsys):
    g = greenweave.spawn_raw(_boom, "raw-failure")
    greenweave.sleep(0)
    assert g.dead
    err = capsys.readouterr().err
    assert "ValueError: raw-failure" in err


class _Doubler(Greenlet):
    def __init__(self, x):
        Greenlet.__init__(self)
        self.x = x

    def _run(self):
        return self.x * 2


class _WrappingRun(Greenlet):
    """Overrides ``run`` and delegates to the base: the result is recorded."""

    events: list

    def run(self):
        self.events = ["before"]
        try:
            Greenlet.run(self)
        finally:
            self.events.append("after")


class _ReplacingRun(Greenlet):
    """Overrides ``run`` entirely: it runs; once dead it counts as ready."""

    ran = False

    def run(self):
        type(self).ran = True
        return "ignored"


def test_subclass_overriding__run():
    g = _Doubler(21)
    g.start()
    assert g.get() == 42
    assert "_run" in repr(g)
    assert repr(g).startswith("<_Doubler")


def test_subclass_without_run_is_rejected():
    class NoRun(Greenlet):
        _run = None

    with pytest.raises(TypeError, match="callable"):
        NoRun()


def test_subclass_overriding_run_and_delegating():
    g = _WrappingRun(lambda: "value")
    g.start()
    assert g.get() == "value"
    assert g.events == ["before", "after"]


def test_subclass_replacing_run_entirely():
    g = _ReplacingRun()
    g.start()
    greenweave.sleep(0)
    # Nothing recorded a result, but the greenlet is dead, so waiting on it
    # returns at once instead of hanging.
    g.join()
    assert _ReplacingRun.ran
    assert g.dead and g.ready()


# -- join / get ------------------------------------------------------------


def test_join_timeout_returns_while_still_running():
    g = greenweave.spawn(_sleeper, 10)
    t0 = time.monotonic()
    assert g.join(timeout=0.05) is None
    assert time.monotonic() - t0 < 5
    assert not g.ready() and not g.dead
    g.kill()
    assert g.dead


def test_join_on_unstarted_greenlet_times_out():
    g = Greenlet(lambda: 1)
    g.join(0.01)
    assert not g.ready()


def test_join_self_raises_instead_of_hanging():
    def joins_self():
        greenweave.getcurrent().join()

    g = greenweave.spawn(joins_self)
    g.join()
    assert isinstance(g.exception, BlockingSwitchOutError)


def test_many_joiners_all_wake():
    target = greenweave.spawn(greenweave.sleep, 0.02)
    joiners = [greenweave.spawn(target.join) for _ in range(5)]
    greenweave.joinall(joiners, timeout=5)
    assert all(j.successful() for j in joiners)
    assert target.dead


def test_get_blocks_for_result():
    g = greenweave.spawn(lambda: (greenweave.sleep(0.01), "done")[1])
    assert g.get() == "done"


def test_get_nonblocking_on_unfinished_raises_timeout():
    g = greenweave.spawn(_sleeper)
    with pytest.raises(Timeout):
        g.get(block=False)
    g.kill()


def test_get_with_timeout_raises_timeout():
    g = greenweave.spawn(_sleeper)
    with pytest.raises(Timeout) as info:
        g.get(timeout=0.02)
    assert info.value.seconds == 0.02
    g.kill()


def test_get_nonblocking_on_finished_returns_value():
    g = greenweave.spawn(lambda: 5)
    g.join()
    assert g.get(block=False) == 5


def test_get_reraises_with_original_traceback(capsys):
    def inner_failure():
        raise KeyError("deep")

    def outer():
        inner_failure()

    g = greenweave.spawn(outer)
    with pytest.raises(KeyError) as info:
        g.get()
    assert info.value is g.exception
    names = [fs.name for fs in traceback.extract_tb(info.value.__traceback__)]
    assert "inner_failure" in names and "outer" in names
    # And again: the stored exception is re-raised each time.
    with pytest.raises(KeyError):
        g.get()
    capsys.readouterr()


# -- kill --------------------------------------------------------------


def test_kill_during_sleep_default_greenlet_exit():
    seen = []

    def body():
        try:
            greenweave.sleep(10)
        except GreenletExit:
            seen.append("exit")
            raise

    g = greenweave.spawn(body)
    greenweave.sleep(0)
    t0 = time.monotonic()
    g.kill()
    assert time.monotonic() - t0 < 5
    assert seen == ["exit"]
    assert g.dead and g.ready() and g.successful()
    assert isinstance(g.value, GreenletExit)
    assert g.exception is None
    assert g.exc_info is None


def test_kill_while_yielding_with_sleep_zero():
    spins = []

    def spinner():
        while True:
            spins.append(1)
            greenweave.sleep(0)

    g = greenweave.spawn(spinner)
    greenweave.sleep(0)
    greenweave.sleep(0)
    g.kill()
    assert g.dead and isinstance(g.value, GreenletExit)
    n = len(spins)
    greenweave.sleep(0)
    greenweave.sleep(0.01)
    assert len(spins) == n  # its queued wake-up was cancelled: it never resumes


def test_kill_from_another_greenlet_while_parked():
    from greenweave._core.park import ParkingLot

    lot = ParkingLot()
    target = greenweave.spawn(lot.park)
    killer = greenweave.spawn(target.kill)
    killer.join()
    assert target.dead and target.successful()
    assert len(lot) == 0


def test_kill_with_custom_exception_class_and_instance(capsys):
    g = greenweave.spawn(_sleeper)
    greenweave.sleep(0)
    g.kill(KeyError)
    assert g.dead and not g.successful()
    assert type(g.exception) is KeyError

    g = greenweave.spawn(_sleeper)
    greenweave.sleep(0)
    err = KeyError("mine")
    g.kill(err)
    assert g.exception is err
    with pytest.raises(KeyError):
        g.get()
    assert "KeyError" in capsys.readouterr().err


def test_kill_with_greenlet_exit_subclass_is_success():
    class MyExit(GreenletExit):
        pass

    g = greenweave.spawn(_sleeper)
    greenweave.sleep(0)
    g.kill(MyExit)
    assert g.successful()
    assert isinstance(g.value, MyExit)


def test_kill_before_start_never_runs():
    ran = []
    g = greenweave.spawn(ran.append, 1)
    g.kill()
    greenweave.sleep(0.01)
    assert ran == []
    assert g.dead and g.ready() and g.successful()
    assert isinstance(g.value, GreenletExit)
    assert not g.started


def test_kill_before_start_with_exception(capsys):
    ran = []
    g = greenweave.spawn(ran.append, 1)
    g.kill(ValueError("early"))
    greenweave.sleep(0.01)
    assert ran == []
    assert g.dead and not g.successful()
    with pytest.raises(ValueError, match="early"):
        g.get()
    capsys.readouterr()


def test_kill_unstarted_greenlet_never_runs_even_if_started_later():
    ran = []
    g = Greenlet(ran.append, 1)
    g.kill()
    g.start()
    greenweave.sleep(0.01)
    assert ran == []
    assert g.dead


def test_kill_nonblocking_returns_before_death():
    g = greenweave.spawn(_sleeper)
    greenweave.sleep(0)
    g.kill(block=False)
    assert not g.dead
    g.join(timeout=5)
    assert g.dead


def test_kill_block_timeout_on_stubborn_greenlet():
    g = greenweave.spawn(_stubborn)
    greenweave.sleep(0)
    t0 = time.monotonic()
    assert g.kill(timeout=0.05) is None
    assert time.monotonic() - t0 < 5
    assert not g.dead
    g.kill(RuntimeError, block=True)  # not caught by the loop: it dies
    assert g.dead
    assert isinstance(g.exception, RuntimeError)


def test_kill_dead_greenlet_is_noop():
    g = greenweave.spawn(lambda: 1)
    g.join()
    g.kill()
    assert g.value == 1 and g.successful()


def test_kill_self():
    def body():
        greenweave.getcurrent().kill(ValueError("me"))
        return "continued"

    g = greenweave.spawn(body)
    g.join()
    assert repr(g.exception) == "ValueError('me')"
    assert g.value is None


def test_module_kill_greenlet_and_raw_greenlet():
    g = greenweave.spawn(_sleeper)
    raw = greenweave.spawn_raw(_sleeper)
    greenweave.sleep(0)
    greenweave.kill(g)
    greenweave.kill(raw)
    assert not g.dead  # kill() does not wait
    greenweave.sleep(0)
    g.join(timeout=5)
    assert g.dead and raw.dead


# -- links ---------------------------------------------------------------


def test_link_runs_callback_with_the_greenlet():
    got = []
    g = greenweave.spawn(lambda: 42)
    g.link(lambda src: got.append((src, src.value, greenweave.getcurrent())))
    g.join()
    greenweave.sleep(0.01)
    assert len(got) == 1
    src, value, runner = got[0]
    assert (src, value) == (g, 42)
    # link() callbacks run in their own greenlet, not in the hub.
    assert runner is not greenweave.get_hub() and runner is not g


def test_rawlink_runs_in_hub_in_order():
    order = []
    g = greenweave.spawn(lambda: 1)
    g.rawlink(lambda src: order.append(("a", greenweave.getcurrent() is greenweave.get_hub())))
    g.rawlink(lambda src: order.append(("b", src is g)))
    g.join()
    greenweave.sleep(0)
    assert order == [("a", True), ("b", True)]


def test_link_value_and_link_exception(capsys):
    values, errors = [], []
    ok = greenweave.spawn(lambda: 1)
    bad = greenweave.spawn(_boom)
    for g in (ok, bad):
        g.link_value(values.append)
        g.link_exception(errors.append)
    greenweave.joinall([ok, bad])
    greenweave.sleep(0.01)
    assert values == [ok]
    assert errors == [bad]
    capsys.readouterr()


def test_unlink_removes_link_and_rawlink():
    got = []
    cb = got.append
    g = greenweave.spawn(lambda: 1)
    g.link(cb)
    g.rawlink(cb)
    assert g.has_links
    g.unlink(cb)
    g.unlink(cb)
    g.unlink(lambda s: None)  # unknown callback: ignored
    g.join()
    greenweave.sleep(0.01)
    assert got == []


def test_link_after_finish_still_fires():
    got = []
    g = greenweave.spawn(lambda: 1)
    g.join()
    g.link(got.append)
    g.rawlink(got.append)
    greenweave.sleep(0.01)
    assert got == [g, g]


def test_link_rejects_non_callable():
    g = greenweave.spawn(lambda: 1)
    with pytest.raises(TypeError):
        g.link(5)
    with pytest.raises(TypeError):
        g.rawlink(5)
    g.join()


def test_failing_link_callback_is_reported_and_others_still_run(capsys):
    got = []

    def bad_link(src):
        raise RuntimeError("bad link")

    g = greenweave.spawn(lambda: 7)
    g.rawlink(bad_link)
    g.rawlink(lambda src: got.append(("raw", src.value)))
    g.link(bad_link)
    g.link(lambda src: got.append(("link", src.value)))
    g.join()
    greenweave.sleep(0.01)
    assert sorted(got) == [("link", 7), ("raw", 7)]
    err = capsys.readouterr().err
    assert err.count("RuntimeError: bad link") == 2
    # The hub is still fine.
    assert greenweave.spawn(lambda: "alive").get() == "alive"


# -- state and introspection ------------------------------------------------


def test_state_through_life_cycle():
    g = Greenlet(greenweave.sleep, 0.02)
    assert (g.started, g.dead, g.ready(), g.successful(), bool(g)) == (
        False, False, False, False, False)
    g.start()
    assert (g.started, g.dead, g.ready(), bool(g)) == (True, False, False, True)
    greenweave.sleep(0)
    assert (g.started, g.dead, g.ready()) == (True, False, False)
    g.join()
    assert (g.started, g.dead, g.ready(), g.successful(), bool(g)) == (
        False, True, True, True, False)


def test_exception_and_exc_info(capsys):
    ok = greenweave.spawn(lambda: 1)
    bad = greenweave.spawn(_boom, "info")
    greenweave.joinall([ok, bad])
    assert ok.exception is None and ok.exc_info is None
    typ, value, tb = bad.exc_info
    assert typ is ValueError and str(value) == "info" and tb is not None
    assert bad.exception is value
    assert bad.value is None
    assert not bad.successful() and bad.ready()
    capsys.readouterr()


def test_args_kwargs_available_until_finished():
    g = greenweave.spawn(lambda a, b=None: a, 1, b=2)
    assert g.args == (1,)
    assert g.kwargs == {"b": 2}
    g.join()
    assert g.args == () and g.kwargs == {}


def test_name_and_minimal_ident():
    a = greenweave.spawn(lambda: 1)
    b = greenweave.spawn(lambda: 1)
    assert isinstance(a.minimal_ident, int) and a.minimal_ident >= 0
    assert a.minimal_ident != b.minimal_ident
    assert a.minimal_ident == a.minimal_ident
    assert a.name == f"Greenlet-{a.minimal_ident}"
    b.name = "worker"
    assert b.name == "worker"
    assert '"worker"' in repr(b)
    greenweave.joinall([a, b])


def test_repr_shows_class_function_and_args():
    def my_func(a, b=None):
        return a

    g = greenweave.spawn(my_func, 1, b="x")
    r = repr(g)
    assert re.match(r"<Greenlet at 0x[0-9a-f]+: .*my_func\(1, b='x'\)>$", r), r
    g.join()
    assert repr(g).startswith("<Greenlet at 0x")


def test_repr_survives_broken_arg_repr():
    class Ugly:
        def __repr__(self):
            raise RuntimeError("no repr")

    g = greenweave.spawn(lambda x: None, Ugly())
    assert repr(g).startswith("<Greenlet")
    g.join()


def test_spawning_greenlet_is_a_weak_reference():
    main = greenweave.getcurrent()
    g = greenweave.spawn(lambda: greenweave.getcurrent().spawning_greenlet())
    assert isinstance(g.spawning_greenlet, weakref.ref)
    assert g.spawning_greenlet() is main
    assert g.get() is main

    def parent():
        child = greenweave.spawn(lambda: None)
        return child.spawning_greenlet() is greenweave.getcurrent()

    assert greenweave.spawn(parent).get() is True


def test_spawn_tree_locals_shared_with_descendants_only():
    def child():
        return greenweave.getcurrent().spawn_tree_locals

    def parent():
        me = greenweave.getcurrent()
        me.spawn_tree_locals["key"] = "value"
        return me.spawn_tree_locals, greenweave.spawn(child).get()

    p = greenweave.spawn(parent)
    mine, childs = p.get()
    assert childs is mine
    assert mine == {"key": "value"}
    other = greenweave.spawn(lambda: None)
    assert other.spawn_tree_locals is not mine
    assert other.spawn_tree_locals == {}
    other.spawn_tree_locals = {"new": 1}
    assert other.spawn_tree_locals == {"new": 1}
    other.join()


def test_getcurrent():
    from greenlet import getcurrent

    assert greenweave.getcurrent() is getcurrent()
    g = greenweave.spawn(greenweave.getcurrent)
    assert g.get() is g


# -- joinall / killall ----------------------------------------------------


def test_joinall_waits_for_all():
    gs = [greenweave.spawn(greenweave.sleep, 0.01 * i) for i in range(5)]
    done = greenweave.joinall(gs)
    assert done == gs
    assert all(g.dead for g in gs)


def test_joinall_timeout_returns_those_done():
    fast = greenweave.spawn(lambda: 1)
    slow = greenweave.spawn(_sleeper)
    t0 = time.monotonic()
    done = greenweave.joinall([fast, slow], timeout=0.05)
    assert time.monotonic() - t0 < 5
    assert done == [fast]
    slow.kill()


def test_joinall_count():
    slow = greenweave.spawn(_sleeper)
    fast = greenweave.spawn(greenweave.sleep, 0.01)
    done = greenweave.joinall([slow, fast], count=1)
    assert done == [fast]
    slow.kill()


def test_joinall_raise_error(capsys):
    slow = greenweave.spawn(_sleeper)
    bad = greenweave.spawn(_boom, "joinall")
    with pytest.raises(ValueError, match="joinall") as info:
        greenweave.joinall([slow, bad], raise_error=True)
    assert "_boom" in [fs.name for fs in traceback.extract_tb(info.value.__traceback__)]
    assert not slow.dead
    slow.kill()
    capsys.readouterr()


def test_joinall_raise_error_all_successful():
    gs = [greenweave.spawn(lambda i=i: i) for i in range(3)]
    done = greenweave.joinall(gs, raise_error=True)
    assert sorted(g.value for g in done) == [0, 1, 2]


def test_joinall_empty_and_already_dead():
    assert greenweave.joinall([]) == []
    g = greenweave.spawn(lambda: 1)
    g.join()
    assert greenweave.joinall([g], timeout=0.01) == [g]


def test_killall_kills_every_greenlet():
    gs = [greenweave.spawn(_sleeper) for _ in range(3)]
    greenweave.sleep(0)
    greenweave.killall(gs)
    assert all(g.dead and isinstance(g.value, GreenletExit) for g in gs)


def test_killall_unstarted_never_run():
    ran = []
    gs = [greenweave.spawn(ran.append, i) for i in range(3)]
    greenweave.killall(gs, block=False)
    assert all(g.dead for g in gs)
    greenweave.sleep(0.01)
    assert ran == []


def test_killall_custom_exception_nonblocking(capsys):
    gs = [greenweave.spawn(_sleeper) for _ in range(3)]
    greenweave.sleep(0)
    greenweave.killall(gs, exception=KeyError, block=False)
    assert not any(g.dead for g in gs)
    greenweave.joinall(gs, timeout=5)
    assert all(isinstance(g.exception, KeyError) for g in gs)
    capsys.readouterr()


def test_killall_timeout_raises_timeout():
    g = greenweave.spawn(_stubborn)
    greenweave.sleep(0)
    with pytest.raises(Timeout):
        greenweave.killall([g], timeout=0.05)
    assert not g.dead
    g.kill(RuntimeError)
    assert g.dead


def test_killall_raw_greenlets_and_empty():
    greenweave.killall([])
    raw = greenweave.spawn_raw(_sleeper)
    greenweave.sleep(0)
    greenweave.killall([raw])
    assert raw.dead


# -- sleep / idle ------------------------------------------------------------


def test_sleep_zero_runs_every_ready_greenlet_exactly_once():
    log = []

    def worker(name):
        for i in range(3):
            log.append((name, i))
            greenweave.sleep(0)

    gs = [greenweave.spawn(worker, n) for n in "abc"]
    for round_ in range(4):
        log.append(("main", round_))
        greenweave.sleep(0)
    assert log == [
        ("main", 0),
        ("a", 0), ("b", 0), ("c", 0),
        ("main", 1),
        ("a", 1), ("b", 1), ("c", 1),
        ("main", 2),
        ("a", 2), ("b", 2), ("c", 2),
        ("main", 3),
    ]
    greenweave.joinall(gs)


def test_sleep_negative_counts_as_zero():
    ran = []
    greenweave.spawn(ran.append, 1)
    t0 = time.monotonic()
    greenweave.sleep(-5)
    assert ran == [1]
    assert time.monotonic() - t0 < 1


def test_sleep_is_concurrent():
    t0 = time.monotonic()
    gs = [greenweave.spawn(greenweave.sleep, 0.2) for _ in range(100)]
    greenweave.joinall(gs)
    assert time.monotonic() - t0 < 2


def test_sleep_waits_at_least_roughly_the_time():
    t0 = time.monotonic()
    greenweave.sleep(0.05)
    assert time.monotonic() - t0 >= 0.04


def test_sleep_in_loop_callback_raises_blocking_switch_out():
    got = []

    def cb():
        try:
            greenweave.sleep(0)
        except BlockingSwitchOutError as e:
            got.append(str(e))

    greenweave.get_hub().loop.run_callback(cb)
    greenweave.sleep(0.01)
    assert len(got) == 1 and "event loop callback" in got[0]


def test_idle_waits_until_ready_greenlets_are_done():
    log = []

    def worker(n):
        for _ in range(5):
            log.append(n)
            greenweave.sleep(0)

    gs = [greenweave.spawn(worker, i) for i in range(3)]
    greenweave.idle()
    assert len(log) == 15
    assert all(g.dead for g in gs)


def test_idle_returns_while_timers_are_pending():
    g = greenweave.spawn(_sleeper, 10)
    t0 = time.monotonic()
    greenweave.idle()
    assert time.monotonic() - t0 < 5
    assert not g.dead
    g.kill()


# -- errors in greenlets --------------------------------------------------


def test_error_in_greenlet_is_printed_with_repr_and_timestamp(capsys):
    g = greenweave.spawn(_boom, "printed")
    g.join()
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ValueError: printed" in err
    line = re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (.*) failed with ValueError$",
                     err, re.M)
    assert line is not None, err
    assert "_boom" in line.group(1) and line.group(1).startswith("<Greenlet")
    assert greenweave.spawn(lambda: "still works").get() == "still works"


@pytest.mark.parametrize("exc", [SystemExit(3), KeyboardInterrupt()])
def test_system_errors_in_greenlet_reach_main_greenlet(exc, capsys):
    def raiser():
        raise exc

    g = greenweave.spawn(raiser)
    with pytest.raises(type(exc)) as info:
        greenweave.sleep(0.05)
    assert info.value is exc
    assert g.dead and not g.successful() and g.exception is exc
    # The hub carries on afterwards.
    assert greenweave.spawn(lambda: 1).get() == 1
    err = capsys.readouterr().err
    if isinstance(exc, SystemExit):
        assert "SystemExit" not in err  # NOT_ERROR: not reported as a failure
    else:
        assert "KeyboardInterrupt" in err


def test_system_error_reaches_joining_main_greenlet():
    g = greenweave.spawn(sys.exit, 5)
    with pytest.raises(SystemExit) as info:
        g.join()
    assert info.value.code == 5
