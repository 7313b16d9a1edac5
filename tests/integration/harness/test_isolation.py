"""Per-test isolation across xdist workers, with the local and the external provider, and
cleanup afterwards: no processes, directories, databases or keys left (H1, H2)."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from portside.servers import LocalPostgres, LocalRedis
from portside.servers.cleanup import default_base_dir
from portside.servers.clusters import cache_root

pytestmark = pytest.mark.integration

INNER_INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

INNER_TESTS = """
import json
import os
from pathlib import Path

import asyncpg
import pytest
import redis

RECORD = Path(os.environ["PORTSIDE_ISOLATION_RECORD"])
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


def record(**data):
    with open(RECORD / f"{WORKER}.jsonl", "a") as out:
        out.write(json.dumps({**data, "worker": WORKER}) + "\\n")


def earlier(kind):
    path = RECORD / f"{WORKER}.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [entry["name"] for entry in map(json.loads, lines) if entry["kind"] == kind]


def servers(harness):
    found = getattr(harness.provider, "servers", ())
    return [[s.pid, str(s.directory)] for s in found if s is not None]


@pytest.mark.parametrize("n", range(4))
async def test_database_is_fresh(postgres_dsn, portside_harness, n):
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await conn.fetchval("SELECT to_regclass('marker')") is None
        migrations = await conn.fetchval("SELECT count(*) FROM portside_schema_version")
        await conn.execute("CREATE TABLE marker (n int)")
        await conn.execute("INSERT INTO marker VALUES ($1)", n)
        name = await conn.fetchval("SELECT current_database()")
    finally:
        await conn.close()
    record(kind="db", name=name, migrations=migrations, servers=servers(portside_harness))


@pytest.mark.parametrize("n", range(4))
def test_keys_are_fresh(redis_url, redis_prefix, portside_harness, n):
    client = redis.Redis.from_url(redis_url)
    try:
        for prefix in earlier("prefix"):
            assert client.keys(prefix + "*") == [], f"keys of {prefix} outlived their test"
        assert client.keys(redis_prefix + "*") == []
        client.set(f"{redis_prefix}:marker", n)
        client.hset(f"{redis_prefix}:emails:1", "data", "{}")
    finally:
        client.close()
    record(kind="prefix", name=redis_prefix, servers=servers(portside_harness))
"""


def records(directory: Path) -> list[dict[str, object]]:
    return [
        json.loads(line) for f in directory.glob("*.jsonl") for line in f.read_text().splitlines()
    ]


@pytest.fixture
def inner(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An inner suite of 8 tests; returns the directory where the tests record what they saw."""
    record = tmp_path / "record"
    record.mkdir()
    monkeypatch.setenv("PORTSIDE_ISOLATION_RECORD", str(record))
    monkeypatch.setenv("PORTSIDE_CACHE_DIR", str(cache_root()))  # pytester moves HOME
    for name in ("PORTSIDE_SERVERS", "PORTSIDE_REDIS_URL", "PORTSIDE_POSTGRES_DSN"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INNER_INI)
    pytester.makepyfile(test_inner=INNER_TESTS)
    return record


def check_isolated(seen: list[dict[str, object]]) -> None:
    assert {entry["worker"] for entry in seen} == {"gw0", "gw1"}
    databases = [entry["name"] for entry in seen if entry["kind"] == "db"]
    prefixes = [entry["name"] for entry in seen if entry["kind"] == "prefix"]
    assert len(databases) == len(set(databases)) == 8
    assert len(prefixes) == len(set(prefixes)) == 8
    assert all(":" not in str(prefix) for prefix in prefixes)
    assert {entry["migrations"] for entry in seen if entry["kind"] == "db"} != {0}


