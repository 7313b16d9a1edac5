"""Run mode metadata carried in job data under the reserved ``_portside`` key (A3)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portside.ports import RUN_MODES, RunMode

__all__ = ["META_KEY", "split_run_mode", "with_run_mode"]

META_KEY = "_portside"
"""Reserved top-level key of job data: ``{"_portside": {"mode": "backfill"}}``.

It is stripped before the payload model sees the data, so models never declare it."""


def with_run_mode(data: Mapping[str, Any], mode: RunMode) -> dict[str, Any]:
    """``data`` plus the run-mode metadata."""
    return {**data, META_KEY: {"mode": mode}}


def split_run_mode(data: Mapping[str, Any]) -> tuple[dict[str, Any], RunMode]:
    """The payload without metadata, and the run mode.

    Jobs written by other producers carry no metadata and count as ``manual``.
    """
    payload = {key: value for key, value in data.items() if key != META_KEY}
    meta = data.get(META_KEY)
    mode = meta.get("mode") if isinstance(meta, Mapping) else None
    for known in RUN_MODES:
        if mode == known:
            return payload, known
    return payload, "manual"
