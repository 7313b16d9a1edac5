"""A5, Q10, Q11, A4: the ``portside`` CLI; bad input exits 2 with one line, --help documents all."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from portside.adapters.memory import InMemoryOutbox, InMemoryQueue, VirtualClock
from portside.adapters.memory.history import InMemoryHistory
from portside.app.cli import app
from portside.infra import Infra, use_infra
from portside.ports import NewDeadLetter

EXAMPLES = "portside.examples.ingestion:registry"
INGEST_BASE = '{"organizationId": "org-1", "integrationId": "xero-1"}'


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in (
        "PORTSIDE_APP",
        "PORTSIDE_REDIS_URL",
        "PORTSIDE_POSTGRES_DSN",
        "PORTSIDE_REDIS_PREFIX",
        "PORTSIDE_LOG_LEVEL",
    ):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture
def cli_infra() -> Iterator[Infra]:
    """Fakes installed in this (synchronous) test's context: the CLI uses them."""
    clock = VirtualClock()
    infra = Infra(
        queue=InMemoryQueue(clock),
        outbox=InMemoryOutbox(),
        history=InMemoryHistory(clock.datetime),
        name="cli-fake",
    )
    with use_infra(infra):
        yield infra


def invoke(runner: CliRunner, *args: str, **env: str) -> Any:
    return runner.invoke(app, list(args), env=env or None)


HELP = [
    ([], "Run and operate portside jobs"),
    (["worker"], "Run the registry's jobs until SIGINT/SIGTERM"),
    (["dispatch"], "Validate a payload and enqueue one job"),
    (["backfill"], "Enqueue one job per day from --from to --to"),
    (["schedule"], "Make the queues' job schedulers match the registry"),
    (["migrate"], "Apply pending Postgres migrations"),
    (["failed"], "Jobs that failed for good"),
    (["failed", "list"], "List dead letters, newest first"),
    (["failed", "retry"], "Send dead letters back to their queue"),
    (["failed", "purge"], "Delete old dead letters"),
    (["outbox"], "The transactional outbox"),
    (["outbox", "purge"], "Delete published outbox events older than --older-than"),
]


@pytest.mark.parametrize(("command", "words"), HELP, ids=lambda v: " ".join(v) if v else "")
def test_every_command_documents_itself_in_help(
    runner: CliRunner, command: list[str], words: str
) -> None:
    result = invoke(runner, *command, "--help")

    assert result.exit_code == 0, result.output
    assert words in " ".join(result.output.split())


BAD_INPUT = [
    (["dispatch", "nope", "--app", EXAMPLES], "unknown job 'nope'"),
    (["dispatch", "ingest", "--app", EXAMPLES, "--data", "{x"], "--data is not valid JSON"),
    (["dispatch", "ingest", "--app", EXAMPLES, "--data", "[1]"], "must be a JSON object"),
    (["dispatch", "ingest", "--app", EXAMPLES, "--data", "{}"], "organizationId: Field required"),
    (
        ["dispatch", "ingest", "--app", EXAMPLES, "--data", "{}", "--job-id", "a:b"],
        "organizationId: Field required",
    ),
    (["dispatch", "ingest"], "no job registry is configured"),
    (
        ["backfill", "ingest", "--app", EXAMPLES, "--from", "2024-13-01", "--to", "2024-12-01"],
        "--from '2024-13-01' is not a date",
    ),
    (
        ["backfill", "ingest", "--app", EXAMPLES, "--from", "2024-05-02", "--to", "2024-05-01"],
        "--from 2024-05-02 is after --to 2024-05-01",
    ),
    (
        ["backfill", "nope", "--app", EXAMPLES, "--from", "2024-05-01", "--to", "2024-05-02"],
        "unknown job 'nope'",
    ),
    (
        [
            "backfill",
            "ingest",
            "--app",
            EXAMPLES,
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-02",
            "--data",
            "not json",
        ],
        "--data is not valid JSON",
    ),
    (["backfill", "ingest", "--app", EXAMPLES, "--to", "2024-05-02"], "Missing option '--from'"),
    (["worker", "--app", "no.such.module:registry"], "cannot be imported"),
    (["worker", "--app", "portside.examples.ingestion"], "is not in the form module:attribute"),
    (["worker", "--app", "portside.examples.ingestion:nothing"], "has no attribute 'nothing'"),
    (["worker", "--app", "portside.examples.ingestion:build_registry"], None),
    (["worker", "--app", EXAMPLES, "--queues", "nope"], "no registered job uses queue 'nope'"),
    (["worker", "--app", EXAMPLES, "--grace", "-1"], "Invalid value for '--grace'"),
    (["worker", "--app", "portside.examples.ingestion:SyncPayload"], "not a portside Registry"),
    (["schedule"], "no job registry is configured"),
    (["migrate"], "no Postgres DSN is configured"),
    (["migrate", "--postgres-dsn", "mysql://x"], "is not a postgres/postgresql URL"),
    (["failed", "retry"], "give dead-letter ids or --all"),
    (["failed", "purge", "--older-than-days", "-1"], "Invalid value for '--older-than-days'"),
    (["no-such-command"], "No such command 'no-such-command'"),
]


