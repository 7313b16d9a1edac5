"""Deterministic job ids: the same unit of work always gets the same id (A5, Q1)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["deterministic_job_id"]

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_LENGTH = 200


def _digest(values: Any) -> str:
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def deterministic_job_id(name: str, keys: Mapping[str, Any]) -> str:
    """An id built from the job name and the JSON values of its identifying keys.

    Readable when every value is a short string of letters, digits, '-' and '_'
    (``ingest.org-1.int-7.2024-05-01``); otherwise (numbers, null, other characters)
    ``<name>~<sha256 prefix>``. Job names contain no '.', so readable ids of different jobs
    never collide, and a readable id never equals a hashed one.
    """
    values = list(keys.values())
    if values and all(isinstance(value, str) and _SAFE.match(value) for value in values):
        readable = f"{name}.{'.'.join(values)}"
        if len(readable) <= _MAX_LENGTH:
            return readable
    return f"{name}~{_digest(dict(keys))[:32]}"
