"""Argument checks of the BullMQ adapter; the checks every adapter shares are in the ports."""

from __future__ import annotations

from portside.ports import ValidationError

# The shared checks, re-exported under the names this adapter's modules import.
from portside.ports.inputs import (
    check_callable,
    check_seconds,
    check_sequence,
    coerce_new_job,
    coerce_options,
    coerce_rate_limit,
    encode_job,
    encode_new_job,
)
from portside.ports.inputs import check_lookup_id as check_id

__all__ = [
    "check_callable",
    "check_concurrency",
    "check_id",
    "check_seconds",
    "check_sequence",
    "coerce_new_job",
    "coerce_options",
    "coerce_rate_limit",
    "encode_job",
    "encode_new_job",
]


def check_concurrency(value: object) -> int:
    """A worker concurrency: an int from 1 to 10000."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10_000:
        raise ValidationError(
            f"concurrency must be an integer from 1 to 10000, got {value!r}",
            fix="pass for example concurrency=5",
            field="concurrency",
        )
    return value
