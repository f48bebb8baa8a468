"""Make the standard library cooperative (gevent's ``gevent.monkey``).

Call :func:`patch_all` as early as possible, before anything else is
imported, and code written for threads and blocking I/O (``socket``,
``ssl``, ``select``, ``time.sleep``, ``threading``, ``subprocess``,
``queue``...) runs in greenlets instead::

    from greenweave import monkey; monkey.patch_all()

or run an unmodified program patched::

    python -m greenweave.monkey [--verbose] [--no-thread ...] script.py [args]
    python -m greenweave.monkey -m package.module [args]

How a module is patched: for a standard module ``S`` and its greenweave
counterpart ``greenweave.S`` (``greenweave.thread`` for ``_thread``), the
names listed in ``greenweave.S.__implements__`` replace ``S``'s attributes
(``__imports__`` and ``__extensions__`` list what the counterpart merely
re-exports or adds).  A counterpart without ``__implements__`` contributes
every public callable it defines that ``S`` also has and that is a
different object, except exception classes (which must keep their identity
for ``except`` clauses elsewhere).

Every replaced attribute's original is kept (:data:`saved`,
:func:`get_original`); patching again is harmless.  Patching that comes too
late to be fully effective emits a :class:`MonkeyPatchWarning` saying why.
Plugins can watch or veto patching through :mod:`greenweave.events`.
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings
from typing import Any, Iterable

__all__ = [
    "MonkeyPatchWarning",
    "get_original",
    "is_anything_patched",
    "is_module_patched",
    "is_object_patched",
    "main",
    "patch_all",
    "patch_builtins",
    "patch_contextvars",
    "patch_dns",
    "patch_item",
    "patch_module",
    "patch_os",
    "patch_queue",
    "patch_select",
    "patch_selectors",
    "patch_signal",
    "patch_socket",
    "patch_ssl",
    "patch_subprocess",
    "patch_sys",
    "patch_thread",
    "patch_time",
    "remove_item",
    "saved",
]


class MonkeyPatchWarning(RuntimeWarning):
    """Patching happened too late, or in a place, where it cannot fully work;
    the message says why."""


#: ``{module name: {attribute: original value}}`` for everything patched or
#: removed.  (Keys starting with ``_`` are bookkeeping, not module names.)
saved: dict[str, dict[str, Any]] = {}

_MISSING = object()  # the "original" of an attribute that did not exist
_SETTINGS_KEY = "_greenweave_saved_patch_all_module_settings"
_DNS_NAMES = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr",
              "getnameinfo", "getfqdn")
_ALIASES = {"thread": "_thread", "__builtin__": "builtins"}
_SOURCES = {"_thread": "greenweave.thread"}


# -- originals ---------------------------------------------------------------


def is_module_patched(mod_name: str) -> bool:
    """True if anything in module ``mod_name`` was patched (or removed)."""
    return _ALIASES.get(mod_name, mod_name) in saved


def is_object_patched(mod_name: str, item_name: str) -> bool:
    """True if attribute ``item_name`` of module ``mod_name`` was patched."""
    return item_name in saved.get(_ALIASES.get(mod_name, mod_name), ())


def is_anything_patched() -> bool:
    """True once any module has been patched."""
    return any(not name.startswith("_") or name == "_thread" for name in saved)


def get_original(mod_name: str, item_name_or_names: str | Iterable[str]) -> Any:
    """The value(s) a module attribute had before patching.

    ``item_name_or_names`` is one name (returns one value) or a sequence of
    names (returns a list).  Unpatched attributes are read from the module.
    After ``patch_thread``, ``get_original('threading', 'Thread')`` (and
    ``'Timer'``) is a ``Thread`` class that starts a real OS thread.
    """
    mod_name = _ALIASES.get(mod_name, mod_name)
    if isinstance(item_name_or_names, str):
        return _get_originals(mod_name, (item_name_or_names,))[0]
    return _get_originals(mod_name, list(item_name_or_names))


def _get_originals(mod_name: str, names: Iterable[str]) -> list:
    originals = saved.get(mod_name, {})
    module = None
    values = []
    for name in names:
        value = originals.get(name, _MISSING)
        if value is _MISSING:
            if module is None:
                module = importlib.import_module(mod_name)
            value = getattr(module, name)
        elif value is _REMOVED_NOTHING:
            raise AttributeError(f"module {mod_name!r} had no attribute {name!r} "
                                 "before it was patched")
        values.append(value)
    return values


_REMOVED_NOTHING = object()  # saved for an attribute patching added


def patch_item(module: types.ModuleType, attr: str, newitem: Any) -> None:
    """Set ``module.attr = newitem``, remembering the original (once)."""
    olditem = getattr(module, attr, _REMOVED_NOTHING)
    if olditem is newitem:
        return
    saved.setdefault(module.__name__, {}).setdefault(attr, olditem)
    setattr(module, attr, newitem)


def remove_item(module: types.ModuleType, attr: str) -> None:
    """Delete ``module.attr`` (if present), remembering the original."""
    olditem = getattr(module, attr, _REMOVED_NOTHING)
    if olditem is _REMOVED_NOTHING:
        return
    saved.setdefault(module.__name__, {}).setdefault(attr, olditem)
    delattr(module, attr)


def _patch_class_attr(module: types.ModuleType, cls: type, attr: str, newitem: Any) -> None:
    # Class attributes are remembered as "Class.attr" under the module.
    key = f"{cls.__name__}.{attr}"
    saved.setdefault(module.__name__, {}).setdefault(key, cls.__dict__.get(attr))
    setattr(cls, attr, newitem)


# -- warnings ------------------------------------------------------------------


def _queue_warning(message: str, _warnings: list | None) -> None:
    # Inside patch_all, warnings are collected and emitted once patching is
    # done (the warnings machinery itself may import and use patched things).
    if _warnings is None:
        warnings.warn(message, MonkeyPatchWarning, stacklevel=3)
    else:
        _warnings.append(message)


def _emit_warnings(_warnings: list) -> None:
    for message in _warnings:
        warnings.warn(message, MonkeyPatchWarning, stacklevel=3)


# -- patching one module -------------------------------------------------------


def _import_source(name: str) -> types.ModuleType | None:
    """Import ``greenweave.<name>``; None if this installation has no such module."""
    full = _SOURCES.get(name, "greenweave." + name)
    try:
        return importlib.import_module(full)
    except ModuleNotFoundError as exc:
        if exc.name != full:
            raise  # the module exists but one of its imports is missing
        return None


def _implemented_names(source: types.ModuleType, target: types.ModuleType) -> list[str]:
    """The attributes of ``target`` that ``source`` replaces (see module docstring)."""
    implements = getattr(source, "__implements__", None)
    if implements is not None:
        return [name for name in implements if hasattr(source, name)]
    names = getattr(source, "__all__", None)
    if names is None:
        names = [n for n in vars(source) if not n.startswith("_")]
    result = []
    for name in names:
        if name.startswith("_") or not hasattr(target, name) or not hasattr(source, name):
            continue
        new = getattr(source, name)
        old = getattr(target, name)
        if new is old or isinstance(old, types.ModuleType) or isinstance(new, types.ModuleType):
            continue
        if not callable(old) or not callable(new):
            continue  # constants keep the standard module's values
        if isinstance(old, type) and issubclass(old, BaseException):
            continue  # exceptions keep their identity for `except` clauses
        result.append(name)
    return result


def patch_module(target_module: Any, source_module: Any = None, items: Iterable[str] | None = None,
                 _warnings: list | None = None, _patch_kwargs: dict | None = None,
                 _notify_will_subscribers: bool = True, _notify_did_subscribers: bool = True,
                 _call_hooks: bool = True) -> bool:
    """Replace attributes of ``target_module`` with those of ``source_module``.

    ``target_module`` is a module or its name (``'socket'``); ``source_module``
    a module or name, by default the greenweave counterpart
    (``greenweave.socket``).  ``items`` are the attribute names to replace,
    by default the counterpart's ``__implements__`` (or the names derived as
    the module docstring says).  Subscribers of
    :class:`~greenweave.events.GeventWillPatchModuleEvent` may veto the patch
    by raising :class:`~greenweave.events.DoNotPatch`.

    Returns True if the module was patched, False if vetoed.
    """
    from .events import (
        DoNotPatch,
        GeventDidPatchModuleEvent,
        GeventWillPatchModuleEvent,
        notify_and_call_entry_points,
    )

    if isinstance(target_module, str):
        target = importlib.import_module(_ALIASES.get(target_module, target_module))
    else:
        target = target_module
    if source_module is None:
        source = importlib.import_module(_SOURCES.get(target.__name__,
                                                      "greenweave." + target.__name__))
    elif isinstance(source_module, str):
        source = importlib.import_module(source_module)
    else:
        source = source_module
    names = _implemented_names(source, target) if items is None else list(items)
    patch_kwargs = _patch_kwargs or {}

    if _notify_will_subscribers:
        try:
            notify_and_call_entry_points(
                GeventWillPatchModuleEvent(target.__name__, source, target, names))
        except DoNotPatch:
            return False
    if _call_hooks:
        hook = getattr(source, "_greenweave_will_monkey_patch", None)
        if hook is not None:
            try:
                hook(target, names, lambda msg: _queue_warning(msg, _warnings), **patch_kwargs)
            except DoNotPatch:
                return False
    for name in names:
        if hasattr(source, name):
            patch_item(target, name, getattr(source, name))
    if _call_hooks:
        hook = getattr(source, "_greenweave_did_monkey_patch", None)
        if hook is not None:
            hook(target, names, lambda msg: _queue_warning(msg, _warnings), **patch_kwargs)
    if _notify_did_subscribers:
        notify_and_call_entry_points(GeventDidPatchModuleEvent(target.__name__, source, target))
    return True


def _patch_from(name: str, items: Iterable[str] | None = None, _warnings: list | None = None,
                **patch_kwargs: Any) -> bool:
    """patch_module(name) from greenweave's counterpart, if this installation has one."""
    source = _import_source(name)
    if source is None:
        return False
    return patch_module(name, source, items=items, _warnings=_warnings, _patch_kwargs=patch_kwargs)


