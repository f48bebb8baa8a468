#!/usr/bin/env python3
"""Run the greenweave vs gevent micro-benchmarks side by side.

    python bench/run.py [--quick] [--repeat N] [--only NAME[,NAME...]]
                        [--libs greenweave,gevent] [--list]

Every measurement runs in a fresh ``bench/_worker.py`` subprocess.  For each
case the libraries are interleaved (greenweave, gevent, greenweave, gevent,
...) so that slow drifts of a shared machine hit both alike; the first run of
each library is a warm-up (page cache, .pyc files) and is not counted.  The
report gives median, min and max of the remaining runs.

The Markdown table goes to stdout; the table plus machine information is also
written to ``bench/results/latest.md`` and every raw sample to
``bench/results/latest.raw.json`` (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORKER = BENCH_DIR / "_worker.py"
RESULTS_DIR = BENCH_DIR / "results"

sys.path.insert(0, str(BENCH_DIR))
from cases import CASES, Case  # noqa: E402  (needs the sys.path entry above)

#: Supported libraries, in column / interleaving order.
LIBS = ("greenweave", "gevent")
DEFAULT_REPEAT = 5
QUICK_REPEAT = 3
ERROR_CELL_WIDTH = 80  # error text in a table cell is cut here; full text below the table


@dataclass
class Cell:
    """All results of one library on one case."""

    times: list[float] = field(default_factory=list)  # seconds, warm-up excluded
    extras: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None


# --------------------------------------------------------------------------
# Running workers


def run_worker(lib: str, args: list[str], timeout: float) -> dict:
    """Run ``_worker.py lib *args`` and return its JSON result (never raises)."""
    cmd = [sys.executable, str(WORKER), lib, *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO_DIR)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:g} s"}
    # The result is the last JSON line; anything a library prints comes before it.
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                break
    stderr_lines = proc.stderr.strip().splitlines()
    tail = stderr_lines[-1] if stderr_lines else "no output"
    return {"ok": False, "error": f"worker died (exit code {proc.returncode}): {tail}"}


def probe_libraries(libs: list[str], timeout: float) -> dict[str, dict]:
    """Import each library once in a worker: version, location, or the import error."""
    return {lib: run_worker(lib, ["--info"], timeout) for lib in libs}


def measure(
    case: Case, size: int, libs: list[str], repeat: int, timeout: float, broken: dict[str, str]
) -> dict[str, Cell]:
    """Measure one case: a warm-up round, then ``repeat`` rounds, libraries interleaved.

    ``broken`` maps libraries that cannot even be imported to their error;
    they are not run.  A library that fails once on this case is not run again
    on it, and its cell shows the error.
    """
    cells = {lib: Cell(error=broken.get(lib)) for lib in libs}
    for round_no in range(repeat + 1):  # round 0 is the warm-up
        for lib in libs:
            cell = cells[lib]
            if cell.error is not None:
                continue
            result = run_worker(lib, [case.name, str(size)], timeout)
            if not result.get("ok"):
                cell.error = result.get("error", "unknown error")
                continue
            if round_no > 0:
                cell.times.append(result["elapsed"])
                cell.extras.append(result.get("extra") or {})
            print(".", end="", file=sys.stderr, flush=True)
    return cells


# --------------------------------------------------------------------------
# Formatting


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def one_line(text: str, width: int | None = None) -> str:
    """Make ``text`` safe for a single Markdown table cell."""
    text = " ".join(text.split()).replace("|", "\\|")
    if width is not None and len(text) > width:
        text = text[: width - 1] + "…"
    return text


def markdown_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Padded Markdown table; column indexes in ``right`` are right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        padded = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if i in right else "-" * w for i, w in enumerate(widths)]
    return "\n".join([line(headers), line(rule), *(line(r) for r in rows)])


def results_table(results: list[tuple[Case, int, dict[str, Cell]]], libs: list[str]) -> str:
    with_ratio = libs == list(LIBS)
    headers = ["case", "size"] + [f"{lib} median (ms)" for lib in libs]
    if with_ratio:
        headers.append("ratio (greenweave/gevent)")
    for lib in libs:
        headers += [f"{lib} min (ms)", f"{lib} max (ms)"]

    rows = []
    for case, size, cells in results:
        medians = {lib: statistics.median(c.times) for lib, c in cells.items() if c.times}
        row = [case.name, f"{size:,}"]
        for lib in libs:
            error = cells[lib].error
            row.append(
                f"error: {one_line(error, ERROR_CELL_WIDTH)}" if error else fmt_ms(medians[lib])
            )
        if with_ratio:
            both = "greenweave" in medians and "gevent" in medians
            row.append(f"{medians['greenweave'] / medians['gevent']:.2f}" if both else "-")
        for lib in libs:
            times = cells[lib].times
            row += [fmt_ms(min(times)), fmt_ms(max(times))] if lib in medians else ["-", "-"]
        rows.append(row)
    right = set(range(1, len(headers)))
    return markdown_table(headers, rows, right)


def extras_table(results: list[tuple[Case, int, dict[str, Cell]]], libs: list[str]) -> str | None:
    """Medians of derived metrics returned by cases (e.g. tcp_echo's msg/s), if any."""
    rows = []
    for case, _size, cells in results:
        metrics = sorted({m for c in cells.values() if not c.error for e in c.extras for m in e})
        for metric in metrics:
            row = [case.name, metric]
            for lib in libs:
                values = [e[metric] for e in cells[lib].extras if metric in e]
                ok = values and not cells[lib].error
                row.append(f"{statistics.median(values):,.0f}" if ok else "-")
            rows.append(row)
    if not rows:
        return None
    headers = ["case", "metric"] + [f"{lib} median" for lib in libs]
    return markdown_table(headers, rows, set(range(2, len(headers))))


def errors_section(results: list[tuple[Case, int, dict[str, Cell]]], libs: list[str]) -> str | None:
    lines = [
        f"- {case.name} / {lib}: {one_line(cells[lib].error)}"
        for case, _size, cells in results
        for lib in libs
        if cells[lib].error
    ]
    return "\n".join(lines) if lines else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=REPO_DIR, check=True
        ).stdout.strip()

    try:
        rev = git("rev-parse", "--short", "HEAD")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (no commits yet?)"
    try:
        dirty = " (uncommitted changes)" if git("status", "--porcelain") else ""
    except (OSError, subprocess.CalledProcessError):
        dirty = ""
    return rev + dirty


