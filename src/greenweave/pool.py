"""Groups and pools of greenlets.

A :class:`Group` tracks greenlets until they finish; a :class:`Pool` is a
group with at most ``size`` members, where adding to a full pool waits for a
free slot.  Both offer parallel versions of ``apply`` and ``map``
(``imap``, ``imap_unordered``...) that run the calls in member greenlets.

Waiting is built on :class:`~greenweave._core.park.ParkingLot` like every
other blocking object: the pool keeps a count of free slots and parks
spawners while it is zero; a group parks joiners until it becomes empty.

``imap``/``imap_unordered`` on a plain bounded :class:`Pool` run the calls in
a few *worker* greenlets (at most ``size``, each holding one pool slot) that
take input items one at a time, instead of starting one greenlet per item.
Starting a greenlet costs far more than a short call: besides the Greenlet
bookkeeping, on CPython 3.11+ every new greenlet that runs Python code maps
and unmaps a fresh frame stack (several microseconds).  Each call still runs in a fresh copy
of the worker's context variables and with fresh greenlet-locals; a worker
gives its slot back between items as soon as anyone else waits for one.  A
pool with a custom ``greenlet_class`` or overridden ``spawn``/``start``/
``add``, an unbounded pool and a :class:`Group` start one greenlet per item.
"""

from __future__ import annotations

import operator
from collections import deque
from contextvars import copy_context
from queue import Full as _QueueFull
from time import monotonic
from typing import Any, Callable, Iterable, Iterator

from greenlet import GreenletExit, getcurrent

from . import local as _local
from ._core.hub import sleep
from ._core.park import ParkingLot
from .exceptions import BlockingSwitchOutError
from .greenlet import Greenlet, _format_args

__all__ = ["Group", "Pool", "PoolFull"]

_local_registry = _local._registry
_release_locals = _local._release_id


class PoolFull(_QueueFull):
    """Raised when a greenlet cannot be added to a full :class:`Pool`: by
    ``add``/``start`` with ``blocking=False``, or when their timeout passes."""


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else monotonic() + timeout


def _raise_failure(greenlet: Any) -> None:
    exc_info = getattr(greenlet, "exc_info", None)
    if exc_info and exc_info[1] is not None:
        raise exc_info[1].with_traceback(exc_info[2])
    raise greenlet.exception


