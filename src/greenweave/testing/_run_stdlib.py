"""Run one of CPython's own test modules, minus excluded tests, verbosely.

This is the per-module driver of :mod:`greenweave.testing.stdlib`; it is run
as a *script* (by path), so that the same file serves the three runs without
importing greenweave in the two that must not depend on it::

    python              _run_stdlib.py test.test_socket [options]   # baseline
    python -m gevent.monkey     _run_stdlib.py test.test_socket ...  # gevent
    python -m greenweave.monkey _run_stdlib.py test.test_socket ...  # greenweave

It loads the module's tests with unittest's loader (``load_tests`` and module
fixtures honoured), drops every test whose id is named in the exclusion files
(an entry may also name a whole class or module: it then drops every test under
it), and runs the rest with unittest's verbose ``TextTestRunner``.  The verbose
report goes to ``--result-file`` (line-buffered, so a killed run still leaves
everything up to the test that was running) instead of stderr, so that output
the tests themselves print cannot interleave with it.

Like ``regrtest``, it sets ``test.support.use_resources`` so that tests needing
a resource this machine must not use (``network``, ``urlfetch``: no traffic
leaves the machine) are skipped with ``ResourceDenied`` instead of trying, and
sets ``test.support.verbose`` to 0 (regrtest's default) to keep the log small.

Exit status: 0 when every test ran passed, 1 when some failed, 2 when the module
cannot be imported or an option is wrong.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
import unittest

# regrtest's full resource list; the runner denies the ones named by --deny.
_ALL_RESOURCES = ("audio", "curses", "largefile", "network", "decimal", "cpu", "subprocess",
                  "urlfetch", "gui", "walltime", "tzdata")
_DEFAULT_DENY = "network,urlfetch,gui,audio,curses,largefile"


def read_id_file(path: str) -> dict[str, str]:
    """``{test id: reason}`` from a file of ``test.id  # reason`` lines.

    Blank lines and lines that are only a comment are ignored.
    """
    entries: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            text, _, reason = line.partition("#")
            name = text.strip()
            if name:
                entries[name] = reason.strip()
    return entries


def is_listed(test_id: str, names: set[str] | dict[str, str]) -> bool:
    """True when *test_id* or one of its dotted prefixes (class, module) is in *names*."""
    if test_id in names:
        return True
    parts = test_id.split(".")
    return any(".".join(parts[:i]) in names for i in range(len(parts) - 1, 0, -1))


def _flatten(suite: unittest.TestSuite | unittest.TestCase) -> list[unittest.TestCase]:
    if isinstance(suite, unittest.TestSuite):
        out: list[unittest.TestCase] = []
        for item in suite:
            out.extend(_flatten(item))
        return out
    return [suite]


def _result_class(watchdog: float | None) -> type[unittest.TextTestResult]:
    """unittest's verbose result class, plus two things for the runner.

    Each failure's traceback also goes to stderr (the log) at once, so it is
    kept even when a later hang gets the process killed before unittest's
    closing listing.  Given *watchdog* seconds, faulthandler's dump of every
    thread's traceback is armed afresh at each test (and for the exit after the
    last), to show where a hung test is stuck before the runner kills it.
    """
    import faulthandler

    class Result(unittest.TextTestResult):
        def startTest(self, test: unittest.TestCase) -> None:
            if watchdog:
                faulthandler.dump_traceback_later(watchdog, exit=False)
            super().startTest(test)

        def stopTestRun(self) -> None:
            super().stopTestRun()
            if watchdog:
                faulthandler.dump_traceback_later(watchdog, exit=False)

        def _echo(self, flavour: str, test: object, err: tuple) -> None:
            try:
                text = self._exc_info_to_string(err, test)
                sys.stderr.write(f"\n[stdlib-runner] {flavour}: {test}\n{text}\n")
                sys.stderr.flush()
            except Exception:  # noqa: BLE001 - a copy; the listing at the end has it
                pass

        def addError(self, test: unittest.TestCase, err: tuple) -> None:
            super().addError(test, err)
            self._echo("ERROR", test, err)

        def addFailure(self, test: unittest.TestCase, err: tuple) -> None:
            super().addFailure(test, err)
            self._echo("FAIL", test, err)

        def addSubTest(self, test: unittest.TestCase, subtest: unittest.TestCase,
                       err: tuple | None) -> None:
            super().addSubTest(test, subtest, err)
            if err is not None:
                self._echo("SUBTEST", subtest, err)

    if watchdog:
        faulthandler.dump_traceback_later(watchdog, exit=False)  # module fixtures, first test
    return Result


class _ModuleSkip(unittest.TestCase):
    """Stands for a module whose import raised SkipTest: one skipped entry,
    reported as ``setUpModule (module) ... skipped 'reason'``."""

    def __init__(self, module: str, reason: str) -> None:
        super().__init__("runTest")
        self._module, self._reason = module, reason

    def runTest(self) -> None:
        raise unittest.SkipTest(self._reason)

    def id(self) -> str:
        return f"{self._module}.setUpModule"

    def __str__(self) -> str:
        return f"setUpModule ({self._module})"


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="_run_stdlib.py", description=__doc__.splitlines()[0])
    p.add_argument("modules", nargs="+", help="test modules, e.g. test.test_socket")
    p.add_argument("--exclude-file", action="append", default=[],
                   help="file of 'test.id  # reason' lines to leave out (repeatable)")
    p.add_argument("--result-file", help="where the verbose report goes (default: stderr)")
    p.add_argument("--deny", default=_DEFAULT_DENY,
                   help=f"comma-separated test resources to deny (default: {_DEFAULT_DENY})")
    p.add_argument("--list", action="store_true", help="print the selected test ids and exit")
    p.add_argument("--dump-tracebacks-after", type=float, metavar="SECONDS",
                   help="dump every thread's traceback to stderr when one test (or the "
                        "exit after the last) takes this long, to show where it hangs")
    p.add_argument("--resume-after", metavar="TEST_ID",
                   help="skip the selected tests up to and including this one (the runner "
                        "resumes this way after a test that hung or crashed)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    # Run as a script, this file's folder is sys.path[0]: keep it from shadowing anything.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    args = _parse(sys.argv[1:] if argv is None else argv)

    excluded: dict[str, str] = {}
    for path in args.exclude_file:
        excluded.update(read_id_file(path))

    from test import support

    deny = {r.strip() for r in args.deny.split(",") if r.strip()}
    support.use_resources = [r for r in _ALL_RESOURCES if r not in deny]
    support.verbose = 0

    loader = unittest.TestLoader()
    tests: list[unittest.TestCase] = []
    skipped: list[tuple[str, str]] = []
    for name in args.modules:
        try:
            module = importlib.import_module(name)
        except unittest.SkipTest as exc:  # e.g. requires('network') at import: skip it all
            skipped.append((name, str(exc)))
            continue
        except BaseException:  # noqa: BLE001 - ImportError, anything: report it
            print(f"IMPORT ERROR {name}", file=sys.stderr)
            traceback.print_exc()
            return 2
        tests.extend(_flatten(loader.loadTestsFromModule(module)))
    if loader.errors:
        print("\n".join(loader.errors), file=sys.stderr)
    selected = [t for t in tests if not is_listed(t.id(), excluded)]
    dropped = len(tests) - len(selected)
    if args.resume_after:
        ids = [t.id() for t in selected]
        if args.resume_after not in ids:
            print(f"--resume-after: no selected test {args.resume_after!r}", file=sys.stderr)
            return 2
        selected = selected[ids.index(args.resume_after) + 1:]

    if args.list:
        for t in selected:
            print(t.id())
        return 0

    stream = (open(args.result_file, "w", encoding="utf-8", buffering=1)
              if args.result_file else sys.stderr)
    try:
        if dropped:
            stream.write(f"# excluded {dropped} test(s) by name\n")
        if args.resume_after:
            stream.write(f"# resumed after {args.resume_after}\n")
        result_class = _result_class(args.dump_tracebacks_after)
        runner = unittest.TextTestRunner(stream=stream, verbosity=2, descriptions=False,
                                         resultclass=result_class)
        suite = unittest.TestSuite(selected)
        for name, reason in skipped:
            suite.addTest(_ModuleSkip(name, reason))
        result = runner.run(suite)
    finally:
        if stream is not sys.stderr:
            stream.close()
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
