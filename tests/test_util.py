"""greenweave.util: wrap_errors, run info, GreenletTree, assert_switches."""

from __future__ import annotations

import io
import threading
import time

import greenlet as greenlet_mod
import pytest
from greenlet import greenlet as RawGreenlet

import greenweave
from greenweave.local import local
from greenweave.util import (
    GreenletTree,
    _FailedToSwitch,
    assert_switches,
    format_run_info,
    print_run_info,
    wrap_errors,
)

pytestmark = pytest.mark.timeout(10)


# -- wrap_errors ---------------------------------------------------------------


def test_wrap_errors_returns_listed_exceptions():
    def divide(a, b=1):
        return a / b

    wrapped = wrap_errors(ZeroDivisionError, divide)
    assert wrapped(6, b=3) == 2
    result = wrapped(1, 0)
    assert isinstance(result, ZeroDivisionError)
    with pytest.raises(TypeError):
        wrapped("a", "b")
    multi = wrap_errors((KeyError, TypeError), divide)
    assert isinstance(multi("a", "b"), TypeError)


def test_wrap_errors_looks_like_the_function():
    def named():
        """Doc."""

    wrapped = wrap_errors(Exception, named)
    assert str(wrapped) == str(named) and repr(wrapped) == repr(named)
    assert wrapped.__name__ == "named"
    with pytest.raises(AttributeError):
        _ = wrapped.no_such_attribute


# -- format_run_info / print_run_info -----------------------------------------


@pytest.fixture
def scene():
    """A named side thread, and greenlets two levels deep with tree locals and a local."""
    data = local()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="util-side-thread", daemon=True)
    thread.start()

    def inner_sleeper():
        greenweave.sleep(10)

    def outer_worker(n):
        greenweave.getcurrent().spawn_tree_locals["tree-key"] = f"tree-{n}"
        data.marker = f"local-{n}"
        children.append(greenweave.spawn(inner_sleeper))
        greenweave.sleep(10)

    children: list = []
    workers = [greenweave.spawn(outer_worker, i) for i in range(2)]
    workers[0].name = "named-worker"
    greenweave.sleep(0.01)
    yield workers, children, thread
    greenweave.killall(workers + children)
    release.set()
    thread.join(5)


def test_format_run_info_describes_threads_and_greenlets(scene):
    workers, children, thread = scene
    lines = format_run_info()
    assert all(isinstance(line, str) for line in lines)
    text = "\n".join(lines)
    assert "util-side-thread" in text and f"{thread.ident:#x}" in text
    assert "(CURRENT)" in text and "MainThread" in text
    assert "named-worker" in text
    assert "tree-0" in text and "tree-1" in text  # spawn tree locals
    assert "local-0" in text and "local-1" in text  # greenlet locals
    assert "in outer_worker" in text and "in inner_sleeper" in text  # greenlet stacks
    assert "Spawned by" in text and "Parent" in text
    assert "in wait" in text  # the side thread's stack (threading.Event.wait)
    for g in workers + children:
        assert repr(g) in text


def test_format_run_info_without_stacks(scene):
    text = "\n".join(format_run_info(thread_stacks=False, greenlet_stacks=False))
    assert "util-side-thread" in text and "named-worker" in text
    assert "in outer_worker" not in text and "in wait" not in text


def test_format_run_info_limit_and_current_thread(scene):
    workers, children, thread = scene
    limited = "\n".join(format_run_info(limit=1))
    full = "\n".join(format_run_info())
    assert len(limited) < len(full)
    text = "\n".join(format_run_info(current_thread_ident=thread.ident))
    current_line = next(line for line in text.splitlines() if "(CURRENT)" in line)
    assert "util-side-thread" in current_line


def test_print_run_info(scene, capsys):
    out = io.StringIO()
    print_run_info(file=out)
    assert "named-worker" in out.getvalue()
    print_run_info(thread_stacks=False)
    assert "named-worker" in capsys.readouterr().err


# -- GreenletTree --------------------------------------------------------------


def test_current_tree_follows_spawning_greenlets(scene):
    workers, children, _ = scene
    tree = GreenletTree.current_tree()
    assert tree.is_current_tree and tree.root
    assert tree.greenlet is greenweave.getcurrent()
    by_glet = {child.greenlet: child for child in tree.child_trees}
    assert set(workers) <= set(by_glet)
    assert greenweave.get_hub() in by_glet
    for worker, child in zip(workers, children, strict=True):
        assert [t.greenlet for t in by_glet[worker].child_trees] == [child]
    # Attributes not defined on the tree come from the greenlet.
    assert by_glet[workers[0]].name == "named-worker"


def test_tree_str_and_format(scene):
    workers, children, _ = scene
    tree = GreenletTree.current_tree()
    short = str(tree)
    assert short == tree.format(details=False)
    assert " +--- " in short and "Running:" not in short
    assert repr(children[0]) in short
    detailed = tree.format()
    assert "Running:" in detailed and "Spawn Tree Locals" in detailed
    assert tree.format_lines(details={"running_stacks": False})
    assert "Running:" not in "\n".join(tree.format_lines(details={"running_stacks": False}))


