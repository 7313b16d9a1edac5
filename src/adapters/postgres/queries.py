"""Named SQL queries loaded from ``outbox.sql`` (package data)."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

__all__ = ["query"]

_NAME = re.compile(r"^-- name: (\S+)\s*$", re.MULTILINE)


@cache
def _load() -> dict[str, str]:
    text = files(__package__ or "portside.adapters.postgres").joinpath("outbox.sql")
    parts = _NAME.split(text.read_text(encoding="utf-8"))
    # parts = [preamble, name1, body1, name2, body2, ...]
    return {
        name: body.strip().rstrip(";") for name, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def query(name: str) -> str:
    """The SQL text of query ``name`` (comments included, trailing ``;`` removed).

    Raises:
        KeyError: No query of that name exists in ``outbox.sql``.
    """
    return _load()[name]
