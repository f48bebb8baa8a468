"""Debugging helpers: run-state dumps, greenlet trees, switch assertions.

* :func:`format_run_info` / :func:`print_run_info`: every native thread with
  its stack, then every greenlet (as :class:`GreenletTree` per thread) with
  its name, parent, spawning greenlet, spawn-tree locals, greenlet-locals
  and stack.
* :class:`GreenletTree`: greenlets arranged by who spawned whom, rooted at
  each thread's main greenlet.
* :class:`assert_switches`: fail a block of code that does not yield.
* :class:`wrap_errors`: turn chosen exceptions into return values.

The text output is for people; its exact form is not an API.
"""

from __future__ import annotations

import gc
import sys
import threading
import traceback
from _thread import get_ident
from time import perf_counter
from typing import Any, Callable, Iterator
from weakref import ReferenceType

import greenlet as _greenlet_mod
from greenlet import getcurrent
from greenlet import greenlet as RawGreenlet

from ._core.hub import get_hub

__all__ = ["GreenletTree", "assert_switches", "format_run_info", "print_run_info", "wrap_errors"]

_MISSING = object()


class wrap_errors:
    """Call ``func`` and return, rather than raise, any exception in ``errors``.

    ``wrap_errors((KeyError, ValueError), func)(*args)`` returns the
    exception instance instead of raising it; other exceptions propagate.
    The wrapper's ``str``/``repr`` and other attributes are ``func``'s.
    """

    def __init__(self, errors: type[BaseException] | tuple[type[BaseException], ...],
                 func: Callable[..., Any]) -> None:
        self.__errors = errors
        self.__func = func

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.__func(*args, **kwargs)
        except self.__errors as ex:
            return ex

    def __str__(self) -> str:
        return str(self.__func)

    def __repr__(self) -> str:
        return repr(self.__func)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.__func, name)


# -- run info ----------------------------------------------------------


def _stack_lines(frame: Any, limit: int | None) -> str:
    return "".join(traceback.format_stack(frame, limit))


def format_run_info(thread_stacks: bool = True, greenlet_stacks: bool = True,
                    limit: int | None = None,
                    current_thread_ident: int | None = None) -> list[str]:
    """Describe every native thread and every greenlet of the process.

    Returns a list of text lines (some spanning several physical lines).
    ``thread_stacks``/``greenlet_stacks`` turn the stacks off; ``limit``
    goes to :func:`traceback.format_stack`.  ``current_thread_ident`` marks
    that thread as the current one (default: the calling thread).
    """
    if current_thread_ident is None:
        current_thread_ident = get_ident()
    lines: list[str] = []
    _format_threads(lines, thread_stacks, limit, current_thread_ident)
    _format_greenlets(lines, greenlet_stacks, limit)
    return lines


def print_run_info(thread_stacks: bool = True, greenlet_stacks: bool = True,
                   limit: int | None = None, file: Any = None) -> None:
    """Print :func:`format_run_info` to ``file`` (default ``sys.stderr``)."""
    if file is None:
        file = sys.stderr
    for line in format_run_info(thread_stacks, greenlet_stacks, limit):
        print(line, file=file)


def _banner(lines: list[str], title: str) -> None:
    lines.append("*" * 80)
    lines.append(f"* {title}")
    lines.append("*" * 80)


def _format_threads(lines: list[str], stacks: bool, limit: int | None,
                    current_ident: int) -> None:
    _banner(lines, "Threads")
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sorted(sys._current_frames().items()):
        name = names.get(ident)
        label = f"Thread {ident:#x}"
        if name:
            label += f" ({name})"
        if ident == current_ident:
            label += " (CURRENT)"
        lines.append(label)
        if stacks:
            lines.append(_stack_lines(frame, limit))
        lines.append("")
        del frame


def _format_greenlets(lines: list[str], stacks: bool, limit: int | None) -> None:
    _banner(lines, "Greenlets")
    details = {
        "running_stacks": stacks,
        "running_stack_limit": limit,
        "spawning_stacks": stacks,
        "locals": True,
    }
    for tree in GreenletTree.forest():
        lines.append("---- Thread boundary")
        lines.extend(tree.format_lines(details=details))


