"""Greenlet-local storage."""

from __future__ import annotations

import copy
import gc
import pickle
import threading
import weakref

import pytest
from greenlet import greenlet as RawGreenlet

import greenweave
from greenweave import local as local_module
from greenweave.local import local

pytestmark = pytest.mark.timeout(10)


class Value:
    """Something a weak reference can watch."""


def test_attributes_are_per_greenlet():
    data = local()
    data.x = "main"
    seen = []

    def child(name):
        seen.append(getattr(data, "x", None))
        data.x = name
        greenweave.sleep(0.01)
        seen.append(data.x)

    greenweave.joinall([greenweave.spawn(child, "a"), greenweave.spawn(child, "b")])
    assert seen.count(None) == 2 and sorted(v for v in seen if v) == ["a", "b"]
    assert data.x == "main"


def test_main_hub_and_raw_greenlets_each_have_their_own():
    data = local()
    data.x = 1
    raw_seen = []

    def raw():
        raw_seen.append(hasattr(data, "x"))
        data.x = 2
        raw_seen.append(data.x)

    RawGreenlet(raw).switch()
    hub_seen = []
    greenweave.get_hub().loop.run_callback(lambda: hub_seen.append(getattr(data, "x", None)))
    greenweave.sleep(0)
    assert raw_seen == [False, 2]
    assert hub_seen == [None]
    assert data.x == 1


def test_native_threads_are_isolated():
    data = local()
    data.x = "main"
    seen = []

    def thread_main():
        seen.append(getattr(data, "x", None))
        data.x = "thread"
        g = greenweave.spawn(lambda: getattr(data, "x", None))
        seen.append(g.get())
        seen.append(data.x)

    t = threading.Thread(target=thread_main)
    t.start()
    t.join(5)
    assert seen == [None, None, "thread"]
    assert data.x == "main"


def test_dict_is_per_greenlet_and_read_only():
    data = local()
    data.a = 1
    assert data.__dict__ == {"a": 1}
    assert greenweave.spawn(lambda: data.__dict__).get() == {}
    with pytest.raises(AttributeError, match="read-only"):
        data.__dict__ = {}
    with pytest.raises(AttributeError, match="read-only"):
        del data.__dict__


def test_missing_attributes():
    data = local()
    with pytest.raises(AttributeError, match="'nope'") as info:
        _ = data.nope
    assert info.value.name == "nope"
    assert not hasattr(data, "nope")
    with pytest.raises(AttributeError):
        del data.nope
    data.yes = 1
    del data.yes
    assert not hasattr(data, "yes")


def test_arguments_need_an_init():
    with pytest.raises(TypeError, match="Initialization arguments are not supported"):
        local(1)
    with pytest.raises(TypeError):
        local(x=1)


def test_subclass_init_reruns_in_each_greenlet_with_the_same_arguments():
    calls = []

    class Counter(local):
        def __init__(self, start, step=1):
            calls.append((greenweave.getcurrent(), start, step))
            self.value = start
            self.step = step

        def bump(self):
            self.value += self.step
            return self.value

    counter = Counter(10, step=5)
    assert counter.bump() == 15
    g = greenweave.spawn(counter.bump)
    assert g.get() == 15  # fresh init in the greenlet
    assert counter.value == 15
    assert [c[1:] for c in calls] == [(10, 5), (10, 5)]
    assert calls[1][0] is g
    greenweave.spawn(lambda: None).join()
    assert len(calls) == 2  # a greenlet that never touches it does not init


def test_init_failure_is_retried_on_next_access():
    attempts = []

    class Flaky(local):
        def __init__(self):
            attempts.append(1)
            if len(attempts) == 2:
                raise RuntimeError("init failed")
            self.ok = True

    flaky = Flaky()

    def child():
        with pytest.raises(RuntimeError):
            _ = flaky.ok
        return flaky.ok

    assert greenweave.spawn(child).get() is True
    assert len(attempts) == 3


def test_slots_are_shared_between_greenlets():
    class Slotted(local):
        __slots__ = ("shared",)

        def __init__(self):
            self.private = greenweave.getcurrent()

    s = Slotted()
    s.shared = "from main"

    def child():
        seen = (s.shared, s.private is greenweave.getcurrent())
        s.shared = "from child"
        return seen

    assert greenweave.spawn(child).get() == ("from main", True)
    assert s.shared == "from child"
    assert s.private is greenweave.getcurrent()
    assert "shared" not in s.__dict__


def test_descriptors_class_attributes_and_getattr():
    class Rich(local):
        default = "class"

        @property
        def prop(self):
            return ("prop", self.default)

        @property
        def writable(self):
            return self.__dict__.get("_w")

        @writable.setter
        def writable(self, value):
            self.__dict__["_w"] = value * 2

        def __getattr__(self, name):
            return f"missing:{name}"

    r = Rich()
    assert r.default == "class"
    assert r.prop == ("prop", "class")
    assert r.anything == "missing:anything"
    r.default = "instance"
    assert r.default == "instance" and Rich.default == "class"
    assert greenweave.spawn(lambda: r.default).get() == "class"
    with pytest.raises(AttributeError, match="setter"):
        r.prop = 1
    r.writable = 2
    assert r.writable == 4
    assert greenweave.spawn(lambda: r.writable).get() is None
    Rich.added_later = "late"
    assert r.added_later == "late"