# -- the patchers --------------------------------------------------------------


def patch_time() -> None:
    """``time.sleep`` becomes :func:`greenweave.sleep`."""
    _patch_from("time")


def patch_os() -> None:
    """Cooperative ``os.fork`` (the child gets a working hub), ``os.waitpid``
    and whatever else :mod:`greenweave.os` implements."""
    _patch_from("os")


def patch_queue() -> None:
    """:mod:`queue`'s classes (notably the C ``SimpleQueue``, whose ``get``
    would block the whole thread) become greenweave's cooperative ones."""
    _patch_from("queue")


def patch_signal() -> None:
    """``signal.signal`` and friends cooperate with the hub (handlers run in
    greenlets; ``SIGCHLD`` keeps working for child watchers)."""
    _patch_from("signal")


def patch_subprocess() -> None:
    """``subprocess.Popen``, ``run``, ``call``... wait cooperatively."""
    _patch_from("subprocess")


def patch_builtins() -> None:
    """Nothing to do on Python 3 (gevent only patched ``__import__`` on Python 2)."""


def patch_contextvars() -> None:
    """Nothing to do: greenlet gives each greenlet its own context natively."""


def _dns_names(source: types.ModuleType) -> list[str]:
    return list(getattr(source, "__dns__", _DNS_NAMES))