def library_line(lib: str, info: dict) -> str:
    if not info.get("ok"):
        return f"- {lib}: not importable: {one_line(info.get('error', '?'))}"
    where = info.get("file") or "no __init__.py"
    return f"- {lib}: {info.get('version', 'unknown')} ({where})"


def machine_info(infos: dict[str, dict], args, repeat: int, loadavg: tuple[str, str]) -> str:
    try:
        greenlet_version = metadata.version("greenlet")
    except metadata.PackageNotFoundError:
        greenlet_version = "not installed"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    lines = [
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{shlex.join(['python', 'bench/run.py', *sys.argv[1:]])}`",
        f"- nproc: {os.cpu_count()} (usable by this process: {usable})",
        f"- cpu: {cpu_model()}",
        f"- platform: {platform.platform()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}"
        f" ({sys.executable})",
        f"- greenlet: {greenlet_version}",
        *(library_line(lib, info) for lib, info in infos.items()),
        f"- git: {git_revision()}",
        f"- load average (1/5/15 min) before: {loadavg[0]}, after: {loadavg[1]}",
        f"- method: {'quick sizes' if args.quick else 'default sizes'}; median of {repeat}"
        " runs per library, each in a fresh process, libraries interleaved, one uncounted"
        " warm-up run per library and case; times cover only the timed region of a case"
        " (no imports, no setup)",
    ]
    return "\n".join(lines)


def loadavg_text() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


# --------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="greenweave vs gevent micro-benchmarks (one fresh process per run)."
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 3 runs by default")
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help=f"counted runs per library and case"
        f" (default {DEFAULT_REPEAT}, with --quick {QUICK_REPEAT})",
    )
    parser.add_argument("--only", metavar="NAME[,NAME...]", help="run only these cases")
    parser.add_argument(
        "--libs",
        default=",".join(LIBS),
        metavar="LIB[,LIB]",
        help="libraries to compare (default: %(default)s)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="kill a worker after this long and report the run as failed (default %(default)g)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "latest.md",
        help="Markdown report file (default: bench/results/latest.md)",
    )
    args = parser.parse_args(argv)

    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else DEFAULT_REPEAT
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    libs = [name.strip() for name in args.libs.split(",") if name.strip()]
    unknown = sorted(set(libs) - set(LIBS))
    if unknown or not libs:
        parser.error(f"--libs: unknown {', '.join(unknown) or '(none given)'}; choose from {LIBS}")
    args.libs = [lib for lib in LIBS if lib in libs]  # canonical order, no duplicates

    if args.only:
        names = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = [name for name in names if name not in CASES]
        if unknown:
            parser.error(f"--only: unknown case(s) {', '.join(unknown)}; see --list")
        args.cases = [CASES[name] for name in CASES if name in names]
    else:
        args.cases = list(CASES.values())
    return args


def list_cases() -> None:
    rows = [[c.name, f"{c.size:,}", f"{c.quick_size:,}", c.doc] for c in CASES.values()]
    print(markdown_table(["case", "size", "quick size", "what it does"], rows, {1, 2}))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_cases()
        return 0

    load_before = loadavg_text()
    infos = probe_libraries(args.libs, args.timeout)
    broken = {lib: info.get("error", "?") for lib, info in infos.items() if not info.get("ok")}
    for lib, error in broken.items():
        print(f"warning: {lib} is not importable: {error}", file=sys.stderr)

    results: list[tuple[Case, int, dict[str, Cell]]] = []
    started = time.monotonic()
    for index, case in enumerate(args.cases, 1):
        size = case.quick_size if args.quick else case.size
        print(f"[{index}/{len(args.cases)}] {case.name} (size {size:,}) ", end="", file=sys.stderr)
        cells = measure(case, size, args.libs, args.repeat, args.timeout, broken)
        summary = ", ".join(
            f"{lib} {'error' if c.error else fmt_ms(statistics.median(c.times)) + ' ms'}"
            for lib, c in cells.items()
        )
        print(f" {summary}", file=sys.stderr)
        results.append((case, size, cells))
    print(f"done in {time.monotonic() - started:.0f} s\n", file=sys.stderr)

    sections = [results_table(results, args.libs)]
    extras = extras_table(results, args.libs)
    if extras:
        sections.append("Derived metrics (medians):\n\n" + extras)
    errors = errors_section(results, args.libs)
    if errors:
        sections.append("Errors:\n\n" + errors)
    report = "\n\n".join(sections)
    print(report)

    info = machine_info(infos, args, args.repeat, (load_before, loadavg_text()))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(
        f"# greenweave vs gevent micro-benchmarks\n\n{info}\n\n"
        "Absolute numbers are specific to this machine; compare ratios, and only"
        " between runs on the same machine.\n\n"
        f"{report}\n"
    )
    raw = {
        "argv": sys.argv[1:],
        "libraries": infos,
        "results": [
            {"case": case.name, "size": size, "lib": lib, **vars(cell)}
            for case, size, cells in results
            for lib, cell in cells.items()
        ],
    }
    raw_path = args.output.with_name(args.output.stem + ".raw.json")
    raw_path.write_text(json.dumps(raw, indent=1) + "\n")
    print(f"\nwrote {args.output} and {raw_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
