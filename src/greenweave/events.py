"""Publish/subscribe events for plugins (gevent's ``gevent.events``).

Monkey patching and the hub announce what they are doing by calling
:func:`notify` with one of the event objects below.  Anything in
:data:`subscribers` (a plain list of callables taking the event) is called,
in order; :func:`notify_and_call_entry_points` additionally loads and calls
every ``importlib.metadata`` entry point registered in the event's
``ENTRY_POINT_NAME`` group, which is how an installed distribution hooks in
without being imported by the program, e.g. in ``pyproject.toml``::

    [project.entry-points."greenweave.plugins.monkey.will_patch_all"]
    my_plugin = "my_plugin:on_will_patch_all"

Groups: ``greenweave.plugins.monkey.will_patch_all``,
``greenweave.plugins.monkey.will_patch_module``,
``greenweave.plugins.monkey.did_patch_module``,
``greenweave.plugins.monkey.did_patch_builtins``,
``greenweave.plugins.monkey.did_patch_all`` and
``greenweave.plugins.hub.periodic_monitor_thread_started``.

Entry points are looked up once per ``sys.path`` (installing a plugin while
the program runs needs a ``sys.path`` change to be noticed).

A subscriber of a *will patch* event may raise :class:`DoNotPatch` to veto
it: for a module event that module is left alone, for
:class:`GeventWillPatchAllEvent` nothing is patched at all.

The class names are gevent's, so plugins written against gevent work
unchanged; ``Greenweave*`` aliases are provided for new code.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

__all__ = [
    "subscribers",
    "notify",
    "notify_and_call_entry_points",
    "DoNotPatch",
    "GeventPatchEvent",
    "GeventWillPatchEvent",
    "GeventDidPatchEvent",
    "GeventWillPatchModuleEvent",
    "GeventDidPatchModuleEvent",
    "GeventWillPatchAllEvent",
    "GeventDidPatchBuiltinModulesEvent",
    "GeventDidPatchAllEvent",
    "EventLoopBlocked",
    "MemoryUsageThresholdExceeded",
    "MemoryUsageUnderThreshold",
    "PeriodicMonitorThreadStartedEvent",
    "GreenweavePatchEvent",
    "GreenweaveWillPatchEvent",
    "GreenweaveDidPatchEvent",
    "GreenweaveWillPatchModuleEvent",
    "GreenweaveDidPatchModuleEvent",
    "GreenweaveWillPatchAllEvent",
    "GreenweaveDidPatchBuiltinModulesEvent",
    "GreenweaveDidPatchAllEvent",
]

#: Callables that receive every event passed to :func:`notify`, in list order.
subscribers: list[Callable[[Any], Any]] = []

_PREFIX = "greenweave.plugins."


def notify(event: Any) -> None:
    """Call every subscriber with ``event`` (a snapshot of the list, in order).

    Exceptions (including :class:`DoNotPatch`) propagate to the caller.
    """
    for subscriber in list(subscribers):
        subscriber(event)


# greenweave's entry points by group, scanned once per sys.path: patch_all
# announces some 25 events, and scanning every installed distribution for
# each would cost more than the patching itself.
_entry_point_cache: tuple[tuple[str, ...], dict[str, list]] | None = None


def _entry_points(group: str) -> list:
    global _entry_point_cache
    key = tuple(sys.path)
    cache = _entry_point_cache
    if cache is None or cache[0] != key:
        from importlib.metadata import distributions

        groups: dict[str, list] = {}
        seen_dists = set()
        for dist in distributions():
            name = (dist.metadata["Name"] or "").lower().replace("-", "_")
            if name in seen_dists:  # the same distribution further down sys.path
                continue
            seen_dists.add(name)
            for ep in dist.entry_points:
                if ep.group.startswith(_PREFIX):
                    groups.setdefault(ep.group, []).append(ep)
        cache = _entry_point_cache = (key, groups)
    return cache[1].get(group, [])


def notify_and_call_entry_points(event: Any) -> None:
    """:func:`notify` the subscribers, then call each entry point in the
    event's ``ENTRY_POINT_NAME`` group with the event.

    An entry point may name any callable; it is loaded (imported) on first use.
    """
    notify(event)
    group = getattr(event, "ENTRY_POINT_NAME", None)
    if not group:
        return
    for ep in _entry_points(group):
        plugin = ep.load()
        plugin(event)


class DoNotPatch(BaseException):
    """Raised by a subscriber of a *will patch* event to veto that patch.

    A ``BaseException`` (as in gevent) so that ``except Exception`` blocks in
    between do not swallow it.
    """


# -- monkey patching ---------------------------------------------------------


class GeventPatchEvent:
    """Base of the monkey-patching events: ``source`` is the greenweave module
    (or object) that provides replacements, ``target`` the module patched."""

    def __init__(self, source: Any, target: Any) -> None:
        self.source = source
        self.target = target

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} source={self.source!r} target={self.target!r} "
                f"at {id(self):x}>")


class GeventWillPatchEvent(GeventPatchEvent):
    """Something is about to be patched; subscribers may raise :class:`DoNotPatch`."""


class GeventDidPatchEvent(GeventPatchEvent):
    """Something has been patched."""


class GeventWillPatchModuleEvent(GeventWillPatchEvent):
    """``module_name`` is about to be patched from ``source``: ``target_item_names``
    are the attribute names that will be replaced.  Raise :class:`DoNotPatch`
    to leave this module alone."""

    ENTRY_POINT_NAME = _PREFIX + "monkey.will_patch_module"

    def __init__(self, module_name: str, source: Any, target: Any, items: list[str]) -> None:
        super().__init__(source, target)
        self.module_name = module_name
        self.target_item_names = items


class GeventDidPatchModuleEvent(GeventDidPatchEvent):
    """``module_name`` has been patched from ``source``."""

    ENTRY_POINT_NAME = _PREFIX + "monkey.did_patch_module"

    def __init__(self, module_name: str, source: Any, target: Any) -> None:
        super().__init__(source, target)
        self.module_name = module_name


class _PatchAllMixin:
    """The arguments ``patch_all`` was called with (copies, read-only)."""

    def __init__(self, patch_all_arguments: dict, patch_all_kwargs: dict) -> None:
        super().__init__(None, None)  # type: ignore[call-arg]
        self._patch_all_arguments = patch_all_arguments
        self._patch_all_kwargs = patch_all_kwargs

    @property
    def patch_all_arguments(self) -> dict:
        """The named arguments of ``patch_all`` (``{'socket': True, ...}``)."""
        return dict(self._patch_all_arguments)

    @property
    def patch_all_kwargs(self) -> dict:
        """Any extra keyword arguments passed to ``patch_all``."""
        return dict(self._patch_all_kwargs)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._patch_all_arguments!r} at {id(self):x}>"


class GeventWillPatchAllEvent(_PatchAllMixin, GeventWillPatchEvent):
    """``patch_all`` is about to run; raising :class:`DoNotPatch` cancels it."""

    ENTRY_POINT_NAME = _PREFIX + "monkey.will_patch_all"

    def will_patch_module(self, module_name: str) -> bool:
        """Whether ``patch_all`` was asked to patch ``module_name``."""
        return bool(self.patch_all_arguments.get(module_name))


class GeventDidPatchBuiltinModulesEvent(_PatchAllMixin, GeventDidPatchEvent):
    """``patch_all`` has patched the standard library modules it was asked to."""

    ENTRY_POINT_NAME = _PREFIX + "monkey.did_patch_builtins"


class GeventDidPatchAllEvent(_PatchAllMixin, GeventDidPatchEvent):
    """``patch_all`` has finished."""

    ENTRY_POINT_NAME = _PREFIX + "monkey.did_patch_all"


# -- hub monitoring ----------------------------------------------------------


class EventLoopBlocked:
    """The monitor found ``greenlet`` running for ``blocking_time`` seconds
    without yielding to the hub; ``info`` is a list of report lines."""

    def __init__(self, greenlet: Any, blocking_time: float, info: list,
                 *, hub: Any = None) -> None:
        self.greenlet = greenlet
        self.blocking_time = blocking_time
        self.info = info
        self.hub = hub


class _AbstractMemoryEvent:
    def __init__(self, mem_usage: int, max_allowed: int, memory_info: Any) -> None:
        self.mem_usage = mem_usage
        self.max_allowed = max_allowed
        self.memory_info = memory_info

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} used={self.mem_usage} max={self.max_allowed} "
                f"details={self.memory_info}>")


class MemoryUsageThresholdExceeded(_AbstractMemoryEvent):
    """The process uses ``mem_usage`` bytes, more than ``max_allowed``."""


class MemoryUsageUnderThreshold(_AbstractMemoryEvent):
    """Memory use went back under ``max_allowed`` after peaking at ``max_memory_usage``."""

    def __init__(self, mem_usage: int, max_allowed: int, memory_info: Any,
                 max_usage: int) -> None:
        super().__init__(mem_usage, max_allowed, memory_info)
        self.max_memory_usage = max_usage


class PeriodicMonitorThreadStartedEvent:
    """The hub's monitoring thread ``monitor`` has started (plugins may add
    their own periodic checks to it)."""

    ENTRY_POINT_NAME = _PREFIX + "hub.periodic_monitor_thread_started"

    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor


# Greenweave-named aliases (same classes).
GreenweavePatchEvent = GeventPatchEvent
GreenweaveWillPatchEvent = GeventWillPatchEvent
GreenweaveDidPatchEvent = GeventDidPatchEvent
GreenweaveWillPatchModuleEvent = GeventWillPatchModuleEvent
GreenweaveDidPatchModuleEvent = GeventDidPatchModuleEvent
GreenweaveWillPatchAllEvent = GeventWillPatchAllEvent
GreenweaveDidPatchBuiltinModulesEvent = GeventDidPatchBuiltinModulesEvent
GreenweaveDidPatchAllEvent = GeventDidPatchAllEvent
