"""S1: queues on a Redis Cluster under hash-tagged prefixes, through a master's failover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from portside.adapters.bullmq import BullMQQueue
from portside.ports import BackendUnavailableError, Job, JobOptions
from portside.servers import LocalRedis
from portside.servers.cluster import LocalCluster, cluster_command
from portside.testing import wait_for
from tests.integration.queue.conftest import _install_node_bullmq

QUEUES = ("emails", "reports", "agents-run:orchestrator")
JOBS = 900
KILL_AT = 300
RATE = 150.0
WORK = 0.05
TUNING = {
    "lock_duration": 5.0,
    "stalled_interval": 1.0,
    "max_backoff": 0.5,
    "retries": 3,
    "close_grace": 1.0,
}


@pytest.fixture
def cluster() -> Iterator[LocalCluster]:
    """S1: three masters with one replica each, on private ports."""
    servers = LocalCluster(masters=3, replicas=1, node_timeout=1.0).start()
    try:
        yield servers
    finally:
        servers.stop()


def _tags_on_two_shards(cluster: LocalCluster) -> tuple[str, str]:
    """Two hash tags whose slots belong to different masters."""
    owners: dict[int, str] = {}
    for n in range(100):
        tag = f"{{tenant-{n}}}"
        port = cluster.owner_of(key_slot(tag.encode())).port
        owners.setdefault(port, tag)
        if len(owners) == 2:
            first, second = owners.values()
            return first, second
    raise AssertionError("no two tags on different shards")


class Load:
    """Jobs with fixed ids per adapter (its index), paced, and when each ran."""

    def __init__(self) -> None:
        self.done: dict[tuple[int, str], float] = {}
        self.accepted: dict[tuple[int, str], float] = {}
        self.running: set[tuple[int, str]] = set()

    def handler(self, index: int) -> Callable[[Job], Awaitable[None]]:
        async def handle(job: Job) -> None:
            key = (index, job.id)
            self.running.add(key)
            try:
                await asyncio.sleep(WORK)  # the job's work
            finally:
                self.running.discard(key)
            self.done.setdefault(key, time.monotonic())

        return handle

    async def produce(self, index: int, adapter: BullMQQueue) -> None:
        began = time.monotonic()
        for n in range(JOBS):
            job_id = f"job-{n}"
            options = JobOptions(job_id=job_id)
            while True:
                try:
                    await adapter.enqueue(QUEUES[n % len(QUEUES)], "work", {}, options=options)
                    break
                except BackendUnavailableError:
                    continue
            self.accepted[(index, job_id)] = time.monotonic()
            ahead = began + (n + 1) / RATE - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)  # pacing the load, not waiting for anything


def _url(cluster: LocalCluster) -> str:
    return "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in cluster.masters)


async def test_s1_queues_of_two_tags_on_two_shards_survive_a_master_failover(
    cluster: LocalCluster, record_property: object
) -> None:
    """S1: two adapters with hash-tagged prefixes on different shards run three queues
    each; the master owning the first tag's slot is SIGKILLed after 300 of 900 jobs while
    the producer (150 jobs/s) and the workers (10 at once, 50 ms each) run. Its replica
    takes over, the adapter finds it on its own, every accepted job completes (lost = 0),
    and the other shard's queues are untouched."""
    first_tag, second_tag = _tags_on_two_shards(cluster)
    url = _url(cluster)
    victim_shard: LocalRedis = cluster.owner_of(key_slot(first_tag.encode()))
    adapters = [BullMQQueue(url, prefix=tag, **TUNING) for tag in (first_tag, second_tag)]
    load = Load()
    done, accepted, running = load.done, load.accepted, load.running
    workers = []

    try:
        for index, adapter in enumerate(adapters):
            for queue in QUEUES:
                worker = adapter.consume(queue, load.handler(index), concurrency=10)
                await worker.start()
                workers.append(worker)
        production = [
            asyncio.create_task(load.produce(index, adapter))
            for index, adapter in enumerate(adapters)
        ]
        await wait_for(
            lambda: sum(1 for index, _ in accepted if index == 0) >= KILL_AT,
            timeout=60,
            message=f"{KILL_AT} jobs accepted on the first shard",
        )
        in_flight = sum(1 for index, _ in running if index == 0)
        killed_at = time.monotonic()
        victim_shard.kill()

        def new_jobs_handled() -> list[float]:
            return [
                at for key, at in done.items() if key[0] == 0 and accepted.get(key, 0.0) > killed_at
            ]

        await wait_for(
            lambda: bool(new_jobs_handled()),
            timeout=30,
            message="a job enqueued after the kill to run on the new master",
        )
        resumed = min(new_jobs_handled()) - killed_at
        await asyncio.wait_for(asyncio.gather(*production), timeout=90)
        await wait_for(
            lambda: accepted.keys() <= done.keys(),
            timeout=60,
            message="every accepted job to complete",
        )
        lost = accepted.keys() - done.keys()
        figures = {
            "accepted": len(accepted),
            "completed": len(done),
            "running_on_the_killed_shard": in_flight,
            "lost": len(lost),
            "seconds_to_resume": round(resumed, 2),
        }
        for key, value in figures.items():
            record_property(key, value)  # type: ignore[operator]
        print(f"S1 failover figures: {figures}")
        assert not lost
        assert len(accepted) == 2 * JOBS
        assert resumed < 20
    finally:
        for worker in workers:
            await worker.close()
        for adapter in adapters:
            await adapter.close()