def test_values_released_when_greenlet_dies():
    data = local()
    refs = []

    def child():
        v = Value()
        data.v = v
        refs.append(weakref.ref(v))

    g = greenweave.spawn(child)
    g.join()
    greenweave.sleep(0)  # the release runs as a link, just after the death
    assert refs[0]() is None
    assert g.dead  # the greenlet object itself is still referenced here
    assert id(g) not in local_module._registry


def test_values_released_when_raw_greenlet_is_collected():
    data = local()
    refs = []

    def raw():
        v = Value()
        data.v = v
        refs.append(weakref.ref(v))

    g = RawGreenlet(raw)
    g.switch()
    gid = id(g)
    assert refs[0]() is not None and gid in local_module._registry
    del g
    gc.collect()
    assert refs[0]() is None
    assert gid not in local_module._registry


def test_values_released_when_local_is_collected():
    def body():
        keep, drop = local(), local()
        keep.v = 1
        v = Value()
        drop.v = v
        ref = weakref.ref(v)
        me = greenweave.getcurrent()
        owner = local_module._registry[id(me)]
        assert len(owner.impls) == 2 and me.has_links
        del v, drop
        gc.collect()
        assert ref() is None  # the value went with its local
        assert len(owner.impls) == 1
        del keep
        gc.collect()
        # No values left anywhere: the greenlet is forgotten, its link removed.
        assert id(me) not in local_module._registry
        assert not me.has_links
        return True

    assert greenweave.spawn(body).get() is True


def test_many_short_lived_locals_in_a_running_greenlet():
    deleted = []

    class Tracked(local):
        def __init__(self):
            self.value = Value()
            weakref.finalize(self.value, deleted.append, 1)

    def body():
        for _ in range(1000):
            x = Tracked()
            assert x.value is not None
            x = None
        gc.collect()
        return len(deleted), greenweave.getcurrent().has_links

    assert greenweave.spawn(body).get() == (1000, False)


def test_registry_does_not_grow_with_finished_greenlets():
    data = local()

    def touch(i):
        data.x = i

    before = len(local_module._registry)
    greenweave.joinall([greenweave.spawn(touch, i) for i in range(200)])
    greenweave.sleep(0)
    assert len(local_module._registry) <= before


def test_copy_builds_a_new_instance_with_current_values():
    class Args(local):
        def __init__(self, a):
            self.a = a

    orig = Args(1)
    orig.b = [1]
    dup = copy.copy(orig)
    assert type(dup) is Args and dup is not orig
    assert dup.__dict__ == {"a": 1, "b": [1]} and dup.b is orig.b
    dup.a = 2
    assert orig.a == 1
    assert greenweave.spawn(lambda: dup.__dict__).get() == {"a": 1}


def test_cannot_pickle():
    with pytest.raises(TypeError, match="pickle"):
        pickle.dumps(local())


def test_weakref_to_local():
    data = local()
    r = weakref.ref(data)
    assert r() is data


def test_impl_attribute_is_protected():
    data = local()
    with pytest.raises(AttributeError):
        data._local__impl = None
    with pytest.raises(AttributeError):
        del data._local__impl
    data.x = 1
    assert data.x == 1


def test_dir_lists_current_greenlet_attributes():
    data = local()
    data.mine = 1
    assert "mine" in dir(data)
    assert "mine" not in greenweave.spawn(dir, data).get()


def test_subclass_of_subclass_with_own_init_subclass():
    class Base(local):
        def __init_subclass__(cls, **kwargs):  # does not call super()
            cls.registered = True

    class Leaf(Base):
        def hello(self):
            return "hello"

    leaf = Leaf()
    assert leaf.hello() == "hello" and leaf.registered is True
    assert greenweave.spawn(leaf.hello).get() == "hello"


class _NonData:
    """A non-data descriptor: an instance value may shadow it."""

    def __get__(self, inst, owner):
        return 42 if inst is not None else self


def test_lookup_order_matches_python():
    class Ordered(local):
        __slots__ = ("slot",)
        plain = "class"
        nondata = _NonData()

        def __init__(self):
            super().__init__()

        @staticmethod
        def static():
            return "static"

        @classmethod
        def klass(cls):
            return cls

    o = Ordered()
    o.slot = 1
    o.__dict__["slot"] = "dict"  # a data descriptor (the slot) wins over the dict
    assert o.slot == 1
    del o.slot
    assert not hasattr(o, "slot") and o.__dict__["slot"] == "dict"
    assert o.nondata == 42
    o.nondata = "mine"  # the dict wins over a non-data descriptor
    assert o.nondata == "mine" and isinstance(Ordered.nondata, _NonData)
    o.plain = "instance"
    del o.plain  # falls back to the class attribute
    assert o.plain == "class"
    with pytest.raises(AttributeError):
        del o.plain
    assert o.static() == "static" and o.klass() is Ordered


def test_abc_mixin():
    from collections.abc import Mapping

    class LocalMapping(local, Mapping):
        def __getitem__(self, key):
            return self.d[key]

        def __iter__(self):
            return iter(self.d)

        def __len__(self):
            return len(self.d)

    m = LocalMapping()
    m.d = {"a": 1}
    assert list(m.keys()) == ["a"] and "a" in m and m["a"] == 1
    assert greenweave.spawn(lambda: hasattr(m, "d")).get() is False
