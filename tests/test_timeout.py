"""Timeout (context manager and exception), nesting, with_timeout."""

from __future__ import annotations

import re
import time

import pytest

import greenweave
from greenweave import Timeout, with_timeout
from greenweave._core.park import ParkingLot
from greenweave.exceptions import LoopExit

pytestmark = pytest.mark.timeout(10)


def test_timeout_is_a_base_exception_not_an_exception():
    assert issubclass(Timeout, BaseException)
    assert not issubclass(Timeout, Exception)
    # So a broad `except Exception` in user code cannot swallow it.
    with pytest.raises(Timeout):
        with Timeout(0.01):
            try:
                greenweave.sleep(5)
            except Exception:  # pragma: no cover - must not happen
                pytest.fail("Timeout was caught by `except Exception`")


def test_context_manager_raises_itself():
    t0 = time.monotonic()
    with pytest.raises(Timeout) as info:
        with Timeout(0.02) as t:
            greenweave.sleep(5)
    assert info.value is t
    assert 0.01 < time.monotonic() - t0 < 4
    assert not t.pending


def test_context_manager_no_fire_when_block_finishes_in_time():
    with Timeout(0.05) as t:
        assert t.pending
        greenweave.sleep(0)
    assert not t.pending
    greenweave.sleep(0.08)  # closed on exit: it must not fire later


def test_as_exception_raise_and_catch():
    with pytest.raises(Timeout) as info:
        raise Timeout(3)
    assert info.value.seconds == 3
    assert not info.value.pending


def test_exception_class_is_raised():
    with pytest.raises(ValueError) as info:
        with Timeout(0.01, ValueError):
            greenweave.sleep(5)
    assert type(info.value) is ValueError


def test_exception_instance_is_raised():
    err = ValueError("boom")
    with pytest.raises(ValueError) as info:
        with Timeout(0.01, err):
            greenweave.sleep(5)
    assert info.value is err


def test_exception_false_is_silent():
    t0 = time.monotonic()
    with Timeout(0.01, False):
        greenweave.sleep(5)
        pytest.fail("the block should have been interrupted")  # pragma: no cover
    assert time.monotonic() - t0 < 4


def test_exception_false_does_not_swallow_other_errors():
    with pytest.raises(KeyError):
        with Timeout(1, False):
            raise KeyError("not ours")


def test_timeout_none_never_fires():
    with Timeout(None) as t:
        greenweave.sleep(0.03)
        assert not t.pending
    t = Timeout(None)
    t.start()
    assert not t.pending
    t.cancel()


@pytest.mark.parametrize("seconds", [0, -1])
def test_zero_or_negative_fires_at_next_wait(seconds):
    with pytest.raises(Timeout):
        with Timeout(seconds):
            greenweave.sleep(1)


def test_nested_inner_shorter_fires_in_its_own_scope():
    with Timeout(2) as outer:
        with pytest.raises(Timeout) as info:
            with Timeout(0.01) as inner:
                greenweave.sleep(5)
        assert info.value is inner
        assert outer.pending
        greenweave.sleep(0.01)
    assert not outer.pending


def test_nested_outer_shorter_passes_through_inner_block():
    caught_inside = []
    with pytest.raises(Timeout) as info:
        with Timeout(0.02) as outer:
            try:
                with Timeout(2) as inner:
                    greenweave.sleep(5)
            except Timeout as e:
                caught_inside.append(e)
                raise
    assert info.value is outer
    assert caught_inside == [outer]
    assert not inner.pending


def test_nested_outer_passes_through_silent_inner():
    # The inner timeout is silent (exception=False) but the outer one must
    # still propagate: only a timeout's own instance is swallowed.
    with pytest.raises(Timeout) as info:
        with Timeout(0.02) as outer:
            with Timeout(2, False):
                greenweave.sleep(5)
            pytest.fail("outer timeout was swallowed by the inner block")  # pragma: no cover
    assert info.value is outer


def test_timeout_in_spawned_greenlet_hits_only_that_greenlet():
    def body():
        with Timeout(0.01):
            greenweave.sleep(5)

    g = greenweave.spawn(body)
    greenweave.sleep(0.05)  # main is not interrupted
    g.join()
    assert isinstance(g.exception, Timeout)


def test_timeout_interrupts_park_and_join():
    lot = ParkingLot()
    with pytest.raises(Timeout):
        with Timeout(0.01):
            lot.park()
    assert len(lot) == 0
    g = greenweave.spawn(greenweave.sleep, 5)
    with pytest.raises(Timeout):
        with Timeout(0.01):
            g.join()
    g.kill()


