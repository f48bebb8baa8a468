"""The stdlib yardstick runner (greenweave.testing.stdlib) and its fast CI subset.

The parser tests read real verbose reports captured under tests/data/: the
driver's report on tests/data/stdlib_sample_tests.py (every outcome unittest
has), the same run cut short by a kill, plain ``python -m unittest -v`` output
with text the tests printed mixed in, and CPython's test_select under greenweave.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from greenweave.testing import stdlib
from greenweave.testing._run_stdlib import is_listed, read_id_file

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SAMPLE = "stdlib_sample_tests"


def _read(name: str) -> str:
    with open(os.path.join(DATA, name), encoding="utf-8") as f:
        return f.read()


def _has_test_package() -> bool:
    try:
        return importlib.util.find_spec("test.support") is not None
    except ImportError:
        return False


# Every outcome of the sample module, as its verbose report says.
SAMPLE_OUTCOMES = {
    "stdlib_sample_tests.ClassSetupError.setUpClass": "ERROR",
    "stdlib_sample_tests.ClassSetupSkip.setUpClass": "skipped",
    "stdlib_sample_tests.Hang.test_zz_hang": "ok",
    "stdlib_sample_tests.Outcomes.test_error": "ERROR",
    "stdlib_sample_tests.Outcomes.test_fail": "FAIL",
    "stdlib_sample_tests.Outcomes.test_noisy": "ok",
    "stdlib_sample_tests.Outcomes.test_ok": "ok",
    "stdlib_sample_tests.Outcomes.test_skipped": "skipped",
    "stdlib_sample_tests.Outcomes.test_subtests_error_msg": "ERROR",
    "stdlib_sample_tests.Outcomes.test_subtests_fail": "FAIL",
    "stdlib_sample_tests.Outcomes.test_subtests_skip": "skipped",
    "stdlib_sample_tests.Outcomes.test_xfail": "expected failure",
    "stdlib_sample_tests.Outcomes.test_xpass": "unexpected success",
    "stdlib_sample_tests.SkippedClass.test_a": "skipped",
    "stdlib_sample_tests.SkippedClass.test_b": "skipped",
}
SAMPLE_COUNTS = {"passed": 4, "failed": 3, "errors": 3, "skipped": 5}


# --------------------------------------------------------------------------- parser

def test_parse_driver_report_every_outcome():
    parsed = stdlib.parse_verbose(_read("stdlib_report_sample.txt"))
    assert parsed.outcomes == SAMPLE_OUTCOMES
    assert parsed.counts() == SAMPLE_COUNTS
    assert parsed.finished and parsed.ran == 13 and parsed.running is None
    details = parsed.details
    assert "RuntimeError: boom ... with dots" in details["stdlib_sample_tests.Outcomes.test_error"]
    assert "AssertionError: 1 == 1" in details["stdlib_sample_tests.Outcomes.test_subtests_fail"]
    assert "OSError: sub error" in details["stdlib_sample_tests.Outcomes.test_subtests_error_msg"]
    assert "class setup broke" in details["stdlib_sample_tests.ClassSetupError.setUpClass"]


def test_parse_plain_unittest_v_output_with_test_noise():
    # `python -m unittest -v` writes to stderr, where test_noisy's own
    # "noise ... ok" and a raw fd write land between its name and its status.
    parsed = stdlib.parse_verbose(_read("stdlib_unittest_v_sample.txt"))
    assert parsed.outcomes == SAMPLE_OUTCOMES
    assert parsed.counts() == SAMPLE_COUNTS
    assert parsed.finished


def test_parse_report_cut_short_by_kill():
    parsed = stdlib.parse_verbose(_read("stdlib_report_sample_killed.txt"))
    assert not parsed.finished and parsed.ran is None
    assert parsed.running == "stdlib_sample_tests.Hang.test_zz_hang"
    assert parsed.counts() == {"passed": 0, "failed": 0, "errors": 1, "skipped": 1}


def test_parse_cpython_report():
    parsed = stdlib.parse_verbose(_read("stdlib_report_test_select_greenweave.txt"))
    assert parsed.counts() == {"passed": 4, "failed": 2, "errors": 0, "skipped": 0}
    assert parsed.outcomes["test.test_select.SelectTestCase.test_select_mutated"] == "FAIL"
    assert parsed.outcomes["test.test_select.SelectTestCase.test_errno"] == "ok"
    assert "TypeError not raised by poll" in parsed.details[
        "test.test_select.SelectTestCase.test_disallow_instantiation"]
    assert parsed.finished and parsed.ran == 6


def test_parse_python310_descriptions():
    # Before 3.11 str(test) named the class only: "test_x (pkg.mod.Class)".
    text = ("test_a (pkg.mod.Case) ... ok\n"
            "test_b (pkg.mod.Case) ... \n"
            "  test_b (pkg.mod.Case) (n=2) ... FAIL\n"
            "\n" + "=" * 70 + "\nFAIL: test_b (pkg.mod.Case) (n=2)\n" + "-" * 70 +
            "\nTraceback...\nAssertionError\n\n" + "-" * 70 +
            "\nRan 2 tests in 0.001s\n\nFAILED (failures=1)\n")
    parsed = stdlib.parse_verbose(text)
    assert parsed.outcomes == {"pkg.mod.Case.test_a": "ok", "pkg.mod.Case.test_b": "FAIL"}
    assert parsed.details["pkg.mod.Case.test_b"] == "Traceback...\nAssertionError"
    assert parsed.finished


def test_id_files_and_prefix_matching(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("# header only comment\n\n"
                    "test.test_x.Case.test_one  # flaky here\n"
                    "test.test_x.Whole   # every test of the class\n", encoding="utf-8")
    ids = read_id_file(str(path))
    assert ids == {"test.test_x.Case.test_one": "flaky here",
                   "test.test_x.Whole": "every test of the class"}
    assert is_listed("test.test_x.Case.test_one", ids)
    assert is_listed("test.test_x.Whole.test_any", ids)
    assert not is_listed("test.test_x.Case.test_two", ids)
    assert not is_listed("test.test_x.Wholesale.test_any", ids)


def test_bundled_lists_are_well_formed():
    for name in ("stdlib_excluded.txt", "stdlib_known_failures.txt"):
        path = os.path.join(os.path.dirname(stdlib.__file__), name)
        for test_id, reason in read_id_file(path).items():
            assert test_id.startswith("test.test_"), (name, test_id)
            assert reason, f"{name}: {test_id} has no reason"


# --------------------------------------------------------------------------- check / table

def _run(lib: str, outcomes: dict[str, str], status: str = "failed") -> stdlib.Run:
    return stdlib.Run("sample", lib, status, outcomes=outcomes, qualname="stdlib_sample_tests")


def test_check_reports_only_unlisted_failures():
    runs = [_run("greenweave", SAMPLE_OUTCOMES), _run("gevent", {"x.y": "FAIL"})]
    known = {"stdlib_sample_tests.Outcomes": "whole class known",
             "stdlib_sample_tests.Hang.test_zz_hang": "stale entry: it passes"}
    unexpected, fixed = stdlib.check(runs, known)
    assert unexpected == {"stdlib_sample_tests.ClassSetupError.setUpClass": "ERROR"}
    assert fixed == ["stdlib_sample_tests.Hang.test_zz_hang"]
    unexpected, _ = stdlib.check(runs, {})
    assert set(unexpected) == {t for t, o in SAMPLE_OUTCOMES.items()
                               if o in ("FAIL", "ERROR", "unexpected success")}


def test_check_flags_a_process_that_hung_at_exit():
    runs = [_run("greenweave", {"stdlib_sample_tests.A.test_a": "ok"}, status="exit-hang")]
    unexpected, _ = stdlib.check(runs, {})
    assert unexpected == {"stdlib_sample_tests.<exit-hang>": "exit-hang"}
    assert stdlib.check(runs, {"stdlib_sample_tests": "module hangs at exit"})[0] == {}


def test_markdown_table_rows_and_totals():
    runs = [stdlib.Run("test_a", "gevent", "ok", outcomes={"t.1": "ok", "t.2": "FAIL"}),
            stdlib.Run("test_a", "greenweave", "ok", outcomes={"t.1": "ok", "t.2": "ok"}),
            stdlib.Run("test_b", "gevent", "ok", outcomes={"t.3": "ok"}),
            stdlib.Run("test_b", "greenweave", "timeout", outcomes={"t.3": "timeout"})]
    table = stdlib.render_markdown(runs, ["test_a", "test_b"], ["gevent", "greenweave"])
    lines = table.splitlines()
    assert lines[0] == "| module | gevent | greenweave | greenweave passed >= gevent |"
    assert lines[2] == "| test_a | 1 / 1 / 0 / 0 | 2 / 0 / 0 / 0 | yes |"
    assert lines[3] == "| test_b | 1 / 0 / 0 / 0 | 0 / 0 / 1 / 0 (timeout) | **no** |"
    assert lines[4].startswith("| **total** | **2 / 1 / 0 / 0** | **2 / 0 / 1 / 0** |")
    assert "greenweave 1 vs gevent 1" in lines[4]


# --------------------------------------------------------------------------- driver + runner

@pytest.mark.timeout(60)
def test_driver_run_excludes_by_name_and_matches_captured_report(tmp_path):
    exclude = tmp_path / "excluded.txt"
    exclude.write_text("stdlib_sample_tests.SkippedClass  # whole class\n"
                       "stdlib_sample_tests.Outcomes.test_fail  # one test\n", encoding="utf-8")
    run = stdlib.run_module(SAMPLE, "baseline", 30, [str(exclude)], package=None,
                            env={"PYTHONPATH": DATA})
    expected = {k: v for k, v in SAMPLE_OUTCOMES.items()
                if ".SkippedClass." not in k and not k.endswith("test_fail")}
    assert run.outcomes == expected
    assert run.status == "failed" and run.returncode == 1 and run.ran == 10


@pytest.mark.timeout(60)
def test_module_skipped_at_import_counts_as_one_skip(tmp_path):
    # test_socketserver does requires('network') at import: with the resource
    # denied, the whole module is one skip, not an import error.
    (tmp_path / "gw_skipped_module.py").write_text(
        "import unittest\nraise unittest.SkipTest('no network here')\n", encoding="utf-8")
    run = stdlib.run_module("gw_skipped_module", "baseline", 30, package=None,
                            env={"PYTHONPATH": str(tmp_path)})
    assert run.status == "ok"
    assert run.outcomes == {"gw_skipped_module.setUpModule": "skipped"}


@pytest.mark.timeout(60)
def test_runner_kills_a_hanging_module_and_blames_the_running_test(tmp_path):
    logs = tmp_path / "logs"
    run = stdlib.run_module(SAMPLE, "baseline", 4, (), str(logs), package=None,
                            env={"PYTHONPATH": DATA, "GW_SAMPLE_HANG": "1"})
    assert run.status == "timeout" and run.note == "killed after 4 s in all"
    assert run.outcomes["stdlib_sample_tests.Hang.test_zz_hang"] == "timeout"
    assert run.counts() == {"passed": 0, "failed": 0, "errors": 2, "skipped": 1}
    assert "test_zz_hang" in (logs / "baseline" / f"{SAMPLE}.log").read_text()
    assert stdlib.check([stdlib.dataclasses.replace(run, lib="greenweave")], {})[0] == {
        "stdlib_sample_tests.ClassSetupError.setUpClass": "ERROR",
        "stdlib_sample_tests.Hang.test_zz_hang": "timeout"}


@pytest.mark.timeout(60)
def test_runner_resumes_after_a_hung_test(tmp_path):
    logs = tmp_path / "logs"
    run = stdlib.run_module(SAMPLE, "baseline", 40, (), str(logs), test_timeout=4,
                            package=None, env={"PYTHONPATH": DATA, "GW_SAMPLE_HANG": "1"})
    assert run.outcomes == dict(SAMPLE_OUTCOMES,
                                **{"stdlib_sample_tests.Hang.test_zz_hang": "timeout"})
    assert run.status == "failed" and run.note.startswith("resumed after 1 test(s)")
    assert run.seconds < 30
    # faulthandler showed where the hung test was stuck before the kill.
    assert "in test_zz_hang" in run.details["stdlib_sample_tests.Hang.test_zz_hang"]
    assert "# resumed after stdlib_sample_tests.Hang.test_zz_hang" in (
        logs / "baseline" / f"{SAMPLE}.log").read_text()


@pytest.mark.timeout(30)
def test_cli_says_clearly_when_the_interpreter_has_no_test_package():
    code = ("import sys; sys.modules['test'] = None\n"
            "from greenweave.testing.stdlib import main; sys.exit(main(['--libs', 'baseline']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 3
    assert "no 'test' package" in done.stderr


# --------------------------------------------------------------------------- the CI subset

@pytest.mark.timeout(120)
@pytest.mark.skipif(not _has_test_package(),
                    reason="this interpreter has no 'test' package (CPython's test suite)")
def test_quick_subset_under_greenweave_has_no_unknown_failures(tmp_path):
    if importlib.util.find_spec("greenweave.monkey") is None:
        pytest.skip("greenweave.monkey is not importable yet")
    out = tmp_path / "table.md"
    proc = subprocess.Popen(
        [sys.executable, "-m", "greenweave.testing.stdlib", "--quick", "--check",
         "--libs", "greenweave", "--jobs", "2", "--timeout", "60", "--test-timeout", "30",
         "--markdown", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path))
    try:
        stdout, stderr = proc.communicate(timeout=100)
    except subprocess.TimeoutExpired:
        proc.terminate()  # the runner then kills the module runs it started
        stdout, stderr = proc.communicate(timeout=15)
        pytest.fail("the quick subset took over 100 s:\n" + stderr[-3000:])
    assert proc.returncode == 0, stdout + stderr[-3000:]
    assert "check passed" in stdout
    table = out.read_text(encoding="utf-8")
    for module in stdlib.QUICK_MODULES:
        assert f"| {module} |" in table
