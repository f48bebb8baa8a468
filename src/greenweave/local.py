"""Greenlet-local storage: :class:`local`, the greenlet analogue of ``threading.local``.

Each greenlet (including a thread's main greenlet, the hub and raw
greenlets) sees its own set of attributes on a ``local`` instance::

    data = local()
    data.user = "alice"      # visible only in this greenlet

A subclass may define ``__init__``; it runs with the constructor's arguments
when the instance is created, and again in every other greenlet the first
time that greenlet touches the instance.  Names in a subclass's
``__slots__``, properties and other data descriptors are *shared* by all
greenlets, as with ``threading.local``.

A greenlet's values are released when it finishes (for a
:class:`~greenweave.Greenlet`, through a link run by the hub just after it
dies), or when the greenlet object is garbage collected (for any greenlet),
or when the ``local`` itself is collected, whichever comes first.
"""

from __future__ import annotations

from typing import Any
from weakref import ref as _wref

from greenlet import getcurrent

from .greenlet import Greenlet

__all__ = ["local"]

_MISSING = object()


class _Owner:
    """The ``local`` instances one greenlet has values in."""

    __slots__ = ("glet_ref", "impls", "linked")

    def __init__(self, glet: Any, gid: int) -> None:
        # The weakref (and its callback) lives as long as this entry.
        self.glet_ref = _wref(glet, lambda _r, gid=gid: _release_id(gid))
        #: id(impl) -> weakref to the impl (whose callback removes the entry)
        self.impls: dict[int, Any] = {}
        #: whether _on_greenlet_death is linked to the greenlet
        self.linked = False

    def add(self, impl: _Impl, gid: int) -> None:
        key = id(impl)
        if key not in self.impls:
            self.impls[key] = _wref(impl, lambda _r, gid=gid, key=key: _impl_gone(gid, key))


#: id(greenlet) -> _Owner, for every live greenlet with values in some local.
#: An entry goes when its greenlet dies or is collected, or when it no longer
#: has values in any live local; always before the id can be reused.
_registry: dict[int, _Owner] = {}


def _release_id(gid: int) -> None:
    """Drop every local value held for the greenlet with this id, and forget it."""
    owner = _registry.pop(gid, None)
    if owner is None:
        return
    impls = owner.impls
    for r in list(impls.values()):
        impl = r()
        if impl is not None:
            impl.dicts.pop(gid, None)
    impls.clear()
    if owner.linked:
        glet = owner.glet_ref()
        if glet is not None:
            glet.unlink(_on_greenlet_death)


def _impl_gone(gid: int, key: int) -> None:
    # A local was collected: once a greenlet has no values left anywhere,
    # forget it (and take the death link off it).
    owner = _registry.get(gid)
    if owner is not None and owner.impls.pop(key, None) is not None and not owner.impls:
        _release_id(gid)


def _on_greenlet_death(glet: Any) -> None:
    _release_id(id(glet))


class _Impl:
    """Per-``local`` state: each greenlet's attribute dict and the init arguments."""

    __slots__ = ("dicts", "args", "kwargs", "cls", "__weakref__")

    def __init__(self, cls: type, args: tuple, kwargs: dict) -> None:
        self.dicts: dict[int, dict] = {}
        self.args = args
        self.kwargs = kwargs
        self.cls = cls  # for debugging dumps (greenweave.util)


_get_impl = None  # set below to the slot descriptor's __get__


def _new_dict(self: local, impl: _Impl, run_init: bool) -> dict:
    """Create the current greenlet's dict for ``self`` (running ``__init__`` if asked)."""
    glet = getcurrent()
    gid = id(glet)
    owner = _registry.get(gid)
    if owner is None:
        owner = _registry[gid] = _Owner(glet, gid)
        if isinstance(glet, Greenlet) and not glet.ready():
            glet.rawlink(_on_greenlet_death)
            owner.linked = True
    owner.add(impl, gid)
    d = impl.dicts[gid] = {}
    if run_init:
        init = type(self).__init__
        if init is not object.__init__:
            try:
                init(self, *impl.args, **impl.kwargs)
            except BaseException:
                impl.dicts.pop(gid, None)  # the next access tries again
                raise
    return d


# Descriptor kinds, cached per descriptor type: 0 plain value, 1 non-data, 2 data.
_kinds: dict[type, int] = {}


def _kind(tp: type) -> int:
    kind = _kinds.get(tp)
    if kind is None:
        if hasattr(tp, "__set__") or hasattr(tp, "__delete__"):
            kind = 2
        elif hasattr(tp, "__get__"):
            kind = 1
        else:
            kind = 0
        _kinds[tp] = kind
    return kind


