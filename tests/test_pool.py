"""Group and Pool: membership, slots, join/kill, apply/map/imap."""

from __future__ import annotations

import contextvars
import queue
import time

import pytest

import greenweave
from greenweave import Greenlet, GreenletExit
from greenweave.exceptions import BlockingSwitchOutError
from greenweave.local import local
from greenweave.pool import Group, Pool, PoolFull

pytestmark = pytest.mark.timeout(10)


def _stubborn() -> None:
    """Ignores GreenletExit; only another exception ends it."""
    while True:
        try:
            greenweave.sleep(10)
        except GreenletExit:
            pass


def _fail(msg: str = "boom") -> None:
    raise ValueError(msg)


# -- Group membership --------------------------------------------------------


def test_group_tracks_members_until_they_finish():
    group = Group()
    assert not group and len(group) == 0
    g = group.spawn(greenweave.sleep, 0.01)
    assert isinstance(g, Greenlet)
    assert g in group and len(group) == 1 and bool(group)
    assert list(group) == [g] and group.greenlets == {g}
    g.join()
    greenweave.sleep(0)
    assert g not in group and len(group) == 0


def test_group_from_iterable_tracks_and_forgets():
    gs = [greenweave.spawn(greenweave.sleep, 0.01) for _ in range(3)]
    group = Group(gs)
    assert len(group) == 3
    assert group.join(timeout=2) is True
    assert len(group) == 0


def test_group_rejects_two_iterables_and_non_greenlets():
    with pytest.raises(TypeError):
        Group([], [])
    with pytest.raises(TypeError, match="rawlink"):
        Group().add(object())


def test_add_twice_links_once_and_discard_unlinks():
    group = Group()
    g = Greenlet(greenweave.sleep, 0)
    group.add(g)
    group.add(g)
    assert len(g._links) == 1
    group.discard(g)
    assert g not in group and not g.has_links
    group.discard(g)  # not a member: nothing happens


def test_start_adds_then_starts():
    group = Group()
    g = Greenlet(lambda: 5)
    group.start(g)
    assert g in group and g.started
    assert g.get() == 5


def test_greenlet_class_is_used_by_spawn():
    class Named(Greenlet):
        pass

    group = Group()
    group.greenlet_class = Named
    assert isinstance(group.spawn(lambda: None), Named)
    pool = Pool(2, greenlet_class=Named)
    assert pool.greenlet_class is Named
    assert isinstance(pool.spawn(lambda: None), Named)
    pool.join()


def test_group_is_never_full():
    group = Group()
    assert group.full() is False
    assert group.wait_available() is None
    assert group.wait_available(timeout=0.01) is None


# -- join ----------------------------------------------------------------------


def test_join_empty_returns_true_at_once():
    assert Group().join() is True
    assert Pool(3).join(timeout=0) is True


def test_join_timeout_returns_false():
    group = Group()
    g = group.spawn(greenweave.sleep, 5)
    start = time.monotonic()
    assert group.join(timeout=0.05) is False
    assert time.monotonic() - start < 2
    assert g in group
    group.kill()


def test_join_waits_for_all():
    group = Group()
    for t in (0.01, 0.03, 0.02):
        group.spawn(greenweave.sleep, t)
    assert group.join() is True
    assert len(group) == 0


def test_join_returns_once_empty_even_if_refilled():
    group = Group()
    first = group.spawn(greenweave.sleep, 0.01)
    refill = []
    # Runs in the hub right after the group's own link emptied the group,
    # before the joiner is woken: the joiner then finds the group non-empty.
    first.rawlink(lambda _g: refill.append(group.spawn(greenweave.sleep, 5)))
    assert group.join(timeout=3) is True
    assert refill and refill[0] in group
    group.kill()


def test_join_raise_error():
    group = Group()
    group.spawn(_fail, "joined")
    group.spawn(greenweave.sleep, 0.02)
    with pytest.raises(ValueError, match="joined"):
        group.join(raise_error=True)
    assert len(group) == 0
    # Without raise_error the failure is not raised.
    group.spawn(_fail)
    assert group.join() is True


