"""The SQL shipped as package data: named queries and migration files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from portside.adapters.postgres.migrations import (
    Migration,
    MigrationSource,
    available_migrations,
    load_migrations,
    migrate_connection,
)
from portside.adapters.postgres.queries import query
from portside.examples import migrations as examples
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
    assert "row_to_json" not in outbox.sql
    assert "NEW." not in outbox.sql


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


def test_the_core_ships_no_example_tables() -> None:
    """The example tables left portside's own migrations for the examples' source."""
    core = {(m.version, m.name) for m in available_migrations()}
    assert ("0011", "example_datasets") not in core
    assert ("0020", "agent_runs") not in core
    for migration in available_migrations():
        assert "example_" not in migration.sql
        assert "agent_runs" not in migration.sql


def test_the_examples_are_a_source_of_their_own() -> None:
    assert examples.SOURCE.name == "portside.examples"
    loaded = examples.SOURCE.migrations()
    assert [(m.label, m.name) for m in loaded] == [
        ("portside.examples/0001", "example_datasets"),
        ("portside.examples/0002", "agent_runs"),
        ("portside.examples/0003", "plan_queues"),
    ]


def test_the_examples_migrations_are_safe_where_portside_already_made_their_tables() -> None:
    """Databases migrated before the move have these tables from portside's 0011 and 0020."""
    for migration in examples.SOURCE.migrations():
        creates = re.findall(r"^CREATE [A-Z ]+", migration.sql, flags=re.MULTILINE)
        assert creates, migration.name
        assert all(c.startswith(("CREATE TABLE IF NOT EXISTS", "CREATE INDEX IF NOT EXISTS"))
                   for c in creates), creates  # fmt: skip


def test_labels_name_the_source_except_portside_s_own(tmp_path: Path) -> None:
    (tmp_path / "0001_widgets.sql").write_text("SELECT 1;")
    (loaded,) = MigrationSource("myapp", tmp_path).migrations()
    assert (loaded.source, loaded.version, loaded.label) == ("myapp", "0001", "myapp/0001")
    assert Migration("0001", "outbox", "SELECT 1;").label == "0001"


def test_a_package_source_is_named_after_its_package() -> None:
    source = MigrationSource.from_package("portside.examples.migrations")
    assert source.name == "portside.examples.migrations"
    assert [m.version for m in source.migrations()] == ["0001", "0002", "0003"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("portside", "is portside's own"),
        ("", "is invalid"),
        ("MyApp", "is invalid"),
        ("my app", "is invalid"),
        ("1app", "is invalid"),
    ],
)
def test_bad_source_names_are_refused(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        MigrationSource(name, tmp_path)
    assert caught.value.fix


class _IdleConnection:
    """Enough of a connection for the checks made before the migrator touches the database."""

    def is_in_transaction(self) -> bool:
        return False

    async def execute(self, *args: Any) -> str:
        raise AssertionError("the migrator touched the database")


async def test_two_sources_with_one_name_are_refused_before_any_lock(tmp_path: Path) -> None:
    first = MigrationSource("myapp", tmp_path)
    second = MigrationSource("myapp", tmp_path)
    with pytest.raises(ConfigurationError, match="two migration sources are named 'myapp'"):
        await migrate_connection(_IdleConnection(), [first, second])  # type: ignore[arg-type]