def patch_socket(dns: bool = True, aggressive: bool = True) -> None:
    """``socket.socket``, ``create_connection``, ``socketpair``, ``fromfd``... become
    cooperative; with ``dns`` (the default) so do the name-resolution functions
    (``getaddrinfo``, ``gethostbyname``...)."""
    source = _import_source("socket")
    if source is None:
        return
    import socket

    items = _implemented_names(source, socket)
    if not dns:
        dns_names = set(_dns_names(source))
        items = [name for name in items if name not in dns_names]
    patch_module(socket, source, items=items)


def patch_dns() -> None:
    """Only the name-resolution functions of :mod:`socket` (resolved through the
    hub's resolver)."""
    source = _import_source("socket")
    if source is None:
        return
    import socket

    implemented = set(_implemented_names(source, socket))
    patch_module(socket, source, items=[n for n in _dns_names(source) if n in implemented])


def patch_select(aggressive: bool = True) -> None:
    """``select.select`` and ``select.poll`` become cooperative; with
    ``aggressive``, the objects that would block the hub (``epoll``,
    ``kqueue``, ``devpoll``) are removed.  Then :func:`patch_selectors`."""
    source = _import_source("select")
    if source is not None:
        import select

        if patch_module(select, source) and aggressive:
            for name in ("epoll", "kqueue", "kevent", "devpoll"):
                replacement = getattr(source, name, None)
                if replacement is None or replacement is getattr(select, name, None):
                    remove_item(select, name)  # nothing cooperative to offer instead
    patch_selectors(aggressive=aggressive)