def test_join_from_a_member_without_timeout_is_refused():
    group = Group()
    result = []

    def member():
        try:
            group.join()
        except BlockingSwitchOutError as exc:
            result.append(exc)
        result.append(group.join(timeout=0.01))

    group.spawn(member).join()
    assert isinstance(result[0], BlockingSwitchOutError)
    assert result[1] is False


# -- kill ----------------------------------------------------------------------


def test_kill_kills_all_members():
    group = Group()
    gs = [group.spawn(greenweave.sleep, 10) for _ in range(5)]
    greenweave.sleep(0)
    group.kill()
    assert len(group) == 0
    assert all(g.dead and isinstance(g.value, GreenletExit) for g in gs)


def test_kill_unstarted_members():
    group = Group()
    ran = []
    gs = [group.spawn(ran.append, i) for i in range(3)]
    group.kill()
    greenweave.sleep(0)
    assert ran == [] and len(group) == 0 and all(g.dead for g in gs)


def test_kill_with_exception_class():
    group = Group()
    g = group.spawn(_stubborn)
    greenweave.sleep(0)
    group.kill(KeyError)
    assert isinstance(g.exception, KeyError)


def test_kill_timeout_with_stubborn_member_returns():
    group = Group()
    s = group.spawn(_stubborn)
    greenweave.sleep(0)
    start = time.monotonic()
    group.kill(timeout=0.1)
    assert 0.05 < time.monotonic() - start < 2
    assert s in group and s in group.dying
    s.kill(ValueError)
    greenweave.sleep(0)  # the group's link runs just after the death
    assert len(group) == 0 and not group.dying


def test_kill_nonblocking():
    group = Group()
    g = group.spawn(greenweave.sleep, 10)
    greenweave.sleep(0)
    group.kill(block=False)
    assert g in group.dying
    g.join(timeout=2)
    greenweave.sleep(0)
    assert g.dead and len(group) == 0


def test_kill_also_kills_members_added_while_killing():
    group = Group()
    late = []

    def spawner_on_exit():
        try:
            greenweave.sleep(10)
        except GreenletExit:
            late.append(group.spawn(greenweave.sleep, 10))
            raise

    group.spawn(spawner_on_exit)
    greenweave.sleep(0)
    group.kill(timeout=5)
    assert late and late[0].dead
    assert len(group) == 0


def test_killone():
    group = Group()
    a = group.spawn(greenweave.sleep, 10)
    b = group.spawn(greenweave.sleep, 10)
    greenweave.sleep(0)
    group.killone(a)
    assert a.dead and a not in group and b in group
    group.killone(b, block=False)
    assert b in group.dying
    b.join(2)
    greenweave.sleep(0)
    assert len(group) == 0
    outsider = greenweave.spawn(greenweave.sleep, 10)
    greenweave.sleep(0)
    group.killone(outsider)  # not a member: left alone
    assert not outsider.dead
    outsider.kill()


# -- Pool size and slots ------------------------------------------------------


@pytest.mark.parametrize("size", [0, -1, 1.5, "3", True, 2.0, [1]])
def test_pool_bad_sizes_raise_value_error(size):
    with pytest.raises(ValueError, match="positive integer"):
        Pool(size)


def test_unbounded_pool():
    pool = Pool()
    assert pool.size is None
    gs = [pool.spawn(greenweave.sleep, 0.01) for _ in range(200)]
    assert len(pool) == 200
    assert pool.full() is False and pool.free_count() == 1
    assert pool.wait_available() == 1
    pool.join()
    assert all(g.dead for g in gs)


def test_pool_counts_slots():
    pool = Pool(3)
    assert pool.size == 3 and pool.free_count() == 3 and not pool.full()
    pool.spawn(greenweave.sleep, 0.05)
    pool.spawn(greenweave.sleep, 0.05)
    assert pool.free_count() == 1 and not pool.full()
    pool.spawn(greenweave.sleep, 0.05)
    assert pool.free_count() == 0 and pool.full()
    pool.join()
    assert pool.free_count() == 3