def test_s1_a_cluster_adapter_needs_a_hash_tagged_prefix() -> None:
    """S1: a cluster URL with a prefix that has no hash tag is refused at construction."""
    from portside.ports import ConfigurationError

    with pytest.raises(ConfigurationError, match="hash tag") as caught:
        BullMQQueue("redis+cluster://127.0.0.1:7000", prefix="bull")
    assert caught.value.field == "prefix"


@pytest.mark.node
async def test_s1_q12_node_bullmq_works_the_cluster_queue_portside_fills(
    cluster: LocalCluster,
) -> None:
    """S1, Q12: portside enqueues through `redis+cluster://` under prefix `{interop}`; a Node
    BullMQ worker with `prefix: '{interop}:shared'`, connected to the shard that owns the
    tag's slot, runs the jobs, and portside reads Node's results back through the cluster."""
    node = _install_node_bullmq()
    adapter = BullMQQueue(_url(cluster), prefix="{interop}")
    try:
        refs = [await adapter.enqueue("shared:py2node", "work", {"n": n}) for n in range(3)]
        owner = cluster.owner_of(key_slot(b"{interop}"))
        seen = await node.run("consume.cjs", owner.url, "{interop}:shared", "py2node", "3")
        assert set(seen["jobs"]) == {ref.id for ref in refs}
        for n, ref in enumerate(refs):
            info = await adapter.get_job("shared:py2node", ref.id)
            assert info is not None
            assert info.state == "completed"
            assert info.result == {"by": "node", "seen": {"n": n}}
    finally:
        await adapter.close()


