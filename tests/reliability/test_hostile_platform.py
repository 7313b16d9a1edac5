"""Q2, A5: hostile payloads and dates through dispatch, backfill and the CLI never crash."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import math
import warnings
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from portside.adapters.bullmq import BullMQQueue
from portside.app import dispatch, plan_backfill
from portside.app.backfill import MAX_BACKFILL_DAYS
from portside.app.cli import app as cli
from portside.examples.ingestion import registry
from portside.ports import ValidationError
from tests.reliability.conftest import Figures
from tests.reliability.hostile import bad_json_values, hostile_text, mostly
from tests.reliability.scale import Scale
from tests.reliability.sync_env import Loop, examples

pytestmark = pytest.mark.reliability

INGEST_QUEUE = registry.get("ingest").queue
ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_-]{0,20}", fullmatch=True)
date_values: st.SearchStrategy[Any] = mostly(
    st.dates() | st.dates().map(dt.date.isoformat),
    st.one_of(
        st.datetimes().map(dt.datetime.isoformat),
        st.sampled_from(
            [
                "2024-02-30",
                "2023-02-29",
                "2024-13-01",
                "0000-01-01",
                "9999-12-31",
                "10000-01-01",
                "2024-1-1",
                "20240501",
                "2024-05-01T00:00:00+14:00",
                "2024-W18-3",
                "",
                "today",
                "-2024-05-01",
            ]
        ),
        st.integers(-(2**63), 2**63),
        st.floats(),
        st.just(math.nan),
        bad_json_values,
    ),
)
field_values = mostly(ID, hostile_text | bad_json_values | st.text(max_size=70))


class PlatformEnv:
    def __init__(self, loop: Loop, queue: BullMQQueue) -> None:
        self.loop = loop
        self.queue = queue

    def jobs(self) -> int:
        counts = self.loop.run(self.queue.counts(INGEST_QUEUE))
        return counts.depth + counts.active + counts.completed + counts.failed


@pytest.fixture
def env(redis_url: str, redis_prefix: str) -> Iterator[PlatformEnv]:
    with asyncio.Runner() as runner:
        queue = BullMQQueue(redis_url, prefix=redis_prefix)
        try:
            yield PlatformEnv(Loop(runner), queue)
        finally:
            runner.run(queue.close())


def test_q2_dispatch_refuses_hostile_payloads_and_dates_or_enqueues_a_valid_job(
    env: PlatformEnv, scale: Scale, figures: Figures
) -> None:
    """``dispatch`` with any mix of good and hostile field values: either a ValidationError
    naming the payload's fields and nothing enqueued, or exactly one valid job."""
    outcome: Counter[str] = Counter()

    @examples(scale, factor=3)
    @given(
        organization=field_values,
        integration=field_values,
        date=date_values,
        extra=mostly(st.none(), st.tuples(st.text(max_size=8), field_values)),
        deterministic=st.booleans(),
    )
    def check(
        organization: Any, integration: Any, date: Any, extra: Any, deterministic: bool
    ) -> None:
        data: dict[str, Any] = {
            "organizationId": organization,
            "integrationId": integration,
            "date": date,
        }
        if extra is not None:
            data[extra[0]] = extra[1]
        before = env.jobs()
        ref = env.loop.run_or_refusal(
            dispatch(registry, env.queue, "ingest", data, deterministic_id=deterministic)
        )
        if isinstance(ref, ValidationError):
            assert ref.message, ref
            assert "ingest" in str(ref), ref
            assert env.jobs() == before
            outcome["refused"] += 1
            return
        info = env.loop.run(env.queue.get_job(INGEST_QUEUE, ref.id))
        assert info is not None
        assert info.data["organizationId"] == organization
        assert dt.date.fromisoformat(info.data["date"]).isoformat() == info.data["date"]
        assert env.jobs() in (before, before + 1)  # a deterministic id may already exist
        outcome["accepted"] += 1

    check()
    figures.update(inputs_tried=sum(outcome.values()), **outcome)