def test_spawn_waits_for_a_free_slot():
    pool = Pool(2)
    order = []

    def job(name, t):
        greenweave.sleep(t)
        order.append(name)

    pool.spawn(job, "a", 0.05)
    pool.spawn(job, "b", 0.1)
    start = time.monotonic()
    pool.spawn(job, "c", 0)  # blocks until "a" is done
    assert order == ["a"]
    assert time.monotonic() - start >= 0.03
    pool.join()
    assert order == ["a", "c", "b"]


def test_add_nonblocking_to_full_pool_raises_pool_full():
    pool = Pool(1)
    pool.spawn(greenweave.sleep, 10)
    extra = Greenlet(greenweave.sleep, 0)
    with pytest.raises(PoolFull) as info:
        pool.add(extra, blocking=False)
    assert isinstance(info.value, queue.Full)
    with pytest.raises(PoolFull):
        pool.start(extra, blocking=False)
    assert extra not in pool and not extra.started and not extra.has_links
    assert pool.free_count() == 0 and len(pool) == 1
    pool.kill()
    assert pool.free_count() == 1
    pool.add(extra, blocking=False)
    assert extra in pool


def test_add_timeout_raises_pool_full():
    pool = Pool(1)
    pool.spawn(greenweave.sleep, 10)
    start = time.monotonic()
    with pytest.raises(PoolFull):
        pool.add(Greenlet(greenweave.sleep, 0), timeout=0.05)
    assert 0.03 < time.monotonic() - start < 2
    assert len(pool) == 1 and pool.free_count() == 0
    pool.kill()


def test_add_timeout_succeeds_when_slot_frees_in_time():
    pool = Pool(1)
    pool.spawn(greenweave.sleep, 0.02)
    g = Greenlet(lambda: 1)
    pool.start(g, timeout=2)
    assert g in pool and g.get() == 1


def test_readding_a_member_is_a_noop():
    pool = Pool(2)
    g = Greenlet(greenweave.sleep, 0.01)
    pool.add(g)
    pool.add(g)
    pool.add(g, blocking=False)
    assert len(pool) == 1 and pool.free_count() == 1
    pool.discard(g)
    assert pool.free_count() == 2
    pool.discard(g)
    assert pool.free_count() == 2
    g.start()
    g.join()
    greenweave.sleep(0)
    assert pool.free_count() == 2  # its finishing does not free a slot twice


def test_discard_frees_the_slot_at_once():
    pool = Pool(1)
    g = pool.spawn(greenweave.sleep, 10)
    assert pool.full()
    pool.discard(g)
    assert not pool.full()
    h = Greenlet(lambda: 2)
    pool.start(h, blocking=False)
    assert h.get() == 2
    g.kill()


def test_waiting_spawners_get_slots_in_fifo_order():
    pool = Pool(1)
    order = []
    pool.spawn(greenweave.sleep, 0.02)

    def spawner(i):
        pool.spawn(order.append, i)

    spawners = [greenweave.spawn(spawner, i) for i in range(5)]
    greenweave.joinall(spawners, timeout=5)
    pool.join()
    assert order == [0, 1, 2, 3, 4]


def test_wait_available():
    pool = Pool(2)
    assert pool.wait_available() == 2
    pool.spawn(greenweave.sleep, 10)
    g = pool.spawn(greenweave.sleep, 0.05)
    assert pool.wait_available(timeout=0.01) == 0
    start = time.monotonic()
    assert pool.wait_available() == 1
    assert g.dead and time.monotonic() - start < 2
    pool.kill()


def test_kill_while_parked_in_wait_available():
    pool = Pool(1)
    holder = pool.spawn(greenweave.sleep, 10)
    waiter = greenweave.spawn(pool.wait_available)
    greenweave.sleep(0.01)
    assert not waiter.dead
    waiter.kill()
    assert waiter.dead and isinstance(waiter.value, GreenletExit)
    # The pool is intact: the slot is still taken, and freeing it works.
    assert pool.free_count() == 0
    holder.kill()
    greenweave.sleep(0)
    assert pool.free_count() == 1
    assert pool.spawn(lambda: 3).get() == 3


