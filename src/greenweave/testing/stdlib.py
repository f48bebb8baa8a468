"""CPython's own test suite as greenweave's compatibility yardstick.

Runs test modules of the interpreter's ``test`` package three ways, each module
in its own process with time limits, and prints a Markdown table of passed /
failed / errors / skipped per module and run, then the totals:

* ``baseline``   -- unpatched;
* ``gevent``     -- under ``python -m gevent.monkey`` (when gevent is installed,
  e.g. through the ``bench`` extra);
* ``greenweave`` -- under ``python -m greenweave.monkey``.

The full comparison (the 25 modules of issue 6; about an hour on two cores)::

    python -m greenweave.testing.stdlib --jobs 2 --markdown stdlib_table.md --json stdlib.json

The fast subset CI runs, failing on any greenweave failure that is not listed
in ``stdlib_known_failures.txt``::

    python -m greenweave.testing.stdlib --quick --check --libs greenweave

Other options: ``--modules test_socket,test_ssl`` (names with or without the
``test.`` prefix), ``--libs baseline,greenweave``, ``--timeout`` (seconds per
module, default 600) and ``--test-timeout`` (seconds per test, default 120),
``--logs DIR`` (keep every run's output and verbose report), ``--exclude-file`` /
``--known-failures`` (replace the bundled lists), ``--isolation`` and
``--memory-limit`` (below).  ``--help`` lists them all.

How a module is run: every run goes through the same driver script,
``_run_stdlib.py`` (unpatched for the baseline, as the script argument of
``python -m gevent.monkey`` / ``python -m greenweave.monkey`` otherwise), so the
three counts cover exactly the same tests.  The driver drops the tests named in
``stdlib_excluded.txt`` (those that hang or fail unpatched on this machine, or
need the internet, each with its reason) and runs the rest with unittest's
verbose runner, whose report is parsed here per test: ``ok`` and ``expected
failure`` count as passed, ``FAIL`` and ``unexpected success`` as failed,
``ERROR`` as an error.  Where ``unshare --net`` works (root on Linux), each run
gets a private network namespace with only loopback, so the ``network`` test
resource is enabled and still nothing can leave the machine; elsewhere that
resource is denied.  Each run's address space is capped (4 GiB by default) so a
runaway test gets ``MemoryError`` rather than the OOM killer.  A test that makes
no progress for the per-test limit, or kills its process, counts as an error
(``timeout`` / ``crash``): the process group is killed and a new process
resumes after that test.  Each run gets a fresh temporary working directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Sequence

from ._run_stdlib import is_listed, read_id_file

__all__ = [
    "LIBS",
    "MODULES",
    "QUICK_MODULES",
    "Parsed",
    "Run",
    "check",
    "main",
    "parse_verbose",
    "read_id_file",
    "render_markdown",
    "run_module",
]

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "_run_stdlib.py")
EXCLUDED_FILE = os.path.join(HERE, "stdlib_excluded.txt")
KNOWN_FAILURES_FILE = os.path.join(HERE, "stdlib_known_failures.txt")

#: The modules the issue names, in its order.
MODULES: tuple[str, ...] = (
    "test_socket", "test_select", "test_selectors", "test_threading", "test_thread",
    "test_threading_local", "test_queue", "test_subprocess", "test_ssl", "test_httplib",
    "test_urllib2_localnet", "test_socketserver", "test_wsgiref", "test_ftplib",
    "test_smtplib", "test_poplib", "test_telnetlib", "test_timeout", "test_signal",
    "test_asyncore", "test_xmlrpc", "test_httpservers", "test_logging", "test_contextlib",
    "test_time",
)

#: Modules that finish in a few seconds each under greenweave: the CI subset.
QUICK_MODULES: tuple[str, ...] = (
    "test_select", "test_selectors", "test_timeout", "test_threading_local", "test_contextlib",
    "test_wsgiref", "test_smtplib", "test_httplib", "test_urllib2_localnet",
    "test_socketserver", "test_telnetlib", "test_asyncore", "test_time",
)

LIBS: tuple[str, ...] = ("baseline", "gevent", "greenweave")

# Per-test outcomes as the verbose report spells them, and how each is counted.
OK, FAIL, ERROR, SKIP, XFAIL, XPASS = (
    "ok", "FAIL", "ERROR", "skipped", "expected failure", "unexpected success")
TIMEOUT, CRASH = "timeout", "crash"  # the test that was running when the run died
_RANK = {SKIP: 0, XFAIL: 1, OK: 2, XPASS: 3, FAIL: 4, ERROR: 5, CRASH: 6, TIMEOUT: 7}
_COUNTED_AS = {OK: "passed", XFAIL: "passed", FAIL: "failed", XPASS: "failed",
               ERROR: "errors", TIMEOUT: "errors", CRASH: "errors", SKIP: "skipped"}
BAD = frozenset({FAIL, XPASS, ERROR, TIMEOUT, CRASH})
_FIXTURES = frozenset({"setUpClass", "tearDownClass", "setUpModule", "tearDownModule"})


# --------------------------------------------------------------------------- parsing

@dataclasses.dataclass
class Parsed:
    """What a verbose unittest report says.

    ``outcomes`` maps each test id to its outcome (one of ``ok``, ``FAIL``,
    ``ERROR``, ``skipped``, ``expected failure``, ``unexpected success``);
    sub-test failures are folded into their test's outcome, the worst one
    winning.  ``running`` is the test that had started but not finished when
    the report ends (None if none); ``finished`` says the closing ``OK`` /
    ``FAILED`` line was seen; ``ran`` is unittest's own ``Ran N tests`` count;
    ``details`` keeps the traceback of each failure and error.
    """

    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)
    running: str | None = None
    finished: bool = False
    ran: int | None = None
    details: dict[str, str] = dataclasses.field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """``{"passed": n, "failed": n, "errors": n, "skipped": n}``."""
        c = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
        for outcome in self.outcomes.values():
            c[_COUNTED_AS[outcome]] += 1
        return c


_SEP1, _SEP2 = "=" * 70, "-" * 70
# "name (dotted.id)" as str(TestCase) writes it; the dotted part is the full id
# on 3.11+ and the class on 3.10.  Statuses are anchored at the end of the line.
_DESC = r"(?P<name>\S+) \((?P<paren>[^()\s]*)\)"
_STATUS = (r"(?P<status>ok|FAIL|ERROR|expected failure|unexpected success"
           r"|skipped (?P<q>['\"]).*(?P=q))")
_TOP_RE = re.compile(rf"^{_DESC} \.\.\. (?P<rest>.*)$")
_SUB_RE = re.compile(rf"^  {_DESC} .*? \.\.\. {_STATUS}$")
_BARE_RE = re.compile(rf"^{_STATUS}$")
_RAN_RE = re.compile(r"^Ran (\d+) tests? in ")
_FLAVOUR_RE = re.compile(rf"^(?:FAIL|ERROR): {_DESC}(?: .*)?$")


def _test_id(name: str, paren: str) -> str:
    if paren == name or paren.endswith("." + name):
        return paren  # 3.11+: "test_x (mod.Class.test_x)"
    return f"{paren}.{name}" if paren else name  # 3.10 form, doctests, class fixtures


def _status(text: str) -> str:
    return SKIP if text.startswith("skipped") else text


def parse_verbose(text: str) -> Parsed:
    """Parse unittest's verbose report (``-v`` / ``verbosity=2``, descriptions off).

    Lines that are not part of the report (``# ...`` notes, stray output) are
    ignored, so a report cut short by a kill parses up to where it stops.
    """
    parsed = Parsed()
    outcomes = parsed.outcomes

    def record(test_id: str, status: str) -> None:
        old = outcomes.get(test_id)
        if old is None or _RANK[status] > _RANK[old]:
            outcomes[test_id] = status

    lines = text.splitlines()
    i = 0
    current: str | None = None  # started, no status of its own yet
    while i < len(lines):
        line = lines[i]
        i += 1
        if line == _SEP1 or line == _SEP2:
            i -= 1
            break
        m = _TOP_RE.match(line)
        if m:
            test_id = _test_id(m["name"], m["paren"])
            s = _BARE_RE.match(m["rest"])
            if s:
                record(test_id, _status(s["status"]))
                current = None
            else:  # the status follows later (after sub-tests, or output the test printed)
                current = test_id
            continue
        m = _SUB_RE.match(line)
        if m:
            test_id = _test_id(m["name"], m["paren"])
            record(test_id, _status(m["status"]))
            current = test_id  # the test itself may still report (after a newline)
            continue
        m = _BARE_RE.match(line)
        if m and current is not None:
            record(current, _status(m["status"]))
            current = None
            continue
        m = _RAN_RE.match(line)
        if m:
            parsed.ran = int(m.group(1))
    # Whatever started last and has no outcome at all was cut off.
    if current is not None and current not in outcomes:
        parsed.running = current

    # The tail: "FAIL: desc" / "ERROR: desc" blocks, "Ran N tests", "OK" / "FAILED (...)".
    flavour_id: str | None = None
    block: list[str] = []

    def close_block() -> None:
        if flavour_id is not None:
            parsed.details.setdefault(flavour_id, "\n".join(block).strip("\n"))

    while i < len(lines):
        line = lines[i]
        i += 1
        if line == _SEP1 or line == _SEP2:
            if line == _SEP2 and flavour_id is not None and not block:
                continue  # the separator between a block's title and its traceback
            close_block()
            flavour_id, block = None, []
            if line == _SEP1 and i < len(lines):
                m = _FLAVOUR_RE.match(lines[i])
                if m:
                    flavour_id = _test_id(m["name"], m["paren"])
                    i += 1
            continue
        if flavour_id is not None:
            block.append(line)
            continue
        m = _RAN_RE.match(line)
        if m:
            parsed.ran = int(m.group(1))
        elif line == "OK" or line.startswith("OK (") or line.startswith("FAILED ("):
            parsed.finished = True
    close_block()
    return parsed


# --------------------------------------------------------------------------- running

@dataclasses.dataclass
class Run:
    """One module run under one library.

    ``status`` is ``ok``, ``failed`` (some test failed), ``timeout`` (killed
    mid-run), ``exit-hang`` (every test reported, then killed while exiting),
    ``crash`` (died without finishing its report), ``import-error`` or
    ``missing`` (the interpreter has no such test module).
    """

    module: str
    lib: str
    status: str
    seconds: float = 0.0
    returncode: int | None = None
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)
    details: dict[str, str] = dataclasses.field(default_factory=dict)
    ran: int | None = None
    note: str = ""
    qualname: str = ""  # the module's full name; "test.<module>" when empty

    @property
    def fullname(self) -> str:
        return self.qualname or f"test.{self.module}"

    def counts(self) -> dict[str, int]:
        return Parsed(outcomes=self.outcomes).counts()

    def problems(self) -> dict[str, str]:
        """``{test id: outcome}`` for every failing test, plus a pseudo-test
        ``test.MODULE.<status>`` when the process itself misbehaved."""
        bad = {t: o for t, o in self.outcomes.items() if o in BAD}
        if self.status in ("exit-hang", "crash", "import-error", "timeout") and not any(
                o in (TIMEOUT, CRASH) for o in bad.values()):
            bad[f"{self.fullname}.<{self.status}>"] = self.status
        return bad


# Every run starts through this launcher, which caps the run's address space
# (a runaway test then gets MemoryError instead of the machine's OOM killer),
# in a private network namespace first brings the loopback interface up, and
# execs the real command.  argv: memory-limit-bytes lo-up(0/1) command...
_LAUNCHER = """\
import fcntl, os, resource, socket, struct, sys
limit, lo_up, cmd = int(sys.argv[1]), sys.argv[2] == '1', sys.argv[3:]
if limit > 0:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
if lo_up:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack('16sH22x', b'lo', 0)
        flags = struct.unpack_from('16sH', fcntl.ioctl(s, 0x8913, req))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(s, 0x8914, struct.pack('16sH22x', b'lo', flags | 1))  # SIOCSIFFLAGS, IFF_UP
os.execv(cmd[0], cmd)
"""
_NETNS = ["unshare", "--net", "--"]
# Resources denied to the tests: in a private network namespace (where nothing can
# reach another host), "network" is allowed.
DENY_ISOLATED = "urlfetch,gui,audio,curses,largefile"
DENY_SHARED = "network," + DENY_ISOLATED
#: Default cap on a run's address space (MiB).
MEMORY_LIMIT_MB = 4096


def _launch(cmd: list[str], isolated: bool, memory_mb: int) -> list[str]:
    prefix = _NETNS if isolated else []
    return prefix + [sys.executable, "-c", _LAUNCHER, str(memory_mb * 2**20),
                     "1" if isolated else "0"] + cmd


def netns_available() -> bool:
    """True when runs can get a private network namespace (``unshare --net``,
    normally root only) in which the loopback interface works."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = "import socket; socket.create_server(('127.0.0.1', 0)).close()"
    try:
        done = subprocess.run(_launch([sys.executable, "-c", probe], True, 0),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def command(lib: str, module: str, exclude_files: Sequence[str],
            dump_after: float | None = None, isolated: bool = False,
            package: str | None = "test", memory_mb: int = MEMORY_LIMIT_MB) -> list[str]:
    """The command line that runs *module* (``test_x``) under *lib*, but for
    the driver's ``--result-file`` option, which must come last."""
    prefix = {
        "baseline": [sys.executable],
        "gevent": [sys.executable, "-m", "gevent.monkey"],
        "greenweave": [sys.executable, "-m", "greenweave.monkey"],
    }[lib]
    name = f"{package}.{module}" if package else module
    cmd = prefix + [DRIVER, name, "--deny", DENY_ISOLATED if isolated else DENY_SHARED]
    for path in exclude_files:
        cmd += ["--exclude-file", path]
    if dump_after:
        cmd += ["--dump-tracebacks-after", f"{dump_after:g}"]
    return _launch(cmd, isolated, memory_mb)


_active: set[subprocess.Popen] = set()  # runs in progress, for the SIGTERM handler
_active_lock = threading.Lock()


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclasses.dataclass
class _Segment:
    report: str
    output: str
    returncode: int
    killed: str | None  # None, "stall" (no progress for a test's time limit), "deadline"


def _run_segment(cmd: list[str], workdir: str, env: dict[str, str], limit: float,
                 stall: float | None) -> _Segment:
    result_file = os.path.join(workdir, "report.txt")
    log_file = os.path.join(workdir, "output.log")
    for path in (result_file, log_file):
        if os.path.exists(path):
            os.unlink(path)
    killed = None
    started = last_change = time.monotonic()
    last_size = -1
    with open(log_file, "wb") as log:
        proc = subprocess.Popen(cmd + ["--result-file", result_file], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        with _active_lock:
            _active.add(proc)
        while True:
            try:
                proc.wait(0.5)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            try:
                size = os.path.getsize(result_file)
            except OSError:
                size = 0
            if size != last_size:
                last_size, last_change = size, now
            if now - started >= limit:
                killed = "deadline"
            elif stall and now - last_change >= stall:
                killed = "stall"
            if killed:
                _kill_group(proc)
                proc.wait()
                break
        _kill_group(proc)  # servers or children a test left behind
        with _active_lock:
            _active.discard(proc)
    texts = []
    for path in (result_file, log_file):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                texts.append(f.read())
        except FileNotFoundError:
            texts.append("")
    return _Segment(texts[0], texts[1], proc.returncode, killed)


#: How often a run may be resumed after a test that hung or crashed the process.
MAX_RESUMES = 25


def run_module(module: str, lib: str, timeout: float, exclude_files: Sequence[str] = (),
               logs_dir: str | None = None, *, test_timeout: float | None = None,
               isolated: bool = False, package: str | None = "test",
               env: dict[str, str] | None = None, memory_mb: int = MEMORY_LIMIT_MB) -> Run:
    """Run ``test.<module>`` under *lib* in a fresh process group and working
    directory, at most *timeout* seconds in all.

    When one test makes no progress for *test_timeout* seconds (or kills the
    process), the process group is killed, that test is recorded as ``timeout``
    (or ``crash``) and a new process resumes with the test after it, so one hang
    does not hide the rest of the module.

    *isolated* runs it in a private network namespace (see :func:`netns_available`);
    *memory_mb* caps its address space (0: no cap); *package* and *env* let other
    test modules (found through ``PYTHONPATH`` in *env*) be run the same way.
    """
    name = f"{package}.{module}" if package else module
    try:
        found = importlib.util.find_spec(name) is not None
    except ImportError:
        found = False
    if not found and not env:
        return Run(module, lib, "missing", note="not in this interpreter's test package",
                   qualname=name)
    child_env = dict(os.environ)
    for key in list(child_env):
        if key.startswith(("PYTEST_", "GEVENT_", "COV_CORE_")):
            del child_env[key]
    child_env.update(env or {})
    child_env["PYTHONFAULTHANDLER"] = "1"
    if test_timeout and test_timeout >= timeout:
        test_timeout = None
    # Where a hung test is stuck goes to the log shortly before it is killed.
    dump_after = max(test_timeout - 5, test_timeout * 0.8) if test_timeout else timeout - 5
    dump_after = dump_after if dump_after > 0 else None

    run = Run(module, lib, "ok", qualname=name)
    started = time.monotonic()
    resume_after: str | None = None
    interrupted: list[str] = []
    logs: list[str] = []
    while True:
        workdir = tempfile.mkdtemp(prefix=f"gw-stdlib-{lib}-{module}-")
        child_env["TMPDIR"] = workdir  # what a test leaves in the temp dir goes with it
        cmd = command(lib, module, exclude_files, dump_after=dump_after, isolated=isolated,
                      package=package, memory_mb=memory_mb)
        if resume_after:
            cmd += ["--resume-after", resume_after]
        try:
            limit = timeout - (time.monotonic() - started)
            seg = _run_segment(cmd, workdir, child_env, limit, test_timeout)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        logs.append(f"### {' '.join(cmd[-6:])}\n### exit status {seg.returncode}"
                    f"{', killed: ' + seg.killed if seg.killed else ''}\n"
                    f"{seg.output}\n### report\n{seg.report}\n")
        parsed = parse_verbose(seg.report)
        run.outcomes.update(parsed.outcomes)
        run.details.update(parsed.details)
        run.returncode = seg.returncode
        if parsed.ran is not None:
            run.ran = (run.ran or 0) + parsed.ran
        if parsed.finished:
            if seg.killed:
                run.status = "exit-hang"
                run.note = "every test reported, then hung while exiting"
            elif seg.returncode not in (0, 1):
                run.status, run.note = "crash", f"exit status {seg.returncode} after the report"
            break
        if (resume_after is None and seg.returncode == 2 and not seg.report
                and "IMPORT ERROR" in seg.output):
            run.status, run.note = "import-error", _last_line(seg.output)
            run.outcomes[f"{name}.<import>"] = ERROR
            run.details[f"{name}.<import>"] = seg.output[-4000:]
            break
        how = (f"killed after {timeout:g} s in all" if seg.killed == "deadline"
               else f"no progress for {test_timeout:g} s" if seg.killed
               else f"exit status {seg.returncode}: {_last_line(seg.output)}")
        if parsed.running is None:  # stuck or died outside any test: cannot skip past it
            run.status = "timeout" if seg.killed else "crash"
            run.note = how
            break
        run.outcomes[parsed.running] = TIMEOUT if seg.killed else CRASH
        run.details[parsed.running] = f"{how}\n" + seg.output[-4000:]
        interrupted.append(parsed.running)
        if seg.killed == "deadline" or len(interrupted) > MAX_RESUMES:
            run.status, run.note = "timeout", how
            break
        resume_after = parsed.running
    if run.status == "ok" and any(o in BAD for o in run.outcomes.values()):
        run.status = "failed"
    if interrupted and run.status != "timeout":
        run.note = (f"resumed after {len(interrupted)} test(s) that hung or crashed; "
                    + run.note).rstrip("; ")
    run.seconds = round(time.monotonic() - started, 1)
    if logs_dir:
        dest = os.path.join(logs_dir, lib)
        os.makedirs(dest, exist_ok=True)
        with open(os.path.join(dest, f"{module}.log"), "w", encoding="utf-8") as f:
            f.write("\n".join(logs))
    return run


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""


# --------------------------------------------------------------------------- reporting

def _cell(run: Run | None) -> str:
    if run is None:
        return "-"
    if run.status == "missing":
        return "n/a"
    c = run.counts()
    text = f"{c['passed']} / {c['failed']} / {c['errors']} / {c['skipped']}"
    if run.status in ("timeout", "exit-hang", "crash", "import-error"):
        text += f" ({run.status})"
    return text


def _sum(runs: Iterable[Run]) -> dict[str, int]:
    total = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for run in runs:
        for key, value in run.counts().items():
            total[key] += value
    return total


def render_markdown(runs: Sequence[Run], modules: Sequence[str], libs: Sequence[str]) -> str:
    """The results as a Markdown table: a row per module, then the totals."""
    by_key = {(r.module, r.lib): r for r in runs}
    compare = "gevent" in libs and "greenweave" in libs
    header = ["module"] + list(libs) + (["greenweave passed >= gevent"] if compare else [])
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for module in modules:
        row = [module] + [_cell(by_key.get((module, lib))) for lib in libs]
        if compare:
            g, w = by_key.get((module, "gevent")), by_key.get((module, "greenweave"))
            if g is None or w is None or "missing" in (g.status, w.status):
                row.append("-")
            else:
                row.append("yes" if w.counts()["passed"] >= g.counts()["passed"] else "**no**")
        out.append("| " + " | ".join(row) + " |")
    totals = {lib: _sum(r for r in runs if r.lib == lib) for lib in libs}
    row = ["**total**"] + [
        "**{passed} / {failed} / {errors} / {skipped}**".format(**totals[lib]) for lib in libs]
    if compare:
        g_bad = totals["gevent"]["failed"] + totals["gevent"]["errors"]
        w_bad = totals["greenweave"]["failed"] + totals["greenweave"]["errors"]
        row.append(f"failures+errors: greenweave {w_bad} vs gevent {g_bad}")
    out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Each cell: passed / failed / errors / skipped (passed includes expected "
               "failures; failed includes unexpected successes; a test killed by the "
               "time limit counts as an error).")
    return "\n".join(out) + "\n"


def check(runs: Sequence[Run], known: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Compare greenweave's runs with the known failures.

    Returns ``(unexpected, fixed)``: ``{test id: outcome}`` for each failing test
    (or misbehaving process) not on the list, and the listed tests of the
    modules that ran which now pass.
    """
    unexpected: dict[str, str] = {}
    fixed: list[str] = []
    for run in runs:
        if run.lib != "greenweave" or run.status == "missing":
            continue
        for test_id, outcome in sorted(run.problems().items()):
            if not is_listed(test_id, known):
                unexpected[test_id] = outcome
        prefix = run.fullname + "."
        for test_id in known:
            if test_id.startswith(prefix) and run.outcomes.get(test_id) in (OK, XFAIL):
                fixed.append(test_id)
    return unexpected, fixed


# --------------------------------------------------------------------------- command line

def _available(lib: str) -> bool:
    if lib == "baseline":
        return True
    try:
        return importlib.util.find_spec(f"{lib}.monkey") is not None
    except ImportError:
        return False


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m greenweave.testing.stdlib",
        description="Run CPython's own test modules unpatched, under gevent and under "
                    "greenweave, and compare.")
    p.add_argument("--modules", help="comma-separated test modules (default: all %d; "
                   "with --quick: the quick subset)" % len(MODULES))
    p.add_argument("--quick", action="store_true",
                   help="the fast CI subset: " + ", ".join(QUICK_MODULES))
    p.add_argument("--libs", help="comma-separated runs among baseline,gevent,greenweave "
                   "(default: those installed)")
    p.add_argument("--timeout", type=float, help="seconds per module run "
                   "(default 600; 120 with --quick)")
    p.add_argument("--test-timeout", type=float, help="seconds one test may take before "
                   "it counts as hung and the run resumes after it (default 120; 60 with "
                   "--quick)")
    p.add_argument("--jobs", type=int, default=1, help="runs at once (default 1)")
    p.add_argument("--json", metavar="FILE", help="write every result, per test, as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the table to FILE too")
    p.add_argument("--logs", metavar="DIR", help="keep each run's output and report here")
    p.add_argument("--exclude-file", action="append", metavar="FILE",
                   help="tests to leave out (default: the bundled stdlib_excluded.txt)")
    p.add_argument("--known-failures", metavar="FILE", default=KNOWN_FAILURES_FILE,
                   help="tests allowed to fail under greenweave (for --check)")
    p.add_argument("--isolation", choices=("auto", "netns", "none"), default="auto",
                   help="netns: run every module in a private network namespace with only "
                        "loopback, so tests may use the 'network' resource and nothing can "
                        "leave the machine; none: share the network and deny that resource; "
                        "auto (default): netns when unshare works here")
    p.add_argument("--memory-limit", type=int, default=MEMORY_LIMIT_MB, metavar="MB",
                   help="cap each run's address space (default %(default)s MiB; 0: none)")
    p.add_argument("--check", action="store_true",
                   help="exit 1 if a test not on the known-failures list fails under greenweave")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        has_tests = importlib.util.find_spec("test.support") is not None
    except ImportError:
        has_tests = False
    if not has_tests:
        print(f"error: this interpreter ({sys.executable}) has no 'test' package "
              "(CPython's own test suite); install it (e.g. Debian's "
              "libpython3.X-testsuite) or use a Python built with it", file=sys.stderr)
        return 3

    if args.modules:
        modules = [m.strip().removeprefix("test.") for m in args.modules.split(",") if m.strip()]
    else:
        modules = list(QUICK_MODULES if args.quick else MODULES)
    if args.libs:
        libs = [lib.strip() for lib in args.libs.split(",") if lib.strip()]
        for lib in libs:
            if lib not in LIBS:
                print(f"error: unknown run {lib!r}; choose among {', '.join(LIBS)}",
                      file=sys.stderr)
                return 2
            if not _available(lib):
                print(f"error: {lib}.monkey cannot be imported here", file=sys.stderr)
                return 2
    else:
        libs = [lib for lib in LIBS if _available(lib)]
    if args.check and "greenweave" not in libs:
        print("error: --check needs the greenweave run", file=sys.stderr)
        return 2
    timeout = args.timeout or (120.0 if args.quick else 600.0)
    test_timeout = args.test_timeout or (60.0 if args.quick else 120.0)
    exclude_files = args.exclude_file or [EXCLUDED_FILE]
    if args.logs:
        os.makedirs(args.logs, exist_ok=True)
    isolated = args.isolation == "netns" or (args.isolation == "auto" and netns_available())
    if args.isolation == "netns" and not netns_available():
        print("error: cannot create a network namespace here (unshare --net)", file=sys.stderr)
        return 2

    tasks = [(m, lib) for m in modules for lib in libs]
    lock = threading.Lock()
    print(f"running {len(modules)} module(s) x {', '.join(libs)}; timeout {timeout:g} s "
          f"per module, {test_timeout:g} s per test, "
          f"{args.jobs} at once, "
          + ("private network namespace" if isolated else "shared network, 'network' denied"),
          file=sys.stderr, flush=True)

    def one(task: tuple[str, str]) -> Run:
        run = run_module(task[0], task[1], timeout, exclude_files, args.logs,
                         test_timeout=test_timeout, isolated=isolated,
                         memory_mb=args.memory_limit)
        c = run.counts()
        with lock:
            print(f"  {run.module:<24} {run.lib:<10} {run.status:<12} "
                  f"{c['passed']}/{c['failed']}/{c['errors']}/{c['skipped']}  "
                  f"{run.seconds:.0f}s {run.note}", file=sys.stderr, flush=True)
        return run

    def terminate(signum: int, frame: object) -> None:
        # Each run has its own session: take them down with us.
        with _active_lock:
            for proc in list(_active):
                _kill_group(proc)
        os._exit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            runs = list(pool.map(one, tasks))
    finally:
        signal.signal(signal.SIGTERM, previous)

    table = render_markdown(runs, modules, libs)
    print(table)
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"python": sys.version, "timeout": timeout, "modules": modules,
                       "isolated": isolated,
                       "libs": libs, "runs": [dataclasses.asdict(r) for r in runs]},
                      f, indent=1, sort_keys=True)

    if not args.check:
        return 0
    known = read_id_file(args.known_failures) if os.path.exists(args.known_failures) else {}
    unexpected, fixed = check(runs, known)
    if fixed:
        print(f"{len(fixed)} known failure(s) passed this time (stale or flaky entries):")
        for test_id in fixed:
            print(f"  {test_id}")
    if unexpected:
        print(f"FAILED: {len(unexpected)} test(s) failed under greenweave that are not in "
              f"{args.known_failures}:")
        for test_id, outcome in unexpected.items():
            print(f"  {test_id}  # {outcome}")
        return 1
    print("check passed: every greenweave failure is a known one")
    return 0


if __name__ == "__main__":
    sys.exit(main())
