"""Every program under examples/ runs, exits 0 and prints what it promises.

Each example declares its expected output with one or more comment lines
``# expect: REGEX`` (matched against stdout, line by line, with re.MULTILINE).
An example runs in a fresh interpreter (so monkey patching in one cannot leak
into another) with a timeout.  It is skipped, with the reason, when a module
it needs cannot be imported here: a greenweave module not written yet, or an
optional third-party package (``trustme``, ``gunicorn``...).  Extra needs
that are not imports are declared with ``# requires: module[, module...]``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
TIMEOUT = 60

_files = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py")) if os.path.isdir(
    EXAMPLES) else []


def _expectations(source: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^# expect: (.+)$", source, re.MULTILINE)]


def _needed_modules(source: str) -> list[str]:
    """Absolute imports anywhere in the file, plus ``# requires:`` lines."""
    needed: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            needed += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            needed.append(node.module)
            if node.module == "greenweave":  # from greenweave import monkey -> greenweave.monkey
                needed += [f"greenweave.{alias.name}" for alias in node.names]
    for match in re.finditer(r"^# requires: (.+)$", source, re.MULTILINE):
        needed += [name.strip() for name in match.group(1).split(",") if name.strip()]
    return list(dict.fromkeys(needed))


def _missing_reason(modules: list[str]) -> str | None:
    for name in modules:
        if name == "greenweave" or name.startswith("greenweave."):
            if importlib.util.find_spec("greenweave") is None:
                return "greenweave is not installed"
            try:
                importlib.import_module(name)
            except ImportError as exc:
                # ``from greenweave import socket`` names a submodule only if it is one
                parent, _, attr = name.rpartition(".")
                if parent and hasattr(importlib.import_module(parent), attr):
                    continue
                return f"{name} cannot be imported yet ({type(exc).__name__}: {exc})"
        else:
            top = name.split(".")[0]
            if importlib.util.find_spec(top) is None:
                return f"optional module {top!r} is not installed"
    return None


def test_examples_exist() -> None:
    assert len(_files) >= 10, f"expected the guide's examples in {EXAMPLES}, found {_files}"


@pytest.mark.parametrize("name", _files)
@pytest.mark.timeout(TIMEOUT + 30)
def test_example(name: str) -> None:
    path = os.path.join(EXAMPLES, name)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    expected = _expectations(source)
    assert expected, f"{name} declares no '# expect: REGEX' line"
    reason = _missing_reason(_needed_modules(source))
    if reason:
        pytest.skip(reason)

    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, path], cwd=EXAMPLES, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    report = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}\n{report}"
    for pattern in expected:
        assert re.search(pattern, proc.stdout, re.MULTILINE), \
            f"{name}: no output line matches {pattern!r}\n{report}"
    # An error reported by the hub (a greenlet that died of an exception) is a
    # failure even if the program went on to exit 0.
    assert "Traceback" not in proc.stderr, f"{name} printed a traceback\n{report}"