def patch_selectors(aggressive: bool = True) -> None:
    """``selectors.DefaultSelector`` becomes greenweave's cooperative selector;
    ``SelectSelector`` and ``PollSelector`` use the cooperative ``select``/``poll``;
    with ``aggressive`` the selectors built on blocking kernel objects
    (``EpollSelector``, ``KqueueSelector``, ``DevpollSelector``) are removed."""
    source = _import_source("selectors")
    if source is None:
        return
    import selectors

    if not patch_module(selectors, source):
        return
    gselect = _import_source("select")
    if gselect is not None:
        if hasattr(selectors, "SelectSelector") and hasattr(gselect, "select"):
            _patch_class_attr(selectors, selectors.SelectSelector, "_select",
                              staticmethod(gselect.select))
        if hasattr(selectors, "PollSelector") and hasattr(gselect, "poll"):
            _patch_class_attr(selectors, selectors.PollSelector, "_selector_cls", gselect.poll)
    if aggressive:
        for name in ("EpollSelector", "KqueueSelector", "DevpollSelector"):
            replacement = getattr(source, name, None)
            if replacement is None or replacement is getattr(selectors, name, None):
                remove_item(selectors, name)  # nothing cooperative to offer instead


def _modules_holding(module: types.ModuleType, names: Iterable[str]) -> list[str]:
    """Names of loaded modules that hold one of ``module``'s ``names`` directly
    (``from module import name``): patching ``module`` cannot reach those."""
    wanted = {id(getattr(module, n)): n for n in names if hasattr(module, n)}
    found = []
    for mod_name, mod in list(sys.modules.items()):
        if mod is None or mod is module or mod_name.startswith("greenweave"):
            continue
        try:
            namespace = vars(mod)
        except TypeError:
            continue
        for attr, value in list(namespace.items()):
            if id(value) in wanted and wanted[id(value)] == attr:
                found.append(mod_name)
                break
    return sorted(found)


def patch_ssl(_warnings: list | None = None, _first_time: bool = True) -> None:
    """:mod:`ssl`'s ``SSLContext``/``SSLSocket``/``wrap_socket``... become
    cooperative (from ``greenweave.ssl``; nothing happens if this
    installation has none).

    Warns (:class:`MonkeyPatchWarning`) when :mod:`ssl` was imported first:
    modules that took names from it then keep the unpatched objects.
    """
    if "ssl" in sys.modules and _first_time and not is_module_patched("ssl"):
        ssl = sys.modules["ssl"]
        holders = _modules_holding(ssl, ("SSLContext", "SSLSocket", "wrap_socket",
                                         "create_default_context"))
        message = ("Monkey-patching ssl after ssl has already been imported: objects other "
                   "modules took from ssl before patching stay unpatched and may block or "
                   "fail. Call greenweave.monkey.patch_all() before anything imports ssl "
                   "(e.g. requests, urllib3, http.client, asyncio).")
        if holders:
            message += f" Modules holding unpatched ssl objects: {holders}."
        _queue_warning(message, _warnings)
    _patch_from("ssl", _warnings=_warnings)


def patch_sys(stdin: bool = True, stdout: bool = True, stderr: bool = True) -> None:
    """Make ``sys.stdin``/``stdout``/``stderr`` cooperative file objects
    (operations run in the hub's thread pool).  Off by default in
    :func:`patch_all`: it makes every ``print`` slower."""
    try:
        from .fileobject import FileObjectThread
    except ImportError:  # pragma: no cover - fileobject.py is part of the package
        return
    names = [n for n, flag in (("stdin", stdin), ("stdout", stdout), ("stderr", stderr)) if flag]
    source = types.ModuleType("greenweave._sys_std")
    for name in names:
        current = getattr(sys, name)
        if current is None or isinstance(current, FileObjectThread):
            continue
        setattr(source, name, FileObjectThread(current, closefd=False))
    items = [n for n in names if hasattr(source, n)]
    if items and patch_module(sys, source, items=items):
        global _sys_std_restorer_registered
        if not _sys_std_restorer_registered:
            import atexit

            atexit.register(_restore_sys_std)
            _sys_std_restorer_registered = True


