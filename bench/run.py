#!/usr/bin/env python3
"""Run the greenweave benchmark suite: greenweave vs gevent (and eventlet, asyncio+uvloop).

    python bench/run.py                  # the whole suite (about 25 minutes)
    python bench/run.py --quick          # smaller sizes, shorter HTTP runs (under 2 minutes)
    python -m bench ...                  # the same

The suite has five parts, all written to one report:

* micro and I/O cases (``bench/cases.py``): the gevent-API code runs for
  greenweave and gevent; the echo and ping-pong cases also have eventlet and
  asyncio+uvloop counterparts (``bench/alt_cases.py``);
* HTTP: each library's ``pywsgi.WSGIServer`` serving hello-world under the
  same ``wrk`` client (``bench/http_bench.py``), at 50 and 500 connections,
  keep-alive and ``Connection: close``;
* scaling: TCP echo at 10 / 100 / 1,000 / 5,000 connections, HTTP at the same
  concurrencies, timers at 1k / 10k / 100k greenlets;
* memory: RSS per idle greenlet and per idle connection;
* charts (matplotlib) of the scaling curves, memory and the ratios.

Every micro measurement runs in a fresh ``bench/_worker.py`` subprocess.  For
each case the libraries are interleaved (greenweave, gevent, eventlet, uvloop,
greenweave, ...) so that slow drifts of a shared machine hit all alike; the
first run of each library is a warm-up (page cache, .pyc files) and is not
counted.  The report gives median, min and max of the remaining runs.  Every
HTTP measurement is a fresh server process with its own uncounted warm-up.

The Markdown report goes to stdout and to ``bench/results/latest.md`` (plus a
dated copy for full runs), the charts to ``bench/results/*.png``, a README
excerpt to ``bench/results/README-snippet.md`` and every raw sample to
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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WORKER = BENCH_DIR / "_worker.py"
RESULTS_DIR = BENCH_DIR / "results"

if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))
# These need the sys.path entry above.
import charts  # noqa: E402
import http_bench  # noqa: E402
from alt_cases import ALTS  # noqa: E402
from cases import CASES, Case  # noqa: E402
from http_bench import HttpCell, HttpPoint  # noqa: E402

#: Libraries with the gevent API (run every case), in column / interleaving order.
LIBS = ("greenweave", "gevent")
#: What users pick instead; they run only the cases that have a counterpart in alt_cases.py.
ALT_LIBS = ("eventlet", "uvloop")
ALL_LIBS = LIBS + ALT_LIBS
LABELS = {"greenweave": "greenweave", "gevent": "gevent", "eventlet": "eventlet",
          "uvloop": "asyncio+uvloop", "gevent-nodelay": "gevent+NODELAY"}
#: HTTP only: gevent's server with TCP_NODELAY on accepted sockets (see _http_server.py),
#: a reference for keep-alive points, where stock gevent stalls on Nagle + delayed ACK.
NODELAY = "gevent-nodelay"

DEFAULT_REPEAT = 5
QUICK_REPEAT = 3
ERROR_CELL_WIDTH = 80  # error text in a table cell is cut here; full text below the table

HTTP_REPEAT, QUICK_HTTP_REPEAT = 3, 1
HTTP_SECONDS, QUICK_HTTP_SECONDS, TINY_HTTP_SECONDS = 10, 2, 1
HTTP_MAIN = [HttpPoint(c, m) for c in (50, 500) for m in ("keep-alive", "close")]
SCALING_CONNECTIONS = (10, 100, 1_000, 5_000)
#: The echo scaling series: (connections, case) -- same workload, N messages in total.
ECHO_SERIES = [(10, "tcp_echo_10"), (100, "tcp_echo"), (1_000, "tcp_echo_1k"),
               (5_000, "tcp_echo_5k")]
TIMER_SIZES = (1_000, 10_000, 100_000)
QUICK_TIMER_SIZES = (1_000, 10_000, 50_000)
#: --quick keeps its HTTP scaling to keep-alive at the ends of the range (the 50 and 500
#: connection points of the main table fill in the curve): the two-minute budget.
QUICK_HTTP_SCALING = [HttpPoint(10, "keep-alive"), HttpPoint(5_000, "keep-alive")]
TINY_SCALE = 0.05
GROUPS = ("micro", "http", "scaling", "scaling-echo", "scaling-timers", "scaling-http", "memory")


@dataclass
class Cell:
    """All results of one library on one case."""

    times: list[float] = field(default_factory=list)  # seconds, warm-up excluded
    extras: list[dict[str, float]] = field(default_factory=list)
    error: str | None = None


Results = list[tuple[Case, int, dict[str, Cell]]]
HttpResults = list[tuple[HttpPoint, dict[str, HttpCell]]]


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


def case_libs(case: Case, libs: list[str]) -> list[str]:
    """The selected libraries that have an implementation of ``case``."""
    return [lib for lib in libs if lib in LIBS or lib in ALTS.get(case.name, {})]


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


class Runner:
    """Measures cases and HTTP points once each, however many report sections use them."""

    def __init__(self, args: argparse.Namespace, broken: dict[str, str]) -> None:
        self.args = args
        self.broken = broken
        self.cases: dict[tuple[str, int], dict[str, Cell]] = {}
        self.http: dict[HttpPoint, dict[str, HttpCell]] = {}
        self.started = time.monotonic()
        self.max_load = 0.0  # highest 1-minute load average seen at the start of a point

    def _progress(self, label: str) -> None:
        try:
            self.max_load = max(self.max_load, os.getloadavg()[0])
        except OSError:
            pass
        elapsed = time.monotonic() - self.started
        print(f"[{elapsed:5.0f} s] {label} ", end="", file=sys.stderr, flush=True)

    def case(self, case: Case, size: int, repeat: int | None = None) -> dict[str, Cell]:
        key = (case.name, size)
        if key not in self.cases:
            self._progress(f"{case.name} (size {size:,})")
            libs = case_libs(case, self.args.libs)
            repeat = repeat or self.args.repeat
            cells = measure(case, size, libs, repeat, self.args.timeout, self.broken)
            print(f" {summarise(cells)}", file=sys.stderr)
            self.cases[key] = cells
        return self.cases[key]

    def http_point(self, point: HttpPoint, nodelay: bool) -> dict[str, HttpCell]:
        """Measure ``point``; ``nodelay``: add the gevent+NODELAY reference (keep-alive only)."""
        if point not in self.http:
            self._progress(f"http {point.label}")
            libs = [lib for lib in self.args.libs if lib in http_bench.HTTP_LIBS]
            if nodelay and "gevent" in libs and point.mode == "keep-alive":
                libs.append(NODELAY)
            broken = dict(self.broken)
            if "gevent" in broken:
                broken[NODELAY] = broken["gevent"]
            cells = http_bench.measure(
                self.args.wrk, point, libs, self.args.http_repeat, self.args.http_seconds,
                self.args.timeout, broken,
            )
            print(" " + ", ".join(
                f"{lib} {'error' if c.error else f'{statistics.median(c.rps):,.0f} req/s'}"
                for lib, c in cells.items()
            ), file=sys.stderr)
            self.http[point] = cells
        return self.http[point]


def summarise(cells: dict[str, Cell]) -> str:
    return ", ".join(
        f"{lib} {'error' if c.error else fmt_ms(statistics.median(c.times)) + ' ms'}"
        for lib, c in cells.items()
    )


# --------------------------------------------------------------------------
# Formatting


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:,.0f}"
    if ms >= 10:
        return f"{ms:.1f}"
    return f"{ms:.2f}"


def fmt_num(value: float) -> str:
    """Counts and rates: thousands separators, a few significant digits for small values."""
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


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


def spread(values: list[float], fmt) -> str:
    """``median (min–max)``, or just the value when there is one."""
    med = fmt(statistics.median(values))
    if len(values) == 1:
        return med
    return f"{med} ({fmt(min(values))}–{fmt(max(values))})"


def columns(results: Results, libs: list[str]) -> list[str]:
    """Libraries that have at least one cell in ``results``, in canonical order."""
    present = {lib for _case, _size, cells in results for lib in cells}
    return [lib for lib in libs if lib in present]


def time_cell(cells: dict[str, Cell], lib: str, with_spread: bool = True) -> str:
    cell = cells.get(lib)
    if cell is None:
        return "n/a"
    if cell.error:
        if is_skip(lib, cell.error):
            return "skipped"
        return f"error: {one_line(cell.error, ERROR_CELL_WIDTH)}"
    return spread(cell.times, fmt_ms) if with_spread else fmt_ms(statistics.median(cell.times))


def is_skip(lib: str, error: str) -> bool:
    """An optional library that is not installed: skipped (reason listed once), not an error."""
    return lib in ALT_LIBS and "not installed" in error


def ratio(cells: dict[str, Cell], lib: str, base: str = "gevent") -> str:
    """Ratio of median times lib/base, or '-' when either is missing."""
    a, b = cells.get(lib), cells.get(base)
    if not a or not b or not a.times or not b.times:
        return "-"
    return f"{statistics.median(a.times) / statistics.median(b.times):.2f}"


def results_table(results: Results, libs: list[str], with_spread: bool = True) -> str:
    """Times in ms: ratios against gevent first, then median (min–max) per library."""
    libs = columns(results, libs)
    ratio_libs = [lib for lib in libs if lib != "gevent"] if "gevent" in libs else []
    headers = ["case", "size"]
    headers += [f"{LABELS[lib]} ÷ gevent" for lib in ratio_libs]
    unit = "median (min–max), ms" if with_spread else "ms"
    headers += [f"{LABELS[lib]} {unit}" for lib in libs]
    rows = []
    for case, size, cells in results:
        row = [case.name, f"{size:,}"]
        row += [ratio(cells, lib) for lib in ratio_libs]
        row += [time_cell(cells, lib, with_spread) for lib in libs]
        rows.append(row)
    return markdown_table(headers, rows, set(range(1, len(headers))))


def extras_table(results: Results, libs: list[str]) -> str | None:
    """Medians of derived metrics returned by cases (e.g. tcp_echo's msg/s), if any."""
    libs = columns(results, libs)
    rows = []
    for case, _size, cells in results:
        metrics = sorted({m for c in cells.values() if not c.error for e in c.extras for m in e})
        for metric in metrics:
            row = [case.name, metric]
            for lib in libs:
                cell = cells.get(lib)
                values = [e[metric] for e in cell.extras if metric in e] if cell else []
                ok = values and not cell.error
                row.append(f"{statistics.median(values):,.0f}" if ok else "-")
            rows.append(row)
    if not rows:
        return None
    headers = ["case", "metric"] + [f"{LABELS[lib]} median" for lib in libs]
    return markdown_table(headers, rows, set(range(2, len(headers))))


def metric_median(cell: Cell | None, metric: str) -> float | None:
    if cell is None or cell.error:
        return None
    values = [e[metric] for e in cell.extras if metric in e]
    return statistics.median(values) if values else None


def echo_table(series: list[tuple[int, Case, int, dict[str, Cell]]], libs: list[str]) -> str:
    libs = [lib for lib in libs if any(lib in cells for *_rest, cells in series)]
    ratio_libs = [lib for lib in libs if lib != "gevent"] if "gevent" in libs else []
    headers = ["connections", "messages"]
    headers += [f"{LABELS[lib]} ÷ gevent (time)" for lib in ratio_libs]
    headers += [f"{LABELS[lib]} msg/s" for lib in libs]
    rows = []
    for conns, _case, size, cells in series:
        row = [f"{conns:,}", f"{size:,}"] + [ratio(cells, lib) for lib in ratio_libs]
        for lib in libs:
            value = metric_median(cells.get(lib), "msg/s")
            row.append(fmt_num(value) if value is not None else time_cell(cells, lib))
        rows.append(row)
    return markdown_table(headers, rows, set(range(len(headers))))


def memory_table(results: Results, libs: list[str]) -> str:
    libs = columns(results, libs)
    ratio_libs = [lib for lib in libs if lib != "gevent"] if "gevent" in libs else []
    headers = ["what", "N"] + [f"{LABELS[lib]} ÷ gevent" for lib in ratio_libs]
    headers += [f"{LABELS[lib]} (bytes)" for lib in libs]
    rows = []
    for case, size, cells in results:
        metric = next((m for c in cells.values() for e in c.extras for m in e), None)
        values = {lib: metric_median(cells.get(lib), metric) for lib in libs} if metric else {}
        row = [metric or case.name, f"{size:,}"]
        for lib in ratio_libs:
            a, b = values.get(lib), values.get("gevent")
            row.append(f"{a / b:.2f}" if a is not None and b else "-")
        for lib in libs:
            value = values.get(lib)
            row.append(f"{value:,.0f}" if value is not None else time_cell(cells, lib))
        rows.append(row)
    return markdown_table(headers, rows, set(range(1, len(headers))))


def http_cell_text(cell: HttpCell | None, what: str, with_spread: bool = True) -> str:
    if cell is None:
        return "n/a"
    if cell.error:
        return f"error: {one_line(cell.error, ERROR_CELL_WIDTH)}"
    if what == "rps":
        return spread(cell.rps, fmt_num) if with_spread else fmt_num(statistics.median(cell.rps))
    if what == "p99":
        return fmt_num(statistics.median(cell.p99_ms)) if cell.p99_ms else "-"
    errors = [s + n for s, n in zip(cell.socket_errors, cell.non_2xx, strict=True)]
    return f"{statistics.median(errors):,.0f}"


def http_ratio(cells: dict[str, HttpCell], base: str = "gevent") -> str:
    a, b = cells.get("greenweave"), cells.get(base)
    if not a or not b or not a.rps or not b.rps:
        return "-"
    return f"{statistics.median(a.rps) / statistics.median(b.rps):.2f}"


def http_table(results: HttpResults, libs: list[str], with_spread: bool = True) -> str:
    libs = [lib for lib in [*libs, NODELAY] if any(lib in cells for _p, cells in results)]
    bases = [b for b in ("gevent", NODELAY) if "greenweave" in libs and b in libs]
    headers = ["connections", "mode"]
    headers += [f"greenweave ÷ {LABELS[b]} (req/s)" for b in bases]
    unit = "req/s median (min–max)" if with_spread else "req/s"
    headers += [f"{LABELS[lib]} {unit}" for lib in libs]
    headers += [f"{LABELS[lib]} p99 ms" for lib in libs]
    if with_spread:
        headers += [f"{LABELS[lib]} errors/run" for lib in libs]
    rows = []
    for point, cells in results:
        row = [f"{point.connections:,}", point.mode]
        row += [http_ratio(cells, b) for b in bases]
        row += [http_cell_text(cells.get(lib), "rps", with_spread) for lib in libs]
        row += [http_cell_text(cells.get(lib), "p99") for lib in libs]
        if with_spread:
            row += [http_cell_text(cells.get(lib), "errors") for lib in libs]
        rows.append(row)
    return markdown_table(headers, rows, set(range(2, len(headers))) | {0})


def errors_section(results: Results, http_results: HttpResults, libs: list[str]) -> str | None:
    lines = [
        f"- {case.name} (size {size:,}) / {lib}: {one_line(cells[lib].error)}"
        for case, size, cells in results
        for lib in libs
        if lib in cells and cells[lib].error and not is_skip(lib, cells[lib].error)
    ]
    lines += [
        f"- http {point.label} / {lib}: {one_line(cells[lib].error)}"
        for point, cells in http_results
        for lib in libs
        if lib in cells and cells[lib].error
    ]
    return "\n".join(dict.fromkeys(lines)) if lines else None


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
        return f"- {LABELS[lib]}: not run: {one_line(info.get('error', '?'))}"
    where = info.get("file") or "no __init__.py"
    return f"- {LABELS[lib]}: {info.get('version', 'unknown')} ({where})"


def core_count() -> tuple[int | None, int | str]:
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return os.cpu_count(), usable


def machine_info(infos: dict[str, dict], args, loadavg: tuple[str, str], max_load: float) -> str:
    try:
        greenlet_version = metadata.version("greenlet")
    except metadata.PackageNotFoundError:
        greenlet_version = "not installed"
    cores, usable = core_count()
    mode = "tiny sizes" if args.tiny else "quick sizes" if args.quick else "default sizes"
    if args.size_scale != 1.0:
        mode += f" x {args.size_scale:g}"
    wrk = f"{http_bench.wrk_version(args.wrk)} ({args.wrk})" if args.wrk else "not found"
    lines = [
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- command: `{shlex.join(['python', 'bench/run.py', *args.argv])}`",
        f"- cores: {cores} (usable by this process: {usable})",
        f"- cpu: {cpu_model()}",
        f"- platform: {platform.platform()}",
        f"- python: {platform.python_implementation()} {platform.python_version()}"
        f" ({sys.executable})",
        f"- greenlet: {greenlet_version}",
        *(library_line(lib, info) for lib, info in infos.items()),
        f"- wrk: {wrk}",
        f"- git: {git_revision()}",
        f"- load average (1/5/15 min) before: {loadavg[0]}, after: {loadavg[1]};"
        f" highest 1-min load at the start of a point: {max_load:.2f} (the benchmark itself"
        " keeps up to about 2 busy: a worker, or a server and wrk)",
        f"- method: {mode}; median of {args.repeat} runs per library"
        f" ({args.scaling_repeat} for the scaling points and memory not shared with the main"
        " table), each in a fresh process, libraries interleaved, one uncounted warm-up run per"
        " library and case; times cover only the timed region of a case (no imports, no setup)",
    ]
    return "\n".join(lines)


def loadavg_text() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "?"


def http_method(args) -> str:
    threads = http_bench.wrk_threads()
    return (
        f"Each library's `pywsgi.WSGIServer` serves a hello-world WSGI app (13-byte body,"
        f" access log off, listen backlog 2,048 for both) in a fresh process per measurement,"
        f" on 127.0.0.1. The same client loads every server: `wrk -t{threads} -cN"
        f" -d{args.http_seconds}s --timeout={http_bench.WRK_TIMEOUT} --latency`, with"
        " `-H 'Connection: close'` for the close mode (the server closes after each response and"
        f" wrk reconnects). Each server first gets an uncounted {http_bench.WARMUP_SECONDS} s"
        f" warm-up at the same concurrency. Median of {args.http_repeat} runs per library,"
        " libraries interleaved; ratio = greenweave req/s ÷ gevent req/s (above 1: greenweave"
        " serves more). p99 is wrk's 99th percentile latency (median over runs); errors/run are"
        " wrk's socket errors (connect, read, write, timeout) plus non-2xx responses, median per"
        " run. wrk runs on the same machine and takes a core."
        "\n\ngevent+NODELAY (keep-alive points only) is a reference, not a library default:"
        " gevent's WSGIServer with TCP_NODELAY set on each accepted socket, as greenweave's"
        " server does by default. gevent's handler writes the headers and the body with two"
        " send() calls; with Nagle's algorithm on, the body waits for the client's ACK of the"
        " headers, and wrk (like most clients) delays that ACK by up to ~40 ms. Stock gevent's"
        " keep-alive numbers are therefore bound by that stall (about connections ÷ 40 ms),"
        " not by CPU; the reference column shows gevent without it. With Connection: close the"
        " close pushes the body out at once, so the close points have no reference column."
        "\n\nReading the errors and tails: in close mode, gevent (26.9) closes the connection"
        " as asked but its response carries no `Connection: close` header, so wrk, seeing an"
        " HTTP/1.1 response without it, sends its next request on the same connection and gets"
        " a reset: about one read error per request, counted in errors/run, and an extra"
        " request write per response. At thousands of connections in close mode, wrk offers"
        " more connections than a server can serve, the listen queue (2,048) overflows, and the"
        " kernel drops the handshakes that don't fit (Linux counts them as ListenOverflows); the"
        " client retransmits after 1 s, then 2 s more, so p99 there is a count of"
        " retransmissions: about 1 or 3 s, whichever library serves."
    )


# --------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="greenweave vs gevent (and eventlet, asyncio+uvloop) benchmarks:"
        " micro, I/O, HTTP under wrk, scaling, memory; one fresh process per run.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes, 3 runs, 2 s HTTP runs (under two minutes)")
    parser.add_argument("--tiny", action="store_true",
                        help=f"harness check: --quick sizes x {TINY_SCALE:g}, 1 run, one 1 s"
                        " HTTP point, no HTTP scaling (numbers meaningless)")
    parser.add_argument("--size-scale", type=float, metavar="F",
                        help="multiply every case size by F (never below a case's minimum)")
    parser.add_argument(
        "--repeat", type=int, metavar="N",
        help=f"counted runs per library and case (default {DEFAULT_REPEAT},"
        f" with --quick {QUICK_REPEAT})",
    )
    parser.add_argument(
        "--scaling-repeat", type=int, metavar="N",
        help="counted runs per library for the scaling and memory points (default: --repeat;"
        " with --quick 1)",
    )
    parser.add_argument(
        "--http-repeat", type=int, metavar="N",
        help=f"wrk runs per library and HTTP point (default {HTTP_REPEAT},"
        f" with --quick {QUICK_HTTP_REPEAT})",
    )
    parser.add_argument(
        "--http-seconds", type=int, metavar="S",
        help=f"duration of each measured wrk run (default {HTTP_SECONDS},"
        f" with --quick {QUICK_HTTP_SECONDS})",
    )
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP cases")
    parser.add_argument("--no-charts", action="store_true", help="don't draw the PNG charts")
    parser.add_argument(
        "--only", metavar="NAME[,NAME...]",
        help=f"run only these cases and/or groups ({', '.join(GROUPS)})",
    )
    parser.add_argument(
        "--libs", default=",".join(ALL_LIBS), metavar="LIB[,LIB...]",
        help="libraries to compare (default: %(default)s; eventlet and uvloop run only the"
        " cases that have a counterpart and are skipped when not installed)",
    )
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument(
        "--timeout", type=float, default=120.0, metavar="SECONDS",
        help="kill a worker after this long and report the run as failed (default %(default)g)",
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_DIR / "latest.md",
        help="Markdown report file (default: bench/results/latest.md); charts, README snippet"
        " and raw JSON go next to it",
    )
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)

    if args.tiny:
        args.quick = True
        if args.size_scale is None:
            args.size_scale = TINY_SCALE
        if args.repeat is None:
            args.repeat = 1
        if args.http_seconds is None:
            args.http_seconds = TINY_HTTP_SECONDS
    if args.size_scale is None:
        args.size_scale = 1.0
    if args.size_scale <= 0:
        parser.error("--size-scale must be positive")
    if args.repeat is None:
        args.repeat = QUICK_REPEAT if args.quick else DEFAULT_REPEAT
    if args.scaling_repeat is None:
        args.scaling_repeat = 1 if args.quick else args.repeat
    if args.http_repeat is None:
        args.http_repeat = QUICK_HTTP_REPEAT if args.quick else HTTP_REPEAT
    if args.http_seconds is None:
        args.http_seconds = QUICK_HTTP_SECONDS if args.quick else HTTP_SECONDS
    if min(args.repeat, args.scaling_repeat, args.http_repeat, args.http_seconds) < 1:
        parser.error("--repeat, --scaling-repeat, --http-repeat and --http-seconds must be >= 1")

    libs = [name.strip() for name in args.libs.split(",") if name.strip()]
    unknown = sorted(set(libs) - set(ALL_LIBS))
    if unknown or not libs:
        parser.error(
            f"--libs: unknown {', '.join(unknown) or '(none given)'}; choose from {ALL_LIBS}"
        )
    args.libs = [lib for lib in ALL_LIBS if lib in libs]  # canonical order, no duplicates

    names = [n.strip() for n in (args.only or "").split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES and n not in GROUPS]
    if unknown:
        parser.error(f"--only: unknown case(s) or group(s) {', '.join(unknown)}; see --list")
    groups = set(names) & set(GROUPS) if names else set(GROUPS)
    if "scaling" in groups:
        groups |= {"scaling-echo", "scaling-timers", "scaling-http"}
    args.groups = groups
    micro = [c for c in CASES.values() if c.kind == "time" and c.main]
    if "micro" in groups:
        args.cases = micro
    else:
        args.cases = [c for c in CASES.values() if c.name in names and c.kind == "time"]
    args.memory_cases = [
        c for c in CASES.values()
        if c.kind == "memory" and ("memory" in groups or c.name in names)
    ]
    return args