def test_kill_while_parked_for_a_slot_loses_nothing():
    pool = Pool(1)
    holder = pool.spawn(greenweave.sleep, 0.05)
    got = []
    victim = greenweave.spawn(lambda: pool.spawn(got.append, "victim"))
    patient = greenweave.spawn(lambda: pool.spawn(got.append, "patient"))
    greenweave.sleep(0.01)
    victim.kill()
    holder.join()
    patient.join(timeout=2)
    pool.join(timeout=2)
    assert got == ["patient"]
    assert pool.free_count() == 1 and len(pool) == 0


def test_kill_while_parked_for_a_slot_that_was_just_freed():
    # The victim is picked for the freed slot but killed before it runs:
    # the slot passes to the next waiter.
    pool = Pool(1)
    holder = pool.spawn(greenweave.sleep, 10)
    got = []
    victim = greenweave.spawn(lambda: pool.spawn(got.append, "victim"))
    patient = greenweave.spawn(lambda: pool.spawn(got.append, "patient"))
    greenweave.sleep(0.01)
    victim.kill(block=False)  # queued first: lands after the victim is picked, before it runs
    pool.discard(holder)  # frees the slot and picks the victim
    patient.join(timeout=2)
    pool.join(timeout=2)
    assert got == ["patient"]
    assert pool.free_count() == 1
    holder.kill()


# -- apply -------------------------------------------------------------------


def test_apply_returns_result_with_args_and_kwds():
    pool = Pool(2)
    assert pool.apply(lambda *a, **k: (a, k), (1, 2), {"x": 3}) == ((1, 2), {"x": 3})
    assert pool.apply(lambda: greenweave.getcurrent()) is not greenweave.getcurrent()


def test_apply_raises_the_functions_error():
    with pytest.raises(ValueError, match="applied"):
        Pool(2).apply(_fail, ("applied",))


def test_apply_inside_a_full_pool_runs_inline():
    pool = Pool(1)

    def outer():
        me = greenweave.getcurrent()
        return pool.apply(greenweave.getcurrent) is me

    assert pool.spawn(outer).get(timeout=2) is True
    group = Group()
    member = group.spawn(lambda: group.apply(greenweave.getcurrent))
    assert member.get(timeout=2) is member


def test_apply_cb_runs_callback_in_new_greenlet():
    seen = []
    pool = Pool(2)
    result = pool.apply_cb(lambda: 5, callback=lambda v: seen.append((v, greenweave.getcurrent())))
    assert result == 5 and seen == []
    greenweave.sleep(0.01)
    assert seen[0][0] == 5 and seen[0][1] is not greenweave.getcurrent()
    assert seen[0][1] not in pool


def test_apply_async_with_callback():
    pool = Pool(2)
    seen = []
    g = pool.apply_async(lambda x: x * 2, (4,), callback=seen.append)
    assert g in pool
    assert g.get() == 8
    greenweave.sleep(0.01)
    assert seen == [8]
    failing = pool.apply_async(_fail, callback=seen.append)
    failing.join()
    greenweave.sleep(0.01)
    assert seen == [8]  # not called on failure


def test_apply_async_on_full_pool_does_not_block():
    pool = Pool(1)
    pool.spawn(greenweave.sleep, 0.05)
    seen = []
    start = time.monotonic()
    g = pool.apply_async(lambda: "late", callback=seen.append)
    assert time.monotonic() - start < 0.03
    assert g not in pool
    assert g.get(timeout=2) == "late"
    greenweave.sleep(0.01)
    assert seen == ["late"]


# -- map -----------------------------------------------------------------------


def test_map_keeps_order():
    pool = Pool(4)

    def slow(x):
        greenweave.sleep(0.001 * (10 - x))
        return x * x

    assert pool.map(slow, range(10)) == [x * x for x in range(10)]
    assert Group().map(slow, range(10)) == [x * x for x in range(10)]


