"""``Greenlet``: a greenlet with a result, links and a life cycle.

A :class:`Greenlet` runs ``run(*args, **kwargs)`` (or a subclass's ``_run``)
in its own greenlet whose parent is the hub.  It records the outcome (the
return value, or the exception with its traceback), notifies linked callbacks
and wakes joiners when it ends.

Context variables: a greenlet runs in a *copy* of the context of the greenlet
that created it (as ``asyncio`` tasks do), so values set before ``spawn`` are
visible inside, and values set inside stay inside.  (gevent starts greenlets
in an empty context; see the migration notes.)
"""

from __future__ import annotations

import sys
from contextvars import copy_context
from time import monotonic
from typing import Any, Callable, Iterable
from weakref import ref as _wref

from greenlet import GreenletExit, getcurrent
from greenlet import greenlet as RawGreenlet

from ._core.hub import Waiter, get_hub, sleep
from ._core.park import ParkingLot
from ._wait import iwait, wait
from .exceptions import BlockingSwitchOutError
from .timeout import Timeout

__all__ = ["Greenlet", "joinall", "killall"]

_raw_dead = RawGreenlet.dead.__get__


class _StartCompleted:
    """Marks ``_start_event`` once the greenlet has begun running."""

    __slots__ = ()
    pending = False

    def stop(self) -> None:
        pass

    close = stop


_START_COMPLETED = _StartCompleted()


def _format_args(args: tuple, kwargs: dict) -> str:
    parts = [repr(a) for a in args[:10]]
    parts += [f"{k}={v!r}" for k, v in list(kwargs.items())[:10]]
    return ", ".join(parts)


class SpawnedLink:
    """A link callback run in a new greenlet (what :meth:`Greenlet.link` installs)."""

    __slots__ = ("callback",)

    def __init__(self, callback: Callable[[Any], Any]) -> None:
        if not callable(callback):
            raise TypeError(f"Expected callable: {callback!r}")
        self.callback = callback

    def __call__(self, source: Any) -> None:
        g = Greenlet(self.callback, source)
        g.start()

    def __hash__(self) -> int:
        return hash(self.callback)

    def __eq__(self, other: object) -> bool:
        return self.callback == getattr(other, "callback", other)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.callback!r}>"


class SuccessSpawnedLink(SpawnedLink):
    __slots__ = ()

    def __call__(self, source: Any) -> None:
        if source.successful():
            SpawnedLink.__call__(self, source)


class FailureSpawnedLink(SpawnedLink):
    __slots__ = ()

    def __call__(self, source: Any) -> None:
        if not source.successful():
            SpawnedLink.__call__(self, source)


