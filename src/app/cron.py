"""Cron pattern checks, so a bad schedule fails at registration instead of in the scheduler."""

from __future__ import annotations

import re

from portside.ports import ValidationError

__all__ = ["check_cron_pattern"]

_NAMES = {
    "month": {
        name: index
        for index, name in enumerate(
            ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
            start=1,
        )
    },
    "day of week": {
        name: index for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))
    },
}
_FIVE = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
         ("day of week", 0, 7))  # fmt: skip
_SIX = (("second", 0, 59), *_FIVE)
_STEP = re.compile(r"^(?P<range>[^/]+)(?:/(?P<step>\d+))?$")


def _value(text: str, field: str, low: int, high: int) -> int:
    names = _NAMES.get(field, {})
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ValueError(f"{field} value {text!r} is not a number")
    number = int(text)
    if not low <= number <= high:
        raise ValueError(f"{field} value {number} is outside {low}-{high}")
    return number


def _check_part(part: str, field: str, low: int, high: int) -> None:
    if field in ("day of month", "day of week") and part in ("?", "L"):
        return
    match = _STEP.match(part)
    if match is None:
        raise ValueError(f"{field} part {part!r} is malformed")
    span, step = match["range"], match["step"]
    if step is not None and int(step) == 0:
        raise ValueError(f"{field} step in {part!r} must be at least 1")
    if span == "*":
        return
    bounds = span.split("-")
    if len(bounds) > 2:
        raise ValueError(f"{field} range {span!r} is malformed")
    values = [_value(bound, field, low, high) for bound in bounds]
    if len(values) == 2 and values[0] > values[1]:
        raise ValueError(f"{field} range {span!r} runs backwards")


def check_cron_pattern(pattern: str, field: str = "schedule.pattern") -> str:
    """Validate a 5-field (minute first) or 6-field (second first) cron pattern.

    Raises:
        ValidationError: naming the cron field at fault, e.g. ``hour value 24 is outside 0-23``.
    """
    fields = pattern.split()
    layout = {5: _FIVE, 6: _SIX}.get(len(fields))
    if layout is None:
        raise ValidationError(
            f"{field} {pattern!r} has {len(fields)} fields",
            fix="use 5 fields (minute hour day-of-month month day-of-week), e.g. '0 6 * * *', "
            "or 6 with seconds first",
            field=field,
        )
    try:
        for text, (name, low, high) in zip(fields, layout, strict=True):
            for part in text.split(","):
                _check_part(part, name, low, high)
    except ValueError as exc:
        raise ValidationError(
            f"{field} {pattern!r} is invalid: {exc}",
            fix="fix that cron field (see `man 5 crontab`)",
            field=field,
        ) from exc
    return pattern