_sys_std_restorer_registered = False


def _restore_sys_std() -> None:
    # At exit (before the interpreter flushes the standard streams, by which
    # time greenlets can no longer run): flush the cooperative wrappers and
    # put the original streams back.
    from .fileobject import FileObjectThread

    for name in ("stdin", "stdout", "stderr"):
        current = getattr(sys, name, None)
        original = saved.get("sys", {}).get(name)
        if isinstance(current, FileObjectThread) and original is not None:
            try:
                if name != "stdin":
                    current.flush()
            except Exception:
                pass
            setattr(sys, name, original)


# -- threads -----------------------------------------------------------------


def _native_threads_running(threading_mod: types.ModuleType) -> list[str]:
    """Names of threads other than the main one (and than dummies) that are alive."""
    main = threading_mod.main_thread()
    names = []
    for thread in list(threading_mod._active.values()):
        if thread is main or isinstance(thread, threading_mod._DummyThread):
            continue
        try:
            alive = thread.is_alive()
        except Exception:  # pragma: no cover - a half-initialised thread
            alive = True
        if alive:
            names.append(thread.name)
    return names


def patch_thread(threading: bool = True, _threading_local: bool = True, Event: bool = True,
                 logging: bool = True, existing_locks: bool = True,
                 _warnings: list | None = None) -> None:
    """Threads become greenlets (:mod:`greenweave.thread`, :mod:`greenweave.threading`).

    ``threading``: patch the :mod:`threading` module too (``Thread`` runs as a
    greenlet, its locks and conditions cooperate, ``local`` is greenlet-local).
    ``_threading_local``: patch ``_threading_local.local`` as well.
    ``Event``: ``threading.Event`` becomes :class:`greenweave.event.Event`.
    ``logging``: give :mod:`logging` (if already imported) green locks.

    Warns if called from a thread other than the main one, or while other
    native threads are running (they keep running natively, and locks they
    hold that were created before patching stay native).
    """
    from . import thread as gthread

    first_time = not is_module_patched("_thread")
    threading_mod = sys.modules.get("threading")
    if first_time and threading_mod is not None:
        if gthread._native_get_ident() != threading_mod.main_thread().ident:
            _queue_warning(
                "Monkey-patching threads from a thread other than the main thread: "
                "the main thread keeps native locks and threading state created before "
                "patching; call patch_all() from the main thread, first thing.", _warnings)
        else:
            running = _native_threads_running(threading_mod)
            if running:
                _queue_warning(
                    f"Monkey-patching threads while {len(running)} native thread(s) are "
                    f"already running ({', '.join(running)}): they keep running as native "
                    "threads, and locks created before patching stay native (a greenlet "
                    "blocking on one blocks its whole thread). Patch before starting threads.",
                    _warnings)

    patch_module("_thread", gthread, _warnings=_warnings)
    if not threading:
        return
    if first_time and gthread._native_set_sentinel is None:  # pragma: no cover - 3.13+
        _queue_warning(
            f"patch_thread() does not support the threading module of Python "
            f"{sys.version_info[0]}.{sys.version_info[1]} yet: threading.Thread still starts "
            "native threads (locks, events and local are green).", _warnings)
    from . import threading as gthreading  # imports the standard threading module

    threading_mod = sys.modules["threading"]
    if not patch_module(threading_mod, gthreading, _warnings=_warnings):
        return
    # The native Thread/Timer stay reachable through get_original().
    originals = saved.setdefault("threading", {})
    originals.setdefault("Thread", gthreading._NativeThread)
    originals.setdefault("Timer", gthreading._NativeTimer)
    if Event:
        event_cls = gthreading._threading_event_class()
        if event_cls is not None:
            patch_item(threading_mod, "Event", event_cls)
    if _threading_local:
        import _threading_local as tl_mod

        local = gthreading.local
        if local is not tl_mod.local:
            patch_item(tl_mod, "local", local)
    if logging and "logging" in sys.modules:
        _patch_logging(sys.modules["logging"], gthread)