# -- greenlet trees ------------------------------------------------------


def _root_of(glet: RawGreenlet) -> RawGreenlet:
    while glet.parent is not None:
        glet = glet.parent
    return glet


def _spawning_greenlet(glet: RawGreenlet) -> Any:
    """``glet.spawning_greenlet`` dereferenced (it is a weak reference); None if
    the spawner is gone, _MISSING if none is recorded (raw greenlets)."""
    spawner = getattr(glet, "spawning_greenlet", _MISSING)
    if isinstance(spawner, ReferenceType):
        spawner = spawner()
    return spawner


def _spawner_of(glet: RawGreenlet) -> RawGreenlet | None:
    """Who started ``glet``: its spawning greenlet if recorded, else its parent."""
    spawner = _spawning_greenlet(glet)
    return glet.parent if spawner is _MISSING else spawner


def _local_values(glet: RawGreenlet) -> list[tuple[type, int, dict]]:
    """(local class, id, attributes) for each ``local`` the greenlet has values in."""
    from .local import _registry

    owner = _registry.get(id(glet))
    if owner is None:
        return []
    values = []
    for key, r in list(owner.impls.items()):
        impl = r()
        if impl is not None:
            d = impl.dicts.get(id(glet))
            if d:
                values.append((impl.cls, key, d))
    return values


def _status(glet: RawGreenlet) -> str:
    """A suffix saying how a finished (or unstarted) greenlet ended up."""
    if glet.dead:
        exc_info = getattr(glet, "exc_info", None)
        if exc_info:
            return f"; finished with exception {_safe_repr(exc_info[1])}"
        if hasattr(glet, "value"):
            return f"; finished with value {_safe_repr(glet.value)[:60]}"
        return "; finished"
    if not glet and glet.parent is not None:
        return "; not started"
    return ""


