"""HTTP benchmarks: each library's WSGIServer under the same ``wrk`` client.

One measurement (:func:`run_once`):

1. start a fresh ``bench/_http_server.py LIB`` process (hello-world app,
   127.0.0.1, port 0) and read the port it prints;
2. check one request by hand (status 200, the right body), so a server that
   answers fast but wrong is an error, not a number;
3. run ``wrk`` at the same concurrency and mode for :data:`WARMUP_SECONDS`
   (not counted), then once more for the measured duration with
   ``--latency``;
4. parse requests/s, the latency percentiles, socket errors and non-2xx
   responses, and stop the server.

Every server gets the identical wrk command: same threads, connections,
duration, ``--timeout`` and, for the ``close`` mode, ``-H 'Connection:
close'`` (the server closes each connection after its response and wrk
reconnects).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SERVER = BENCH_DIR / "_http_server.py"
HTTP_LIBS = ("greenweave", "gevent")
WARMUP_SECONDS = 1
WRK_TIMEOUT = "10s"  # a response slower than this counts as a wrk timeout error
EXPECTED_BODY = b"Hello, World!"
INSTALL_HINT = "install wrk to run them (Debian/Ubuntu: apt-get install -y wrk)"


@dataclass(frozen=True)
class HttpPoint:
    """One HTTP configuration: concurrency and keep-alive or Connection: close."""

    connections: int
    mode: str  # "keep-alive" or "close"

    @property
    def label(self) -> str:
        return f"{self.connections:,} conns, {self.mode}"


@dataclass
class HttpCell:
    """All measured wrk runs of one library on one point."""

    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)
    socket_errors: list[int] = field(default_factory=list)
    non_2xx: list[int] = field(default_factory=list)
    error: str | None = None


def find_wrk() -> str | None:
    return shutil.which("wrk")


def wrk_version(wrk: str) -> str:
    proc = subprocess.run([wrk, "--version"], capture_output=True, text=True)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return text[0].split(" Copyright")[0] if text else "unknown"


def wrk_threads() -> int:
    """wrk threads: one on a 1-2 core machine (leave a core to the server), else up to 4."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cores or 1) // 2))


def wrk_command(wrk: str, point: HttpPoint, seconds: int, url: str, latency: bool) -> list[str]:
    threads = min(wrk_threads(), point.connections)
    cmd = [wrk, f"-t{threads}", f"-c{point.connections}", f"-d{seconds}s"]
    cmd.append(f"--timeout={WRK_TIMEOUT}")
    if latency:
        cmd.append("--latency")
    if point.mode == "close":
        cmd += ["-H", "Connection: close"]
    return [*cmd, url]


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _to_ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict:
    """Pick the numbers out of ``wrk --latency`` output (raises ValueError if absent)."""
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if not rps or not total:
        raise ValueError(f"unexpected wrk output: {output.strip()[-300:]!r}")
    percentiles = {
        int(p): _to_ms(v, u)
        for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return {
        "rps": float(rps.group(1)),
        "requests": int(total.group(1)),
        "p50_ms": percentiles.get(50),
        "p99_ms": percentiles.get(99),
        "socket_errors": sum(int(x) for x in errors.groups()) if errors else 0,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
    }


def _check_server(port: int) -> None:
    """One request by hand: the server must answer 200 with the hello-world body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    if response.status != 200 or body != EXPECTED_BODY:
        raise RuntimeError(f"bad response: {response.status} {body[:60]!r}")


def _start_server(lib: str, stderr_file) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), lib],
        stdout=subprocess.PIPE,
        stderr=stderr_file,
        text=True,
        cwd=BENCH_DIR.parent,
    )
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    line = proc.stdout.readline() if ready else ""
    try:
        info = json.loads(line)
    except json.JSONDecodeError:
        info = {"ok": False, "error": f"server printed no port (got {line.strip()[:100]!r})"}
    if not info.get("ok"):
        _stop(proc)
        raise RuntimeError(info.get("error", "server failed to start"))
    return proc, info["port"]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    if proc.stdout:
        proc.stdout.close()


def _stderr_tail(stderr_file) -> str:
    stderr_file.seek(0)
    lines = stderr_file.read().decode(errors="replace").strip().splitlines()
    return f" (server stderr: {lines[-1][:200]})" if lines else ""


def run_once(wrk: str, lib: str, point: HttpPoint, seconds: int, timeout: float) -> dict:
    """One fresh server, one warm-up, one measured wrk run.  Never raises."""
    with tempfile.TemporaryFile() as stderr_file:
        try:
            proc, port = _start_server(lib, stderr_file)
        except Exception as exc:
            return {"ok": False, "error": f"{exc}{_stderr_tail(stderr_file)}"}
        url = f"http://127.0.0.1:{port}/"
        try:
            _check_server(port)
            for latency, duration in ((False, WARMUP_SECONDS), (True, seconds)):
                cmd = wrk_command(wrk, point, duration, url, latency)
                out = subprocess.run(
                    cmd, capture_output=True, text=True, timeout=duration + timeout
                )
                if out.returncode != 0:
                    raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip()[:200]}")
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited with code {proc.returncode}")
            result = parse_wrk(out.stdout)
            if result["requests"] == 0:
                raise RuntimeError("wrk completed no request")
            return {"ok": True, **result}
        except Exception as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}{_stderr_tail(stderr_file)}"}
        finally:
            _stop(proc)
            time.sleep(0.2)  # let the kernel settle closed sockets between runs


def measure(
    wrk: str,
    point: HttpPoint,
    libs: list[str],
    repeat: int,
    seconds: int,
    timeout: float,
    broken: dict[str, str],
) -> dict[str, HttpCell]:
    """``repeat`` rounds, libraries interleaved, each run a fresh server with its own warm-up."""
    cells = {lib: HttpCell(error=broken.get(lib)) for lib in libs}
    for _ in range(repeat):
        for lib in libs:
            cell = cells[lib]
            if cell.error is not None:
                continue
            result = run_once(wrk, lib, point, seconds, timeout)
            if not result.get("ok"):
                cell.error = result.get("error", "unknown error")
                continue
            cell.rps.append(result["rps"])
            cell.requests.append(result["requests"])
            cell.socket_errors.append(result["socket_errors"])
            cell.non_2xx.append(result["non_2xx"])
            if result["p50_ms"] is not None:
                cell.p50_ms.append(result["p50_ms"])
            if result["p99_ms"] is not None:
                cell.p99_ms.append(result["p99_ms"])
            print(".", end="", file=sys.stderr, flush=True)
    return cells