def _move_slot(
    source: LocalRedis,
    target: LocalRedis,
    others: list[LocalRedis],
    slot: int,
    batch: int = 50,
    pause: float = 0.0,
) -> None:
    """Reshard ``slot`` from ``source`` to ``target`` the way `redis-cli --cluster reshard`
    does: IMPORTING/MIGRATING, MIGRATE of its keys ``batch`` at a time (``pause`` seconds
    apart, to hold the slot in migration longer), then SETSLOT NODE everywhere."""
    clients = {node: redis.Redis(port=node.port, decode_responses=True) for node in others}
    src, tgt = clients[source], clients[target]

    def run(client: redis.Redis, *args: object) -> Any:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]

    try:
        source_id = run(src, "CLUSTER MYID")
        target_id = run(tgt, "CLUSTER MYID")
        run(tgt, "CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        run(src, "CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        while keys := run(src, "CLUSTER GETKEYSINSLOT", slot, batch):
            run(src, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            time.sleep(pause)  # pacing the migration (a harness thread), not waiting
        for client in (tgt, src, *clients.values()):
            run(client, "CLUSTER SETSLOT", slot, "NODE", target_id)
    finally:
        for client in clients.values():
            client.close()


def _blocked_clients(node: LocalRedis) -> int:
    """Clients of ``node`` waiting in BZPOPMIN (a worker parked on its marker key)."""
    table = cluster_command(node.port, "CLIENT", "LIST")
    return sum(1 for line in table.splitlines() if "cmd=bzpopmin" in line)


@pytest.mark.parametrize(
    ("batch", "pause"), [(50, 0.0), (5, 0.01)], ids=["fast-migration", "slow-migration"]
)
async def test_s1_workers_and_producers_follow_the_slot_to_another_master(
    cluster: LocalCluster, record_property: object, batch: int, pause: float
) -> None:
    """S1: the slot of the adapter's tag is resharded to another master (SETSLOT
    MIGRATING/IMPORTING, MIGRATE of every key, SETSLOT NODE) after 300 of 900 jobs while the
    producer (150 jobs/s) and the workers (three queues, 10 at once) run; once at full speed,
    once 5 keys at a time so the slot stays in migration for about a second. The connections
    get `MOVED` (or `ASK`/`TRYAGAIN` during the migration), reconnect to the new owner and
    send again: every accepted job completes (lost = 0), jobs enqueued after the move run,
    an event stream opened before the move announces every completion, and no worker stays
    parked on the old master."""
    tag = "{moving}"
    slot = key_slot(tag.encode())
    source = cluster.owner_of(slot)
    target = next(node for node in cluster.masters if node is not source)
    adapter = BullMQQueue(_url(cluster), prefix=tag, **TUNING)
    load = Load()
    done, accepted = load.done, load.accepted
    workers = []
    stream = adapter.events(QUEUES[0])
    announced: set[str] = set()

    async def read_events() -> None:
        async for event in stream:
            if event.kind == "completed":
                announced.add(event.job_id)

    reader = asyncio.create_task(read_events())
    try:
        for queue in QUEUES:
            worker = adapter.consume(queue, load.handler(0), concurrency=10)
            await worker.start()
            workers.append(worker)
        production = asyncio.create_task(load.produce(0, adapter))
        await wait_for(
            lambda: len(accepted) >= KILL_AT, timeout=60, message=f"{KILL_AT} jobs accepted"
        )
        move_began = time.monotonic()
        await asyncio.to_thread(_move_slot, source, target, cluster.masters, slot, batch, pause)
        moved_at = time.monotonic()
        assert cluster.owner_of(slot) is target

        def handled_after_move() -> list[float]:
            return [at for key, at in done.items() if accepted.get(key, 0.0) > moved_at]

        await wait_for(
            lambda: bool(handled_after_move()),
            timeout=30,
            message="a job enqueued after the move to run on the new master",
        )
        resumed = min(handled_after_move()) - moved_at
        await asyncio.wait_for(production, timeout=90)
        await wait_for(
            lambda: accepted.keys() <= done.keys(),
            timeout=60,
            message="every accepted job to complete",
        )
        await wait_for(
            lambda: _blocked_clients(source) == 0 and _blocked_clients(target) > 0,
            timeout=20,
            message="the idle workers to wait on the new owner, none on the old one",
        )
        first_queue = {job_id for _, job_id in done if int(job_id.split("-")[1]) % 3 == 0}
        await wait_for(
            lambda: first_queue <= announced,
            timeout=20,
            message="the event stream to announce every completion, across the move",
        )
        lost = accepted.keys() - done.keys()
        figures = {
            "accepted": len(accepted),
            "completed": len(done),
            "lost": len(lost),
            "seconds_to_migrate": round(moved_at - move_began, 2),
            "seconds_to_resume": round(resumed, 2),
        }
        for key, value in figures.items():
            record_property(key, value)  # type: ignore[operator]
        print(f"S1 slot move figures: {figures}")
        assert not lost
        assert len(accepted) == JOBS
        assert resumed < 10
    finally:
        reader.cancel()
        await stream.aclose()
        for worker in workers:
            await worker.close()
        await adapter.close()


@pytest.mark.node
async def test_s1_q12_a_node_cluster_producer_feeds_a_portside_worker(
    cluster: LocalCluster,
) -> None:
    """S1, Q12: Node BullMQ, connected with an ioredis `Cluster` client, adds jobs (single
    with custom ids, bulk, a priority) to queue `node2py` under prefix `{interop}:shared`;
    a portside worker on `redis+cluster://` with prefix `{interop}` runs them from queue
    `shared:node2py`, and the results are stored where both read them."""
    node = _install_node_bullmq()
    seeds = ",".join(f"127.0.0.1:{server.port}" for server in cluster.masters)
    added = await node.run("cluster_produce.cjs", seeds, "{interop}:shared", "node2py", "20")
    ids = {entry["id"] for entry in added}
    assert len(ids) == 22
    adapter = BullMQQueue(_url(cluster), prefix="{interop}")
    seen: dict[str, object] = {}

    async def handle(job: Job) -> dict[str, object]:
        seen[job.id] = job.data["n"]
        return {"by": "portside", "n": job.data["n"]}

    worker = adapter.consume("shared:node2py", handle, concurrency=5)

    async def all_completed() -> bool:
        return (await adapter.counts("shared:node2py")).completed == len(ids)

    try:
        await worker.start()
        await wait_for(all_completed, timeout=30, message="every Node job to complete")
        assert seen.keys() == ids
        for n in range(20):
            info = await adapter.get_job("shared:node2py", f"node-{n}")
            assert info is not None
            assert (info.name, info.state) == ("node-cluster", "completed")
            assert info.result == {"by": "portside", "n": n}
    finally:
        await worker.close()
        await adapter.close()