def _patch_logging(logging_mod: types.ModuleType, gthread: types.ModuleType) -> None:
    """Swap the native RLocks :mod:`logging` made at import for green ones (a
    native RLock would let two greenlets of one thread in at once)."""
    lock = getattr(logging_mod, "_lock", None)
    if lock is not None and not isinstance(lock, gthread.RLock):
        owned = getattr(lock, "_is_owned", lambda: False)()
        if not owned:
            patch_item(logging_mod, "_lock", gthread.RLock())
    for wr in list(getattr(logging_mod, "_handlerList", ())):
        handler = wr() if callable(wr) else None
        hlock = getattr(handler, "lock", None)
        if handler is None or hlock is None or isinstance(hlock, gthread.RLock):
            continue
        if not getattr(hlock, "_is_owned", lambda: False)():
            handler.lock = gthread.RLock()


# -- everything ----------------------------------------------------------------

_PATCH_ALL_NAMES = ("socket", "dns", "time", "select", "thread", "os", "ssl", "subprocess", "sys",
                    "aggressive", "Event", "builtins", "signal", "queue", "contextvars")


def _check_repatching(settings: dict, _warnings: list) -> bool:
    """Remember patch_all's settings; warn if a second call asks for different ones.

    Returns True on the first call.
    """
    previous = saved.get(_SETTINGS_KEY)
    if previous is None:
        saved[_SETTINGS_KEY] = dict(settings)
        return True
    if previous != settings:
        changed = {k: v for k, v in settings.items() if previous.get(k) != v}
        before = {k: previous.get(k) for k in changed}
        _warnings.append(
            "Patching more than once will result in the union of all True parameters being "
            f"patched (this call: {_describe(changed)}; before: {_describe(before)}).")
        saved[_SETTINGS_KEY] = {k: bool(previous.get(k)) or bool(v) for k, v in settings.items()}
    return False


def _describe(settings: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(settings.items()))


def patch_all(socket: bool = True, dns: bool = True, time: bool = True, select: bool = True,
              thread: bool = True, os: bool = True, ssl: bool = True, subprocess: bool = True,
              sys: bool = False, aggressive: bool = True, Event: bool = True,
              builtins: bool = True, signal: bool = True, queue: bool = True,
              contextvars: bool = True, **kwargs: Any) -> bool | None:
    """Patch everything asked for (all but ``sys`` by default).

    Call it first thing, in the main thread.  Returns False if a
    :class:`~greenweave.events.GeventWillPatchAllEvent` subscriber vetoed
    patching (:class:`~greenweave.events.DoNotPatch`), True otherwise.
    """
    from .events import (
        DoNotPatch,
        GeventDidPatchAllEvent,
        GeventDidPatchBuiltinModulesEvent,
        GeventWillPatchAllEvent,
        notify_and_call_entry_points,
    )

    settings = {
        "socket": socket, "dns": dns, "time": time, "select": select, "thread": thread,
        "os": os, "ssl": ssl, "subprocess": subprocess, "sys": sys, "aggressive": aggressive,
        "Event": Event, "builtins": builtins, "signal": signal, "queue": queue,
        "contextvars": contextvars,
    }
    _warnings: list[str] = []
    first_time = _check_repatching(settings, _warnings)
    try:
        notify_and_call_entry_points(GeventWillPatchAllEvent(settings, kwargs))
    except DoNotPatch:
        _emit_warnings(_warnings)
        return False

    if os:
        patch_os()
    if thread:
        patch_thread(Event=Event, _warnings=_warnings)
    if time:
        patch_time()
    if sys:
        patch_sys()
    if socket:
        patch_socket(dns=dns, aggressive=aggressive)
    elif dns:
        patch_dns()
    if select:
        patch_select(aggressive=aggressive)
    if ssl:
        patch_ssl(_warnings=_warnings, _first_time=first_time)
    if subprocess:
        patch_subprocess()
    if builtins:
        patch_builtins()
    if signal:
        patch_signal()
    if queue:
        patch_queue()
    if contextvars:
        patch_contextvars()

    notify_and_call_entry_points(GeventDidPatchBuiltinModulesEvent(settings, kwargs))
    notify_and_call_entry_points(GeventDidPatchAllEvent(settings, kwargs))
    _emit_warnings(_warnings)
    return True