@pytest.mark.parametrize(("args", "words"), BAD_INPUT, ids=lambda v: str(v)[:60])
def test_bad_input_exits_2_with_one_line(
    runner: CliRunner, args: list[str], words: str | None
) -> None:
    if words is None:
        # A factory is accepted; without servers it then fails on configuration, also exit 2.
        words = "no Redis URL is configured"
    result = invoke(runner, *args)

    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    assert words in lines[0]


def test_a5_dispatch_enqueues_and_prints_the_job_id(runner: CliRunner, cli_infra: Infra) -> None:
    data = '{"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}'

    result = invoke(
        runner, "dispatch", "ingest", "--data", data, "--deterministic-id", PORTSIDE_APP=EXAMPLES
    )

    assert result.exit_code == 0, result.stdout
    assert result.stdout.strip() == (
        "enqueued ingest on ingestion:ingest as ingest.org-1.xero-1.2024-05-01"
    )
    counts = asyncio.run(cli_infra.queue.counts("ingestion:ingest"))
    assert counts.waiting == 1


def test_a5_backfill_dry_run_then_real_run_then_rerun(runner: CliRunner, cli_infra: Infra) -> None:
    args = ["backfill", "ingest", "--from", "2024-05-01", "--to", "2024-05-30"]
    args += ["--data", INGEST_BASE, "--app", EXAMPLES]

    dry = invoke(runner, *args, "--dry-run")
    real = invoke(runner, *args)
    again = invoke(runner, *args)

    assert dry.exit_code == real.exit_code == again.exit_code == 0, dry.stdout + real.stdout
    dry_lines = dry.stdout.strip().splitlines()
    assert dry_lines[0] == "2024-05-01  ingest.org-1.xero-1.2024-05-01  new"
    assert dry_lines[-1].endswith("30 days, would enqueue 30, 0 already present")
    assert real.stdout.strip().endswith("30 days, enqueued 30, 0 already present")
    assert again.stdout.strip().endswith("30 days, enqueued 0, 30 already present (waiting 30)")
    assert asyncio.run(cli_infra.queue.counts("ingestion:ingest")).waiting == 30


def test_a5_long_backfill_shows_a_progress_bar_on_stderr(
    runner: CliRunner, cli_infra: Infra
) -> None:
    result = invoke(
        runner, "backfill", "sync-housing-abs-daily", "--from", "2024-01-01", "--to",
        "2024-03-31", "--app", EXAMPLES,
    )  # fmt: skip

    assert result.exit_code == 0, result.stdout
    assert "backfill sync-housing-abs-daily" in result.stderr
    assert result.stdout.strip().endswith("91 days, enqueued 91, 0 already present")


def test_q11_schedule_is_idempotent(runner: CliRunner, cli_infra: Infra) -> None:
    first = invoke(runner, "schedule", "--app", EXAMPLES)
    second = invoke(runner, "schedule", "--app", EXAMPLES)

    assert first.exit_code == second.exit_code == 0
    assert "created  sync:energy/sync-energy-wholesale-5m" in first.stdout
    assert "created  ingestion:ingest/ingest" in first.stdout
    assert first.stdout.strip().endswith("5 created, 0 updated, 0 unchanged, 0 removed")
    assert second.stdout.strip() == "schedules: 0 created, 0 updated, 5 unchanged, 0 removed"