def _type_attr(tp: type, name: str) -> Any:
    # The raw class attribute, found along the MRO.  ``_local__mro`` holds the
    # classes' (live) namespaces, so later class changes are seen.
    for ns in tp._local__mro:
        if name in ns:
            return ns[name]
    return _MISSING


class local:
    """Attributes with a separate value in each greenlet (see module docstring)."""

    __slots__ = ("_local__impl", "__weakref__")
    _local__mro: tuple = ()

    def __new__(cls, *args: Any, **kwargs: Any) -> local:
        if (args or kwargs) and cls.__init__ is object.__init__:
            raise TypeError("Initialization arguments are not supported")
        if "_local__mro" not in cls.__dict__:
            # The classes' namespaces along the MRO, for attribute lookups.
            # They are live views: later changes to the classes are seen.
            cls._local__mro = tuple(vars(k) for k in cls.__mro__)
        self = object.__new__(cls)
        impl = _Impl(cls, args, kwargs)
        object.__setattr__(self, "_local__impl", impl)
        _new_dict(self, impl, False)  # Python runs __init__ itself this time
        return self

    def __getattribute__(self, name: str) -> Any:
        impl = _get_impl(self)
        d = impl.dicts.get(id(getcurrent()))
        if d is None:
            d = _new_dict(self, impl, True)
        if name == "__dict__":
            return d
        tp = type(self)
        attr = _MISSING
        for ns in tp._local__mro:  # _type_attr(), inlined: this is the hot path
            if name in ns:
                attr = ns[name]
                break
        if attr is not _MISSING:
            atp = type(attr)
            kind = _kind(atp)
            if kind == 2:
                return atp.__get__(attr, self, tp)
            if name in d:
                return d[name]
            if kind == 1:
                return atp.__get__(attr, self, tp)
            return attr
        try:
            return d[name]
        except KeyError:
            pass
        getattr_hook = _type_attr(tp, "__getattr__")
        if getattr_hook is not _MISSING:
            return getattr_hook(self, name)
        raise AttributeError(f"{tp.__name__!r} object has no attribute {name!r}", name=name,
                             obj=self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "__dict__" or name == "_local__impl":
            raise AttributeError(
                f"{type(self).__name__!r} object attribute {name!r} is read-only"
            )
        impl = _get_impl(self)
        d = impl.dicts.get(id(getcurrent()))
        if d is None:
            d = _new_dict(self, impl, True)
        attr = _type_attr(type(self), name)
        if attr is not _MISSING:
            atp = type(attr)
            if _kind(atp) == 2:
                setter = getattr(atp, "__set__", None)
                if setter is None:
                    raise AttributeError(
                        f"{type(self).__name__!r} object attribute {name!r} is read-only"
                    )
                setter(attr, self, value)
                return
        d[name] = value

    def __delattr__(self, name: str) -> None:
        if name == "__dict__" or name == "_local__impl":
            raise AttributeError(
                f"{type(self).__name__!r} object attribute {name!r} is read-only"
            )
        impl = _get_impl(self)
        d = impl.dicts.get(id(getcurrent()))
        if d is None:
            d = _new_dict(self, impl, True)
        attr = _type_attr(type(self), name)
        if attr is not _MISSING:
            atp = type(attr)
            if _kind(atp) == 2:
                deleter = getattr(atp, "__delete__", None)
                if deleter is None:
                    raise AttributeError(
                        f"{type(self).__name__!r} object attribute {name!r} is read-only"
                    )
                deleter(attr, self)
                return
        try:
            del d[name]
        except KeyError:
            raise AttributeError(
                f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self
            ) from None

    def __copy__(self) -> local:
        """A new instance (built with the same arguments) holding a shallow copy
        of the current greenlet's attributes."""
        impl = _get_impl(self)
        d = impl.dicts.get(id(getcurrent()))
        if d is None:
            d = _new_dict(self, impl, True)
        tp = type(self)
        duplicate = tp(*impl.args, **impl.kwargs)
        dup_impl = _get_impl(duplicate)
        dup_impl.dicts[id(getcurrent())].update(d)
        return duplicate

    def __reduce__(self) -> Any:
        raise TypeError(f"cannot pickle {type(self).__name__!r} object")


local._local__mro = tuple(vars(k) for k in local.__mro__)
_get_impl = local.__dict__["_local__impl"].__get__