class _PassValue:
    """Link target calling ``callback(greenlet.value)`` if the greenlet succeeded."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[Any], Any]) -> None:
        self.callback = callback

    def __call__(self, source: Any) -> None:
        if source.successful():
            self.callback(source.value)

    def __repr__(self) -> str:
        return f"<_PassValue {self.callback!r}>"


class Group:
    """A set of greenlets, each removed when it finishes.

    Iterate over it, test membership and ``len`` it; it is false when empty.
    ``greenlet_class`` (class or instance attribute) is what :meth:`spawn`
    creates.
    """

    greenlet_class: type = Greenlet
    #: Pool slots left; None means unbounded (always, for a Group).
    _free: int | None = None

    def __init__(self, *args: Iterable[Any]) -> None:
        if len(args) > 1:
            raise TypeError(f"Group() takes at most one iterable of greenlets ({len(args)} given)")
        #: The greenlets being tracked.
        self.greenlets: set = set()
        #: Members that have been sent a kill and not yet finished.
        self.dying: set = set()
        self._discard_link = self._discard  # one bound method, so unlink() finds it
        self._empty_lot = ParkingLot()  # join() waiters
        self._emptied = 0  # bumped each time the group becomes empty
        self._killing = 0  # > 0 while kill() runs; imap stops feeding then
        self._kill_epoch = 0  # bumped by each kill(), so a parked imap feeder notices
        if args:
            for greenlet in args[0]:
                self.add(greenlet)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} at {id(self):#x} {self.greenlets!r}>"

    def __len__(self) -> int:
        return len(self.greenlets)

    def __contains__(self, item: Any) -> bool:
        return item in self.greenlets

    def __iter__(self) -> Iterator[Any]:
        return iter(self.greenlets)

    # -- membership ----------------------------------------------------
    def add(self, greenlet: Any, blocking: bool = True, timeout: float | None = None) -> None:
        """Begin tracking ``greenlet`` (``blocking``/``timeout`` only matter for a Pool)."""
        if greenlet in self.greenlets:
            return
        self._track(greenlet)

    def _track(self, greenlet: Any) -> None:
        try:
            rawlink = greenlet.rawlink
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__} can only track greenlets with rawlink() "
                f"(greenweave.Greenlet), not {greenlet!r}"
            ) from None
        rawlink(self._discard_link)
        self.greenlets.add(greenlet)

    def _discard(self, greenlet: Any) -> None:
        # Link target: runs in the hub when a member finishes.
        greenlets = self.greenlets
        if greenlet in greenlets:
            greenlets.remove(greenlet)
            self.dying.discard(greenlet)
            if self._free is not None:
                self._release()
            if not greenlets:
                self._emptied += 1
                if self._empty_lot:
                    self._empty_lot.unpark_all()

    def discard(self, greenlet: Any) -> None:
        """Stop tracking ``greenlet`` (freeing its slot in a Pool)."""
        if greenlet in self.greenlets:
            self._discard(greenlet)
            unlink = getattr(greenlet, "unlink", None)
            if unlink is not None:
                unlink(self._discard_link)
        self.dying.discard(greenlet)

    def start(self, greenlet: Any) -> None:
        """Add the unstarted ``greenlet`` and start it."""
        self.add(greenlet)
        greenlet.start()

    def spawn(self, *args: Any, **kwargs: Any) -> Any:
        """Create a ``greenlet_class(*args, **kwargs)``, add it and start it."""
        greenlet = self.greenlet_class(*args, **kwargs)
        self.start(greenlet)
        return greenlet

    # -- waiting and killing -------------------------------------------
    def join(self, timeout: float | None = None, raise_error: bool = False) -> bool:
        """Wait until the group has been empty at least once since the call.

        Returns True if it was, False if ``timeout`` passed first.  With
        ``raise_error``, re-raise the error of a greenlet that was a member
        when the call began and has failed.
        """
        snapshot = list(self.greenlets) if raise_error else ()
        emptied = self._wait_empty(timeout)
        for greenlet in snapshot:
            if getattr(greenlet, "exception", None) is not None:
                _raise_failure(greenlet)
        return emptied

    def _wait_empty(self, timeout: float | None) -> bool:
        if not self.greenlets:
            return True
        if timeout is None and getcurrent() in self.greenlets:
            raise BlockingSwitchOutError(
                f"{getcurrent()!r} cannot join {self!r}: it is a member, so the group "
                "can never become empty while it waits"
            )
        epoch = self._emptied
        lot = self._empty_lot
        if timeout is None:
            while self._emptied == epoch:
                lot.park()
            return True
        deadline = monotonic() + timeout
        while self._emptied == epoch:
            remaining = deadline - monotonic()
            if remaining <= 0 or not lot.park(remaining):
                return self._emptied != epoch
        return True

    def kill(self, exception: Any = GreenletExit, block: bool = True,
             timeout: float | None = None) -> None:
        """Kill every member, including any added while this runs.

        With ``block`` wait until they are gone, or ``timeout`` passes (no
        error either way).  A running ``imap`` on this group stops feeding.
        """
        deadline = _deadline(timeout)
        current = getcurrent()
        self._killing += 1
        self._kill_epoch += 1
        try:
            while self.greenlets:
                dying = self.dying
                for greenlet in list(self.greenlets):
                    if greenlet not in dying:
                        dying.add(greenlet)
                        greenlet.kill(exception, block=False)
                if not block:
                    return
                waited = False
                for greenlet in list(self.greenlets):
                    if greenlet is current or greenlet.ready():
                        continue
                    if deadline is None:
                        greenlet.join()
                    else:
                        remaining = deadline - monotonic()
                        if remaining <= 0:
                            return
                        greenlet.join(remaining)
                    waited = True
                if not waited:
                    if self.greenlets == {current}:
                        return  # we die at our next switch
                    # Only finished members are left; their links are queued.
                    sleep(0)
                    if deadline is not None and monotonic() >= deadline:
                        return
        finally:
            self._killing -= 1

    def killone(self, greenlet: Any, exception: Any = GreenletExit, block: bool = True,
                timeout: float | None = None) -> None:
        """Kill ``greenlet`` if it is a member; with ``block`` wait up to
        ``timeout`` for it to die."""
        if greenlet not in self.dying and greenlet in self.greenlets:
            greenlet.kill(exception, block=False)
            self.dying.add(greenlet)
            if block:
                greenlet.join(timeout)

    def full(self) -> bool:
        """Whether adding would block: never, for a Group."""
        return False

    def wait_available(self, timeout: float | None = None) -> int | None:
        """Wait until a greenlet can be spawned without blocking: at once, for a Group."""
        return None

    # -- apply and map -------------------------------------------------
    def _apply_immediately(self) -> bool:
        # Called from one of our own members: spawning and waiting could
        # deadlock a full pool, so run the function inline instead.
        return getcurrent() in self.greenlets

    def apply(self, func: Callable[..., Any], args: Iterable[Any] | None = None,
              kwds: dict | None = None) -> Any:
        """Call ``func(*args, **kwds)`` in a member greenlet and return its result
        (or raise its error).  Called from a member, runs ``func`` inline."""
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if self._apply_immediately():
            return func(*args, **kwds)
        return self.spawn(func, *args, **kwds).get()

    def apply_cb(self, func: Callable[..., Any], args: Iterable[Any] | None = None,
                 kwds: dict | None = None, callback: Callable[[Any], Any] | None = None) -> Any:
        """:meth:`apply`, then run ``callback(result)`` in a new greenlet (not tracked)."""
        result = self.apply(func, args, kwds)
        if callback is not None:
            Greenlet.spawn(callback, result)
        return result

    def apply_async(self, func: Callable[..., Any], args: Iterable[Any] | None = None,
                    kwds: dict | None = None,
                    callback: Callable[[Any], Any] | None = None) -> Greenlet:
        """Start ``func(*args, **kwds)`` without blocking; return a greenlet whose
        value is the result.  ``callback(result)`` runs in a new greenlet on
        success.  If the group is full, the returned greenlet (not a member)
        waits for a slot."""
        if args is None:
            args = ()
        if kwds is None:
            kwds = {}
        if self.full():
            return Greenlet.spawn(self.apply_cb, func, args, kwds, callback)
        greenlet = self.spawn(func, *args, **kwds)
        if callback is not None:
            greenlet.link(_PassValue(callback))
        return greenlet

    def map(self, func: Callable[[Any], Any], iterable: Iterable[Any]) -> list:
        """``list(self.imap(func, iterable))``: results in input order."""
        return list(self.imap(func, iterable))

    def map_cb(self, func: Callable[[Any], Any], iterable: Iterable[Any],
               callback: Callable[[list], Any] | None = None) -> list:
        """:meth:`map`, then ``callback(results)`` in the calling greenlet."""
        result = self.map(func, iterable)
        if callback is not None:
            callback(result)
        return result

    def map_async(self, func: Callable[[Any], Any], iterable: Iterable[Any],
                  callback: Callable[[list], Any] | None = None) -> Greenlet:
        """Run :meth:`map_cb` in a new greenlet (not a member) and return it."""
        return Greenlet.spawn(self.map_cb, func, iterable, callback)

    def imap(self, func: Callable[..., Any], *iterables: Iterable[Any],
             maxsize: int | None = None) -> IMap:
        """Parallel ``map(func, *iterables)``: an iterator over the results in
        input order.  An error raised by ``func`` is raised by the iterator at
        that item's place; iteration can go on after it.

        ``maxsize`` bounds how many items may be taken from the input and not
        yet consumed (running or buffered); the feeding waits at the bound.
        """
        return self._imap(IMap, func, iterables, maxsize)

    def imap_unordered(self, func: Callable[..., Any], *iterables: Iterable[Any],
                       maxsize: int | None = None) -> IMapUnordered:
        """Like :meth:`imap`, but results come in completion order (cheaper)."""
        return self._imap(IMapUnordered, func, iterables, maxsize)

    def _imap(self, cls: type, func: Callable[..., Any], iterables: tuple,
              maxsize: int | None) -> Any:
        if not callable(func):
            raise TypeError(f"imap needs a callable, not {func!r}")
        if maxsize is not None:
            if isinstance(maxsize, bool) or not isinstance(maxsize, int):
                raise ValueError(f"maxsize must be a positive integer or None, not {maxsize!r}")
            if maxsize < 1:
                raise ValueError(f"maxsize must be a positive integer or None, not {maxsize!r}")
        it = cls(self, func, iterables, maxsize)
        it.start()
        return it


class Pool(Group):
    """A :class:`Group` of at most ``size`` greenlets (``None``: no limit).

    Adding to a full pool (``spawn``, ``start``, ``add``) waits for a member
    to finish; ``add``/``start`` with ``blocking=False`` or a ``timeout``
    raise :class:`PoolFull` instead.
    """

    def __init__(self, size: int | None = None, greenlet_class: type | None = None) -> None:
        if size is not None:
            if isinstance(size, bool):
                raise ValueError(f"Pool size must be a positive integer or None, not {size!r}")
            try:
                size = operator.index(size)
            except TypeError:
                raise ValueError(
                    f"Pool size must be a positive integer or None, not {size!r}"
                ) from None
            if size < 1:
                raise ValueError(f"Pool size must be a positive integer or None, not {size!r}")
        #: The maximum number of members (None: unbounded).
        self.size = size
        self._free = size
        self._slot_lot = ParkingLot()  # waiting to take a slot
        self._avail_lot: ParkingLot | None = None  # wait_available() callers
        self._grow_lot: ParkingLot | None = None  # imap feeders that could use another slot
        if greenlet_class is not None:
            self.greenlet_class = greenlet_class
        Group.__init__(self)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._plain = all(
            getattr(cls, name) is getattr(Pool, name)
            for name in ("add", "start", "spawn", "discard", "_discard", "_track")
        )

    _plain = True  # no override of how members are added: imap may use workers

    # -- slots ---------------------------------------------------------
    def _acquire(self, blocking: bool, timeout: float | None) -> bool:
        """Take a slot; park while there is none.  False if not blocking or timed out."""
        if self._free > 0:
            self._free -= 1
            return True
        if not blocking:
            return False
        lot = self._slot_lot
        if timeout is None:
            while self._free <= 0:
                lot.park()
        else:
            deadline = monotonic() + timeout
            while self._free <= 0:
                remaining = deadline - monotonic()
                if (remaining <= 0 or not lot.park(remaining)) and self._free <= 0:
                    return False
        self._free -= 1
        return True

    def _release(self) -> None:
        self._free += 1
        if self._slot_lot:
            self._slot_lot.unpark()
        if self._avail_lot:
            self._avail_lot.unpark_all()
        if self._grow_lot:
            self._grow_lot.unpark_all()

    def _wait_free(self, timeout: float | None) -> None:
        """Park until a slot may be free (or ``timeout``); the caller re-checks."""
        lot = self._avail_lot
        if lot is None:
            lot = self._avail_lot = ParkingLot()
        lot.park(timeout)

    def _wait_to_grow(self) -> None:
        """Like :meth:`_wait_free`, for an imap feeder: imap workers give their
        slots up to spawners and wait_available() callers, not to feeders."""
        lot = self._grow_lot
        if lot is None:
            lot = self._grow_lot = ParkingLot()
        lot.park()

    def _wanted(self) -> bool:
        """Whether anyone (other than an imap feeder) is waiting for a slot."""
        return bool(self._slot_lot) or bool(self._avail_lot)

    def full(self) -> bool:
        """True if adding a greenlet would block."""
        free = self._free
        return free is not None and free <= 0

    def free_count(self) -> int:
        """How many more greenlets could be added without blocking (1 if unbounded)."""
        free = self._free
        if free is None:
            return 1
        return free if free > 0 else 0

    def wait_available(self, timeout: float | None = None) -> int:
        """Wait until a slot is free or ``timeout`` passes; return :meth:`free_count`."""
        if self._free is None:
            return 1
        if self._free > 0:
            return self._free
        if timeout is None:
            while self._free <= 0:
                self._wait_free(None)
        else:
            deadline = monotonic() + timeout
            while self._free <= 0:
                remaining = deadline - monotonic()
                if remaining <= 0:
                    break
                self._wait_free(remaining)
        return self.free_count()

    # -- membership ----------------------------------------------------
    def add(self, greenlet: Any, blocking: bool = True, timeout: float | None = None) -> None:
        """Track ``greenlet``, first waiting for a free slot.

        Raises :class:`PoolFull` if the pool is full and ``blocking`` is
        false, or ``timeout`` passes first.  Adding a member again does nothing.
        """
        if greenlet in self.greenlets:
            return
        if self._free is None:
            self._track(greenlet)
            return
        if not self._acquire(blocking, timeout):
            raise PoolFull(f"{self!r} is full (size {self.size})")
        if greenlet in self.greenlets:  # added by someone else while we waited
            self._release()
            return
        try:
            self._track(greenlet)
        except BaseException:
            self._release()
            raise

    def start(self, greenlet: Any, blocking: bool = True, timeout: float | None = None) -> None:
        """Add the unstarted ``greenlet`` (as :meth:`add`) and start it."""
        self.add(greenlet, blocking, timeout)
        greenlet.start()

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} at {id(self):#x} size={self.size} "
                f"members={len(self.greenlets)}>")


# -- imap ------------------------------------------------------------------


class _TaskLink:
    """Link target delivering one per-item greenlet's outcome to its imap."""

    __slots__ = ("imap", "index")

    def __init__(self, imap: IMapUnordered, index: int) -> None:
        self.imap = imap
        self.index = index

    def __call__(self, greenlet: Any) -> None:
        if greenlet.successful():
            self.imap._deliver(self.index, True, greenlet.value)
        else:
            self.imap._deliver(self.index, False, greenlet.exception)