def list_cases() -> None:
    rows = [
        [c.name, c.kind if c.main or c.kind != "time" else "scaling", f"{c.size:,}",
         f"{c.quick_size:,}", ", ".join(LABELS[lib] for lib in case_libs(c, list(ALL_LIBS))),
         c.doc]
        for c in CASES.values()
    ]
    print(markdown_table(["case", "kind", "size", "quick size", "libraries", "what it does"],
                         rows, {2, 3}))
    print(f"\nGroups for --only: {', '.join(GROUPS)}.")
    print("HTTP points: " + "; ".join(p.label for p in HTTP_MAIN) + "; scaling at "
          + ", ".join(f"{c:,}" for c in SCALING_CONNECTIONS) + " connections, both modes.")


def scaled(base: int, minimum: int, scale: float) -> int:
    return max(minimum, int(base * scale))


def case_size(case: Case, args) -> int:
    return scaled(case.quick_size if args.quick else case.size, case.min_size, args.size_scale)


# --------------------------------------------------------------------------
# The run


@dataclass
class Report:
    micro: Results = field(default_factory=list)
    http: HttpResults = field(default_factory=list)
    echo: list[tuple[int, Case, int, dict[str, Cell]]] = field(default_factory=list)
    timers: Results = field(default_factory=list)
    http_scaling: HttpResults = field(default_factory=list)
    memory: Results = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    charts: list[Path] = field(default_factory=list)


