"""Keep the benchmark harness (bench/run.py) working: a tiny run end to end.

No timing assertions: the run's numbers are meaningless at these sizes.  The
tests check that the command succeeds, that the report, the README snippet,
the raw samples and the charts are written, and that every table has its
rows, with no library failing a case.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUN = REPO / "bench" / "run.py"
sys.path.insert(0, str(REPO / "bench"))

from cases import CASES  # noqa: E402  (needs the sys.path entry above)
from http_bench import parse_wrk  # noqa: E402

HAVE_WRK = shutil.which("wrk") is not None
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None

# Real `wrk -t1 -c50 -d2s --latency -H 'Connection: close'` output.
WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:39861/
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    15.96ms   39.84ms 271.89ms   93.40%
    Req/Sec    31.30k    12.59k   53.63k    61.11%
  Latency Distribution
     50%  850.00us
     75%   12.78ms
     90%   35.05ms
     99%    1.23s
  58018 requests in 2.07s, 6.36MB read
  Socket errors: connect 0, read 11, write 2, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  28058.41
Transfer/sec:      3.08MB
"""


def tables(text: str, section: str) -> list[list[list[str]]]:
    """Every table under ``## section`` (up to the next section): rows of cells, header first."""
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    found: list[list[list[str]]] = []
    previous_was_row = False
    for line in body.splitlines():
        is_row = line.startswith("|")
        if is_row and not line.startswith("| -"):
            if not previous_was_row:
                found.append([])
            found[-1].append([cell.strip() for cell in line.strip().strip("|").split("|")])
        previous_was_row = is_row
    return found


def test_parse_wrk() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result["rps"] == 28058.41
    assert result["requests"] == 58018
    assert result["p50_ms"] == pytest.approx(0.85)
    assert result["p99_ms"] == pytest.approx(1230.0)
    assert result["socket_errors"] == 14
    assert result["non_2xx"] == 5


def test_parse_wrk_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="unexpected wrk output"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_list() -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--list"], capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stderr
    for name in CASES:
        assert f"| {name} " in proc.stdout


def test_unknown_case_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, str(RUN), "--only", "no_such_case"],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert "no_such_case" in proc.stderr


@pytest.mark.timeout(180)
def test_tiny_run_writes_the_report(tmp_path: Path) -> None:
    output = tmp_path / "latest.md"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--tiny", "--output", str(output)],
        capture_output=True, text=True, timeout=170, cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = output.read_text()

    # Machine facts and the honesty note.
    assert "- cores: " in report
    assert "- python: " in report
    assert "- gevent: " in report
    assert "Absolute numbers are specific to this machine" in report
    # Every library ran every case it was given.
    assert "## Errors" not in report, report.split("## Errors", 1)[1]

    micro, derived = tables(report, "Micro-benchmarks and I/O")
    header, rows = micro[0], micro[1:]
    assert header[2] == "greenweave ÷ gevent"  # ratios against gevent first
    names = [row[0] for row in rows]
    assert names == [c.name for c in CASES.values() if c.kind == "time" and c.main]
    for row in rows:
        float(row[2])  # a number, not "-" or an error
    assert {row[0] for row in derived[1:]} == {"tcp_echo", "tcp_echo_1k", "stream_server_echo"}

    echo, timers = tables(report, "Scaling")
    assert [row[0] for row in echo[1:]] == ["10", "100", "1,000", "5,000"]
    assert [row[0] for row in timers[1:]] == ["timers"] * 3

    (memory,) = tables(report, "Memory")
    assert [row[0] for row in memory[1:]] == ["bytes/greenlet", "bytes/connection"]

    if HAVE_WRK:
        (http,) = tables(report, "HTTP (wrk)")
        assert http[1][:2] == ["50", "keep-alive"]
        float(http[1][2])  # the greenweave/gevent ratio
    else:
        assert "wrk not found" in report

    snippet = (tmp_path / "README-snippet.md").read_text()
    assert "python bench/run.py" in snippet
    assert "| spawn_join " in snippet

    raw = json.loads((tmp_path / "latest.raw.json").read_text())
    assert {r["lib"] for r in raw["results"]} >= {"greenweave", "gevent"}

    if HAVE_MATPLOTLIB:
        for name in ("scaling_echo.png", "scaling_timers.png", "memory.png", "ratios.png"):
            assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert "![" in snippet
    else:
        assert "matplotlib" in report