class GreenletTree:
    """A greenlet and the greenlets it spawned, recursively.

    Arranged along ``spawning_greenlet`` (a greenlet's *parent* is nearly
    always the hub, which says little).  A greenlet without a recorded
    spawner hangs under its parent; one whose spawner is gone hangs under
    its thread's main greenlet.  ``str()`` is the short form;
    :meth:`format` adds parents, stacks and locals.  Attributes not defined
    here are looked up on the greenlet.
    """

    #: The greenlet at this node.
    greenlet: RawGreenlet | None = None
    #: True for the tree of the calling thread.
    is_current_tree = False
    DEFAULT_DETAILS = {
        "running_stacks": True,
        "running_stack_limit": None,
        "spawning_stacks": True,
        "locals": True,
    }

    def __init__(self, greenlet: RawGreenlet) -> None:
        self.greenlet = greenlet
        self.child_trees: list[GreenletTree] = []

    def add_child(self, tree: GreenletTree) -> None:
        if tree is not self:
            self.child_trees.append(tree)

    @property
    def root(self) -> bool:
        """True if this node's greenlet is a thread's main greenlet."""
        return self.greenlet.parent is None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.greenlet, name)

    # -- building --------------------------------------------------------
    @classmethod
    def _forest(cls) -> tuple[list[GreenletTree], GreenletTree]:
        main = _root_of(getcurrent())
        nodes: dict[int, GreenletTree] = {}
        keep: list[RawGreenlet] = []  # keeps ids valid while we work

        def node(glet: RawGreenlet) -> GreenletTree:
            tree = nodes.get(id(glet))
            if tree is None:
                tree = nodes[id(glet)] = cls(glet)
                keep.append(glet)
            return tree

        current = node(main)
        current.is_current_tree = True
        roots: list[GreenletTree] = [current]
        # type(), not isinstance(): isinstance() reads __class__, which on a
        # greenlet-local would create its attributes for the current greenlet.
        glets = [ob for ob in gc.get_objects() if issubclass(type(ob), RawGreenlet)]
        for glet in glets:
            if glet.parent is None:
                tree = node(glet)
                if tree not in roots:
                    roots.append(tree)
                continue
            spawner = _spawner_of(glet)
            if spawner is None:
                spawner = _root_of(glet)
            node(spawner).add_child(node(glet))
            ident = getattr(glet, "thread_ident", None)  # a hub knows its thread
            if ident is not None and glet.parent.parent is None:
                node(glet.parent).thread_ident = ident
        for glet in keep:
            # A dead main greenlet (thread gone) can still anchor live greenlets.
            if glet.parent is None:
                tree = nodes[id(glet)]
                if tree not in roots:
                    roots.append(tree)
        del glets
        return roots, current

    @classmethod
    def forest(cls) -> list[GreenletTree]:
        """One tree per native thread (per main greenlet), the current thread's first."""
        return cls._forest()[0]

    @classmethod
    def current_tree(cls) -> GreenletTree:
        """The tree of the calling thread."""
        return cls._forest()[1]

    # -- rendering -------------------------------------------------------
    def format_lines(self, details: bool | dict = True) -> list[str]:
        """The tree as a list of lines; ``details`` (True, False or a dict
        like :attr:`DEFAULT_DETAILS`) adds parents, stacks and locals."""
        if details is True:
            details = self.DEFAULT_DETAILS
        elif not details:
            details = {}
        else:
            details = {**self.DEFAULT_DETAILS, **details}
        lines: list[str] = []
        self._render(lines, "", "", details)
        return lines

    def format(self, details: bool | dict = True) -> str:
        """:meth:`format_lines` joined into one string."""
        return "\n".join(self.format_lines(details))

    def __str__(self) -> str:
        return self.format(False)

    def _render(self, lines: list[str], first: str, rest: str, details: dict) -> None:
        glet = self.greenlet
        try:
            _ = glet.name  # type: ignore[attr-defined]  # names a Greenlet; its repr shows it
        except Exception:  # raw greenlets have none; a broken property must not matter
            pass
        label = _safe_repr(glet) + _status(glet)
        if self.root:
            ident = self.__dict__.get("thread_ident")
            if ident is not None:
                label += f" (thread {ident:#x})"
            if self.is_current_tree:
                label += " (current thread)"
        lines.append(first + label)
        if details:
            for detail in self._details(details):
                for text in detail.splitlines():
                    lines.append(f"{rest} :    {text}")
        children = self.child_trees
        for i, child in enumerate(children):
            last = i == len(children) - 1
            child._render(lines, rest + " +--- ", rest + ("      " if last else " |    "),
                          details)

    def _details(self, details: dict) -> Iterator[str]:
        glet = self.greenlet
        if glet is getcurrent():
            yield "Current greenlet"
        if glet.parent is not None:
            yield f"Parent: {_safe_repr(glet.parent)}"
        spawner = _spawning_greenlet(glet)
        if spawner is _MISSING:
            spawner = None
        elif spawner is None:
            yield "Spawned by: (a greenlet that is gone)"
        else:
            yield f"Spawned by: {_safe_repr(spawner)}"
        if details.get("running_stacks"):
            frame = sys._getframe() if glet is getcurrent() else glet.gr_frame
            if frame is not None:
                yield "Running:\n" + _indent(
                    _stack_lines(frame, details.get("running_stack_limit")))
            elif glet.dead:
                yield "Finished"
            elif not glet:
                yield "Not started"
        if details.get("spawning_stacks"):
            stack = getattr(glet, "spawning_stack", None)
            if stack is not None:
                yield "Spawned at:\n" + _indent("".join(traceback.format_stack(stack)))
        if details.get("locals"):
            tree_locals = getattr(glet, "_spawn_tree_locals", None)
            spawner_locals = getattr(spawner, "_spawn_tree_locals", None)
            if tree_locals and tree_locals is not spawner_locals:
                yield "Spawn Tree Locals:\n" + _indent(_safe_repr(tree_locals))
            values = _local_values(glet)
            if values:
                yield "Greenlet Locals:\n" + _indent("\n".join(
                    f"Local {cls!r} at {key:#x}: {_safe_repr(d)}" for cls, key, d in values))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.rstrip("\n").splitlines())