def test_start_twice_raises():
    t = Timeout(1)
    t.start()
    try:
        with pytest.raises(AssertionError, match="already started"):
            t.start()
    finally:
        t.cancel()


def test_cancel_and_restart():
    t = Timeout(0.02)
    t.start()
    assert t.pending
    t.cancel()
    assert not t.pending
    greenweave.sleep(0.05)  # cancelled: nothing happens
    t.start()
    assert t.pending
    with pytest.raises(Timeout) as info:
        greenweave.sleep(5)
    assert info.value is t
    assert not t.pending


def test_close_releases_timer():
    t = Timeout(0.02)
    t.start()
    t.close()
    assert not t.pending
    greenweave.sleep(0.05)
    t.close()  # twice is fine


def test_start_new():
    t = Timeout.start_new(0.01)
    assert isinstance(t, Timeout) and t.pending
    with pytest.raises(Timeout) as info:
        greenweave.sleep(5)
    assert info.value is t

    t2 = Timeout.start_new(0.01, ValueError)
    with pytest.raises(ValueError):
        greenweave.sleep(5)
    assert not t2.pending


def test_start_new_with_a_timeout_instance_reuses_it():
    t = Timeout(1)
    assert Timeout.start_new(t) is t
    assert t.pending
    assert Timeout.start_new(t) is t  # already pending: not started twice
    t.cancel()


def test_seconds_attribute():
    assert Timeout(0.5).seconds == 0.5
    assert Timeout().seconds is None


def test_str():
    assert str(Timeout(1)) == "1 second"
    assert str(Timeout(2)) == "2 seconds"
    assert str(Timeout(2, False)) == "2 seconds (silent)"
    assert str(Timeout(2, ValueError("x"))) == "2 seconds: x"
    assert str(Timeout()) == ""


def test_repr():
    t = Timeout(3)
    assert re.match(r"<Timeout at 0x[0-9a-f]+ seconds=3>$", repr(t)), repr(t)
    t.start()
    assert repr(t).endswith(" pending>")
    t.cancel()
    assert "exception=" in repr(Timeout(1, ValueError))

    class MyTimeout(Timeout):
        pass

    assert repr(MyTimeout(1)).startswith("<MyTimeout at ")


def test_ref_false_does_not_keep_loop_alive(fresh_hub):
    # Waiting on something nobody can wake: only the timeout's timer is
    # active.  With ref=False the loop has nothing to run -> LoopExit now.
    lot = ParkingLot()
    t0 = time.monotonic()
    with pytest.raises(LoopExit):
        with Timeout(5, ref=False):
            lot.park()
    assert time.monotonic() - t0 < 4
    # With ref=True the timer keeps the loop alive and fires.
    with pytest.raises(Timeout):
        with Timeout(0.02):
            lot.park()


def test_timeout_of_a_finished_greenlet_is_harmless(capsys):
    # The greenlet started a timeout and ended without cancelling it.
    g = greenweave.spawn(lambda: Timeout.start_new(0.01) and "done")
    assert g.get() == "done"
    greenweave.sleep(0.05)
    assert "Timeout" not in capsys.readouterr().err
    assert greenweave.spawn(lambda: 1).get() == 1


# -- with_timeout -----------------------------------------------------------


def test_with_timeout_returns_result_and_passes_arguments():
    assert with_timeout(1, lambda a, b=0: a + b, 1, b=2) == 3


def test_with_timeout_raises_timeout():
    with pytest.raises(Timeout) as info:
        with_timeout(0.01, greenweave.sleep, 5)
    assert info.value.seconds == 0.01


def test_with_timeout_timeout_value():
    assert with_timeout(0.01, greenweave.sleep, 5, timeout_value="late") == "late"
    assert with_timeout(0.01, greenweave.sleep, 5, timeout_value=None) is None


def test_with_timeout_does_not_swallow_foreign_timeouts():
    def own_timeout():
        with Timeout(0.01):
            greenweave.sleep(5)

    with pytest.raises(Timeout):
        with_timeout(2, own_timeout, timeout_value="swallowed")


def test_with_timeout_cancels_its_timer():
    assert with_timeout(0.02, lambda: "fast") == "fast"
    greenweave.sleep(0.05)  # the timer was cancelled: nothing fires


def test_with_timeout_none_never_fires():
    assert with_timeout(None, lambda: (greenweave.sleep(0.02), "ok")[1]) == "ok"
