"""A small standard 5-field cron matcher (minute hour day-of-month month day-of-week)."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from portside.ports import ValidationError

__all__ = ["CronPattern", "resolve_timezone"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_NAMES = {
    "month": {name: index for index, name in enumerate(_MONTHS, start=1)},
    "day of week": {name: index for index, name in enumerate(_WEEKDAYS)},
}
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_HORIZON = timedelta(days=366 * 8)  # a 29 February that must also be a given weekday


def resolve_timezone(name: str | None, field: str = "timezone") -> tzinfo:
    """The IANA zone ``name`` (UTC when None) or a ValidationError naming ``field``."""
    if name is None:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"{field} {name!r} is not a known IANA time zone",
            fix="use a name such as 'UTC' or 'Australia/Sydney'",
            field=field,
        ) from exc


def _value(text: str, name: str, low: int, high: int, pattern: str, field: str) -> int:
    named = _NAMES.get(name, {}).get(text.upper())
    if named is not None:
        return named
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValidationError(
            f"{field} {pattern!r}: {name} value {text!r} is not between {low} and {high}",
            fix="use numbers in range (or JAN-DEC / SUN-SAT names)",
            field=field,
        )
    return int(text)


def _expand(part: str, name: str, low: int, high: int, pattern: str, field: str) -> range:
    base, slash, step_text = part.partition("/")
    if slash and (not step_text.isdigit() or int(step_text) < 1):
        raise ValidationError(
            f"{field} {pattern!r}: step {step_text!r} in the {name} field must be 1 or more",
            fix="write steps like '*/5' or '10-30/10'",
            field=field,
        )
    step = int(step_text) if slash else 1
    if base == "*" or (base == "?" and name.startswith("day")):
        return range(low, high + 1, step)
    if "-" in base:
        first, _, last = base.partition("-")
        start = _value(first, name, low, high, pattern, field)
        end = _value(last, name, low, high, pattern, field)
        if start > end:
            raise ValidationError(
                f"{field} {pattern!r}: the {name} range {base!r} runs backwards",
                fix="write ranges low-high, e.g. '1-5'",
                field=field,
            )
        return range(start, end + 1, step)
    start = _value(base, name, low, high, pattern, field)
    return range(start, (high if slash else start) + 1, step)


def _field(text: str, name: str, low: int, high: int, pattern: str, field: str) -> tuple[int, ...]:
    values: set[int] = set()
    for part in text.split(","):
        if not part:
            raise ValidationError(
                f"{field} {pattern!r}: the {name} field has an empty list item",
                fix="remove the stray ','",
                field=field,
            )
        values.update(_expand(part, name, low, high, pattern, field))
    if name == "day of week" and 7 in values:
        values.discard(7)
        values.add(0)
    return tuple(sorted(values))


@dataclass(frozen=True)
class CronPattern:
    """A parsed cron pattern; when both day fields are restricted, either may match."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    either_day: bool

    @classmethod
    def parse(cls, pattern: object, field: str = "pattern") -> CronPattern:
        """Parse ``pattern`` or raise a ValidationError naming ``field`` and the bad part."""
        if not isinstance(pattern, str) or not pattern.strip():
            raise ValidationError(
                f"{field} must be a non-empty cron string, got {pattern!r}",
                fix="write five fields: minute hour day-of-month month day-of-week",
                field=field,
            )
        text = _MACROS.get(pattern.strip().lower(), pattern.strip())
        parts = text.split()
        if len(parts) != 5:
            raise ValidationError(
                f"{field} {pattern!r} has {len(parts)} fields, not 5",
                fix="write minute hour day-of-month month day-of-week, e.g. '*/5 * * * *'",
                field=field,
            )
        values = [
            _field(part, name, low, high, pattern, field)
            for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
        ]
        # As in cron-parser (BullMQ): a day field is restricted unless it covers every day.
        either_day = len(values[2]) < 31 and len(values[4]) < 7
        minutes, hours, days, months, weekdays = values
        parsed = cls(pattern, minutes, hours, days, months, weekdays, either_day)
        if parsed.next_after(0.0, UTC) is None:
            raise ValidationError(
                f"{field} {pattern!r} never matches a real date",
                fix="check the day-of-month against the month (e.g. no 30 February)",
                field=field,
            )
        return parsed

    def _day_matches(self, when: datetime) -> bool:
        in_month = when.day in self.days
        in_week = when.isoweekday() % 7 in self.weekdays
        return in_month or in_week if self.either_day else in_month and in_week

    def next_after(self, timestamp: float, zone: tzinfo = UTC) -> float | None:
        """The first matching minute strictly after ``timestamp``, read in ``zone``."""
        local = datetime.fromtimestamp(timestamp, zone).replace(tzinfo=None)
        when = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = when + _HORIZON
        while when < limit:
            if when.month not in self.months:
                year, month = (
                    (when.year + 1, 1) if when.month == 12 else (when.year, when.month + 1)
                )
                when = datetime(year, month, 1)
            elif not self._day_matches(when):
                when = (when + timedelta(days=1)).replace(hour=0, minute=0)
            elif when.hour not in self.hours:
                index = bisect_left(self.hours, when.hour)
                if index == len(self.hours):
                    when = (when + timedelta(days=1)).replace(hour=0, minute=0)
                else:
                    when = when.replace(hour=self.hours[index], minute=0)
            elif when.minute not in self.minutes:
                index = bisect_left(self.minutes, when.minute)
                if index == len(self.minutes):
                    when = (when + timedelta(hours=1)).replace(minute=0)
                else:
                    when = when.replace(minute=self.minutes[index])
            else:
                found = self._instant(when, zone, timestamp)
                if found is not None:
                    return found
                when += timedelta(minutes=1)
        return None

    @staticmethod
    def _instant(when: datetime, zone: tzinfo, after: float) -> float | None:
        aware = when.replace(tzinfo=zone)
        instant = aware.timestamp()
        # A wall time skipped by a DST jump does not exist; the repeated hour runs once.
        if datetime.fromtimestamp(instant, zone).replace(tzinfo=None) != when or instant <= after:
            return None
        return instant
