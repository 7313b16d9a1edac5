"""pytest options of the reliability suite: ``--reliability-scale`` and ``--reliability-report``."""

from __future__ import annotations

from pathlib import Path

import pytest

SCALE_OPTION = "--reliability-scale"
REPORT_OPTION = "--reliability-report"
FULL_SCALE_TIMEOUT = 1800.0
"""Per-test timeout at full scale: 100,000 jobs take minutes, not the suite's 120 s."""

_HERE = Path(__file__).resolve().parent


def pytest_addoption(parser: pytest.Parser) -> None:
    # A plugin (``-p tests.reliability.plugin`` in pyproject's addopts), not the directory's
    # conftest: `pytest -m reliability --reliability-scale=full` from the repository root
    # loads that conftest too late for it to add command-line options.
    group = parser.getgroup("reliability", "portside reliability suite (tests/reliability)")
    group.addoption(
        SCALE_OPTION,
        choices=("ci", "full"),
        default="ci",
        help="ci: scaled-down counts that run in seconds (default); full: the issue's counts "
        "(100,000 jobs over 4 queues, 100,000 outbox events over 1,000 streams).",
    )
    group.addoption(
        REPORT_OPTION,
        metavar="PATH",
        default=None,
        help="Append each reliability test's figures (accepted, delivered, lost, duplicates, "
        "faults, inputs, seconds) to PATH as JSON lines.",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of this directory is a reliability test; at full scale it may run long."""
    full = config.getoption(SCALE_OPTION) == "full"
    for item in items:
        if _HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.reliability)
        if full:
            item.add_marker(pytest.mark.timeout(FULL_SCALE_TIMEOUT))