class Greenlet(RawGreenlet):
    """A greenlet that remembers its outcome; gevent's ``Greenlet`` API.

    ``spawning_greenlet`` is a weak reference (as in gevent): call it to get
    the greenlet that created this one, or None once that one is gone.
    """

    # Class-level defaults keep __init__ short (the spawn hot path).
    _links: list | None = None
    _joiners: ParkingLot | None = None
    _notifier: Any = None
    _exc_info: tuple | None = None
    _spawn_tree_locals: dict | None = None
    _ident: int | None = None
    _name: str | None = None
    _killed_before_start = False
    value: Any = None

    def __init__(self, run: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> None:
        hub = get_hub()
        RawGreenlet.__init__(self, None, hub)
        if run is not None:
            if not callable(run):
                raise TypeError(f"The run argument or self._run must be callable, not {run!r}")
            self._run = run
        elif not callable(getattr(self, "_run", None)):
            raise TypeError("The run argument or self._run must be callable")
        self.args = args
        self.kwargs = kwargs
        self._start_event: Any = None
        spawner = getcurrent()
        # A weak reference, as in gevent: call it to get the greenlet (or None).
        self.spawning_greenlet = _wref(spawner)
        if spawner.parent is not None and isinstance(spawner, Greenlet):
            tree = spawner._spawn_tree_locals
            if tree is None:
                tree = spawner._spawn_tree_locals = {}
            self._spawn_tree_locals = tree
        self.gr_context = copy_context()

    def _run(self, *args: Any, **kwargs: Any) -> Any:  # replaced by the run argument
        raise NotImplementedError

    # -- introspection -------------------------------------------------
    @property
    def loop(self) -> Any:
        return self.parent.loop

    @property
    def spawn_tree_locals(self) -> dict:
        """A dict shared by a greenlet spawned from the main greenlet and all its
        descendants; assign a new dict to start a new tree."""
        tree = self._spawn_tree_locals
        if tree is None:
            tree = self._spawn_tree_locals = {}
        return tree

    @spawn_tree_locals.setter
    def spawn_tree_locals(self, value: dict) -> None:
        self._spawn_tree_locals = value

    @property
    def minimal_ident(self) -> int:
        """A small integer unique among this hub's greenlets."""
        ident = self._ident
        if ident is None:
            ident = self._ident = self.parent._next_ident()
        return ident

    @property
    def name(self) -> str:
        name = self._name
        if name is None:
            name = self._name = f"Greenlet-{self.minimal_ident}"
        return name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def dead(self) -> bool:
        """True once finished, or killed before it started."""
        return self._killed_before_start or _raw_dead(self)

    @property
    def started(self) -> bool:
        return bool(self)

    def __bool__(self) -> bool:
        # Scheduled or running, and not finished.
        return self._start_event is not None and self._exc_info is None

    def ready(self) -> bool:
        """True once the greenlet has finished (or was killed before starting)."""
        return self._exc_info is not None or self.dead

    def successful(self) -> bool:
        """True if it finished without an error (GreenletExit counts as success)."""
        exc_info = self._exc_info
        return exc_info is not None and exc_info[1] is None

    @property
    def exception(self) -> BaseException | None:
        """The exception that ended the greenlet, or None."""
        exc_info = self._exc_info
        return exc_info[1] if exc_info is not None else None

    @property
    def exc_info(self) -> tuple | None:
        """``(type, value, traceback)`` if it ended with an error, else None."""
        exc_info = self._exc_info
        if exc_info is not None and exc_info[0] is not None:
            return exc_info
        return None

    def _describe_run(self) -> str:
        func = getattr(self, "_run", None)
        name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
        if "." in name and getattr(func, "__self__", None) is not None:
            name = name.rsplit(".", 1)[-1]
        args = _format_args(self.args, self.kwargs) if (self.args or self.kwargs) else ""
        return f"{name}({args})" if args else name

    def __repr__(self) -> str:
        name = f' "{self._name}"' if self._name is not None else ""
        try:
            detail = self._describe_run()
        except Exception:
            detail = "?"
        return f"<{type(self).__name__}{name} at {id(self):#x}: {detail}>"

    # -- starting --------------------------------------------------------
    def start(self) -> None:
        """Schedule the greenlet to run in the next loop iteration."""
        if self._start_event is None:
            cb = self._start_event = [self.switch, ()]
            self.parent.loop._ready.append(cb)

    def start_later(self, seconds: float) -> None:
        """Schedule the greenlet to run after ``seconds``."""
        if self._start_event is None:
            timer = self.parent.loop.timer(seconds)
            timer.start(self.switch)
            self._start_event = timer

    @classmethod
    def spawn(cls, *args: Any, **kwargs: Any) -> Greenlet:
        """Create and start a greenlet: ``spawn(function, *args, **kwargs)``."""
        g = cls(*args, **kwargs)
        g.start()
        return g

    @classmethod
    def spawn_later(cls, seconds: float, *args: Any, **kwargs: Any) -> Greenlet:
        """Create a greenlet and start it after ``seconds``."""
        g = cls(*args, **kwargs)
        g.start_later(seconds)
        return g

    # -- running -------------------------------------------------------
    def run(self) -> None:
        if self._killed_before_start:
            return
        self._start_event = _START_COMPLETED
        try:
            result = self._run(*self.args, **self.kwargs)
        except:  # noqa: E722 - every outcome is recorded
            self._report_error(sys.exc_info())
        else:
            self._report_result(result)
        finally:
            self.__dict__.pop("_run", None)
            self.args = ()
            self.kwargs = {}

    def _report_result(self, result: Any) -> None:
        self._exc_info = (None, None, None)
        self.value = result
        if self._links or self._joiners:
            self._schedule_notify()

    def _report_error(self, exc_info: tuple) -> None:
        if isinstance(exc_info[1], GreenletExit):
            self._report_result(exc_info[1])
            return
        self._exc_info = exc_info
        if self._links or self._joiners:
            self._schedule_notify()
        self.parent.handle_error(self, *exc_info)

    def _schedule_notify(self) -> None:
        if self._notifier is None:
            hub = get_hub() if self.parent is None else self.parent
            self._notifier = hub.loop.run_callback(self._notify_links)

    def _notify_links(self) -> None:
        self._notifier = None
        joiners = self._joiners
        if joiners:
            joiners.unpark_all()
        links = self._links
        hub = self.parent if self.parent is not None else get_hub()
        while links:
            link = links.pop(0)
            try:
                link(self)
            except:  # noqa: E722 - a bad link never stops the others
                hub.handle_error((link, self), *sys.exc_info())

    # -- links ------------------------------------------------------------
    def rawlink(self, callback: Callable[[Greenlet], Any]) -> None:
        """Call ``callback(self)`` from the hub when this greenlet finishes."""
        if not callable(callback):
            raise TypeError(f"Expected callable: {callback!r}")
        if self._links is None:
            self._links = []
        self._links.append(callback)
        if self.ready() and self._notifier is None:
            self._schedule_notify()

    def link(self, callback: Callable[[Greenlet], Any], SpawnedLink: type = SpawnedLink) -> None:
        """Run ``callback(self)`` in a new greenlet when this one finishes."""
        self.rawlink(SpawnedLink(callback))

    def link_value(self, callback: Callable[[Greenlet], Any],
                   SpawnedLink: type = SuccessSpawnedLink) -> None:
        """Like :meth:`link`, only if the greenlet finished successfully."""
        self.link(callback, SpawnedLink=SpawnedLink)

    def link_exception(self, callback: Callable[[Greenlet], Any],
                       SpawnedLink: type = FailureSpawnedLink) -> None:
        """Like :meth:`link`, only if the greenlet raised an error."""
        self.link(callback, SpawnedLink=SpawnedLink)

    def unlink(self, callback: Callable[[Greenlet], Any]) -> None:
        """Remove a callback installed by a link method."""
        links = self._links
        if links:
            try:
                links.remove(callback)
            except ValueError:
                pass

    def unlink_all(self) -> None:
        if self._links:
            del self._links[:]

    @property
    def has_links(self) -> bool:
        return bool(self._links)

    # -- waiting ---------------------------------------------------------
    def join(self, timeout: float | None = None) -> None:
        """Wait until the greenlet finishes or ``timeout`` passes (no error either way)."""
        if self.ready():
            return
        if getcurrent() is self:
            raise BlockingSwitchOutError(f"{self!r} cannot join itself")
        joiners = self._joiners
        if joiners is None:
            joiners = self._joiners = ParkingLot()
        if timeout is None:
            while not self.ready():
                joiners.park()
            return
        deadline = monotonic() + timeout
        while not self.ready():
            remaining = deadline - monotonic()
            if remaining <= 0 or not joiners.park(remaining):
                return

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Return the result, or raise the exception the greenlet raised.

        Not ready: with ``block=False`` raise :class:`~greenweave.timeout.Timeout` at once;
        otherwise wait up to ``timeout`` and raise :class:`~greenweave.timeout.Timeout` after.
        """
        if not self.ready():
            if not block:
                raise Timeout()
            self.join(timeout)
            if not self.ready():
                raise Timeout(timeout)
        exc_info = self._exc_info
        if exc_info is not None and exc_info[1] is not None:
            raise exc_info[1].with_traceback(exc_info[2])
        if self._killed_before_start and exc_info is None:
            return None
        return self.value

    def throw(self, *args: Any) -> Any:
        """Raise an exception in the greenlet right now (meant to be called from the
        hub); a greenlet that has not started is marked dead and never runs."""
        self._cancel_start()
        if self._killed_before_start or _raw_dead(self):
            return None
        if not RawGreenlet.__bool__(self):
            self._die_before_start(*args)
            return None
        return RawGreenlet.throw(self, *args)

    def _cancel_start(self) -> None:
        ev = self._start_event
        if ev is not None and ev is not _START_COMPLETED:
            if type(ev) is list:  # a queued [function, args] entry
                ev[0] = None
            else:
                ev.stop()

    def _die_before_start(self, exc: Any = GreenletExit, *rest: Any) -> None:
        self._killed_before_start = True
        if isinstance(exc, type):
            exc = exc(*rest) if rest else exc()
        if self._start_event is None:
            self._start_event = _START_COMPLETED
        self._report_error((type(exc), exc, None))
        self.__dict__.pop("_run", None)

    def kill(self, exception: Any = GreenletExit, block: bool = True,
             timeout: float | None = None) -> None:
        """Raise ``exception`` in the greenlet; a greenlet not yet started never runs.

        With ``block`` (the default) wait until it has died or ``timeout`` passed.
        """
        self._cancel_start()
        if self.dead:
            return
        if not RawGreenlet.__bool__(self):
            # Scheduled (or merely created) but not started: it must never run.
            self._die_before_start(exception)
            return
        hub = self.parent
        waiter = Waiter(hub) if block else None
        hub.loop.run_callback(_kill, self, exception, waiter)
        if block:
            waiter.get()
            self.join(timeout)


def _kill(glet: Greenlet, exception: Any, waiter: Waiter | None) -> None:
    try:
        if not glet.dead:
            RawGreenlet.throw(glet, exception)
    except:  # noqa: E722
        glet.parent.handle_error(glet, *sys.exc_info())
    if waiter is not None:
        waiter.switch(None)


def joinall(greenlets: Iterable[Any], timeout: float | None = None, raise_error: bool = False,
            count: int | None = None) -> list:
    """Wait for the greenlets to finish; return those that did.

    ``timeout`` bounds the wait; ``count`` returns after that many finished;
    ``raise_error`` raises the first error seen (in completion order).
    """
    if not raise_error and count is None:
        greenlets = list(greenlets)
        if all(isinstance(g, Greenlet) for g in greenlets):
            # Fast path: joining each in turn finishes when the last one does.
            if timeout is None:
                for g in greenlets:
                    if not g.ready():
                        g.join()
                return greenlets
            deadline = monotonic() + timeout
            for g in greenlets:
                if not g.ready():
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        break
                    g.join(remaining)
            return [g for g in greenlets if g.ready()]
    if not raise_error:
        return wait(greenlets, timeout=timeout, count=count)

    done = []
    for obj in iwait(greenlets, timeout=timeout, count=count):
        if getattr(obj, "exception", None) is not None:
            if hasattr(obj, "_raise_exception"):
                obj._raise_exception()
            exc_info = getattr(obj, "exc_info", None)
            if exc_info and exc_info[1] is not None:
                raise exc_info[1].with_traceback(exc_info[2])
            raise obj.exception
        done.append(obj)
    return done


def killall(greenlets: Iterable[Any], exception: Any = GreenletExit, block: bool = True,
            timeout: float | None = None) -> None:
    """Kill all the greenlets; with ``block``, wait until all are dead.

    Raises :class:`~greenweave.timeout.Timeout` if ``timeout`` passes first.
    """
    greenlets = list(greenlets)
    if not greenlets:
        return
    hub = get_hub()
    alive = []
    for g in greenlets:
        if isinstance(g, Greenlet):
            g._cancel_start()
            if not RawGreenlet.__bool__(g) and not g.dead:
                g._die_before_start(exception)
                continue
        if not g.dead:
            alive.append(g)
    if not alive:
        return
    if getcurrent() is hub:
        _killall(alive, exception)
        return
    hub.loop.run_callback(_killall, alive, exception)
    if block:
        t = Timeout._start_new_or_dummy(timeout)
        try:
            for g in alive:
                if isinstance(g, Greenlet):
                    g.join()
                else:
                    while not g.dead:  # raw greenlets have nothing to join on
                        sleep(0.001)
        finally:
            t.cancel()


def _killall(greenlets: list, exception: Any) -> None:
    for g in greenlets:
        if not g.dead:
            try:
                RawGreenlet.throw(g, exception)
            except:  # noqa: E722
                get_hub().handle_error(g, *sys.exc_info())
