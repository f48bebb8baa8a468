"""What the API reference documents, and how: shared by the Sphinx extension
(``greenweave_docs``) and ``docs/check_api_docs.py``, so the build and the
check agree.  No Sphinx import here: the check can run without it.
"""

from __future__ import annotations

import importlib
import inspect
import re
from types import ModuleType
from typing import Any

#: Every documented module, in the order of the reference's table of contents.
#: ``greenweave`` itself comes last when deciding where an object "lives".
DOC_MODULES = [
    "greenweave",
    "greenweave.greenlet",
    "greenweave.hub",
    "greenweave.timeout",
    "greenweave.event",
    "greenweave.queue",
    "greenweave.lock",
    "greenweave.pool",
    "greenweave.local",
    "greenweave.socket",
    "greenweave.ssl",
    "greenweave.select",
    "greenweave.selectors",
    "greenweave.resolver",
    "greenweave.resolver.thread",
    "greenweave.resolver.blocking",
    "greenweave.resolver.dnspython",
    "greenweave.threadpool",
    "greenweave.subprocess",
    "greenweave.os",
    "greenweave.signal",
    "greenweave.fileobject",
    "greenweave.time",
    "greenweave.monkey",
    "greenweave.thread",
    "greenweave.threading",
    "greenweave.server",
    "greenweave.baseserver",
    "greenweave.pywsgi",
    "greenweave.gunicorn",
    "greenweave.backdoor",
    "greenweave.util",
    "greenweave.events",
    "greenweave.exceptions",
    "greenweave.contextvars",
]

#: Modules that may be missing (optional dependency, or not written yet):
#: their page then says so instead of failing the build.
OPTIONAL_MODULES = {"greenweave.ssl", "greenweave.gunicorn", "greenweave.resolver.dnspython"}

#: The standard module each greenweave module stands in for.
COUNTERPARTS = {
    "greenweave.socket": "socket",
    "greenweave.ssl": "ssl",
    "greenweave.select": "select",
    "greenweave.selectors": "selectors",
    "greenweave.subprocess": "subprocess",
    "greenweave.os": "os",
    "greenweave.signal": "signal",
    "greenweave.thread": "_thread",
    "greenweave.threading": "threading",
    "greenweave.queue": "queue",
    "greenweave.time": "time",
    "greenweave.contextvars": "contextvars",
}

#: Modules whose re-exports are summed up in one sentence, not listed.
SUMMARY_ONLY = {"greenweave.socket", "greenweave.ssl"}

_MISSING = object()


def _is_code(obj: Any) -> bool:
    return inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismethod(obj)


def _is_ours(obj: Any) -> bool:
    owner = getattr(obj, "__module__", None) or ""
    return owner == "greenweave" or owner.startswith("greenweave.")


def _origin_modules(modname: str) -> list[ModuleType]:
    names = [COUNTERPARTS.get(modname), "greenlet", "sys", "builtins"]
    return [importlib.import_module(n) for n in names if n]


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    return isinstance(a, (int, float, str, bytes)) and type(a) is type(b) and a == b


def is_reexport(modname: str, name: str, obj: Any) -> bool:
    """True if ``obj`` (``modname.name``) is an object greenweave did not define."""
    if _is_code(obj):
        return not _is_ours(obj)
    return any(_same(obj, getattr(o, name, _MISSING)) for o in _origin_modules(modname))


def public_names(module: ModuleType) -> list[str]:
    """``__all__`` if the module has one, else the public names it defines."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n for n, v in vars(module).items()
        if not n.startswith("_") and not inspect.ismodule(v) and _is_code(v)
        and getattr(v, "__module__", None) == module.__name__
    ]


def classify(modname: str, names: list[str] | None = None) -> tuple[list[str], list[str]]:
    """(own, reexported) public names of ``modname`` (default: :func:`public_names`)."""
    module = importlib.import_module(modname)
    own, rex = [], []
    for name in names if names is not None else public_names(module):
        if not hasattr(module, name):
            continue
        (rex if is_reexport(modname, name, getattr(module, name)) else own).append(name)
    return own, rex


def own_docstring(obj: Any) -> str | None:
    """The docstring ``help(obj)`` shows for this object itself (a class's own,
    not one inherited from a base class)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
    else:
        doc = getattr(obj, "__doc__", None)
    return doc.strip() if isinstance(doc, str) and doc.strip() else None


def home_of(modname: str, name: str, obj: Any) -> tuple[str, str]:
    """(module, name) where ``obj``, public in ``modname`` as ``name``, is documented
    in full: the module that defines it if that one is documented, else the first
    documented module (``greenweave`` itself last) that exports it."""
    owner = getattr(obj, "__module__", None) if _is_code(obj) else None
    candidates = ([owner] if owner in DOC_MODULES else []) + DOC_MODULES[1:] + DOC_MODULES[:1]
    for candidate in candidates:
        if candidate == modname:
            return modname, name
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        for other in public_names(module):
            if getattr(module, other, _MISSING) is obj:
                return candidate, other
    return modname, name


def kind(obj: Any) -> tuple[str, str]:
    """(directive, role) for an object."""
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "exception", "exc"
        return "class", "class"
    if _is_code(obj):
        return "function", "func"
    return "data", "data"


def origin_name(modname: str, name: str, obj: Any) -> str:
    """The public dotted name of a re-exported object: ``sys.getswitchinterval``,
    ``greenlet.getcurrent`` (not the private ``greenlet._greenlet``), ``OSError``."""
    for origin in _origin_modules(modname):
        if _same(obj, getattr(origin, name, _MISSING)):
            return name if origin.__name__ == "builtins" else f"{origin.__name__}.{name}"
    if _is_code(obj):
        owner = getattr(obj, "__module__", None) or "builtins"
        qual = getattr(obj, "__qualname__", getattr(obj, "__name__", name))
        return qual if owner == "builtins" else f"{owner}.{qual}"
    return name


def plain_signature(obj: Any) -> str:
    """``(a, b=1, *args)``: the signature without annotations (they would need
    resolving in another module's namespace), or ``()`` if there is none."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return "()"
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values()]
    if inspect.isclass(obj) and params and params[0].name == "self":
        params = params[1:]
    return str(sig.replace(parameters=params, return_annotation=inspect.Signature.empty))


def first_line(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring, with cross-reference roles
    turned into literals (they were written relative to another module)."""
    doc = own_docstring(obj) or ""
    first = " ".join(line.strip() for line in doc.split("\n\n", 1)[0].splitlines())
    return re.sub(r":[\w:]+:`~?([^`<]*?)(?:\s*<[^`]*>)?`", r"``\1``", first)