def http_plan(args) -> tuple[list[HttpPoint], list[HttpPoint]]:
    """The HTTP points of the main table and of the scaling series."""
    main = HTTP_MAIN if "http" in args.groups else []
    scaling = (
        [HttpPoint(c, m) for m in ("keep-alive", "close") for c in SCALING_CONNECTIONS]
        if "scaling-http" in args.groups else []
    )
    if args.quick and scaling:
        scaling = QUICK_HTTP_SCALING
    if args.tiny:
        main, scaling = main[:1], []
    return main, scaling


def run_suite(args, runner: Runner) -> Report:
    report = Report()
    for case in args.cases:
        size = case_size(case, args)
        report.micro.append((case, size, runner.case(case, size)))

    http_main, http_scaling = http_plan(args)
    if (http_main or http_scaling) and not args.wrk:
        report.skipped.append(f"HTTP cases: wrk not found on PATH; {http_bench.INSTALL_HINT}.")
        print(f"skipping the HTTP cases: wrk not found; {http_bench.INSTALL_HINT}",
              file=sys.stderr)
        http_main, http_scaling = [], []
    if args.no_http and (http_main or http_scaling):
        report.skipped.append("HTTP cases: --no-http given.")
        http_main, http_scaling = [], []
    for point in http_main:
        report.http.append((point, runner.http_point(point, nodelay=True)))

    if "scaling-echo" in args.groups:
        for conns, name in ECHO_SERIES:
            case = CASES[name]
            size = case_size(case, args)
            report.echo.append((conns, case, size, runner.case(case, size, args.scaling_repeat)))
    if "scaling-timers" in args.groups:
        case = CASES["timers"]
        for base in QUICK_TIMER_SIZES if args.quick else TIMER_SIZES:
            size = scaled(base, case.min_size, args.size_scale)
            report.timers.append((case, size, runner.case(case, size, args.scaling_repeat)))
    for point in http_scaling:
        runner.http_point(point, nodelay=not args.quick)
    if http_scaling:
        # The curve: every measured point, the main table's included, by mode and concurrency.
        report.http_scaling = sorted(
            runner.http.items(), key=lambda item: (item[0].mode != "keep-alive",
                                                   item[0].connections))

    for case in args.memory_cases:
        size = case_size(case, args)
        report.memory.append((case, size, runner.case(case, size, args.scaling_repeat)))
    return report


