"""Context variables: every greenlet runs in its own context, a copy of its
spawner's taken at spawn time."""

from __future__ import annotations

import contextvars as std_contextvars

import pytest

import greenweave
from greenweave import contextvars as gw_contextvars

pytestmark = pytest.mark.timeout(10)

var = std_contextvars.ContextVar("var", default="default")


@pytest.fixture(autouse=True)
def _reset_var():
    token = var.set("main")
    yield
    var.reset(token)


def test_module_reexports_stdlib_names():
    for name in ("ContextVar", "Context", "Token", "copy_context"):
        assert getattr(gw_contextvars, name) is getattr(std_contextvars, name)
    assert sorted(gw_contextvars.__all__) == ["Context", "ContextVar", "Token", "copy_context"]


def test_value_set_before_spawn_is_visible_inside():
    g = greenweave.spawn(var.get)
    assert g.get() == "main"


def test_value_set_inside_does_not_leak_out():
    def body():
        var.set("inside")
        greenweave.sleep(0)
        return var.get()

    assert greenweave.spawn(body).get() == "inside"
    assert var.get() == "main"


def test_copy_is_taken_at_spawn_time():
    g = greenweave.spawn(var.get)
    var.set("changed after spawn")
    assert g.get() == "main"


def test_sibling_greenlets_do_not_see_each_other():
    def body(value):
        var.set(value)
        greenweave.sleep(0.01)  # interleave with the sibling
        greenweave.sleep(0)
        return var.get()

    a = greenweave.spawn(body, "a")
    b = greenweave.spawn(body, "b")
    assert (a.get(), b.get()) == ("a", "b")
    assert var.get() == "main"


def test_nested_spawn_copies_the_spawning_greenlets_context():
    def child():
        seen = var.get()
        var.set("child")
        return seen

    def parent():
        var.set("parent")
        seen_by_child = greenweave.spawn(child).get()
        return seen_by_child, var.get()

    assert greenweave.spawn(parent).get() == ("parent", "parent")
    assert var.get() == "main"


def test_mutable_values_are_shared_not_deep_copied():
    shared = std_contextvars.ContextVar("shared")
    items: list = []
    shared.set(items)
    greenweave.spawn(lambda: shared.get().append(1)).join()
    assert items == [1]


def test_context_copy_and_run_inside_greenlet():
    def body():
        ctx = gw_contextvars.copy_context()
        ctx.run(var.set, "in ctx.run")
        return var.get(), ctx[var]

    assert greenweave.spawn(body).get() == ("main", "in ctx.run")


def test_token_reset_inside_greenlet():
    def body():
        token = var.set("temp")
        var.reset(token)
        return var.get()

    assert greenweave.spawn(body).get() == "main"


def test_spawn_raw_starts_with_fresh_context_like_gevent():
    # Raw greenlets are plain greenlet.greenlet objects: they start in an
    # empty context (as in gevent), so they see only defaults.
    got = []
    greenweave.spawn_raw(lambda: got.append(var.get()))
    greenweave.sleep(0)
    assert got == ["default"]


def test_greenlets_in_another_thread_have_their_own_contexts():
    import threading

    result = {}

    def thread_main():
        var.set("thread")
        result["value"] = greenweave.spawn(var.get).get()
        greenweave.get_hub().destroy()

    t = threading.Thread(target=thread_main)
    t.start()
    t.join(5)
    assert result == {"value": "thread"}
    assert var.get() == "main"
