"""greenweave.events: subscribers, entry-point plugins, and the monkey-patching events."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from greenweave import events

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def subscriber():
    seen = []
    events.subscribers.append(seen.append)
    yield seen
    events.subscribers.remove(seen.append)


def test_notify_calls_subscribers_in_order(subscriber):
    order = []
    events.subscribers.append(lambda e: order.append(("second", e)))
    try:
        event = object()
        events.notify(event)
    finally:
        events.subscribers.pop()
    assert subscriber == [event]
    assert order == [("second", event)]


def test_subscriber_errors_propagate(subscriber):
    def bad(event):
        raise events.DoNotPatch

    events.subscribers.append(bad)
    try:
        with pytest.raises(events.DoNotPatch):
            events.notify_and_call_entry_points(
                events.GeventWillPatchModuleEvent("m", None, None, []))
    finally:
        events.subscribers.remove(bad)
    assert len(subscriber) == 1


def test_do_not_patch_is_not_an_exception():
    assert issubclass(events.DoNotPatch, BaseException)
    assert not issubclass(events.DoNotPatch, Exception)


def test_event_objects():
    will = events.GeventWillPatchModuleEvent("socket", "src", "tgt", ["socket"])
    assert (will.module_name, will.source, will.target, will.target_item_names) == \
        ("socket", "src", "tgt", ["socket"])
    assert isinstance(will, events.GeventWillPatchEvent)
    assert isinstance(will, events.GeventPatchEvent)
    assert "source='src'" in repr(will)
    did = events.GeventDidPatchModuleEvent("socket", "src", "tgt")
    assert isinstance(did, events.GeventDidPatchEvent) and did.module_name == "socket"

    args = {"socket": True, "thread": False}
    all_will = events.GeventWillPatchAllEvent(args, {"extra": 1})
    assert all_will.will_patch_module("socket") and not all_will.will_patch_module("thread")
    assert not all_will.will_patch_module("nonexistent")
    assert all_will.patch_all_arguments == args and all_will.patch_all_kwargs == {"extra": 1}
    all_will.patch_all_arguments["socket"] = False  # a copy: the event is unchanged
    assert all_will.will_patch_module("socket")
    assert all_will.source is None and all_will.target is None
    for cls in (events.GeventDidPatchBuiltinModulesEvent, events.GeventDidPatchAllEvent):
        ev = cls(args, {})
        assert isinstance(ev, events.GeventDidPatchEvent) and ev.patch_all_arguments == args

    blocked = events.EventLoopBlocked("glet", 0.5, ["line"], hub="hub")
    assert (blocked.greenlet, blocked.blocking_time, blocked.info, blocked.hub) == \
        ("glet", 0.5, ["line"], "hub")
    over = events.MemoryUsageThresholdExceeded(10, 5, "info")
    assert (over.mem_usage, over.max_allowed, over.memory_info) == (10, 5, "info")
    assert "used=10" in repr(over)
    under = events.MemoryUsageUnderThreshold(4, 5, "info", 10)
    assert under.max_memory_usage == 10 and under.mem_usage == 4
    assert events.PeriodicMonitorThreadStartedEvent("m").monitor == "m"


def test_entry_point_groups_and_aliases():
    assert events.GeventWillPatchAllEvent.ENTRY_POINT_NAME == \
        "greenweave.plugins.monkey.will_patch_all"
    assert events.GeventDidPatchAllEvent.ENTRY_POINT_NAME == \
        "greenweave.plugins.monkey.did_patch_all"
    assert events.GeventDidPatchBuiltinModulesEvent.ENTRY_POINT_NAME == \
        "greenweave.plugins.monkey.did_patch_builtins"
    assert events.GeventWillPatchModuleEvent.ENTRY_POINT_NAME == \
        "greenweave.plugins.monkey.will_patch_module"
    assert events.GeventDidPatchModuleEvent.ENTRY_POINT_NAME == \
        "greenweave.plugins.monkey.did_patch_module"
    assert events.PeriodicMonitorThreadStartedEvent.ENTRY_POINT_NAME == \
        "greenweave.plugins.hub.periodic_monitor_thread_started"
    assert events.GreenweaveWillPatchAllEvent is events.GeventWillPatchAllEvent
    assert events.GreenweaveDidPatchModuleEvent is events.GeventDidPatchModuleEvent


def test_notify_and_call_entry_points_without_plugins(subscriber):
    event = events.GeventDidPatchAllEvent({}, {})
    events.notify_and_call_entry_points(event)  # nothing installed in the group
    events.notify_and_call_entry_points(object())  # no group at all
    assert subscriber[0] is event and len(subscriber) == 2


# -- events during patching (fresh interpreters) ------------------------------------


def _run(tmp_path, source: str, env_path: str | None = None) -> subprocess.CompletedProcess:
    script = tmp_path / "prog.py"
    script.write_text(textwrap.dedent(source) + "\nprint('OK')\n")
    env = None
    if env_path is not None:
        import os

        env = dict(os.environ, PYTHONPATH=env_path)
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=45, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
    return proc


def test_patch_all_event_sequence(tmp_path):
    _run(tmp_path, """
        from greenweave import events, monkey
        seen = []
        def record(ev):
            seen.append((type(ev).__name__, getattr(ev, "module_name", None)))
            if isinstance(ev, events.GeventWillPatchModuleEvent):
                assert ev.target.__name__ == ev.module_name
                assert ev.source.__name__.startswith("greenweave.")
                assert ev.target_item_names
                assert not monkey.is_module_patched(ev.module_name)
            if isinstance(ev, events.GeventDidPatchModuleEvent):
                assert monkey.is_module_patched(ev.module_name), ev.module_name
        events.subscribers.append(record)
        monkey.patch_all()
        assert seen[0] == ("GeventWillPatchAllEvent", None)
        assert seen[-2:] == [("GeventDidPatchBuiltinModulesEvent", None),
                             ("GeventDidPatchAllEvent", None)]
        modules = [m for kind, m in seen if kind == "GeventDidPatchModuleEvent"]
        for name in ("os", "_thread", "threading", "time", "socket", "select", "selectors",
                     "subprocess", "signal", "queue"):
            assert name in modules, (name, modules)
            assert ("GeventWillPatchModuleEvent", name) in seen
        assert modules.index("_thread") < modules.index("threading")
    """)


def test_do_not_patch_skips_one_module(tmp_path):
    _run(tmp_path, """
        from greenweave import events, monkey
        import socket
        original = socket.socket
        def veto(ev):
            if isinstance(ev, events.GeventWillPatchModuleEvent) and ev.module_name == "socket":
                raise events.DoNotPatch
        events.subscribers.append(veto)
        assert monkey.patch_all() is True
        assert socket.socket is original
        assert not monkey.is_module_patched("socket")
        assert monkey.is_module_patched("threading") and monkey.is_module_patched("time")
    """)


def test_do_not_patch_on_patch_all_patches_nothing(tmp_path):
    _run(tmp_path, """
        from greenweave import events, monkey
        seen = []
        def veto(ev):
            seen.append(type(ev).__name__)
            if isinstance(ev, events.GeventWillPatchAllEvent):
                assert ev.will_patch_module("socket") and not ev.will_patch_module("sys")
                raise events.DoNotPatch
        events.subscribers.append(veto)
        assert monkey.patch_all() is False
        assert not monkey.is_anything_patched()
        assert seen == ["GeventWillPatchAllEvent"]
    """)


def test_entry_point_plugins(tmp_path):
    site = tmp_path / "site"
    dist = site / "gw_test_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gw-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [greenweave.plugins.monkey.will_patch_all]
        record = gw_test_plugin:will_patch_all

        [greenweave.plugins.monkey.will_patch_module]
        veto_time = gw_test_plugin:veto_time

        [greenweave.plugins.monkey.did_patch_all]
        record = gw_test_plugin:did_patch_all
    """))
    (site / "gw_test_plugin.py").write_text(textwrap.dedent("""\
        from greenweave import events
        calls = []
        def will_patch_all(event):
            calls.append(("will", event.will_patch_module("socket")))
        def veto_time(event):
            if event.module_name == "time":
                raise events.DoNotPatch
        def did_patch_all(event):
            calls.append(("did", type(event).__name__))
    """))
    _run(tmp_path, """
        from greenweave import monkey
        import time
        original_sleep = time.sleep
        monkey.patch_all()
        import gw_test_plugin
        assert gw_test_plugin.calls == [("will", True), ("did", "GeventDidPatchAllEvent")], \\
            gw_test_plugin.calls
        assert time.sleep is original_sleep and not monkey.is_module_patched("time")
        assert monkey.is_module_patched("socket")
    """, env_path=str(site))