# -- python -m greenweave.monkey -------------------------------------------------

_USAGE = """\
usage: python -m greenweave.monkey [MONKEY OPTIONS] [--module | -m] script-or-module [ARGS...]

Run a Python script, or with --module/-m a module, after monkey-patching the
standard library, exactly as `python script [ARGS]` / `python -m module [ARGS]`
would run it (sys.argv, __main__, tracebacks and exit status included).

MONKEY OPTIONS:
  --verbose     print what was patched (on stderr) before running the program
  --no-NAME     do not patch NAME; everything else patch_all() patches is patched
  --NAME        patch only the NAMEs given this way
  -h, --help    show this message
NAME: {names}
"""


def _usage() -> str:
    return _USAGE.format(names=", ".join(_PATCH_ALL_NAMES))


def _usage_error(message: str) -> None:
    sys.stderr.write(_usage())
    sys.stderr.write(f"python -m greenweave.monkey: error: {message}\n")
    sys.exit(2)


def _option_name(text: str) -> str | None:
    for name in _PATCH_ALL_NAMES:
        if text == name or text == name.lower():
            return name
    return None


def _parse_args(argv: list[str]) -> tuple[dict, bool, bool, list[str]]:
    options: dict[str, bool] = {}
    verbose = False
    module = False
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-m", "--module"):
            module = True
            i += 1
            break
        if arg.startswith("-m") and not arg.startswith("--"):
            module = True
            argv = argv[:i] + [arg[2:]] + argv[i + 1:]
            break
        if arg in ("-h", "--help"):
            sys.stdout.write(_usage())
            sys.exit(0)
        if arg == "--":
            i += 1
            break
        if arg == "--verbose":
            verbose = True
        elif arg.startswith("--no-") and _option_name(arg[5:]):
            options[_option_name(arg[5:])] = False  # type: ignore[index]
        elif arg.startswith("--") and _option_name(arg[2:]):
            options[_option_name(arg[2:])] = True  # type: ignore[index]
        elif arg.startswith("-") and arg != "-":
            _usage_error(f"unknown option {arg!r}")
        else:
            break
        i += 1
    rest = argv[i:]
    if not rest:
        _usage_error("a module name is required after -m/--module" if module
                     else "no script or module to run")
    if any(options.values()):
        # Naming what to patch means: only that.
        options = {name: options.get(name, False) for name in _PATCH_ALL_NAMES}
    return options, verbose, module, rest


def _print_patched(options: dict) -> None:
    write = sys.stderr.write
    args = ", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"
    write(f"greenweave.monkey: patch_all({args})\n")
    for mod_name, items in sorted(saved.items()):
        if mod_name == _SETTINGS_KEY:
            continue
        module = sys.modules.get(mod_name)
        patched = sorted(n for n in items if "." in n or hasattr(module, n))
        removed = sorted(n for n in items if "." not in n and not hasattr(module, n))
        if patched:
            write(f"greenweave.monkey: patched {mod_name}: {', '.join(patched)}\n")
        if removed:
            write(f"greenweave.monkey: removed {mod_name}: {', '.join(removed)}\n")


def _interpreter() -> str:
    return sys.executable or "python"


def _new_main(**attrs: Any) -> types.ModuleType:
    import builtins

    module = types.ModuleType("__main__")
    module.__dict__.update(__builtins__=builtins, __annotations__={}, **attrs)
    return module


def _strip_frames(tb: Any, code: types.CodeType) -> Any:
    """The traceback from the program's own top-level frame on (none of ours)."""
    t = tb
    while t is not None:
        if t.tb_frame.f_code is code:
            return t
        t = t.tb_next
    return tb


def _report_via_excepthook(exc: BaseException, tb: Any) -> None:
    """Have the interpreter report ``exc`` (via ``sys.excepthook``, as for an
    uncaught exception, with the same exit status) but with traceback ``tb``."""
    hook = sys.excepthook

    def excepthook(typ: type, value: BaseException, traceback: Any) -> None:
        sys.excepthook = hook
        if value is exc:
            # (The default hook prints value.__traceback__, not its argument.)
            traceback = tb
            value.__traceback__ = tb
        hook(typ, value, traceback)

    sys.excepthook = excepthook