def _safe_repr(ob: Any) -> str:
    try:
        return repr(ob)
    except Exception as ex:  # a broken __repr__ must not break the dump
        return f"<{type(ob).__name__} at {id(ob):#x} (repr failed: {ex!r})>"


# -- assert_switches ---------------------------------------------------


class _FailedToSwitch(AssertionError):
    """Raised by :class:`assert_switches` when the block did not yield."""


class _SwitchTracer:
    """A greenlet trace function measuring the longest stretch without a switch.

    Stretches only count time outside the hub (a hub waiting in the loop is
    idle, not blocking).  In ``hub_only`` mode a stretch runs from leaving
    the hub until switching back into it; otherwise from any switch to the
    next.  Chains to the trace function that was installed before it.
    """

    def __init__(self, hub: Any, hub_only: bool) -> None:
        self.hub = hub
        self.hub_only = hub_only
        self.switched = False
        self.longest = 0.0
        self.last = perf_counter()  # start of the current stretch
        #: the greenlet running now, as far as this tracer has seen
        self.active_greenlet = getcurrent()
        self.previous_trace_function = _greenlet_mod.settrace(self)

    def __call__(self, event: str, args: Any) -> None:
        if event in ("switch", "throw"):
            origin, target = args
            self.active_greenlet = target
            hub = self.hub
            now = perf_counter()
            if self.hub_only:
                if target is hub:
                    self.switched = True
                    if origin is not hub:
                        self._end_stretch(now)
                elif origin is hub:
                    self.last = now
            else:
                self.switched = True
                if origin is not hub:
                    self._end_stretch(now)
                self.last = now
        previous = self.previous_trace_function
        if previous is not None:
            previous(event, args)

    def _end_stretch(self, now: float) -> None:
        stretch = now - self.last
        if stretch > self.longest:
            self.longest = stretch

    def stop(self) -> None:
        """Uninstall (if still installed) and close the running stretch."""
        if _greenlet_mod.gettrace() is self:
            _greenlet_mod.settrace(self.previous_trace_function)
        if getcurrent() is not self.hub:
            self._end_stretch(perf_counter())


class assert_switches:
    """Context manager: raise :class:`AssertionError` (``_FailedToSwitch``) if
    the block does not switch greenlets.

    * Without ``max_blocking_time``, the block must switch at least once
      (into the hub, with ``hub_only``).
    * With it, no stretch of running without switching may last longer
      than ``max_blocking_time`` seconds; a quick block need not switch at
      all, unless ``hub_only`` is set: then it must switch into the hub, and
      stretches are measured from leaving the hub until switching back.

    Time the hub spends waiting for events never counts.  Nothing is raised
    if the block itself raises.  Uses :func:`greenlet.settrace` for the
    duration of the block, chaining to and then restoring the trace
    function that was installed before.
    """

    hub: Any = None
    tracer: _SwitchTracer | None = None
    _entered: float | None = None

    def __init__(self, max_blocking_time: float | None = None, hub_only: bool = False) -> None:
        self.max_blocking_time = max_blocking_time
        self.hub_only = hub_only

    def __enter__(self) -> assert_switches:
        self.hub = get_hub()
        self._entered = perf_counter()
        self.tracer = _SwitchTracer(self.hub, self.hub_only)
        return self

    def __exit__(self, typ: Any, value: Any, tb: Any) -> None:
        tracer = self.tracer
        self.tracer = None
        tracer.stop()
        if typ is not None:
            return
        limit = self.max_blocking_time
        where = "the hub" if self.hub_only else "any greenlet"
        if limit is None or self.hub_only:
            if not tracer.switched:
                elapsed = perf_counter() - self._entered
                raise _FailedToSwitch(
                    f"The block did not switch to {where} ({elapsed:.4f} seconds)"
                    + _where_now())
        if limit is not None and tracer.longest > limit:
            raise _FailedToSwitch(
                f"The block ran {tracer.longest:.4f} seconds without switching to {where} "
                f"(max allowed {limit:.4f} seconds)" + _where_now())


def _where_now() -> str:
    frame = sys._getframe(2)
    return "\nCurrent stack:\n" + _indent(_stack_lines(frame, None))
