"""The operator's commands (OPS2): queues, pause, resume, purge, runs, outbox streams,
--version; --json on each; bad input exits 2 naming the option."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from typer.testing import CliRunner

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app.cli import app
from portside.infra import Infra, use_infra
from portside.ports import FinishedRun

EXAMPLES = "portside.examples.ingestion:registry"
QUEUE = "ingestion:ingest"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("PORTSIDE_APP", "PORTSIDE_REDIS_URL", "PORTSIDE_POSTGRES_DSN"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture
def fakes() -> Iterator[Infra]:
    clock = VirtualClock()
    infra = Infra(
        queue=InMemoryQueue(clock),
        outbox=InMemoryOutbox(),
        history=InMemoryHistory(clock.datetime),
        name="cli-fake",
    )
    with use_infra(infra):
        yield infra


def test_ops2_version(runner: CliRunner) -> None:
    """OPS2: ``portside --version`` prints the version."""
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.startswith("portside ")


def test_ops2_pause_resume_and_queues_table_and_json(runner: CliRunner, fakes: Infra) -> None:
    """OPS2: pause and resume change the queue; ``queues`` shows it as a table and as JSON."""
    paused = runner.invoke(app, ["pause", QUEUE, "--app", EXAMPLES])
    assert paused.exit_code == 0, paused.output
    assert asyncio.run(fakes.queue.is_paused(QUEUE)) is True
    table = runner.invoke(app, ["queues", "--app", EXAMPLES])
    assert table.exit_code == 0, table.output
    line = next(row for row in table.output.splitlines() if row.startswith(QUEUE))
    assert "paused" in line
    listed = json.loads(runner.invoke(app, ["queues", "--app", EXAMPLES, "--json"]).output)
    assert {q["name"]: q["paused"] for q in listed}[QUEUE] is True
    resumed = runner.invoke(app, ["resume", QUEUE, "--app", EXAMPLES])
    assert resumed.exit_code == 0
    assert asyncio.run(fakes.queue.is_paused(QUEUE)) is False


def test_ops2_purge_asks_unless_yes(runner: CliRunner, fakes: Infra) -> None:
    """OPS2: purge asks for confirmation (no: nothing removed), ``--yes`` skips it."""
    asyncio.run(fakes.queue.enqueue(QUEUE, "ingest", {"organizationId": "o", "integrationId": "i"}))
    refused = runner.invoke(app, ["purge", QUEUE, "--app", EXAMPLES], input="n\n")
    assert refused.exit_code == 1
    assert asyncio.run(fakes.queue.counts(QUEUE)).waiting == 1
    done = runner.invoke(app, ["purge", QUEUE, "--app", EXAMPLES, "--yes"])
    assert done.exit_code == 0, done.output
    assert "purged 1" in done.output
    assert asyncio.run(fakes.queue.counts(QUEUE)).waiting == 0


def test_ops2_unknown_queue_exits_2_naming_the_known_ones(runner: CliRunner, fakes: Infra) -> None:
    """OPS2: a queue the app does not use exits 2 and lists the queues it does use."""
    result = runner.invoke(app, ["pause", "nope", "--app", EXAMPLES])
    assert result.exit_code == 2
    assert "nope" in result.output
    assert QUEUE in result.output


def test_ops2_runs_filters_and_json(runner: CliRunner, fakes: Infra) -> None:
    """OPS2: ``runs`` filters by status and business key; ``--json`` prints the rows."""
    history = fakes.require_history()
    at = datetime(2026, 1, 2, tzinfo=UTC)
    for job_id, org, status in (("a", "org-1", "completed"), ("b", "org-2", "failed")):
        asyncio.run(
            history.record_run(
                FinishedRun(
                    job_id=job_id,
                    queue=QUEUE,
                    name="ingest",
                    attempt=1,
                    run_mode="manual",
                    started_at=at,
                    finished_at=at,
                    status=status,
                    keys={"organizationId": org},
                )
            )
        )
    rows = json.loads(
        runner.invoke(app, ["runs", "--key", "organizationId=org-2", "--json"]).output
    )
    assert [row["job_id"] for row in rows] == ["b"]
    table = runner.invoke(app, ["runs", "--status", "completed"])
    assert table.exit_code == 0, table.output
    assert " a " in table.output
    assert " b " not in table.output


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["runs", "--status", "sometimes"], ["--status"]),
        (["runs", "--key", "organizationId"], ["--key", "name=value"]),
        (["runs", "--since", "yesterday"], ["--since", "2026-01-31"]),
    ],
)
def test_ops2_bad_input_exits_2_naming_the_option(
    runner: CliRunner, fakes: Infra, args: list[str], words: list[str]
) -> None:
    """OPS2: bad filters exit 2 with a message that names the option and the fix."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    for word in words:
        assert word in result.output


def test_ops2_outbox_streams(runner: CliRunner, fakes: Infra) -> None:
    """OPS2: ``outbox streams`` lists each stream's last seq and pending count."""

    async def commit() -> None:
        async with fakes.outbox.transaction() as tx:
            await fakes.outbox.append(tx, "run-1", "step", {})

    asyncio.run(commit())
    rows = json.loads(runner.invoke(app, ["outbox", "streams", "--json"]).output)
    assert rows == [{"stream": "run-1", "last_seq": 1, "pending": 1}]
    assert "run-1" in runner.invoke(app, ["outbox", "streams"]).output
