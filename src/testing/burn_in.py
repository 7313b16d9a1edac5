"""Burn-in: run a test suite N times in parallel and random order, and report flaky tests (H5).

Usage: python -m portside.testing.burn_in [--runs 10] [--workers auto] [-- PYTEST ARGS...]

Each run is ``pytest -n <workers> -p randomly --randomly-seed=<new seed>`` with a JUnit XML
report. A test that fails in some runs and passes in others is flaky; one that fails in every
run is broken. The exit status is 0 only if every run passed. Each failing run prints the
command that reproduces its order.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BurnIn", "RunResult", "main", "run_burn_in"]


@dataclass
class RunResult:
    """One run of the suite."""

    number: int
    seed: int
    exit_code: int
    seconds: float
    outcomes: dict[str, str]
    """Test id -> ``passed``, ``failed``, ``error`` or ``skipped``."""
    command: list[str]

    @property
    def failed(self) -> list[str]:
        return sorted(t for t, outcome in self.outcomes.items() if outcome in ("failed", "error"))


@dataclass
class BurnIn:
    """Every run's results and what they say about the suite."""

    runs: list[RunResult] = field(default_factory=list)

    @property
    def flaky(self) -> dict[str, int]:
        """Tests that failed in some runs but not all: test id -> runs failed."""
        return {t: n for t, n in self._failures().items() if n < self._ran(t)}

    @property
    def broken(self) -> list[str]:
        """Tests that failed in every run they ran in."""
        return sorted(t for t, n in self._failures().items() if n == self._ran(t))

    @property
    def ok(self) -> bool:
        return all(run.exit_code == 0 for run in self.runs)

    def _failures(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for run in self.runs:
            for test in run.failed:
                counts[test] += 1
        return dict(counts)

    def _ran(self, test: str) -> int:
        return sum(1 for run in self.runs if test in run.outcomes)

    def report(self) -> str:
        """A plain-text summary of the burn-in."""
        lines = [f"burn-in: {len(self.runs)} runs"]
        for run in self.runs:
            status = "passed" if run.exit_code == 0 else f"FAILED (exit {run.exit_code})"
            counts: dict[str, int] = defaultdict(int)
            for outcome in run.outcomes.values():
                counts[outcome] += 1
            summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
            lines.append(
                f"  run {run.number}: seed {run.seed}, {run.seconds:.1f} s, {status} ({summary})"
            )
            if run.exit_code != 0:
                lines.append(f"    reproduce: {' '.join(run.command)}")
                if not run.failed:
                    lines.append("    no test failed: the session itself failed (see output)")
        if self.flaky:
            lines.append("flaky tests (failed in some runs, passed in others):")
            lines += [f"  {t}: failed {n} of {self._ran(t)} runs" for t, n in self.flaky.items()]
        if self.broken:
            lines.append("broken tests (failed in every run):")
            lines += [f"  {t}" for t in self.broken]
        if self.ok:
            lines.append(f"no flaky test: all {len(self.runs)} runs passed")
        return "\n".join(lines)


def _outcomes(junit: Path) -> dict[str, str]:
    if not junit.exists():
        return {}
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(junit).getroot().iter("testcase"):
        test = f"{case.get('classname', '')}::{case.get('name', '')}"
        tags = {child.tag for child in case}
        if "failure" in tags:
            outcome = "failed"
        elif "error" in tags:
            outcome = "error"
        elif "skipped" in tags:
            outcome = "skipped"
        else:
            outcome = "passed"
        # A test reported twice (a teardown error after a pass) keeps its worst outcome.
        if outcomes.get(test) not in ("failed", "error"):
            outcomes[test] = outcome
    return outcomes


def run_burn_in(
    runs: int,
    pytest_args: Sequence[str],
    *,
    workers: str = "auto",
    seeds: Sequence[int] | None = None,
    stop_on_failure: bool = False,
    cwd: Path | None = None,
) -> BurnIn:
    """Run the suite ``runs`` times, each with ``-n workers`` and a new random order.

    Args:
        runs: How many runs.
        pytest_args: Extra pytest arguments (paths, ``-m``, ``-k`` ...).
        workers: Passed to ``-n`` (pytest-xdist); ``0`` runs in one process.
        seeds: The pytest-randomly seed of each run (default: fresh random seeds).
        stop_on_failure: Stop after the first failing run.
        cwd: Where to run pytest (default: the current directory).
    """
    chooser = random.SystemRandom()
    result = BurnIn()
    with tempfile.TemporaryDirectory(prefix="portside-burn-in-") as tmp:
        for number in range(1, runs + 1):
            seed = seeds[number - 1] if seeds else chooser.randrange(1, 2**32)
            junit = Path(tmp) / f"run-{number}.xml"
            command = [
                sys.executable, "-m", "pytest", "-n", workers, "-p", "randomly",
                f"--randomly-seed={seed}", *pytest_args,
            ]  # fmt: skip
            print(f"burn-in run {number}/{runs}: seed {seed}", flush=True)
            started = time.perf_counter()
            completed = subprocess.run([*command, f"--junitxml={junit}"], cwd=cwd, check=False)
            run = RunResult(
                number=number,
                seed=seed,
                exit_code=completed.returncode,
                seconds=time.perf_counter() - started,
                outcomes=_outcomes(junit),
                command=["pytest", *command[3:]],
            )
            result.runs.append(run)
            if stop_on_failure and run.exit_code != 0:
                break
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m portside.testing.burn_in`` command."""
    parser = argparse.ArgumentParser(
        prog="python -m portside.testing.burn_in",
        description="Run the test suite repeatedly with -n auto and random order; report flaky "
        "tests.",
    )
    parser.add_argument("--runs", type=int, default=10, help="how many runs (default 10)")
    parser.add_argument("--workers", default="auto", help="pytest-xdist -n value (default auto)")
    parser.add_argument("--stop-on-failure", action="store_true", help="stop at the first red run")
    parser.add_argument("pytest_args", nargs="*", help="after --: arguments for pytest")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    burn_in = run_burn_in(
        args.runs, args.pytest_args, workers=args.workers, stop_on_failure=args.stop_on_failure
    )
    print(burn_in.report())
    return 0 if burn_in.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
