#!/usr/bin/env python3
"""Check that the API reference covers every public name of the gevent-compatible API.

Usage (after building the HTML docs)::

    python docs/check_api_docs.py [--spec PATH] [--inventory PATH] [--members]

For every module and name listed in the API spec (``api_surface.json``;
default ``$GREENWEAVE_API_SPEC``, else ``../shared/spec/api_surface.json``
next to the repository) that greenweave provides:

* a name greenweave defines itself must have a docstring of its own (what
  ``help()`` shows; for a plain value, a ``#:`` comment above its assignment
  or the docstring of its greenweave class);
* the name must appear in the built reference (``objects.inv`` of the HTML
  build, default ``docs/_build/html/objects.inv``), except the standard
  constants that ``greenweave.socket`` and ``greenweave.ssl`` re-export
  unchanged, which their pages sum up in one sentence.

Names the spec lists but greenweave does not provide (yet) are counted and
reported separately: ``api_coverage.py`` is the tool for those.  With
``--members``, public methods of documented classes that have no docstring
are listed too (for information; they do not fail the check).

Prints one line per problem and a summary; exit status 1 if any provided
name lacks a docstring or a reference entry, else 0.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import re
import sys
import zlib
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "_ext"))

from greenweave_api import SUMMARY_ONLY, classify, own_docstring  # noqa: E402


def default_spec() -> str:
    return os.environ.get("GREENWEAVE_API_SPEC") or os.path.join(
        REPO, "..", "shared", "spec", "api_surface.json")


def read_inventory(path: str) -> set[str]:
    """Names of the Python objects in a Sphinx ``objects.inv`` (version 2)."""
    with open(path, "rb") as f:
        header = [f.readline() for _ in range(4)]
        if not header[0].startswith(b"# Sphinx inventory version 2"):
            raise ValueError(f"{path}: not a version 2 Sphinx inventory")
        body = zlib.decompress(f.read()).decode("utf-8")
    names = set()
    for line in body.splitlines():
        match = re.match(r"(.+?)\s+(\S+):(\S+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if match and match.group(2) == "py" and match.group(3) != "module":
            names.add(match.group(1))
        elif match and match.group(3) == "module":
            names.add(match.group(1))
    return names


def _has_attribute_comment(module: Any, name: str) -> bool:
    """A ``#:`` comment right above ``name = ...`` at the top level of the module."""
    try:
        lines = inspect.getsource(module).splitlines()
    except (OSError, TypeError):
        return False
    pattern = re.compile(rf"^{re.escape(name)}\s*(:[^=]*)?=")
    for i, line in enumerate(lines):
        if pattern.match(line) and i > 0 and lines[i - 1].lstrip().startswith("#:"):
            return True
        if pattern.match(line) and "#:" in line:
            return True
    return False


def has_docstring(module: Any, name: str, obj: Any) -> bool:
    if inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismethod(obj):
        return own_docstring(obj) is not None
    if _has_attribute_comment(module, name):
        return True
    cls = type(obj)
    return (cls.__module__ or "").startswith("greenweave") and own_docstring(cls) is not None


def undocumented_members(cls: type) -> list[str]:
    """Public methods and properties defined in ``cls`` itself without a docstring."""
    missing = []
    for attr, value in vars(cls).items():
        if attr.startswith("_"):
            continue
        func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
        if isinstance(func, property) or inspect.isfunction(func):
            if not (func.__doc__ or "").strip():
                missing.append(attr)
    return missing


def check(spec_path: str, inventory_path: str, members: bool) -> int:
    with open(spec_path) as f:
        spec = json.load(f)["modules"]
    inventory = read_inventory(inventory_path)
    no_doc: list[str] = []
    not_in_ref: list[str] = []
    not_provided: list[str] = []
    member_gaps: set[int] = set()
    checked = 0
    for modname, names in spec.items():
        try:
            module = importlib.import_module(modname)
        except ImportError as exc:
            not_provided += [f"{modname}.{n}" for n in names]
            print(f"not provided: module {modname} ({type(exc).__name__}: {exc})")
            continue
        if modname not in inventory:
            not_in_ref.append(modname)
            print(f"NOT IN REFERENCE: module {modname} has no page")
        provided = [n for n in names if hasattr(module, n)]
        not_provided += [f"{modname}.{n}" for n in names if n not in provided]
        own, rex = classify(modname, provided)
        for name in provided:
            checked += 1
            full = f"{modname}.{name}"
            obj = getattr(module, name)
            if name in own and not has_docstring(module, name, obj):
                no_doc.append(full)
                print(f"NO DOCSTRING: {full}")
            if full not in inventory and not (name in rex and modname in SUMMARY_ONLY):
                not_in_ref.append(full)
                print(f"NOT IN REFERENCE: {full}")
            if members and name in own and inspect.isclass(obj) and id(obj) not in member_gaps \
                    and (obj.__module__ or "").startswith("greenweave"):
                member_gaps.add(id(obj))
                gaps = undocumented_members(obj)
                if gaps:
                    print(f"members without docstring: {full}: {', '.join(gaps)}")
    if not_provided:
        print(f"({len(not_provided)} names in the spec are not provided by greenweave "
              "yet; see api_coverage.py)")
    failed = len(no_doc) + len(not_in_ref)
    print(f"{checked} provided names checked: {len(no_doc)} without a docstring, "
          f"{len(not_in_ref)} missing from the reference")
    print(f"api docs: {checked - failed} names complete, {failed} problems")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", default=default_spec(), help="path to api_surface.json")
    parser.add_argument("--inventory", default=os.path.join(HERE, "_build", "html", "objects.inv"),
                        help="objects.inv of the HTML build")
    parser.add_argument("--members", action="store_true",
                        help="also list class methods without a docstring (information)")
    args = parser.parse_args(argv)
    if not os.path.exists(args.spec):
        print(f"API spec not found: {args.spec} (set GREENWEAVE_API_SPEC)", file=sys.stderr)
        return 2
    if not os.path.exists(args.inventory):
        print(f"inventory not found: {args.inventory} (build the HTML docs first)",
              file=sys.stderr)
        return 2
    return check(args.spec, args.inventory, args.members)


if __name__ == "__main__":
    sys.exit(main())