def chart_footer(args) -> str:
    cores, _usable = core_count()
    return (f"{datetime.now(timezone.utc):%Y-%m-%d}, {cores} cores, {cpu_model()},"
            f" Python {platform.python_version()}. Absolute numbers are machine-specific.")


def draw_charts(report: Report, args, out_dir: Path) -> list[Path]:
    footer = chart_footer(args)
    written = []

    def series_of(points, value):
        out: dict[str, list[tuple[float, float]]] = {}
        for x, cells in points:
            for lib, cell in cells.items():
                y = value(cell)
                if y is not None:
                    out.setdefault(lib, []).append((x, y))
        return out

    if report.echo:
        path = out_dir / "scaling_echo.png"
        messages = report.echo[0][2]
        charts.line_chart(
            path, f"TCP echo, {messages:,} x 64-byte messages over N connections",
            "concurrent connections", "messages/s (higher is better)",
            series_of([(c, cells) for c, _case, _s, cells in report.echo],
                      lambda cell: metric_median(cell, "msg/s")),
            LABELS, footer,
        )
        written.append(path)
    if report.timers:
        path = out_dir / "scaling_timers.png"
        charts.line_chart(
            path, "timers: N greenlets each sleep a random 0-50 ms, joinall",
            "greenlets", "total time, ms (lower is better)",
            series_of([(size, cells) for _case, size, cells in report.timers],
                      lambda cell: statistics.median(cell.times) * 1000
                      if cell.times and not cell.error else None),
            LABELS, footer, log_y=True, floor=(50.0, "longest sleep (50 ms)"),
        )
        written.append(path)
    if report.http_scaling:
        path = out_dir / "scaling_http.png"
        panels: dict = {}
        for mode in ("keep-alive", "close"):
            points = [(p.connections, cells) for p, cells in report.http_scaling if p.mode == mode]
            if points:
                panels[mode] = {
                    "rps": series_of(points, lambda c: statistics.median(c.rps)
                                     if c.rps and not c.error else None),
                    "p99": series_of(points, lambda c: statistics.median(c.p99_ms)
                                     if c.p99_ms and not c.error else None),
                }
        charts.http_chart(path, panels, LABELS, footer)
        written.append(path)
    if report.memory:
        path = out_dir / "memory.png"
        groups, values = [], {lib: [] for lib in ALL_LIBS}
        for _case, _size, cells in report.memory:
            metric = next((m for c in cells.values() for e in c.extras for m in e), None)
            groups.append(f"per idle {metric.split('/')[1]}" if metric else _case.name)
            for lib in ALL_LIBS:
                values[lib].append(metric_median(cells.get(lib), metric) if metric else None)
        charts.bar_chart(path, "memory: RSS growth per idle item", "bytes (lower is better)",
                         groups, values, LABELS, footer)
        written.append(path)
    rows = [(case.name, float(r)) for case, _s, cells in report.micro
            if (r := ratio(cells, "greenweave")) != "-"]
    if rows:
        path = out_dir / "ratios.png"
        charts.ratio_chart(path, "greenweave vs gevent, micro and I/O cases", rows, footer)
        written.append(path)
    return written