def test_map_cb_and_map_async():
    pool = Pool(3)
    seen = []
    assert pool.map_cb(abs, [-1, -2], callback=seen.append) == [1, 2]
    assert seen == [[1, 2]]
    g = pool.map_async(abs, [-3, -4], callback=seen.append)
    assert isinstance(g, Greenlet) and g not in pool
    assert g.get() == [3, 4]
    assert seen == [[1, 2], [3, 4]]


def test_map_raises_first_failure_in_order():
    def f(x):
        if x in (3, 5):
            raise ValueError(x)
        return x

    with pytest.raises(ValueError, match="3"):
        Pool(4).map(f, range(8))


# -- imap / imap_unordered -----------------------------------------------------

POOLS = [
    pytest.param(lambda: Pool(4), id="pool-workers"),
    pytest.param(lambda: Pool(4, greenlet_class=type("G", (Greenlet,), {})), id="pool-tasks"),
    pytest.param(lambda: Pool(), id="unbounded"),
    pytest.param(Group, id="group"),
]


def _delayed(x):
    greenweave.sleep(0.002 * ((7 * x) % 5))
    return x


@pytest.mark.parametrize("make", POOLS)
def test_imap_yields_in_input_order(make):
    pool = make()
    assert list(pool.imap(_delayed, range(20))) == list(range(20))
    assert pool.join(timeout=2)


@pytest.mark.parametrize("make", POOLS)
def test_imap_unordered_yields_in_completion_order(make):
    pool = make()

    def f(x):
        greenweave.sleep(0.02 * (3 - x))
        return x

    assert list(pool.imap_unordered(f, range(4))) == [3, 2, 1, 0]


@pytest.mark.parametrize("make", POOLS)
def test_imap_many_iterables_shortest_wins(make):
    pool = make()
    assert list(pool.imap(lambda a, b: a + b, [1, 2, 3], [10, 20])) == [11, 22]
    assert sorted(pool.imap_unordered(pow, [2, 3], [3, 2])) == [8, 9]
    assert list(pool.imap(abs)) == []


@pytest.mark.parametrize("make", POOLS)
def test_imap_error_raised_at_its_place_then_continues(make):
    pool = make()

    def f(x):
        greenweave.sleep(0.002 * (5 - x) if x < 5 else 0)
        if x == 3:
            raise ValueError(x)
        return x

    it = pool.imap(f, range(8))
    got = []
    with pytest.raises(ValueError) as info:
        for value in it:
            got.append(value)
    assert got == [0, 1, 2]
    assert info.value.args == (3,)
    assert list(it) == [4, 5, 6, 7]
    assert pool.join(timeout=2)


@pytest.mark.parametrize("make", POOLS)
def test_imap_unordered_error_is_one_of_the_results(make):
    pool = make()

    def f(x):
        if x == 2:
            raise KeyError(x)
        return x

    it = pool.imap_unordered(f, range(5))
    got, errors = [], []
    while True:
        try:
            got.append(next(it))
        except StopIteration:
            break
        except KeyError as exc:
            errors.append(exc.args[0])
    assert sorted(got) == [0, 1, 3, 4] and errors == [2]


@pytest.mark.parametrize("make", POOLS)
def test_imap_failing_input_raises_after_earlier_results(make):
    pool = make()

    def gen():
        yield 1
        yield 2
        raise KeyError("input broke")

    it = pool.imap(lambda x: x * 10, gen())
    got = []
    with pytest.raises(KeyError, match="input broke"):
        for value in it:
            got.append(value)
    assert got == [10, 20]
    assert list(it) == []


def test_imap_argument_errors():
    pool = Pool(2)
    with pytest.raises(TypeError):
        pool.imap(abs, 5)  # not iterable: raised in the caller
    with pytest.raises(TypeError):
        pool.imap(abs, [1], bogus=1)
    with pytest.raises(TypeError):
        pool.imap("not callable", [1])
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="maxsize"):
            pool.imap_unordered(abs, [1], maxsize=bad)


