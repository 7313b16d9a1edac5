"""A1, Q13, Q15: registered job names, queues, id keys, schedules, queue-wide caps and
retention change only on purpose.

Renaming a job orphans its queued jobs and schedules; changing its id keys changes every
deterministic job id; its retention decides how many finished jobs Redis keeps (Q15) and its
queue-wide cap how many run at once across the fleet (Q13). When a change is intended,
regenerate the snapshot:

    PORTSIDE_UPDATE_SNAPSHOTS=1 pytest tests/unit/examples/test_registry_snapshot.py

and commit ``snapshots/example_registry.json`` with the change.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from portside.examples.ingestion import build_registry
from portside.examples.ingestion.memory_store import InMemoryExampleStore
from portside.examples.plans import register_plans

SNAPSHOT = Path(__file__).parent / "snapshots" / "example_registry.json"


def test_a1_example_registry_matches_its_snapshot() -> None:
    current = register_plans(build_registry(store=InMemoryExampleStore())).snapshot()
    if os.environ.get("PORTSIDE_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())

    assert current == expected, (
        "the example registry's names, queues, id keys, schedules, caps or retention changed; "
        "if that is "
        "intended, run PORTSIDE_UPDATE_SNAPSHOTS=1 pytest "
        "tests/unit/examples/test_registry_snapshot.py and commit the snapshot"
    )


def test_a1_snapshot_lists_the_required_example_jobs() -> None:
    names = {row["name"] for row in json.loads(SNAPSHOT.read_text())}

    assert {
        "ingest",
        "aggregate",
        "sync-energy-wholesale-5m",
        "sync-energy-retail-prd-hourly",
        "sync-housing-abs-daily",
        "phase1-task",
        "weather-ingestion",
        "alert-fanout",
        "color-extraction",
        "moderation-review",
        "analytics-ingest",
        "analytics-aggregate",
    } <= names


def test_q15_snapshot_pins_the_platform_retention_defaults() -> None:
    """Q15: every example job keeps the last 1,000 completed and 5,000 failed jobs, in
    BullMQ's ``{"count": N}`` shape."""
    rows = json.loads(SNAPSHOT.read_text())

    kept = {
        (json.dumps(row["remove_on_complete"]), json.dumps(row["remove_on_fail"])) for row in rows
    }
    assert kept == {('{"count": 1000}', '{"count": 5000}')}