def render(report: Report, args, info: str) -> tuple[str, str]:
    """The full Markdown report, and the README snippet."""
    cores, _usable = core_count()
    libs = args.libs
    honesty = (
        f"Absolute numbers are specific to this machine ({cores} cores, {cpu_model()}); compare"
        " ratios, and only between runs on the same machine. Every library runs the same"
        " workload (the gevent-API code is shared verbatim by greenweave and gevent; eventlet"
        " and asyncio+uvloop run step-for-step counterparts), warm-up runs are not counted, and"
        " every HTTP server is loaded by the same wrk command."
    )
    sections = [f"# greenweave benchmarks\n\n{info}\n\n{honesty}"]
    if report.micro:
        text = ("## Micro-benchmarks and I/O\n\nTime of the timed region; ratio = greenweave"
                " (or eventlet, asyncio+uvloop) median ÷ gevent median, below 1 means faster"
                " than gevent. n/a: the case has no counterpart for that library.\n\n"
                + results_table(report.micro, libs))
        extras = extras_table(report.micro, libs)
        if extras:
            text += "\n\nDerived metrics (medians):\n\n" + extras
        sections.append(text)
    if report.http:
        sections.append("## HTTP (wrk)\n\n" + http_method(args) + "\n\n"
                        + http_table(report.http, libs))
    if report.echo or report.timers or report.http_scaling:
        parts = ["## Scaling"]
        if report.echo:
            parts.append(
                "TCP echo (the tcp_echo workload) at growing concurrency; the same number of"
                " 64-byte messages in total at every point, so msg/s shows the per-message cost"
                " as connections grow. Chart: `scaling_echo.png`.\n\n"
                + echo_table(report.echo, libs))
        if report.timers:
            parts.append(
                "timers at growing numbers of greenlets (each sleeps a random 0-50 ms, so 50 ms"
                " is the floor). Chart: `scaling_timers.png`.\n\n"
                + results_table(report.timers, libs))
        if report.http_scaling:
            parts.append("HTTP at growing concurrency (same method as above; the rows of the HTTP"
                         " table are included). Chart: `scaling_http.png`.\n\n"
                         + http_table(report.http_scaling, libs))
        sections.append("\n\n".join(parts))
    if report.memory:
        sections.append(
            "## Memory\n\nRSS growth (from /proc/self/statm, after gc.collect()) divided by N,"
            " in a fresh process: N greenlets (asyncio: tasks) parked on one Event, and N"
            " idle accepted TCP connections each with a handler blocked in recv (clients are"
            " plain stdlib sockets in the same process, identical for every library). Median"
            " of the runs. Chart: `memory.png`.\n\n" + memory_table(report.memory, libs))
    errors = errors_section(report.micro + report.timers + report.memory
                            + [(c, s, cells) for _n, c, s, cells in report.echo],
                            report.http + report.http_scaling, [*libs, NODELAY])
    if errors:
        sections.append("## Errors\n\n" + errors)
    if report.skipped:
        sections.append("## Skipped\n\n" + "\n".join(f"- {s}" for s in report.skipped))
    full = "\n\n".join(sections) + "\n"

    snippet = [
        "<!-- generated by bench/run.py: paste into README.md -->",
        "## Benchmarks",
        "",
        "Made with `python bench/run.py` (`pip install -e '.[bench]'`, plus Debian's `wrk` for"
        " the HTTP cases; `--quick` runs the whole suite in under two minutes). Each number is"
        " the median of several runs, each library in its own fresh process, interleaved, warm-up"
        " not counted. Ratios compare with gevent: for times, below 1 means greenweave is faster;"
        " for requests/s, above 1 means greenweave serves more.",
        "",
        f"Machine: {cores} cores, {cpu_model()}, Python {platform.python_version()},"
        f" {datetime.now(timezone.utc):%Y-%m-%d}. Absolute numbers are specific to this machine."
        " Full report, with min/max, scaling and memory: `bench/results/latest.md`.",
    ]
    if report.micro:
        snippet += ["", results_table(report.micro, libs, with_spread=False)]
    if report.http:
        snippet += ["", "HTTP, hello-world WSGI under `wrk` (requests/s, p99 latency in ms)."
                    " gevent+NODELAY is gevent's server with TCP_NODELAY set by hand, a"
                    " reference: stock gevent sends headers and body in two writes and waits"
                    " ~40 ms per keep-alive response on Nagle's algorithm and the client's"
                    " delayed ACK (details in the full report).", "",
                    http_table(report.http, libs, with_spread=False)]
    if report.memory:
        snippet += ["", "Memory (bytes of RSS per idle item):", "",
                    memory_table(report.memory, libs)]
    chart = next((p for p in report.charts if p.name == "scaling_echo.png"),
                 report.charts[0] if report.charts else None)
    if chart is not None:
        snippet += ["", f"![TCP echo throughput as connections grow](bench/results/{chart.name})"]
    return full, "\n".join(snippet) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        list_cases()
        return 0

    load_before = loadavg_text()
    args.wrk = http_bench.find_wrk()
    infos = probe_libraries(args.libs, args.timeout)
    broken = {lib: info.get("error", "?") for lib, info in infos.items() if not info.get("ok")}
    for lib, error in broken.items():
        if lib in LIBS:
            print(f"warning: {lib} is not importable: {error}", file=sys.stderr)
        else:
            print(f"skipping {LABELS[lib]}: {error}", file=sys.stderr)

    runner = Runner(args, broken)
    report = run_suite(args, runner)
    report.skipped += [f"{LABELS[lib]}: {one_line(error)}" for lib, error in broken.items()
                       if lib not in LIBS]
    print(f"done in {time.monotonic() - runner.started:.0f} s\n", file=sys.stderr)

    out_dir = args.output.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.no_charts:
        report.skipped.append("charts: --no-charts given.")
    elif reason := charts.available():
        report.skipped.append(f"charts: {reason}.")
        print(f"skipping the charts: {reason}", file=sys.stderr)
    else:
        report.charts = draw_charts(report, args, out_dir)

    info = machine_info(infos, args, (load_before, loadavg_text()), runner.max_load)
    full, snippet = render(report, args, info)
    print(full)
    args.output.write_text(full)
    written = [args.output]
    snippet_path = out_dir / "README-snippet.md"
    snippet_path.write_text(snippet)
    written.append(snippet_path)
    if not args.quick and not args.only:
        dated = out_dir / f"{datetime.now(timezone.utc):%Y-%m-%d}.md"
        dated.write_text(full)
        written.append(dated)

    raw = {
        "argv": args.argv,
        "libraries": infos,
        "results": [
            {"case": name, "size": size, "lib": lib, **asdict(cell)}
            for (name, size), cells in runner.cases.items()
            for lib, cell in cells.items()
        ],
        "http": [
            {"connections": point.connections, "mode": point.mode, "lib": lib, **asdict(cell)}
            for point, cells in runner.http.items()
            for lib, cell in cells.items()
        ],
    }
    raw_path = args.output.with_name(args.output.stem + ".raw.json")
    raw_path.write_text(json.dumps(raw, indent=1) + "\n")
    written += [*report.charts, raw_path]
    print("wrote " + ", ".join(str(p) for p in written), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
