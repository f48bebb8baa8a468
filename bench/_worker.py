"""Run one benchmark measurement in a fresh process and print it as JSON.

Usage::

    python bench/_worker.py LIB CASE SIZE   # one timed run of CASE
    python bench/_worker.py LIB --info      # library version / import check

LIB is ``greenweave`` or ``gevent``.  The last line of stdout is one JSON
object: ``{"ok": true, "elapsed": seconds, "extra": {...}, ...}`` on success,
``{"ok": false, "error": "...", "traceback": "..."}`` on failure (exit code 1).
This is an internal helper of ``bench/run.py``.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SRC_DIR = BENCH_DIR.parent / "src"


class Timer:
    """Accumulating stopwatch: cases put only the measured code in ``with timer:``."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.laps = 0
        self._start = 0.0

    def __enter__(self) -> Timer:
        gc.collect()  # don't bill garbage left over from setup to the timed region
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info) -> bool:
        self.elapsed += time.perf_counter() - self._start
        self.laps += 1
        return False


def import_library(lib: str):
    """Import the library under test as the module every case calls ``gevent``."""
    if lib == "gevent":
        import gevent
    elif lib == "greenweave":
        # Benchmark the working tree even when greenweave is not pip-installed
        # (with `pip install -e .` this is the same code anyway).
        if SRC_DIR.is_dir():
            sys.path.insert(0, str(SRC_DIR))
        import greenweave as gevent
    else:
        raise ValueError(f"unknown library {lib!r} (expected greenweave or gevent)")
    return gevent


def library_info(gevent) -> dict:
    return {
        "version": str(getattr(gevent, "__version__", "unknown")),
        "file": str(getattr(gevent, "__file__", None) or ""),
    }


def run(argv: list[str]) -> dict:
    if len(argv) == 2 and argv[1] == "--info":
        return {"ok": True, **library_info(import_library(argv[0]))}
    if len(argv) != 3:
        raise SystemExit(__doc__)
    lib, case_name, size = argv[0], argv[1], int(argv[2])

    from cases import CASES  # bench/ is sys.path[0] when run as a script

    case = CASES[case_name]
    gevent = import_library(lib)
    timer = Timer()
    extra = case.func(gevent, timer, size) or {}
    if timer.laps == 0:
        raise RuntimeError(f"case {case_name} never entered the timer")
    return {
        "ok": True,
        "lib": lib,
        "case": case_name,
        "size": size,
        "elapsed": timer.elapsed,
        "extra": extra,
        **library_info(gevent),
    }


def main() -> None:
    try:
        result = run(sys.argv[1:])
        code = 0
    except Exception as exc:
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
        }
        code = 1
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # Skip interpreter shutdown: a half-finished library (leftover threads,
    # a hub that won't die) must not be able to hang or crash the worker
    # after the measurement has been reported.
    os._exit(code)


if __name__ == "__main__":
    main()