@pytest.fixture
def servers_dir() -> Iterator[Path]:
    """A fresh place for server directories that Postgres's unprivileged user can enter."""
    path = Path(tempfile.mkdtemp(prefix="harness-servers-", dir=default_base_dir()))
    path.chmod(0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_h2_isolation_and_cleanup_with_the_local_provider(
    pytester: pytest.Pytester, inner: Path, monkeypatch: pytest.MonkeyPatch, servers_dir: Path
) -> None:
    monkeypatch.setenv("PORTSIDE_SERVERS_DIR", str(servers_dir))
    result = pytester.runpytest_subprocess("-n", "2", "--dist", "each", "--portside-servers=local")
    result.assert_outcomes(passed=16)
    result.stdout.fnmatch_lines(["portside servers: local (mode local from --portside-servers)*"])
    seen = records(inner)
    check_isolated(seen)
    per_worker = {
        worker: {tuple(s) for e in seen if e["worker"] == worker for s in e["servers"]}  # type: ignore[attr-defined]
        for worker in ("gw0", "gw1")
    }
    assert all(len(found) == 2 for found in per_worker.values()), per_worker
    assert not per_worker["gw0"] & per_worker["gw1"], "each worker has its own servers"
    for pid, directory in per_worker["gw0"] | per_worker["gw1"]:
        assert (
            not Path(f"/proc/{pid}").exists()
            or "State:\tZ" in Path(f"/proc/{pid}/status").read_text()
        ), f"server {pid} outlived the session"
        assert not Path(directory).exists()
    assert list(servers_dir.iterdir()) == []


@pytest.fixture
def shared_servers() -> Iterator[tuple[LocalRedis, LocalPostgres]]:
    """One Redis and one Postgres standing in for servers someone else runs."""
    with LocalRedis() as cache, LocalPostgres() as db:
        yield cache, db


async def test_h2_isolation_and_cleanup_with_the_external_provider(
    pytester: pytest.Pytester,
    inner: Path,
    monkeypatch: pytest.MonkeyPatch,
    shared_servers: tuple[LocalRedis, LocalPostgres],
) -> None:
    cache, db = shared_servers
    monkeypatch.setenv("PORTSIDE_REDIS_URL", cache.url)
    monkeypatch.setenv("PORTSIDE_POSTGRES_DSN", db.dsn)
    admin = await asyncpg.connect(db.dsn)
    try:
        # A database of a session that died (nobody holds its lock) and one of a live session.
        await admin.execute('CREATE DATABASE "pt_00000000dead_gw0_3"')
        await admin.execute('CREATE DATABASE "pt_0000000a11fe_gw0_1"')
        await admin.execute("SELECT pg_advisory_lock($1)", (0x7074 << 48) | 0xA11FE)
        result = pytester.runpytest_subprocess(
            "-n", "2", "--dist", "each", "--portside-servers=external"
        )
        result.assert_outcomes(passed=16)
        result.stdout.fnmatch_lines(["portside servers: external (mode external*"])
        check_isolated(records(inner))
        left = await admin.fetch(r"SELECT datname FROM pg_database WHERE datname LIKE 'pt\_%'")
        assert [row["datname"] for row in left] == ["pt_0000000a11fe_gw0_1"]
    finally:
        await admin.close()
    client = redis.Redis.from_url(cache.url)
    try:
        assert client.dbsize() == 0
    finally:
        client.close()


INTERRUPTED = """
import os
import signal


def test_interrupted(postgres_dsn, redis_prefix):
    os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does
"""


def test_h1_ctrl_c_stops_the_servers_and_removes_their_directories(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, servers_dir: Path
) -> None:
    monkeypatch.setenv("PORTSIDE_SERVERS_DIR", str(servers_dir))
    monkeypatch.setenv("PORTSIDE_CACHE_DIR", str(cache_root()))
    pytester.makeini(INNER_INI)
    pytester.makepyfile(test_interrupted=INTERRUPTED)
    result = pytester.runpytest_subprocess("--portside-servers=local", "-p", "no:randomly")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert list(servers_dir.iterdir()) == []