def test_a5_backfill_ranges_anywhere_in_the_calendar(
    env: PlatformEnv, scale: Scale, figures: Figures
) -> None:
    """``plan_backfill`` over any two dates: reversed and over-long ranges are refused with
    the field named; others plan one deterministic job per day, the same ids every time,
    and a dry run enqueues nothing."""
    outcome: Counter[str] = Counter()

    @examples(scale, factor=2)
    @given(
        start=st.dates() | st.sampled_from([dt.date.min, dt.date.max]),
        span=st.integers(-5, 40) | st.integers(-(10**6), 10**6),
        organization=ID,
    )
    def check(start: dt.date, span: int, organization: str) -> None:
        try:
            end = start + dt.timedelta(days=span)
        except OverflowError:
            end = dt.date.max if span > 0 else dt.date.min
        data = {"organizationId": organization, "integrationId": "i-1"}
        days = (end - start).days + 1
        if days < 1 or days > MAX_BACKFILL_DAYS:
            with pytest.raises(ValidationError) as refused:
                plan_backfill(registry, "ingest", start, end, data)
            assert refused.value.field in ("from", "to"), refused.value.field
            outcome["refused"] += 1
            return
        plan = plan_backfill(registry, "ingest", start, end, data)
        again = plan_backfill(registry, "ingest", start, end, data)
        ids = [job.job_id for job in plan.jobs]
        assert len(ids) == len(set(ids)) == days
        assert ids == [job.job_id for job in again.jobs]
        if days <= 40:
            before = env.jobs()
            report = env.loop.run(plan.run(env.queue, dry_run=True))
            assert (report.planned, report.enqueued + report.existing) == (days, days)
            assert env.jobs() == before, "a dry run enqueued something"
        outcome["planned"] += 1

    check()
    figures.update(inputs_tried=sum(outcome.values()), **outcome)


@pytest.fixture
def cli_env(redis_url: str, redis_prefix: str, postgres_dsn: str) -> dict[str, str]:
    return {
        "PORTSIDE_APP": "portside.examples.ingestion:registry",
        "PORTSIDE_REDIS_URL": redis_url,
        "PORTSIDE_REDIS_PREFIX": redis_prefix,
        "PORTSIDE_POSTGRES_DSN": postgres_dsn,
    }


# Valid dates mostly within a year of each other, so that many ranges are accepted.
cli_dates = mostly(
    st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2024, 12, 31)).map(dt.date.isoformat)
    | st.dates().map(dt.date.isoformat),
    st.text(max_size=12)
    | st.sampled_from(["2024-02-30", "9999-12-31", "0001-01-01", "2024-05-01x", "--to", "-1"]),
)


def test_a5_backfill_command_line_answers_every_date_with_exit_0_or_2(
    cli_env: dict[str, str], scale: Scale, figures: Figures
) -> None:
    """``portside backfill ingest --from X --to Y --dry-run`` with any strings: exit 0, or
    exit 2 with one ``error: ...`` line; never a traceback."""
    runner = CliRunner()
    codes: Counter[int] = Counter()

    @examples(scale)
    @given(start=cli_dates, end=cli_dates)
    def check(start: str, end: str) -> None:
        data = '{"organizationId": "org-1", "integrationId": "xero-1"}'
        args = ["backfill", "ingest", "--from", start, "--to", end, "--data", data, "--dry-run"]
        result = runner.invoke(cli, args, env=cli_env)
        assert result.exit_code in (0, 2), (args, result.output, result.exception)
        assert isinstance(result.exception, SystemExit | None), result.exception
        if result.exit_code == 2:
            errors = [line for line in result.output.splitlines() if line.startswith("error")]
            assert len(errors) == 1, result.output
        codes[result.exit_code] += 1

    check()
    figures.update(inputs_tried=sum(codes.values()), exit_0=codes[0], exit_2=codes[2])


@pytest.mark.parametrize("delay", ["inf", "1e300", "1e20"])
def test_a5_dispatch_refuses_an_infinite_or_huge_delay(cli_env: dict[str, str], delay: str) -> None:
    data = '{"organizationId": "org-1", "integrationId": "xero-1", "date": "2024-05-01"}'
    result = CliRunner().invoke(
        cli, ["dispatch", "ingest", "--data", data, "--delay", delay], env=cli_env
    )
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.output.startswith("error:"), result.output


@contextlib.contextmanager
def _collect_leaks() -> Iterator[None]:
    """Finalise what a failing call leaked now, so its ResourceWarnings cannot surface as
    unraisable exceptions in whichever test the garbage collector happens to run next."""
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()


def test_a5_a_backfill_longer_than_64_days_runs(env: PlatformEnv) -> None:
    """A 100-day dry run looks every day up and reports all of them as new."""
    plan = plan_backfill(
        registry,
        "ingest",
        dt.date(2024, 1, 1),
        dt.date(2024, 4, 9),
        {"organizationId": "org-1", "integrationId": "xero-1"},
    )
    with _collect_leaks():
        report = env.loop.run(plan.run(env.queue, dry_run=True))
    assert (report.planned, report.enqueued) == (100, 100)


def test_a5_backfill_command_line_over_a_year(cli_env: dict[str, str]) -> None:
    """``portside backfill ... --dry-run`` over 366 days lists every day and exits 0."""
    data = '{"organizationId": "org-1", "integrationId": "xero-1"}'
    args = ["backfill", "ingest", "--from", "2024-01-01", "--to", "2024-12-31", "--data", data]
    with _collect_leaks():
        result = CliRunner().invoke(cli, [*args, "--dry-run"], env=cli_env)
    assert result.exit_code == 0, result.output
    assert "366 days" in result.output