@pytest.mark.parametrize("make", POOLS)
@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_imap_maxsize_back_pressure(make, method):
    pool = make()
    started = []

    def f(x):
        started.append(x)
        return x

    it = getattr(pool, method)(f, range(30), maxsize=3)
    greenweave.sleep(0.02)
    assert len(started) == 3  # nothing consumed: no more than maxsize taken
    next(it)
    greenweave.sleep(0.02)
    assert len(started) == 4
    rest = list(it)
    assert len(rest) == 29 and len(started) == 30


@pytest.mark.parametrize("make", POOLS)
def test_imap_maxsize_bounds_concurrency_too(make):
    pool = make()
    active = [0, 0]

    def f(x):
        active[0] += 1
        active[1] = max(active[1], active[0])
        greenweave.sleep(0.005)
        active[0] -= 1
        return x

    assert sorted(pool.imap_unordered(f, range(20), maxsize=2)) == list(range(20))
    assert active[1] == 2


def test_imap_concurrency_is_the_pool_size():
    pool = Pool(5)
    active = [0, 0]

    def f(x):
        active[0] += 1
        active[1] = max(active[1], active[0])
        greenweave.sleep(0.005)
        active[0] -= 1
        return x

    assert list(pool.imap(f, range(40))) == list(range(40))
    assert active[1] == 5


def test_group_imap_runs_everything_concurrently():
    start = time.monotonic()
    assert len(list(Group().imap_unordered(greenweave.sleep, [0.2] * 100))) == 100
    assert time.monotonic() - start < 2


def test_imap_leaves_the_pool_empty_when_done():
    pool = Pool(10)
    assert sum(pool.imap_unordered(abs, range(1000))) == 999 * 1000 // 2
    assert len(pool) == 0 and pool.free_count() == 10
    assert list(pool.imap(abs, range(100))) == list(range(100))
    assert len(pool) == 0 and pool.free_count() == 10


def test_imap_on_plain_pool_uses_few_greenlets():
    pool = Pool(3)
    seen = set()

    def f(x):
        seen.add(id(greenweave.getcurrent()))
        assert greenweave.getcurrent() in pool
        return x

    assert list(pool.imap(f, range(100))) == list(range(100))
    assert len(seen) <= 3


def test_imap_gives_slots_to_other_spawners():
    pool = Pool(2)
    done = []

    def f(x):
        greenweave.sleep(0.002)
        done.append(x)
        return x

    it = pool.imap_unordered(f, range(200))
    greenweave.sleep(0.01)
    other = pool.spawn(lambda: len(done))  # must not wait for the whole imap
    assert other.get(timeout=2) < 200
    assert len(list(it)) == 200


def test_imap_grows_when_other_members_leave():
    pool = Pool(4)
    blockers = [pool.spawn(greenweave.sleep, 0.03) for _ in range(3)]
    active = [0, 0]

    def f(x):
        active[0] += 1
        active[1] = max(active[1], active[0])
        greenweave.sleep(0.005)
        active[0] -= 1
        return x

    assert len(list(pool.imap_unordered(f, range(60)))) == 60
    assert all(b.dead for b in blockers)
    assert active[1] == 4


def test_imap_items_get_fresh_locals_and_context():
    pool = Pool(2)
    data = local()
    var = contextvars.ContextVar("var", default="unset")

    def f(x):
        leaked = (getattr(data, "value", None), var.get())
        data.value = x
        var.set(x)
        return leaked

    assert set(pool.imap_unordered(f, range(50))) == {(None, "unset")}
    assert set(Group().imap_unordered(f, range(10))) == {(None, "unset")}


def test_imap_killing_the_iterator_stops_feeding():
    pool = Pool(3)
    started = []

    def f(x):
        started.append(x)
        greenweave.sleep(0.02)
        return x

    it = pool.imap_unordered(f, range(100))
    greenweave.sleep(0.005)
    it.kill()
    got = list(it)
    assert len(got) == len(started) < 100
    assert sorted(got) == sorted(started)
    assert pool.join(timeout=2)


