"""Sphinx configuration for greenweave's documentation.

Build (from the repository root, in a fresh virtual environment)::

    python3 -m venv .venv && .venv/bin/pip install -e . -r docs/requirements.txt
    .venv/bin/sphinx-build -W --keep-going -n -b html docs docs/_build/html
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))

import greenweave  # noqa: E402  (after the path set-up; must be importable)

project = "greenweave"
author = "the greenweave authors"
copyright = "greenweave authors"
release = greenweave.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "greenweave_docs",
]

exclude_patterns = ["_build", "_ext", "_intersphinx", "requirements.txt"]
root_doc = "index"
default_role = "py:obj"

# -- autodoc: the API reference is the docstrings users also see with help() --

autodoc_default_options = {
    "members": True,
    # Members without a docstring are listed too (signature only): the page
    # shows the whole API, and docstrings can refer to any member.
    "undoc-members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autoclass_content = "both"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
# A method without a docstring of its own is shown with its signature only,
# not with its standard-library base's text (which describes the blocking
# original).
autodoc_inherit_docstrings = False

# -- intersphinx: links into the CPython documentation, without network -----
# The inventory ships in docs/_intersphinx (it is the objects.inv of the
# CPython 3.11 documentation); Sphinx reads the file, and the links in the
# built pages point at docs.python.org.  See docs/_intersphinx/README.

intersphinx_mapping = {
    "python": (
        "https://docs.python.org/3",
        os.path.join(HERE, "_intersphinx", "python3.objects.inv"),
    ),
}

# -- nitpicky (-n): names no inventory can resolve ----------------------------
# Objects documented nowhere we can link to offline (the greenlet package has
# no bundled inventory) or private helpers that appear in type hints.

nitpick_ignore_regex = [
    # third-party packages without an inventory available offline
    (r"py:.*", r"(greenlet|gunicorn|dns|httptools)(\..*)?"),
    # private helpers (a leading underscore somewhere in the dotted name),
    # e.g. base classes shown by :show-inheritance:, and type variables
    (r"py:.*", r"greenweave(\.\w+)*\._\w*(\..*)?"),
    (r"py:class", r"greenweave(\.\w+)*\.[A-Z]"),
]
nitpick_ignore = [
    # internal classes that appear as a public class's base or a return type,
    # deliberately left out of their module's public API
    ("py:class", "greenweave.fileobject.FileObjectBase"),
    ("py:class", "greenweave.pool.IMap"),
    ("py:class", "greenweave.pool.IMapUnordered"),
]

# -- HTML ------------------------------------------------------------------------

try:
    import furo  # noqa: F401
except ImportError:  # the build still works (for the test) with Sphinx's default theme
    html_theme = "alabaster"
else:
    html_theme = "furo"
html_title = f"greenweave {release}"
html_show_sourcelink = False
viewcode_follow_imported_members = False