def test_a4_failed_list_retry_purge(runner: CliRunner, cli_infra: Infra) -> None:
    history = cli_infra.require_history()
    assert isinstance(history, InMemoryHistory)
    clock = cli_infra.queue.clock  # type: ignore[attr-defined]
    failure = asyncio.run(
        history.add_failure(
            NewDeadLetter(
                queue="ingestion:ingest",
                job_id="ingest.org-1.revoked-1.2024-05-01",
                name="ingest",
                data={"organizationId": "org-1", "integrationId": "ok-1", "date": "2024-05-01"},
                error_class="SourceAuthError",
                error_message="invalid token",
                failure_kind="permanent",
                attempts_made=1,
                failed_at=clock.datetime(),
            )
        )
    )

    listed = invoke(runner, "failed", "list")
    as_json = invoke(runner, "failed", "list", "--json")
    retried = invoke(runner, "failed", "retry", failure.id, "--app", EXAMPLES)
    again = invoke(runner, "failed", "retry", failure.id)
    purged = invoke(runner, "failed", "purge", "--older-than-days", "0")

    assert listed.exit_code == 0
    assert failure.id in listed.stdout
    assert "SourceAuthError: invalid token" in listed.stdout
    assert '"failure_kind": "permanent"' in as_json.stdout
    assert retried.exit_code == 0, retried.stdout
    assert retried.stdout.splitlines()[0].startswith(f"re-enqueued  {failure.id}  ingestion:ingest")
    assert again.exit_code == 2
    assert "was already retried" in again.stderr
    assert purged.exit_code == 0
    assert "purged 1 dead letter(s)" in purged.stdout
    info = asyncio.run(cli_infra.queue.get_job("ingestion:ingest", retried.stdout.split()[3]))
    assert info is not None
    assert info.max_attempts == 3


def test_q15_outbox_purge_deletes_published_events_older_than_the_age(
    runner: CliRunner, cli_infra: Infra
) -> None:
    """Q15: ``portside outbox purge --older-than`` deletes published events past the age and
    keeps newer and unpublished ones; a bad age exits 2 naming the option and the fix."""
    outbox = cli_infra.outbox
    assert isinstance(outbox, InMemoryOutbox)

    async def publish(stream: str) -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, stream, "step", {})
        await outbox.drain_once()

    asyncio.run(publish("old"))
    outbox.clock.advance(3 * 3600)
    asyncio.run(publish("new"))

    async def unpublished() -> None:
        async with outbox.transaction() as tx:
            await outbox.append(tx, "waiting", "step", {})

    asyncio.run(unpublished())
    kept = invoke(runner, "outbox", "purge", "--older-than", "4h")
    purged = invoke(runner, "outbox", "purge", "--older-than", "2h")
    bad = invoke(runner, "outbox", "purge", "--older-than", "two days")

    assert kept.exit_code == 0, kept.stdout
    assert "purged 0 published outbox event(s) older than 4h" in kept.stdout
    assert purged.exit_code == 0, purged.stdout
    assert "purged 1 published outbox event(s) older than 2h" in purged.stdout
    assert [event.stream for event in outbox.events()] == ["new", "waiting"]
    assert bad.exit_code == 2
    assert "--older-than 'two days' is not an age" in bad.stderr
    assert "7d, 12h, 30m or 90s" in bad.stderr


def test_e1_dev_lists_every_example_job_with_a_sample(runner: CliRunner) -> None:
    """E1: ``portside dev --list`` names every example job, its queue and a command that
    dispatches it, without starting any server."""
    result = invoke(runner, "dev", "--list")

    assert result.exit_code == 0, result.stdout
    for name in (
        "phase1-task",
        "weather-ingestion",
        "alert-fanout",
        "color-extraction",
        "moderation-review",
        "analytics-ingest",
        "analytics-aggregate",
        "ingest",
        "aggregate",
        "sync-housing-abs-daily",
    ):
        assert f"{name}  (queue " in result.stdout, name
    assert 'portside dev --job color-extraction --data \'{"imageId": "img-1"' in result.stdout
    assert 'portside dev --job ingest --data \'{"organizationId": "org-demo"' in result.stdout