def _exec_main(code: types.CodeType, module: types.ModuleType) -> None:
    sys.modules["__main__"] = module
    try:
        exec(code, module.__dict__)
    except SystemExit:
        raise
    except BaseException as exc:
        _report_via_excepthook(exc, _strip_frames(exc.__traceback__, code))
        raise


def _run_script(path: str, args: list[str]) -> None:
    import io
    import os
    import runpy

    sys.argv[:] = [path, *args]
    safe_path = getattr(sys.flags, "safe_path", False)
    if os.path.isdir(path) or (not path.endswith(".py") and _is_zipfile(path)):
        # A directory or zip file with a __main__.py: runpy knows how.
        if not safe_path:
            sys.path[0] = path
        runpy.run_path(path, run_name="__main__")
        return
    abspath = os.path.abspath(path)
    try:
        with io.open_code(abspath) as f:
            source = f.read()
    except OSError as exc:
        sys.stderr.write(f"{_interpreter()}: can't open file {abspath!r}: "
                         f"[Errno {exc.errno}] {exc.strerror}\n")
        sys.exit(2)
    if not safe_path:
        sys.path[0] = os.path.dirname(os.path.realpath(abspath))
    from importlib.machinery import SourceFileLoader

    module = _new_main(__file__=abspath, __cached__=None, __package__=None, __spec__=None,
                       __doc__=None, __loader__=SourceFileLoader("__main__", abspath))
    try:
        code = compile(source, abspath, "exec", dont_inherit=True)
    except SyntaxError as exc:
        _report_via_excepthook(exc, None)
        raise
    _exec_main(code, module)


def _is_zipfile(path: str) -> bool:
    import zipfile

    try:
        return zipfile.is_zipfile(path)
    except OSError:
        return False


def _run_module(name: str, args: list[str]) -> None:
    import importlib.util

    def fail(message: str) -> None:
        sys.stderr.write(f"{_interpreter()}: {message}\n")
        sys.exit(1)

    if not name or name.startswith("."):
        fail("Relative module names not supported")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, AttributeError, TypeError, ValueError) as exc:
        fail(f"Error while finding module specification for {name!r} "
             f"({type(exc).__name__}: {exc})")
    if spec is None:
        fail(f"No module named {name}")
    if spec.submodule_search_locations is not None:
        pkg_main = name + ".__main__"
        try:
            spec = importlib.util.find_spec(pkg_main)
        except ImportError as exc:
            fail(f"Error while finding module specification for {pkg_main!r} "
                 f"({type(exc).__name__}: {exc})")
        if spec is None:
            fail(f"No module named {pkg_main}; {name!r} is a package and cannot be "
                 "directly executed")
    loader = spec.loader
    try:
        code = loader.get_code(spec.name) if loader is not None else None
    except ImportError as exc:
        fail(f"Error while finding module specification for {spec.name!r} "
             f"({type(exc).__name__}: {exc})")
    if code is None:
        fail(f"No code object available for {spec.name}")
    module = _new_main(__file__=spec.origin, __cached__=spec.cached, __package__=spec.parent,
                       __spec__=spec, __doc__=None, __loader__=loader)
    sys.argv[:] = [spec.origin or spec.name, *args]
    _exec_main(code, module)


def main(argv: list[str] | None = None) -> None:
    """``python -m greenweave.monkey``: patch, then run a script or module
    (see the usage text: ``python -m greenweave.monkey --help``)."""
    if argv is None:
        argv = sys.argv[1:]
    options, verbose, module, rest = _parse_args(list(argv))
    patch_all(**options)
    if verbose:
        _print_patched(options)
    target, args = rest[0], rest[1:]
    if module:
        _run_module(target, args)
    else:
        _run_script(target, args)


if __name__ == "__main__":
    # `python -m greenweave.monkey` runs this file as __main__, a second copy
    # of the module: hand over to the real greenweave.monkey so that patching
    # state (saved originals) lives in one place.
    from greenweave.monkey import main as _main

    _main()