def test_forest_has_a_tree_per_thread():
    started = threading.Event()
    release = threading.Event()
    found = []

    def thread_main():
        g = greenweave.spawn(greenweave.sleep, 10)
        greenweave.sleep(0)
        found.append(g)
        started.set()
        release.wait(5)
        g.kill()

    t = threading.Thread(target=thread_main, daemon=True)
    t.start()
    assert started.wait(5)
    try:
        forest = GreenletTree.forest()
        assert forest[0].is_current_tree
        assert sum(1 for tree in forest if tree.is_current_tree) == 1
        other = [tree for tree in forest if not tree.is_current_tree]
        descendants = set()

        def walk(tree):
            for child in tree.child_trees:
                descendants.add(child.greenlet)
                walk(child)

        for tree in other:
            walk(tree)
        assert found[0] in descendants
        text = "\n".join(format_run_info())
        assert f"(thread {t.ident:#x})" in text  # the other thread's root is labelled
        assert repr(found[0]) in text
    finally:
        release.set()
        t.join(5)


def test_raw_greenlets_hang_under_their_parent():
    def body():
        greenlet_mod.getcurrent().parent.switch()

    raw = RawGreenlet(body)
    raw.switch()
    tree = GreenletTree.current_tree()
    assert raw in [child.greenlet for child in tree.child_trees]
    raw.throw(greenlet_mod.GreenletExit)


def test_finished_greenlets_show_how_they_ended():
    ok = greenweave.spawn(lambda: "result-value")
    bad = greenweave.spawn(lambda: 1 / 0)
    unstarted = greenweave.Greenlet(lambda: None)
    greenweave.joinall([ok, bad])
    text = GreenletTree.current_tree().format(details=False)
    assert "finished with value 'result-value'" in text
    assert "finished with exception ZeroDivisionError" in text
    assert "not started" in text
    del unstarted


def test_greenlet_whose_spawner_is_gone_hangs_under_the_root():
    holder = []

    def spawner():
        holder.append(greenweave.spawn(greenweave.sleep, 10))

    greenweave.spawn(spawner).join()
    orphan = holder[0]
    greenweave.sleep(0)
    tree = GreenletTree.current_tree()
    assert orphan in [child.greenlet for child in tree.child_trees]
    orphan.kill()


# -- assert_switches -------------------------------------------------------------


def test_assert_switches_fails_when_nothing_switched():
    with pytest.raises(_FailedToSwitch, match="did not switch") as info:
        with assert_switches():
            pass
    assert isinstance(info.value, AssertionError)


def test_assert_switches_passes_when_yielding():
    with assert_switches():
        greenweave.sleep(0)
    with assert_switches(hub_only=True):
        greenweave.sleep(0)


def test_hub_only_ignores_switches_between_other_greenlets():
    def body():
        greenlet_mod.getcurrent().parent.switch()

    raw = RawGreenlet(body)
    with pytest.raises(_FailedToSwitch, match="the hub"):
        with assert_switches(hub_only=True):
            raw.switch()
    with assert_switches():  # any switch counts
        raw.switch()


def test_max_blocking_time_allows_fast_blocks_without_switching():
    with assert_switches(max_blocking_time=1.0):
        pass
    with pytest.raises(_FailedToSwitch, match="the hub"):  # but hub_only wants the hub
        with assert_switches(max_blocking_time=1.0, hub_only=True):
            pass


def test_nested_assert_switches_chain_tracers():
    with assert_switches() as outer:
        assert greenlet_mod.gettrace() is outer.tracer
        assert outer.tracer.active_greenlet is greenweave.getcurrent()
        with assert_switches() as inner:
            assert greenlet_mod.gettrace() is inner.tracer
            assert inner.tracer.previous_trace_function is outer.tracer
            greenweave.sleep(0)
            assert outer.tracer.switched and inner.tracer.switched
        assert greenlet_mod.gettrace() is outer.tracer


def test_max_blocking_time_fails_a_long_stretch():
    with pytest.raises(_FailedToSwitch, match="max allowed") as info:
        with assert_switches(max_blocking_time=0.05):
            greenweave.sleep(0)
            time.sleep(0.1)
            greenweave.sleep(0)
    assert "0.05" in str(info.value)
    with pytest.raises(_FailedToSwitch):
        with assert_switches(max_blocking_time=0.05):
            time.sleep(0.1)


def test_max_blocking_time_does_not_count_waiting_in_the_hub():
    with assert_switches(max_blocking_time=0.05):
        greenweave.sleep(0.15)
    with assert_switches(max_blocking_time=0.05, hub_only=True):
        greenweave.sleep(0.15)


def test_hub_only_measures_time_away_from_the_hub():
    def body():
        time.sleep(0.1)

    with pytest.raises(_FailedToSwitch, match="the hub"):
        with assert_switches(max_blocking_time=0.05, hub_only=True):
            RawGreenlet(body).switch()
            greenweave.sleep(0)


def test_exception_in_block_is_not_masked():
    with pytest.raises(KeyError):
        with assert_switches():
            raise KeyError("inner")


def test_previous_tracer_is_chained_and_restored():
    events = []

    def tracer(event, args):
        events.append(event)

    old = greenlet_mod.settrace(tracer)
    try:
        with assert_switches():
            greenweave.sleep(0)
        assert greenlet_mod.gettrace() is tracer
        assert "switch" in events
    finally:
        greenlet_mod.settrace(old)
    with assert_switches():
        greenweave.sleep(0)
    assert greenlet_mod.gettrace() is old


def test_dump_does_not_touch_greenlet_locals():
    inits = []

    class Counted(local):
        def __init__(self):
            inits.append(greenweave.getcurrent())

    def owner():
        keep = Counted()
        printer = greenweave.spawn(format_run_info)
        printer.join()
        return keep

    greenweave.spawn(owner).join()
    assert len(inits) == 1  # only the owner ran __init__, not the printer