def test_imap_killed_before_it_starts_is_empty():
    it = Pool(2).imap(abs, range(10))
    it.kill()
    assert list(it) == []


def test_pool_kill_stops_a_running_imap():
    pool = Pool(3)
    it = pool.imap(lambda x: greenweave.sleep(0.02) or x, range(100))
    greenweave.sleep(0.005)
    pool.kill()
    got = list(it)
    assert len(got) < 100
    assert any(isinstance(v, GreenletExit) for v in got)
    assert len(pool) == 0 and pool.free_count() == 3


def test_pool_kill_stops_a_running_imap_per_item_mode():
    pool = Pool(3, greenlet_class=type("G", (Greenlet,), {}))
    it = pool.imap(lambda x: greenweave.sleep(0.02) or x, range(100))
    greenweave.sleep(0.005)
    pool.kill()
    got = list(it)
    assert 0 < len(got) < 100 and all(isinstance(v, GreenletExit) for v in got)
    assert len(pool) == 0 and pool.free_count() == 3


def test_group_kill_during_imap_kills_every_item():
    group = Group()  # unbounded: every item was started at once
    it = group.imap(lambda x: greenweave.sleep(0.02) or x, range(100))
    greenweave.sleep(0.005)
    group.kill()
    got = list(it)
    assert len(got) == 100 and all(isinstance(v, GreenletExit) for v in got)


def test_imap_with_two_consumers_loses_nothing():
    pool = Pool(4)
    it = pool.imap(_delayed, range(60))
    a = greenweave.spawn(list, it)
    b = greenweave.spawn(list, it)
    got_a, got_b = a.get(timeout=5), b.get(timeout=5)
    assert sorted(got_a + got_b) == list(range(60))
    assert got_a == sorted(got_a) and got_b == sorted(got_b)


def test_imap_consumer_killed_while_waiting_loses_nothing():
    pool = Pool(2)
    it = pool.imap_unordered(lambda x: greenweave.sleep(0.01) or x, range(10))
    victim = greenweave.spawn(next, it)
    greenweave.sleep(0)
    victim.kill()
    assert sorted(it) == list(range(10))


def test_imap_input_is_read_by_one_worker_at_a_time():
    pool = Pool(4)

    def slow_input():
        for i in range(20):
            greenweave.sleep(0.001)  # another worker must not re-enter the generator
            yield i

    assert sorted(pool.imap_unordered(abs, slow_input())) == list(range(20))


def test_imap_from_a_greenlet_killing_a_worker_item():
    pool = Pool(2)

    def f(x):
        if x == 3:
            greenweave.getcurrent().kill(block=False)
            greenweave.sleep(0.01)
        return x

    got = list(pool.imap(f, range(8)))
    assert got[:3] == [0, 1, 2] and isinstance(got[3], GreenletExit)
    assert got[4:] == [4, 5, 6, 7]


def test_imap_unordered_large_run():
    pool = Pool(100)
    n = 20_000
    assert sum(pool.imap_unordered(abs, range(n))) == n * (n - 1) // 2
    assert len(pool) == 0


def test_imap_item_that_cannot_be_started_is_an_error_at_its_place():
    class Picky(Greenlet):
        def __init__(self, run, *args):
            if args == (2,):
                raise RuntimeError("refused 2")
            Greenlet.__init__(self, run, *args)

    pool = Pool(2, greenlet_class=Picky)
    it = pool.imap(abs, range(5))
    assert next(it) == 0 and next(it) == 1
    with pytest.raises(RuntimeError, match="refused 2"):
        next(it)
    assert list(it) == []


def test_imap_gives_slots_to_wait_available():
    pool = Pool(2)
    done = []

    def f(x):
        greenweave.sleep(0.002)
        done.append(x)
        return x

    it = pool.imap_unordered(f, range(200))
    greenweave.sleep(0.01)
    assert pool.full()
    waiter = greenweave.spawn(lambda: (pool.wait_available(), len(done)))
    free, seen = waiter.get(timeout=2)
    assert free >= 1 and seen < 200
    assert len(list(it)) == 200
