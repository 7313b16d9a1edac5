"""Q11 cron patterns: one check and one next-match rule (croniter) for the registry and every
adapter: 5 fields or 6 with seconds first, IANA time zones, wall-clock matching across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from portside.adapters.memory import InMemoryQueue
from portside.app import JobDefinition, JobSchedule, Registry, sync_schedules
from portside.ports import (
    CRON_MACROS,
    Schedule,
    ValidationError,
    check_cron_pattern,
    next_cron_time,
    resolve_timezone,
)

NEW_YORK = "America/New_York"
SYDNEY = "Australia/Sydney"


def _next(pattern: str, after: str, zone: str | None = None, *, fold: int = 0) -> str:
    """The next match after the wall time ``after`` in ``zone``, as a wall time with offset."""
    tz = resolve_timezone(zone)
    start = datetime.fromisoformat(after).replace(tzinfo=tz, fold=fold).timestamp()
    return datetime.fromtimestamp(next_cron_time(pattern, start, zone), tz).isoformat()


def _runs(pattern: str, after: str, zone: str, count: int) -> list[str]:
    """``count`` consecutive runs, each computed from the one before (as schedulers do)."""
    tz = ZoneInfo(zone)
    at = datetime.fromisoformat(after).replace(tzinfo=tz).timestamp()
    runs = []
    for _ in range(count):
        at = next_cron_time(pattern, at, zone)
        runs.append(datetime.fromtimestamp(at, tz).isoformat())
    return runs


@pytest.mark.parametrize(
    ("pattern", "after", "expected"),
    [
        ("*/5 * * * *", "2026-01-01T10:02:30", "2026-01-01T10:05:00+00:00"),
        ("*/5 * * * *", "2026-01-01T10:05:00", "2026-01-01T10:10:00+00:00"),  # strictly after
        ("*/5 * * * *", "2026-01-01T10:04:59.500", "2026-01-01T10:05:00+00:00"),
        ("*/5 * * * *", "2026-01-01T10:05:00.500", "2026-01-01T10:10:00+00:00"),
        ("0 2 * * *", "2026-01-01T02:00:00", "2026-01-02T02:00:00+00:00"),
        ("15 10 * * 1-5", "2026-01-02T11:00:00", "2026-01-05T10:15:00+00:00"),  # Fri -> Mon
        ("15 10 * * MON-FRI", "2026-01-02T11:00:00", "2026-01-05T10:15:00+00:00"),
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00+00:00"),
        ("0 9 1,15 * mon", "2026-01-02T00:00:00", "2026-01-05T09:00:00+00:00"),  # either day
        ("0 9 1,15 * mon", "2026-01-13T00:00:00", "2026-01-15T09:00:00+00:00"),  # either day
        ("0 0 29 2 1", "2026-01-01T00:00:00", "2026-02-02T00:00:00+00:00"),  # either day
        ("0 0 * * 7", "2026-01-01T00:00:00", "2026-01-04T00:00:00+00:00"),  # 7 is Sunday
        ("0 0 * * 0", "2026-01-01T00:00:00", "2026-01-04T00:00:00+00:00"),  # and so is 0
        ("0 0 * * SUN", "2026-01-01T00:00:00", "2026-01-04T00:00:00+00:00"),
        ("0 0 * * 5-7", "2026-01-03T01:00:00", "2026-01-04T00:00:00+00:00"),
        ("0 12 * jan-mar sun", "2026-03-30T00:00:00", "2027-01-03T12:00:00+00:00"),
        ("30 23 31 12 *", "2026-06-01T00:00:00", "2026-12-31T23:30:00+00:00"),
        ("0 0 L * ?", "2026-02-03T00:00:00", "2026-02-28T00:00:00+00:00"),  # last day
        ("0 0 L 2 *", "2028-01-01T00:00:00", "2028-02-29T00:00:00+00:00"),
        ("0 0 * * 5#2", "2026-01-01T00:00:00", "2026-01-09T00:00:00+00:00"),  # 2nd Friday
        ("0 0 1 JAN,JUL MON-FRI", "2026-01-02T00:00:00", "2026-01-05T00:00:00+00:00"),
        ("@hourly", "2026-01-01T10:59:59", "2026-01-01T11:00:00+00:00"),
        ("@daily", "2026-01-01T10:00:00", "2026-01-02T00:00:00+00:00"),
        ("@midnight", "2026-01-01T10:00:00", "2026-01-02T00:00:00+00:00"),
        ("@weekly", "2026-01-01T00:00:00", "2026-01-04T00:00:00+00:00"),
        ("@monthly", "2026-01-01T00:00:00", "2026-02-01T00:00:00+00:00"),
        ("@yearly", "2026-01-01T00:00:00", "2027-01-01T00:00:00+00:00"),
        ("@ANNUALLY", "2026-01-01T00:00:00", "2027-01-01T00:00:00+00:00"),
        (" 0 6 * * * ", "2026-01-01T00:00:00", "2026-01-01T06:00:00+00:00"),
    ],
)
def test_q11_next_match(pattern: str, after: str, expected: str) -> None:
    assert _next(pattern, after) == expected


@pytest.mark.parametrize(
    ("pattern", "after", "expected"),
    [
        ("30 0 6 * * *", "2026-01-01T06:00:29", "2026-01-01T06:00:30+00:00"),
        ("30 0 6 * * *", "2026-01-01T06:00:30", "2026-01-02T06:00:30+00:00"),
        ("*/10 * * * * *", "2026-01-01T06:00:30.200", "2026-01-01T06:00:40+00:00"),
        ("*/10 * * * * *", "2026-01-01T06:00:39.900", "2026-01-01T06:00:40+00:00"),
        ("0 0 0 * * SUN", "2026-01-01T00:00:00", "2026-01-04T00:00:00+00:00"),
        ("15 * * * * 1-5", "2026-01-02T23:59:50", "2026-01-05T00:00:15+00:00"),  # Fri -> Mon
    ],
)
def test_q11_six_fields_put_seconds_first(pattern: str, after: str, expected: str) -> None:
    """Q11: as in BullMQ (cron-parser), a 6-field pattern starts with the seconds."""
    assert _next(pattern, after) == expected


def test_q11_patterns_are_read_on_the_time_zones_wall_clock() -> None:
    assert _next("0 9 * * *", "2026-01-01T10:00:00", SYDNEY) == "2026-01-02T09:00:00+11:00"
    assert _next("0 9 * * *", "2026-07-01T08:00:00", SYDNEY) == "2026-07-01T09:00:00+10:00"
    assert _next("0 9 * * *", "2026-01-01T10:00:00") == "2026-01-02T09:00:00+00:00"


def test_q11_a_time_skipped_by_dst_runs_as_late_as_the_jump() -> None:
    """Q11: 02:30 does not exist in New York on 2026-03-08; the run comes an hour later, at
    03:30 EDT, which is the instant croniter gives too. (The old hand-written matcher skipped
    that day and ran on 2026-03-09 instead.)"""
    assert _next("30 2 * * *", "2026-03-07T03:00:00", NEW_YORK) == "2026-03-08T03:30:00-04:00"
    assert _next("30 2 * * *", "2026-03-08T03:30:00", NEW_YORK) == "2026-03-09T02:30:00-04:00"
    # Hourly: the missing 02:00 and the real 03:00 are the same instant; it runs once.
    assert _runs("0 * * * *", "2026-03-08T00:30:00", NEW_YORK, 3) == [
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:00:00-04:00",
    ]


def test_q11_a_time_repeated_by_dst_runs_once_at_its_wall_clock_time() -> None:
    """Q11: when clocks go back, a repeated wall time runs once, and a daily time just after
    the change keeps its wall-clock time. croniter's own time-zone mode gets both wrong
    (it answers 2026-11-02 02:30 and 2026-04-05 04:00), hence the zoneinfo placement."""
    assert _next("30 1 * * *", "2026-11-01T00:00:00", NEW_YORK) == "2026-11-01T01:30:00-04:00"
    assert _next("30 1 * * *", "2026-11-01T01:45:00", NEW_YORK) == "2026-11-02T01:30:00-05:00"
    assert _next("0 3 * * *", "2026-04-04T04:00:00", SYDNEY) == "2026-04-05T03:00:00+10:00"
    assert _runs("*/30 * * * *", "2026-11-01T00:45:00", NEW_YORK, 3) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:30:00-04:00",
        "2026-11-01T02:00:00-05:00",
    ]
    # Starting inside the repeated hour, its second 01:30 is still ahead.
    assert (
        _next("*/30 * * * *", "2026-11-01T01:10:00", NEW_YORK, fold=1)
        == "2026-11-01T01:30:00-05:00"
    )


def test_q11_a_time_just_before_a_match_is_not_rounded_onto_it() -> None:
    """Q11: 0.4 microseconds before 10:05 rounds to 10:05 as a datetime; 10:05 is still next."""
    at = datetime(2026, 1, 1, 10, 5, tzinfo=UTC).timestamp()
    assert next_cron_time("*/5 * * * *", at - 4e-7) == at
    assert next_cron_time("*/5 * * * *", at) == at + 300


@pytest.mark.parametrize("pattern", ["0 0 0 * * 7", "0 0 0 * * FRI-SUN"])
def test_q11_six_fields_never_silently_skip_sunday(pattern: str) -> None:
    """Q11: croniter 2.0 reads day-of-week 7 as Sunday only in 5-field patterns (later
    versions read it in 6-field ones too). Where the installed croniter would never run such
    a pattern on Sunday, portside refuses it; otherwise it runs on Sunday."""
    expanded, _ = croniter.expand(pattern, second_at_beginning=True)
    if 7 in expanded[4]:
        with pytest.raises(ValidationError, match="write Sunday as 0 or SUN") as info:
            check_cron_pattern(pattern, "schedule.pattern")
        assert info.value.field == "schedule.pattern"
        assert "day of week 7 (Sunday" in str(info.value)
    else:
        assert _next(pattern, "2026-01-03T01:00:00") == "2026-01-04T00:00:00+00:00"


@settings(max_examples=200, deadline=None)
@given(
    pattern=st.sampled_from(
        ["*/7 * * * *", "0 9 * * 1-5", "0 9 1,15 * mon", "0 0 L * *", "*/20 * * * * *"]
    ),
    after=st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False),
)
def test_q11_next_match_is_the_first_match_strictly_after(pattern: str, after: float) -> None:
    """Q11: the answer matches the pattern, lies after ``after``, and nothing matches between."""
    found = next_cron_time(pattern, after)
    wall = datetime.fromtimestamp(found, UTC).replace(tzinfo=None)
    assert found > after
    assert croniter.match(pattern, wall, second_at_beginning=True)
    previous = croniter(pattern, wall, second_at_beginning=True).get_prev(datetime)
    assert previous.replace(tzinfo=UTC).timestamp() <= after


@pytest.mark.parametrize(
    "pattern",
    [
        "* * * * *",
        "0 6 * * *",
        "*/5 * * * *",
        "0 0 1 JAN,JUL MON-FRI",
        "30 0 6 * * *",
        "0 0 L * ?",
        "0 0 * * 5#2",
        "0 0 * * 7",
        "0 0 29 2 *",
        *CRON_MACROS,
    ],
)
def test_q11_valid_patterns_pass_unchanged(pattern: str) -> None:
    assert check_cron_pattern(pattern) == pattern


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("60 * * * *", "minute value 60 is outside 0-59"),
        ("61 * * * *", "minute value 61 is outside 0-59"),
        ("0 24 * * *", "hour value 24 is outside 0-23"),
        ("* * 0 * *", "day of month value 0 is outside 1-31"),
        ("* * * 13 *", "month value 13 is outside 1-12"),
        ("* * * * 8", "day of week value 8 is outside 0-7"),
        ("1-70 * * * *", "minute value 70 is outside 0-59"),
        ("60 * * * * *", "second value 60 is outside 0-59"),
        ("0 0 0 0 * *", "day of month value 0 is outside 1-31"),
        ("*/0 * * * *", "the minute field '*/0' is not valid"),
        # croniter 2 (pinned by bullmq) refuses a reversed range; croniter >= 3 wraps it
        # around (5-59,0-1): an upgrade that changes what BullMQ accepts shows up here.
        ("5-1 * * * *", "the minute field '5-1' is not valid"),
        ("a * * * *", "the minute field 'a' is not valid"),
        ("1,,2 * * * *", "the minute field '1,,2' is not valid"),
        ("* * * * funday", "the day of week field 'funday' is not valid"),
        ("0 0 ? ? *", "the month field '?' is not valid"),
        ("0 0 * * 1,5#2", "the day of week field '1,5#2' is not valid"),
        ("H * * * *", "the minute field 'H' uses H or R, which BullMQ does not support"),
        ("R 0 * * *", "the minute field 'R' uses H or R, which BullMQ does not support"),
        ("* * *", "has 3 fields, not 5 or 6"),
        ("* * * *", "has 4 fields, not 5 or 6"),
        ("* * * * * * *", "has 7 fields"),
        ("every tuesday", "has 2 fields"),
        ("@reboot", "'@reboot' is not a known macro"),
        ("0 0 30 2 *", "never matches a real date"),
        ("0 0 31 4,6 *", "never matches a real date"),
    ],
)
def test_q11_bad_patterns_name_the_field_the_problem_and_the_fix(
    pattern: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        check_cron_pattern(pattern, "schedule.pattern")
    assert info.value.field == "schedule.pattern"
    assert str(info.value).startswith(f"schedule.pattern {pattern!r}: ")
    assert message in info.value.message
    assert info.value.fix


@pytest.mark.parametrize("pattern", ["", "   ", None, 5, ["* * * * *"]])
def test_q11_a_pattern_must_be_a_non_empty_string(pattern: object) -> None:
    with pytest.raises(ValidationError) as info:
        check_cron_pattern(pattern)
    assert info.value.field == "pattern"
    assert f"pattern must be a non-empty cron string, got {pattern!r}" in str(info.value)
    assert "e.g. '0 6 * * *'" in str(info.value)


@pytest.mark.parametrize("name", ["Mars/Olympus", "America", "utc", "../etc/passwd", ""])
def test_q11_unknown_time_zones_name_the_field(name: str) -> None:
    with pytest.raises(ValidationError) as info:
        resolve_timezone(name, "schedule.timezone")
    assert info.value.field == "schedule.timezone"
    assert repr(name) in str(info.value)
    assert "'Australia/Sydney'" in str(info.value)


def test_q11_time_zones_resolve_by_iana_name_and_default_to_utc() -> None:
    assert resolve_timezone(None) is UTC
    assert resolve_timezone(SYDNEY) == ZoneInfo(SYDNEY)
    assert resolve_timezone("UTC") == ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: next_cron_time("0 24 * * *", 0.0), "pattern"),
        (lambda: next_cron_time("0 6 * * *", 0.0, "Mars/Olympus"), "timezone"),
        (lambda: next_cron_time("0 6 * * *", float("nan")), "after"),
    ],
)
def test_q11_next_cron_time_rejects_bad_input_by_field(call: Any, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        call()
    assert info.value.field == field


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"pattern": "61 * * * *"}, "pattern", "minute value 61 is outside 0-59"),
        ({"pattern": "* * * * * * *"}, "pattern", "has 7 fields"),
        ({"pattern": "0 0 30 2 *"}, "pattern", "never matches a real date"),
        ({"every": 60, "timezone": "Mars/Olympus"}, "timezone", "unknown timezone"),
    ],
)
def test_q11_schedule_refuses_what_no_adapter_could_run(
    kwargs: dict[str, Any], field: str, message: str
) -> None:
    """Q11: the port's Schedule checks pattern and time zone, so every adapter (fake or
    BullMQ) refuses the same schedules before touching a queue."""
    with pytest.raises(ValidationError) as info:
        Schedule(scheduler_id="s", name="n", **kwargs)
    assert info.value.field == field
    assert message in str(info.value)


def test_q11_schedule_keeps_a_valid_pattern_and_zone_as_given() -> None:
    schedule = Schedule(scheduler_id="s", name="n", pattern="30 0 6 * * *", timezone=SYDNEY)
    assert (schedule.pattern, schedule.timezone) == ("30 0 6 * * *", SYDNEY)


class _Empty(BaseModel):
    region: str = "ALL"


async def _noop(payload: _Empty, ctx: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("pattern", "timezone"),
    [
        ("0 6 * * *", None),
        ("30 0 6 * * *", SYDNEY),
        ("0 0 L * ?", None),
        ("0 9 1,15 * MON", "Europe/Berlin"),
        ("0 0 * * 5#2", None),
        ("@weekly", NEW_YORK),
    ],
)
async def test_q11_a_pattern_the_registry_accepts_the_fake_queue_accepts(
    pattern: str, timezone: str | None
) -> None:
    """Q11: the registry and the in-memory queue used to run different cron parsers, so a
    6-field or ``L`` schedule could pass registration and then fail in the fake."""
    definition = JobDefinition(
        name="report",
        queue="reports",
        payload=_Empty,
        handler=_noop,
        schedule=JobSchedule(pattern=pattern, timezone=timezone),
    )
    queue = InMemoryQueue()
    report = await sync_schedules(Registry([definition]), queue)
    assert report.created == ["reports/report"]
    (stored,) = await queue.list_schedules("reports")
    assert (stored.pattern, stored.timezone) == (pattern, timezone)
    (pending,) = queue.jobs("reports")
    assert pending.state == "delayed"


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (JobSchedule(pattern="0 24 * * *"), "hour value 24 is outside 0-23"),
        (JobSchedule(pattern="0 0 0 0 * *"), "day of month value 0 is outside 1-31"),
        (JobSchedule(every=60, timezone="Mars/Olympus"), "unknown timezone 'Mars/Olympus'"),
    ],
)
def test_q11_registry_and_schedule_refuse_the_same_input(schedule: JobSchedule, words: str) -> None:
    """Q11: what the registry refuses, the port's Schedule refuses with the same words."""
    with pytest.raises(ValidationError) as registry:
        JobDefinition(
            name="report", queue="reports", payload=_Empty, handler=_noop, schedule=schedule
        )
    with pytest.raises(ValidationError) as port:
        Schedule(
            scheduler_id="report",
            name="report",
            pattern=schedule.pattern,
            every=schedule.every,
            timezone=schedule.timezone,
        )
    assert words in str(registry.value)
    assert words in str(port.value)
    assert registry.value.field is not None
    assert port.value.field is not None
    assert registry.value.field.endswith(port.value.field)
