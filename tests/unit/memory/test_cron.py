"""The 5-field cron matcher behind the fake's job schedulers (Q11)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from portside.adapters.memory.cron import CronPattern, resolve_timezone
from portside.ports import ValidationError


def _at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def _next(pattern: str, after: str, zone: str | None = None) -> str:
    tz = resolve_timezone(zone)
    found = CronPattern.parse(pattern).next_after(
        datetime.fromisoformat(after).replace(tzinfo=tz).timestamp(), tz
    )
    assert found is not None
    return datetime.fromtimestamp(found, tz).replace(tzinfo=None).isoformat()


@pytest.mark.parametrize(
    ("pattern", "after", "expected"),
    [
        ("*/5 * * * *", "2026-01-01T10:02:30", "2026-01-01T10:05:00"),
        ("*/5 * * * *", "2026-01-01T10:05:00", "2026-01-01T10:10:00"),
        ("0 2 * * *", "2026-01-01T02:00:00", "2026-01-02T02:00:00"),
        ("15 10 * * 1-5", "2026-01-02T11:00:00", "2026-01-05T10:15:00"),  # Fri -> Mon
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),
        ("0 9 1,15 * mon", "2026-01-02T00:00:00", "2026-01-05T09:00:00"),  # either day field
        ("0 0 * * 7", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),  # 7 is Sunday
        ("0 12 * jan-mar sun", "2026-03-30T00:00:00", "2027-01-03T12:00:00"),
        ("@hourly", "2026-01-01T10:59:59", "2026-01-01T11:00:00"),
        ("@weekly", "2026-01-01T00:00:00", "2026-01-04T00:00:00"),
        ("30 23 31 12 *", "2026-06-01T00:00:00", "2026-12-31T23:30:00"),
    ],
)
def test_next_match(pattern: str, after: str, expected: str) -> None:
    assert _next(pattern, after) == expected


def test_time_zones_and_daylight_saving() -> None:
    """Wall-clock times are read in the zone; a time skipped by DST does not run that day."""
    assert _next("0 9 * * *", "2026-01-01T10:00:00", "Australia/Sydney") == "2026-01-02T09:00:00"
    # 2026-03-08 02:30 does not exist in New York: the next 02:30 is the day after.
    assert _next("30 2 * * *", "2026-03-07T03:00:00", "America/New_York") == "2026-03-09T02:30:00"


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("* * * *", "pattern '* * * *' has 4 fields, not 5"),
        ("60 * * * *", "minute value '60' is not between 0 and 59"),
        ("* * * 13 *", "month value '13' is not between 1 and 12"),
        ("* * * * funday", "day of week value 'funday' is not between 0 and 7"),
        ("5-1 * * * *", "the minute range '5-1' runs backwards"),
        ("*/0 * * * *", "step '0' in the minute field must be 1 or more"),
        ("1,,2 * * * *", "the minute field has an empty list item"),
        ("0 0 30 2 *", "never matches a real date"),
        ("", "pattern must be a non-empty cron string"),
    ],
)
def test_bad_patterns_say_what_is_wrong(pattern: str, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        CronPattern.parse(pattern)
    assert message in str(info.value)
    assert info.value.field == "pattern"


def test_unknown_time_zone_names_the_field() -> None:
    with pytest.raises(ValidationError, match="'Mars/Olympus' is not a known IANA time zone"):
        resolve_timezone("Mars/Olympus", "schedule.timezone")
