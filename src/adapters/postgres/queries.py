"""Named SQL queries of the outbox, from ``outbox.sql`` (package data)."""

from __future__ import annotations

from portside.sqlfiles import SqlFile

__all__ = ["query"]

query = SqlFile("portside.adapters.postgres", "outbox.sql")
"""The SQL text of an outbox query by name (``KeyError`` for an unknown name)."""
