"""What the reliability workers recorded in Postgres, read back for exact counting."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import asyncpg

__all__ = ["Runs", "create_runs_table", "read_runs"]

_CREATE = """
CREATE TABLE IF NOT EXISTS reliability_runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id text NOT NULL,
    queue text NOT NULL,
    event text NOT NULL CHECK (event IN ('started', 'completed')),
    attempt int NOT NULL,
    pid int NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
)
"""


async def create_runs_table(dsn: str) -> None:
    """Create ``reliability_runs`` in the database the workers record into."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(_CREATE)
    finally:
        await conn.close()


@dataclass(frozen=True)
class Runs:
    """Every recorded start and completion.

    Attributes:
        started: How often each job id started (only when starts are recorded).
        completed: How often each job id completed.
        started_by: Job ids started by each worker pid.
        completed_by: Completions per worker pid.
        queue_of: The queue of each job id.
    """

    started: Counter[str]
    completed: Counter[str]
    started_by: dict[int, set[str]]
    completed_by: Counter[int]
    queue_of: dict[str, str]

    @property
    def done(self) -> set[str]:
        """Job ids that completed at least once."""
        return set(self.completed)

    @property
    def duplicate_completions(self) -> int:
        """Completions beyond the first of each job (at-least-once re-runs)."""
        return sum(self.completed.values()) - len(self.completed)

    def done_in(self, queue: str) -> set[str]:
        return {job_id for job_id in self.completed if self.queue_of[job_id] == queue}


async def read_runs(conn: asyncpg.Connection) -> Runs:
    """Read the whole ``reliability_runs`` table."""
    rows = await conn.fetch("SELECT job_id, queue, event, pid FROM reliability_runs")
    started: Counter[str] = Counter()
    completed: Counter[str] = Counter()
    started_by: dict[int, set[str]] = {}
    completed_by: Counter[int] = Counter()
    queue_of: dict[str, str] = {}
    for row in rows:
        job_id, pid = row["job_id"], row["pid"]
        queue_of[job_id] = row["queue"]
        if row["event"] == "started":
            started[job_id] += 1
            started_by.setdefault(pid, set()).add(job_id)
        else:
            completed[job_id] += 1
            completed_by[pid] += 1
    return Runs(started, completed, started_by, completed_by, queue_of)


async def count_completed(conn: asyncpg.Connection) -> int:
    """Distinct job ids completed so far (cheap enough to poll)."""
    value: int = await conn.fetchval(
        "SELECT count(DISTINCT job_id) FROM reliability_runs WHERE event = 'completed'"
    )
    return value
