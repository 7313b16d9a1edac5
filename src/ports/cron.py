"""Cron patterns as BullMQ reads them (5 fields, or 6 with seconds first), checked by croniter."""

from __future__ import annotations

import math
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import (
    CroniterBadCronError,
    CroniterBadDateError,
    croniter,
)

from portside.ports.errors import ValidationError

__all__ = ["CRON_MACROS", "check_cron_pattern", "next_cron_time", "resolve_timezone"]

CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_FIVE = ("minute", "hour", "day of month", "month", "day of week")
_SIX = ("second", *_FIVE)
_LIMITS = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day of month": (1, 31),
    "month": (1, 12),
    "day of week": (0, 7),
}
_EXTRAS = {
    "day of month": " or L (the last day)",
    "month": " or JAN-DEC",
    "day of week": " or SUN-SAT (0 and 7 are Sunday)",
}
_LAYOUT_FIX = (
    "write 5 fields (minute hour day-of-month month day-of-week), e.g. '0 6 * * *', "
    "or 6 with seconds first, e.g. '30 0 6 * * *'"
)
# A fixed start for the "does it ever match" probe, so the check does not depend on the clock.
_PROBE_START = datetime(2000, 1, 1)


def resolve_timezone(name: str | None, field: str = "timezone") -> tzinfo:
    """The IANA time zone ``name``, or UTC when it is None.

    Raises:
        ValidationError: naming ``field`` when ``name`` is not a known IANA zone name.
    """
    if name is None:
        return UTC
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(
            f"{field} must be an IANA time zone name, got {name!r}",
            fix="use a name such as 'UTC' or 'Australia/Sydney', or leave it out for UTC",
            field=field,
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: 'America' is a folder
        raise ValidationError(
            f"{field}: unknown timezone {name!r}",
            fix="use an IANA time zone name such as 'UTC' or 'Australia/Sydney'",
            field=field,
        ) from exc


def _out_of_range(part: str, name: str) -> str | None:
    low, high = _LIMITS[name]
    for item in part.split(","):
        for bound in item.partition("/")[0].split("-"):
            if bound.isdigit() and not low <= int(bound) <= high:
                return f"{name} value {int(bound)} is outside {low}-{high}"
    return None


def _field_problem(part: str, name: str) -> tuple[str, str] | None:
    """What is wrong with one field, checked alone by croniter in a 5-field probe."""
    fix = (
        f"write the {name} as {_LIMITS[name][0]}-{_LIMITS[name][1]}{_EXTRAS.get(name, '')}, "
        "'*', a list (1,15), a range (1-5) or a step (*/10)"
    )
    if any(item[:1].lower() in ("h", "r") for item in part.split(",")):
        # croniter's hashed/random values (H, R) are not cron: Node BullMQ rejects them.
        return f"the {name} field {part!r} uses H or R, which BullMQ does not support", fix
    probe = ["*"] * 5
    # Seconds share the minute's range, so the minute slot checks them.
    probe[0 if name == "second" else _FIVE.index(name)] = part
    try:
        croniter(" ".join(probe), _PROBE_START)
    except CroniterBadCronError:
        return _out_of_range(part, name) or f"the {name} field {part!r} is not valid", fix
    return None


@lru_cache(maxsize=512)
def _problem(text: str) -> tuple[str, str] | None:
    """What is wrong with a stripped, non-empty pattern, as (problem, fix); None if valid."""
    parts = text.split()
    if len(parts) == 1 and parts[0].startswith("@"):
        if parts[0].lower() in CRON_MACROS:
            return None
        return f"{parts[0]!r} is not a known macro", f"use one of {', '.join(CRON_MACROS)}"
    if len(parts) not in (5, 6):
        extra = "; a year field is not supported" if len(parts) == 7 else ""
        return f"has {len(parts)} fields, not 5 or 6", _LAYOUT_FIX + extra
    for part, name in zip(parts, _FIVE if len(parts) == 5 else _SIX, strict=True):
        found = _field_problem(part, name)
        if found is not None:
            return found
    try:
        expanded, _ = croniter.expand(text, second_at_beginning=True)
    except CroniterBadCronError as exc:  # fields valid alone but not together
        return f"is not valid ({str(exc).splitlines()[-1]})", _LAYOUT_FIX
    if len(parts) == 6 and 7 in expanded[4]:
        # croniter 2 maps day-of-week 7 to Sunday only in 5-field patterns (later versions
        # in 6-field ones too); left alone, the pattern would silently never run on Sunday.
        return (
            "day of week 7 (Sunday, also reached by ranges such as 5-7 or FRI-SUN) is not "
            "understood in a 6-field pattern",
            "write Sunday as 0 or SUN, e.g. '5,6,0' instead of '5-7'",
        )
    try:
        _next_wall(text, _PROBE_START)
    except CroniterBadDateError:
        return (
            "never matches a real date",
            "check the day of month against the month (there is no 30 February)",
        )
    return None


def check_cron_pattern(pattern: object, field: str = "pattern") -> str:
    """Validate a cron pattern the way BullMQ's job schedulers read it, and return it.

    Accepted: 5 fields (minute hour day-of-month month day-of-week), 6 fields with seconds
    first, month and weekday names, lists, ranges, steps, ``L`` (last day of the month),
    ``?``, ``n#k`` (k-th weekday of the month) and the macros in ``CRON_MACROS``. When both
    day fields are restricted, a day matching either runs (as in cron and cron-parser).

    Raises:
        ValidationError: naming ``field``, saying which cron field is wrong and how to fix it,
            e.g. ``schedule.pattern '0 24 * * *': hour value 24 is outside 0-23``.
    """
    if not isinstance(pattern, str) or not pattern.strip():
        raise ValidationError(
            f"{field} must be a non-empty cron string, got {pattern!r}",
            fix=_LAYOUT_FIX,
            field=field,
        )
    found = _problem(pattern.strip())
    if found is not None:
        problem, fix = found
        raise ValidationError(f"{field} {pattern!r}: {problem}", fix=fix, field=field)
    return pattern


def _next_wall(pattern: str, after: datetime) -> datetime:
    """The first wall-clock match strictly after the naive wall-clock time ``after``."""
    found: datetime = croniter(pattern, after, second_at_beginning=True).get_next(datetime)
    return found


def _instant(wall: datetime, zone: tzinfo, after: float) -> float | None:
    """The earliest instant after ``after`` at which ``zone``'s clocks show ``wall``."""
    instants = [wall.replace(tzinfo=zone, fold=fold).timestamp() for fold in (0, 1)]
    real = [t for t in instants if datetime.fromtimestamp(t, zone).replace(tzinfo=None) == wall]
    # A wall time skipped by a DST jump runs as if the clock had not jumped (02:30 in a gap
    # from 02:00 to 03:00 runs at 03:30), which is also what croniter does.
    later = [t for t in (real or instants[:1]) if t > after]
    return min(later) if later else None


def next_cron_time(pattern: str, after: float, timezone: str | None = None) -> float:
    """Epoch seconds of the first match of ``pattern`` strictly after ``after``.

    The pattern is read on the wall clock of ``timezone`` (an IANA name; UTC when None).
    croniter finds the wall-clock matches; each is then placed in time with ``zoneinfo``,
    because croniter's own time-zone handling misplaces runs around a DST change. A wall
    time repeated when clocks go back runs once; one skipped when they go forward runs
    that many minutes later.

    Raises:
        ValidationError: for a bad pattern (field ``pattern``), time zone (``timezone``) or a
            non-finite ``after`` (``after``).
    """
    text = check_cron_pattern(pattern).strip()
    zone = resolve_timezone(timezone)
    if isinstance(after, bool) or not isinstance(after, (int, float)) or not math.isfinite(after):
        raise ValidationError(
            f"after must be finite epoch seconds, got {after!r}",
            fix="pass a timestamp such as time.time()",
            field="after",
        )
    # Matches fall on whole seconds, so the whole second of ``after`` is the right start;
    # converting ``after`` itself could round it up onto the match it is just before.
    wall = datetime.fromtimestamp(math.floor(after), zone).replace(tzinfo=None)
    while True:
        wall = _next_wall(text, wall)
        found = _instant(wall, zone, after)
        if found is not None:
            return found
