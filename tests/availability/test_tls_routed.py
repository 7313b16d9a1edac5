"""S3 with S1/S2: TLS to Cluster-routed (``rediss+cluster://``) and Sentinel-routed
(``rediss+sentinel://``) servers, with the same ``ssl_*`` options as ``rediss://``; a wrong
certificate fails fast with a clear error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.crc import key_slot

from portside.adapters.bullmq import BullMQQueue
from portside.ports import BackendUnavailableError, ConfigurationError, Job
from portside.servers import LocalRedis, find_redis_server
from portside.servers.cluster import LocalCluster
from portside.servers.process import free_port
from portside.servers.sentinel import LocalSentinel
from portside.servers.tls import ServerTls
from portside.testing import wait_for
from portside.testing.certificates import make_other_ca, make_server_tls
from tests.availability.conftest import SERVICE as FAILOVER_SERVICE
from tests.availability.conftest import start_replica_and_sentinels
from tests.availability.test_tls_acl import _refused_fast, _tls_closed

__all__ = ["_tls_closed"]  # the autouse fixture: every TLS socket of a test is closed after it

QUEUE = "jobs"
TAG = "{tls}"
SERVICE = "portside-tls"
FAILOVER_TUNING = {"max_backoff": 0.5, "retries": 3, "lock_duration": 5.0, "close_grace": 1.0}


def _tls_binary() -> None:
    binary = find_redis_server()
    if not binary.supports_tls:
        pytest.skip(f"{binary.describe()} was built without TLS")


@dataclass(frozen=True)
class TlsCluster:
    servers: LocalCluster
    tls: ServerTls

    def url(self, query: str = "") -> str:
        seeds = ",".join(f"127.0.0.1:{self.servers.tls_port[m]}" for m in self.servers.masters)
        return f"rediss+cluster://{seeds}?{query or self.tls.url_query()}"


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[TlsCluster]:
    """Three TLS masters (``tls-port``, ``tls-cluster yes``, client certificates required)."""
    _tls_binary()
    tls = make_server_tls(tmp_path / "tls")
    servers = LocalCluster(masters=3, replicas=0, tls=tls).start()
    try:
        yield TlsCluster(servers, tls)
    finally:
        servers.stop()


@dataclass(frozen=True)
class TlsSentinel:
    master: LocalRedis
    master_tls_port: int
    sentinel: LocalSentinel
    tls: ServerTls

    def url(self, query: str = "") -> str:
        host = f"127.0.0.1:{self.sentinel.tls_port}"
        return f"rediss+sentinel://{host}/{SERVICE}?{query or self.tls.url_query()}"


def _tls_args(tls: ServerTls, port: int) -> tuple[str, ...]:
    """A server that also serves TLS on ``port`` and replicates over TLS (the plain port
    stays open for the harness's checks)."""
    return (
        "--tls-port", str(port),
        "--tls-cert-file", str(tls.cert),
        "--tls-key-file", str(tls.key),
        "--tls-ca-cert-file", str(tls.ca),
        "--tls-client-cert-file", str(tls.client_cert),
        "--tls-client-key-file", str(tls.client_key),
        "--tls-auth-clients", "yes",
        "--tls-replication", "yes",
    )  # fmt: skip


@pytest.fixture
def tls_sentinel(tmp_path: Path) -> Iterator[TlsSentinel]:
    """A master serving TLS on a second port and a Sentinel that serves TLS and watches the
    master over TLS (``tls-replication yes``)."""
    _tls_binary()
    tls = make_server_tls(tmp_path / "tls")
    port = free_port()
    master = LocalRedis(extra_args=_tls_args(tls, port)).start()
    sentinel = LocalSentinel(SERVICE, port, quorum=1, tls=tls)
    try:
        sentinel.start()
        yield TlsSentinel(master, port, sentinel, tls)
    finally:
        sentinel.stop()
        master.stop()


async def _runs_jobs(adapter: BullMQQueue) -> None:
    """Enqueue, work (pipelined and blocking connections), control and count over TLS."""
    done: list[str] = []

    async def handler(job: Job) -> None:
        done.append(job.id)

    worker = adapter.consume(QUEUE, handler)
    await worker.start()
    try:
        ids = [(await adapter.enqueue(QUEUE, "work", {"n": n})).id for n in range(10)]
        await wait_for(lambda: len(done) == len(ids), timeout=20, message="10 jobs handled")
        assert sorted(done) == sorted(ids)
        await adapter.pause(QUEUE)
        await adapter.resume(QUEUE)
        await wait_for(
            lambda: _completed(adapter, len(ids)), timeout=10, message="10 jobs completed"
        )
    finally:
        await worker.close()
        await adapter.close()


async def _completed(adapter: BullMQQueue, expected: int) -> bool:
    return (await adapter.counts(QUEUE)).completed == expected


async def test_s1_s3_a_tls_cluster_runs_jobs_through_its_tls_ports(
    tls_cluster: TlsCluster,
) -> None:
    """S1+S3: ``rediss+cluster://`` with the CA and a client certificate finds the slot's
    owner by its TLS port and runs jobs there; the owner got the adapter's connections."""
    await _runs_jobs(BullMQQueue(tls_cluster.url(), prefix=TAG))
    owner = tls_cluster.servers.owner_of(key_slot(TAG.encode()))
    assert owner.running


async def test_s1_s3_a_wrong_client_certificate_on_a_cluster_fails_fast(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    """S1+S3: a client certificate of another CA is refused at once, naming the cause."""
    cert, key = make_other_ca(tmp_path / "stranger")
    query = f"ssl_ca_certs={tls_cluster.tls.ca}&ssl_certfile={cert}&ssl_keyfile={key}"
    error = await _refused_fast(BullMQQueue(tls_cluster.url(query), prefix=TAG), "stranger")
    assert "client certificate" in str(error)


async def test_s1_s3_an_untrusted_cluster_certificate_fails_fast(
    tls_cluster: TlsCluster, tmp_path: Path
) -> None:
    """S1+S3: a server certificate the client's CA did not sign is refused at once."""
    make_other_ca(tmp_path / "stranger")
    tls = tls_cluster.tls
    query = (
        f"ssl_ca_certs={tmp_path / 'stranger' / 'stranger-ca.crt'}"
        f"&ssl_certfile={tls.client_cert}&ssl_keyfile={tls.client_key}"
    )
    error = await _refused_fast(BullMQQueue(tls_cluster.url(query), prefix=TAG), "untrusted")
    assert "certificate was not trusted" in str(error)


async def test_s2_s3_a_tls_sentinel_names_the_tls_master_and_jobs_run(
    tls_sentinel: TlsSentinel,
) -> None:
    """S2+S3: ``rediss+sentinel://`` asks the Sentinel over TLS, which names the master's
    TLS port, and the adapter's connections reach the master over TLS."""
    await _runs_jobs(BullMQQueue(tls_sentinel.url(), prefix="bull"))


async def test_s2_s3_a_wrong_client_certificate_with_sentinel_fails_fast(
    tls_sentinel: TlsSentinel, tmp_path: Path
) -> None:
    """S2+S3: a client certificate of another CA is refused at once with a clear error."""
    cert, key = make_other_ca(tmp_path / "stranger")
    query = f"ssl_ca_certs={tls_sentinel.tls.ca}&ssl_certfile={cert}&ssl_keyfile={key}"
    error = await _refused_fast(BullMQQueue(tls_sentinel.url(query), prefix="bull"), "stranger")
    assert "client certificate" in str(error)


def test_s3_ssl_options_without_tls_are_refused() -> None:
    """S3: ``ssl_*`` options on a ``redis+cluster://`` URL ask for the TLS scheme."""
    with pytest.raises(ConfigurationError, match="rediss"):
        BullMQQueue("redis+cluster://127.0.0.1:7000?ssl_ca_certs=/ca.crt", prefix=TAG)


@dataclass
class TlsSentinelSet:
    """A master and its replica replicating over TLS, three TLS Sentinels watching them."""

    master: LocalRedis
    replica: LocalRedis
    sentinels: list[LocalSentinel]
    tls: ServerTls

    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.tls_port}" for sentinel in self.sentinels)
        return f"rediss+sentinel://{hosts}/{FAILOVER_SERVICE}?{self.tls.url_query()}"


@pytest.fixture
async def tls_sentinel_set(tmp_path: Path) -> AsyncIterator[TlsSentinelSet]:
    """S2+S3: a master with one replica (over TLS) and three TLS Sentinels (quorum 2,
    master down after 1 s), returned once every Sentinel knows the replica and the others."""
    _tls_binary()
    tls = make_server_tls(tmp_path / "tls")
    master_tls, replica_tls = free_port(), free_port()
    master = LocalRedis(appendonly=True, extra_args=_tls_args(tls, master_tls)).start()
    replica = LocalRedis(
        extra_args=(*_tls_args(tls, replica_tls), "--replicaof", "127.0.0.1", str(master_tls))
    )
    servers = TlsSentinelSet(master, replica, [], tls)
    try:
        await start_replica_and_sentinels(
            master,
            replica,
            servers.sentinels,
            lambda: LocalSentinel(FAILOVER_SERVICE, master_tls, down_after=1.0, tls=tls),
        )
        yield servers
    finally:
        for server in [*servers.sentinels, replica, master]:
            server.stop()


async def test_s2_s3_a_master_failover_over_tls_is_followed(
    tls_sentinel_set: TlsSentinelSet,
) -> None:
    """S2+S3: with ``rediss+sentinel://``, a SIGKILLed master is replaced by its replica
    (found by the TLS Sentinels at its TLS port); jobs enqueued after the kill run, and no
    job accepted before it is lost."""
    adapter = BullMQQueue(tls_sentinel_set.url(), prefix="s2tls", **FAILOVER_TUNING)
    done: set[str] = set()

    async def handler(job: Job) -> None:
        done.add(job.id)

    worker = adapter.consume(QUEUE, handler)
    try:
        await worker.start()
        before = {(await adapter.enqueue(QUEUE, "work", {"n": n})).id for n in range(10)}
        await wait_for(lambda: before <= done, timeout=20, message="the first 10 jobs handled")
        tls_sentinel_set.master.kill()
        after: set[str] = set()

        async def enqueue_after_kill() -> bool:
            try:
                after.add((await adapter.enqueue(QUEUE, "work", {"after": True})).id)
            except BackendUnavailableError:
                return False  # the failover is still under way: enqueue again
            return True

        await wait_for(enqueue_after_kill, timeout=60, message="an enqueue on the new master")
        await wait_for(lambda: after <= done, timeout=30, message="the job after the kill run")
        assert before <= done
    finally:
        await worker.close()
        await adapter.close()
