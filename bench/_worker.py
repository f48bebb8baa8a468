"""Run one benchmark measurement in a fresh process and print it as JSON.

Usage::

    python bench/_worker.py LIB CASE SIZE   # one timed run of CASE
    python bench/_worker.py LIB --info      # library version / import check

LIB is ``greenweave`` or ``gevent`` (which run the gevent-API case from
``cases.py``), or ``eventlet`` or ``uvloop`` (asyncio on uvloop), which run the
case's counterpart from ``alt_cases.py``.  The last line of stdout is one JSON
object: ``{"ok": true, "elapsed": seconds, "extra": {...}, ...}`` on success,
``{"ok": false, "error": "...", "traceback": "..."}`` on failure (exit code 1).
This is an internal helper of ``bench/run.py``.
"""

from __future__ import annotations

import gc
import json
import os
import resource
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


#: Libraries with a gevent-compatible API, which run the cases in cases.py.
GEVENT_API_LIBS = ("greenweave", "gevent")
#: Other libraries, which run the counterparts in alt_cases.py.
ALT_LIBS = ("eventlet", "uvloop")


def raise_nofile_limit() -> None:
    """Raise the soft open-files limit to the hard one (thousands of sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


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
    elif lib == "eventlet":
        import eventlet as gevent
    elif lib == "uvloop":
        import uvloop as gevent
    else:
        raise ValueError(
            f"unknown library {lib!r} (expected one of {GEVENT_API_LIBS + ALT_LIBS})"
        )
    return gevent


def library_info(gevent) -> dict:
    return {
        "version": str(getattr(gevent, "__version__", "unknown")),
        "file": str(getattr(gevent, "__file__", None) or ""),
    }


def import_or_explain(lib: str):
    """import_library, turning a missing optional library into a clear error."""
    try:
        return import_library(lib)
    except ImportError as exc:
        if lib in ALT_LIBS:
            raise ImportError(f"not installed ({exc}); pip install {lib}") from exc
        raise


def run(argv: list[str]) -> dict:
    if len(argv) == 2 and argv[1] == "--info":
        return {"ok": True, **library_info(import_or_explain(argv[0]))}
    if len(argv) != 3:
        raise SystemExit(__doc__)
    lib, case_name, size = argv[0], argv[1], int(argv[2])

    # bench/ is sys.path[0] when run as a script
    from alt_cases import ALTS
    from cases import CASES

    case = CASES[case_name]
    raise_nofile_limit()
    gevent = import_or_explain(lib)
    timer = Timer()
    if lib in ALT_LIBS:
        func = ALTS.get(case_name, {}).get(lib)
        if func is None:
            raise ValueError(f"case {case_name} has no {lib} version")
        extra = func(timer, size) or {}
    else:
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
