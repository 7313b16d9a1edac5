"""Argument checks of the BullMQ adapter; the checks every adapter shares are in the ports."""

from __future__ import annotations

# The shared checks, re-exported under the names this adapter's modules import.
from portside.ports.inputs import (
    check_callable,
    check_concurrency,
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
