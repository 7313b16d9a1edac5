"""The burn-in command: repeated parallel runs in random order, flaky tests reported (H5)."""

from __future__ import annotations

import pytest

from portside.testing.burn_in import main, run_burn_in

INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

SUITE = """
from pathlib import Path

COUNTER = Path(__file__).with_name("runs.txt")


def test_stable():
    pass


def test_flaky():
    # Fails on every other run: the kind of test the burn-in exists to catch.
    runs = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(runs + 1))
    assert runs % 2 == 1


def test_broken():
    assert False
"""


def test_h5_flaky_and_broken_tests_are_told_apart(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=SUITE)
    burn_in = run_burn_in(
        2, ["-p", "no:cacheprovider"], workers="0", seeds=[11, 22], cwd=pytester.path
    )
    assert not burn_in.ok
    assert [run.seed for run in burn_in.runs] == [11, 22]
    assert burn_in.flaky == {"test_suite::test_flaky": 1}
    assert burn_in.broken == ["test_suite::test_broken"]
    report = burn_in.report()
    assert "test_suite::test_flaky: failed 1 of 2 runs" in report
    assert "reproduce: pytest -n 0 -p randomly --randomly-seed=11 -p no:cacheprovider" in report


def test_h5_a_stable_suite_passes_every_run_in_parallel(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_a="def test_one(): pass\ndef test_two(): pass\n")
    pytester.chdir()
    assert main(["--runs", "1", "--workers", "2", "--", "-p", "no:cacheprovider"]) == 0
    out = capsys.readouterr().out
    assert "no flaky test: all 1 runs passed" in out
    assert "run 1: seed" in out


def test_h5_runs_must_be_positive() -> None:
    with pytest.raises(SystemExit):
        main(["--runs", "0"])
