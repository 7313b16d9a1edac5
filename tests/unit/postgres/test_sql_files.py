"""The SQL shipped as package data: named queries and migration files."""

from __future__ import annotations

from pathlib import Path

import pytest

from portside.adapters.postgres.migrations import available_migrations, load_migrations
from portside.adapters.postgres.queries import query
from portside.ports import ConfigurationError

QUERIES = [
    "append",
    "claim_streams",
    "lock_stream",
    "claim_events",
    "mark_published",
    "drain_targets",
    "read_stream",
    "read_streams",
    "pending_count",
    "lag",
    "purge_published",
]


@pytest.mark.parametrize("name", QUERIES)
def test_every_query_is_one_statement(name: str) -> None:
    sql = query(name)
    assert sql.strip()
    assert not sql.rstrip().endswith(";")
    code = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    assert ";" not in code


def test_unknown_query_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        query("no_such_query")


def test_o2_notify_payload_is_constant_and_never_the_event() -> None:
    """O2: the trigger's NOTIFY carries a constant payload so Postgres folds duplicates."""
    outbox = next(m for m in available_migrations() if m.version == "0001")
    assert "pg_notify('portside_outbox', '')" in outbox.sql
    assert "FOR EACH STATEMENT" in outbox.sql
    assert "row_to_json" not in outbox.sql and "NEW." not in outbox.sql


def test_load_migrations_orders_by_version(tmp_path: Path) -> None:
    (tmp_path / "0010_later.sql").write_text("SELECT 10;")
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "README.md").write_text("not a migration")
    loaded = load_migrations(tmp_path)
    assert [(m.version, m.name) for m in loaded] == [("0002", "second"), ("0010", "later")]
    assert loaded[0].checksum != loaded[1].checksum


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (["2_short.sql"], "misnamed"),
        (["0003_Upper.sql"], "misnamed"),
        (["0004_a.sql", "0004_b.sql"], "share version 0004"),
    ],
)
def test_bad_migration_files_are_refused(tmp_path: Path, files: list[str], message: str) -> None:
    for name in files:
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(ConfigurationError, match=message):
        load_migrations(tmp_path)