class _WorkerCall:
    """Error-report context naming the call a worker was running."""

    __slots__ = ("worker", "func", "args")

    def __init__(self, worker: Greenlet, func: Callable[..., Any], args: tuple) -> None:
        self.worker = worker
        self.func = func
        self.args = args

    def __repr__(self) -> str:
        name = getattr(self.func, "__qualname__", None) or repr(self.func)
        return f"{self.worker!r} calling {name}({_format_args(self.args, {})})"


class IMapUnordered(Greenlet):
    """The iterator returned by ``imap_unordered``: results in completion order.

    It is also the greenlet that feeds the group: it takes items from the
    input and starts greenlets for them (or, on a plain bounded Pool, starts
    worker greenlets that take the items themselves; see the module
    docstring).  Killing it stops taking input; the iterator still yields
    the results of items already taken, then ends.
    """

    def __init__(self, group: Group, func: Callable[..., Any], iterables: tuple,
                 maxsize: int | None) -> None:
        Greenlet.__init__(self)
        self._group = group
        self._func = func
        # Shortest input wins, as with map(); a bad iterable fails here, in the caller.
        self._items = enumerate(zip(*iterables, strict=False))
        self._maxsize = maxsize
        self._taken = 0  # items taken from the input (an input error counts as one)
        self._consumed = 0  # results handed out
        self._exhausted = False  # no more items will be taken
        self._init_results()
        self._lot = ParkingLot()  # consumers waiting for a result
        self._feed_lot = ParkingLot()  # the feeder waiting for room or a worker to exit
        self._input_lot: ParkingLot | None = None  # workers waiting for their turn at the input
        self._taking = False  # a worker is inside next(input)
        self._workers = 0
        self._use_workers = (
            isinstance(group, Pool) and type(group)._plain
            and group._free is not None and group.greenlet_class is Greenlet
        )
        self.rawlink(self._feeder_exit)

    def _init_results(self) -> None:
        self._results: Any = deque()

    def __iter__(self) -> IMapUnordered:
        return self

    def __next__(self) -> Any:
        results = self._results
        while not results:
            if self._finished():
                raise StopIteration
            self._lot.park()
        ok, value = results.popleft()
        self._consumed += 1
        if self._maxsize is not None and self._feed_lot:
            self._feed_lot.unpark()
        if ok:
            return value
        raise value

    def _finished(self) -> bool:
        # Every taken item was handed out, and the workers have left the pool
        # (so a caller that finished iterating finds the pool's slots free).
        return self._exhausted and self._consumed == self._taken and not self._workers

    def _deliver(self, index: int, ok: bool, value: Any) -> None:
        self._results.append((ok, value))
        if self._lot:
            self._lot.unpark()

    def _stop(self) -> None:
        """No more input will be taken: wake everyone who waits for that."""
        self._exhausted = True
        if self._lot:
            self._lot.unpark_all()
        if self._feed_lot:
            self._feed_lot.unpark_all()
        if self._input_lot:
            self._input_lot.unpark_all()

    def _input_failed(self, exc: BaseException) -> None:
        # Taking or starting the next item failed: that error is the result
        # at its place, and nothing more is taken.
        index = self._taken
        self._taken += 1
        self._deliver(index, False, exc)
        self._stop()

    def _feeder_exit(self, _self: Any) -> None:
        # Link on ourselves: however the feeder ended (done, killed, even
        # before it started), stop taking input.
        if not self._exhausted:
            self._stop()

    def _room(self) -> bool:
        maxsize = self._maxsize
        return maxsize is None or self._taken - self._consumed < maxsize

    # -- feeding -------------------------------------------------------
    def _run(self) -> None:
        if self._use_workers:
            self._feed_workers()
        else:
            self._feed_tasks()

    def _feed_tasks(self) -> None:
        """One greenlet per item, started through ``group.spawn``."""
        group = self._group
        func = self._func
        items = self._items
        while True:
            while not self._exhausted and not self._room():
                self._feed_lot.park()
            if self._exhausted or group._killing:
                break
            try:
                index, args = next(items)
            except StopIteration:
                break
            except GreenletExit:
                raise
            except BaseException as exc:
                self._input_failed(exc)
                return
            epoch = group._kill_epoch
            try:
                greenlet = group.spawn(func, *args)  # may wait for a slot
            except GreenletExit:
                raise
            except BaseException as exc:  # e.g. a greenlet_class that refused the call
                self._input_failed(exc)
                return
            # Counted only once started: an item lost to a kill of this
            # feeder while it waited for a slot is not waited for.
            self._taken += 1
            greenlet.rawlink(_TaskLink(self, index))
            if group._kill_epoch != epoch:
                # The group was killed while we waited: this item shares the
                # fate of the others, and feeding stops.
                greenlet.kill(block=False)
                break
        self._stop()

    def _want_worker(self) -> bool:
        maxsize = self._maxsize
        if maxsize is None:
            return True  # the pool's slots bound the count
        return self._workers < maxsize - (self._taken - self._consumed)

    def _feed_workers(self) -> None:
        """Keep enough worker greenlets running, one pool slot each."""
        pool: Any = self._group
        while True:
            while not self._exhausted and not self._want_worker():
                self._feed_lot.park()
            if self._exhausted:
                return
            if pool._killing:
                self._stop()
                return
            epoch = pool._kill_epoch
            if self._workers == 0:
                # Queue for a slot like any other spawner.
                pool._acquire(True, None)
            elif not pool._acquire(False, None):
                # Our workers keep going meanwhile; wake when any slot frees.
                pool._wait_to_grow()
                continue
            if pool._kill_epoch != epoch:
                pool._release()  # killed while we waited: stop, as the workers would
                self._stop()
                return
            if self._exhausted or not self._want_worker():
                pool._release()
                continue
            worker = Greenlet(self._work)
            self._workers += 1
            pool.greenlets.add(worker)
            worker.rawlink(pool._discard_link)
            worker.rawlink(self._worker_exit)
            worker.start()

    def _worker_exit(self, worker: Greenlet) -> None:
        # Link on each worker; runs after the pool has discarded it.
        self._workers -= 1
        if self._group._killing:
            self._stop()  # the pool is being killed: don't refill it
        elif self._feed_lot:
            self._feed_lot.unpark()
        if not self._workers and self._exhausted and self._lot:
            self._lot.unpark_all()

    def _take(self) -> Any:
        """Next (index, args) from the input, one worker at a time; None when done."""
        while self._taking:
            lot = self._input_lot
            if lot is None:
                lot = self._input_lot = ParkingLot()
            lot.park()
            if self._exhausted:
                return None
        if not self._room():
            return None  # the feeder starts a worker again when there is room
        self._taking = True
        try:
            item = next(self._items)
        except StopIteration:
            self._stop()
            return None
        except GreenletExit:
            self._stop()  # killed inside the input iterator; it is likely broken now
            raise
        except BaseException as exc:
            self._input_failed(exc)
            return None
        finally:
            self._taking = False
            if self._input_lot:
                self._input_lot.unpark()
        self._taken += 1
        return item

    def _work(self) -> None:
        """A worker's body: take an item, call, deliver; yield between items."""
        pool: Any = self._group
        func = self._func
        deliver = self._deliver
        wanted = pool._wanted
        current = getcurrent()
        gid = id(current)
        hub = current.parent
        while not self._exhausted:
            item = self._take()
            if item is None:
                return
            index, args = item
            try:
                value = copy_context().run(func, *args)
            except GreenletExit as exc:
                deliver(index, True, exc)  # as for a killed per-item greenlet
                raise
            except BaseException as exc:
                deliver(index, False, exc)
                if not isinstance(exc, Exception) and isinstance(exc, hub.SYSTEM_ERROR):
                    raise
                # Reported like a failed per-item greenlet would be.
                hub.handle_error(_WorkerCall(current, func, args), type(exc), exc,
                                 exc.__traceback__)
            else:
                deliver(index, True, value)
            if gid in _local_registry:
                _release_locals(gid)  # the next item starts with fresh locals
            if wanted():
                return  # someone else waits for a slot: hand ours over
            sleep(0)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} at {id(self):#x} taken={self._taken} "
                f"consumed={self._consumed} exhausted={self._exhausted}>")


class IMap(IMapUnordered):
    """The iterator returned by ``imap``: results in input order."""

    def _init_results(self) -> None:
        self._results = {}

    def __next__(self) -> Any:
        results = self._results
        index = self._consumed
        while index not in results:
            if self._finished():
                raise StopIteration
            self._lot.park()
        ok, value = results.pop(index)
        self._consumed = index + 1
        lot = self._lot
        if lot and index + 1 in results:
            lot.unpark()  # another consumer may be waiting for that one
        if self._maxsize is not None and self._feed_lot:
            self._feed_lot.unpark()
        if ok:
            return value
        raise value

    def _deliver(self, index: int, ok: bool, value: Any) -> None:
        self._results[index] = (ok, value)
        if index == self._consumed and self._lot:
            self._lot.unpark()

