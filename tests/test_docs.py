"""The documentation builds without a warning and covers the public API.

* The HTML build runs exactly as documented (``sphinx-build -W --keep-going
  -n``: warnings and broken cross-references fail it) into a temporary
  directory; skipped when Sphinx is not installed (``pip install -r
  docs/requirements.txt``).
* ``docs/check_api_docs.py`` then checks, against the API spec
  (``../shared/spec/api_surface.json`` or ``$GREENWEAVE_API_SPEC``), that every
  public name greenweave provides has a docstring and an entry in the built
  reference.
* Every example program is shown in the guide.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
CHECKER = os.path.join(DOCS, "check_api_docs.py")
BUILD_TIMEOUT = 300


def _spec_path() -> str:
    return os.environ.get("GREENWEAVE_API_SPEC") or os.path.join(
        ROOT, "..", "shared", "spec", "api_surface.json")


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, subprocess.CompletedProcess]:
    """The documented build command, run once; with --keep-going the pages are
    written even when a warning makes it fail, so the API check still runs."""
    pytest.importorskip("sphinx", reason="Sphinx is not installed (docs/requirements.txt)")
    out = str(tmp_path_factory.mktemp("docs") / "html")
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
         DOCS, out],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, cwd=ROOT,
        stdin=subprocess.DEVNULL)
    return out, proc


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_docs_build_without_warnings(build: tuple[str, subprocess.CompletedProcess]) -> None:
    html, proc = build
    assert proc.returncode == 0, (
        f"sphinx-build -W --keep-going -n failed ({proc.returncode})\n{proc.stdout}\n"
        f"{proc.stderr}")
    for page in ("index.html", "api/index.html", "guide/index.html", "objects.inv"):
        assert os.path.exists(os.path.join(html, page)), page


@pytest.mark.timeout(BUILD_TIMEOUT + 60)
def test_every_public_name_is_documented(build: tuple[str, subprocess.CompletedProcess]) -> None:
    html, proc = build
    if not os.path.exists(os.path.join(html, "objects.inv")):
        pytest.fail(f"the build wrote no objects.inv\n{proc.stdout}\n{proc.stderr}")
    if not os.path.exists(_spec_path()):
        pytest.skip(f"API spec not found at {_spec_path()}")
    proc = subprocess.run(
        [sys.executable, CHECKER, "--spec", _spec_path(),
         "--inventory", os.path.join(html, "objects.inv")],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert " 0 problems" in proc.stdout, proc.stdout


@pytest.mark.timeout(120)
def test_checker_reports_names_missing_from_the_reference(tmp_path) -> None:
    """The checker fails when the reference lacks the names (here: an empty one)."""
    if not os.path.exists(_spec_path()):
        pytest.skip(f"API spec not found at {_spec_path()}")
    empty = tmp_path / "objects.inv"
    empty.write_bytes(b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n"
                      b"# The remainder of this file is compressed using zlib.\n"
                      + zlib.compress(b""))
    proc = subprocess.run(
        [sys.executable, CHECKER, "--spec", _spec_path(), "--inventory", str(empty)],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "NOT IN REFERENCE: greenweave.spawn" in proc.stdout
    assert "NOT IN REFERENCE: module greenweave.queue has no page" in proc.stdout


def test_every_example_is_in_the_guide() -> None:
    guide = os.path.join(DOCS, "guide")
    text = ""
    for name in sorted(os.listdir(guide)):
        if name.endswith(".rst"):
            with open(os.path.join(guide, name), encoding="utf-8") as f:
                text += f.read()
    examples = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py"))
    missing = [e for e in examples if f"examples/{e}" not in text]
    assert not missing, f"examples not shown in docs/guide/*.rst: {missing}"
