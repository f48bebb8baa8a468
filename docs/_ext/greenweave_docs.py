"""Sphinx helpers for greenweave's API reference.

``.. greenweave-module:: MODULE`` writes one module's reference page body:

* ``automodule`` with ``:members:`` for the objects this module is the home
  of, so their text is the docstring ``help()`` shows;
* a short entry for each name that is the same object as one documented in
  another greenweave module (``greenweave.sleep`` is ``greenweave.hub.sleep``),
  pointing there instead of repeating it;
* a short entry for each name re-exported unchanged from the standard library
  or ``greenlet``, pointing at the original (for ``socket`` and ``ssl``, which
  re-export hundreds of constants, one sentence instead).

So every public name gets a place in the reference and in ``objects.inv``,
which ``docs/check_api_docs.py`` verifies.  That script uses the same
:func:`classify`, so the build and the check agree on what must carry a
docstring of its own.

``.. greenweave-settings::`` renders the table of ``GREENWEAVE_*`` settings
from ``greenweave._config`` itself, so it cannot go stale.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from greenweave_api import (
    COUNTERPARTS,
    OPTIONAL_MODULES,
    SUMMARY_ONLY,
    classify,
    first_line,
    home_of,
    kind,
    origin_name,
    plain_signature,
)
from sphinx.ext.intersphinx import resolve_reference_detect_inventory
from sphinx.util.docutils import SphinxDirective


class ModuleDirective(SphinxDirective):
    """``.. greenweave-module:: MODULE`` (see the module docstring).

    Options: ``:exclude-members:`` names documented by hand on the page.
    """

    required_arguments = 1
    option_spec = {"exclude-members": directives.unchanged}

    def _ref(self, role: str, target: str) -> str:
        inventory = getattr(self.env, "intersphinx_inventory", {}) or {}
        kinds = {"exc": ("exception", "class"), "class": ("class", "exception"),
                 "func": ("function", "method"), "data": ("data", "attribute")}[role]
        for objtype in kinds:
            if target in inventory.get(f"py:{objtype}", {}):
                return f":py:obj:`{target}`"
        return f"``{target}``"

    def _parse(self, lines: list[str], source: str) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source=source), self.content_offset, container)
        return container.children

    def run(self) -> list[nodes.Node]:
        modname = self.arguments[0]
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            if modname not in OPTIONAL_MODULES:
                raise
            return self._parse([
                ".. py:module:: " + modname, "",
                ".. note::", "",
                f"   ``{modname}`` could not be imported where these pages were built "
                f"({type(exc).__name__}: {exc}), so its reference is not included here.",
            ], f"<{modname}>")

        by_hand = {n.strip() for n in self.options.get("exclude-members", "").split(",")}
        by_hand.discard("")
        own, rex = classify(modname)
        aliases: dict[str, tuple[str, str]] = {}
        for name in own:
            home = home_of(modname, name, getattr(module, name))
            if home[0] != modname:
                aliases[name] = home
        excluded = sorted(set(rex) | set(aliases) | by_hand)

        lines = [f".. automodule:: {modname}", "   :members:"]
        if excluded:
            lines.append("   :exclude-members: " + ", ".join(excluded))
        lines.append("")

        if aliases:
            title = "Also available here"
            lines += [".. rubric:: " + title, ""]
            lines.append("These names are the same objects as those documented in full "
                         "in the module named:")
            lines.append("")
            for name, (home_mod, home_name) in aliases.items():
                obj = getattr(module, name)
                directive, role = kind(obj)
                signature = plain_signature(obj) if directive != "data" else ""
                lines += [f".. py:{directive}:: {name}{signature}", f"   :module: {modname}", "",
                          f"   The same object as :py:{role}:`{home_mod}.{home_name}`: "
                          + first_line(obj), ""]

        counterpart = COUNTERPARTS.get(modname)
        if rex and modname in SUMMARY_ONLY:
            lines += [".. rubric:: Re-exported unchanged", ""]
            lines.append(
                f"Every other public name of the standard :mod:`{counterpart}` module "
                f"({len(rex)} constants, exceptions and helpers in this Python) is the "
                "standard library's own object, re-exported unchanged.")
            lines.append("")
        elif rex:
            lines += [".. rubric:: Re-exported unchanged", ""]
            lines.append("These names are the very same objects as in the module named, "
                         "provided so that code written for the standard library (or for "
                         "gevent) finds them here:")
            lines.append("")
            for name in rex:
                obj = getattr(module, name)
                directive, role = kind(obj)
                target = self._ref(role, origin_name(modname, name, obj))
                lines += [f".. py:{directive}:: {name}", f"   :module: {modname}", "",
                          f"   The same object as {target}.", ""]
        return self._parse(lines, f"<{modname}>")


class SettingsDirective(SphinxDirective):
    """``.. greenweave-settings::``: a table of every ``GREENWEAVE_*`` variable."""

    def run(self) -> list[nodes.Node]:
        from greenweave import _config

        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 40 60", "",
                 "   * - Environment variable", "     - Meaning"]
        for setting in _config._SETTINGS:
            default = setting.default
            shown = "none" if default is None else f"``{default}``"
            lines += [f"   * - ``{setting.env}``",
                      f"     - {setting.__doc__}  Default: {shown}.  In code: "
                      f"``config.{setting.name}``."]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="<greenweave settings>"),
                                self.content_offset, container)
        return container.children


def _skip_member(app: Any, what: str, name: str, obj: Any, skip: bool, options: Any) -> Any:
    """Skip C methods a class reuses unchanged from a standard base class (the
    methods of ``socket.socket`` that never block): the stdlib documents them."""
    if what in ("class", "exception") and not inspect.isfunction(obj) and (
        inspect.ismethoddescriptor(obj) or inspect.isbuiltin(obj)
    ):
        return True
    return None


def _import_dotted(name: str) -> Any:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return _NOTHING
        return obj
    return _NOTHING


_NOTHING = object()


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Second chance for references into the Python docs that intersphinx missed:

    * the right object under another role (``:class:`select.poll``` names a
      function in the CPython inventory);
    * a standard object named by the private module that defines it, as
      signatures and ``show-inheritance`` do
      (``concurrent.futures._base.Future`` is ``concurrent.futures.Future``):
      tried only when both names import to the very same object.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    inventory = getattr(env, "intersphinx_inventory", None) or {}
    parts = target.split(".")
    candidates = [target] + [
        ".".join(parts[:cut] + parts[-1:]) for cut in range(len(parts) - 2, 0, -1)
    ]
    for candidate in candidates:
        if not any(candidate in entries for objtype, entries in inventory.items()
                   if objtype.startswith("py:")):
            continue
        if candidate != target:
            original = _import_dotted(target)
            if original is _NOTHING or original is not _import_dotted(candidate):
                continue
        new = node.deepcopy()
        new["reftarget"] = candidate
        new["reftype"] = "obj"
        return resolve_reference_detect_inventory(env, new, contnode)
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("missing-reference", _missing_reference, priority=900)
    app.add_directive("greenweave-module", ModuleDirective)
    app.add_directive("greenweave-settings", SettingsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
