"""S1: control commands during a slot migration that outlasts the client's retries wait
for it to end (ASK/TRYAGAIN sent again with back-off up to ``command_timeout``)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
from redis.crc import key_slot

from portside.adapters.bullmq import BullMQQueue
from portside.servers import LocalRedis
from portside.servers.cluster import LocalCluster, cluster_command
from portside.testing import wait_for

TAG = "{control}"
QUEUE = "jobs"
RETRIES = 1
TUNING = {"retries": RETRIES, "retry_backoff": 0.01, "max_backoff": 0.1, "command_timeout": 20.0}


def _run(node: LocalRedis, *args: object) -> Any:
    client = redis.Redis(port=node.port, decode_responses=True)
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def _redirects(node: LocalRedis) -> int:
    """ASK and TRYAGAIN replies ``node`` has sent so far."""
    stats = cluster_command(node.port, "INFO", "errorstats")
    total = 0
    for line in stats.splitlines():
        if line.startswith(("errorstat_ASK:", "errorstat_TRYAGAIN:")):
            total += int(line.split("count=")[1].split(",")[0])
    return total


async def test_s1_control_commands_wait_out_a_slot_migration_longer_than_the_retries(
    plain_cluster: LocalCluster,
) -> None:
    """S1: with the tag's keys already moved but the slot not yet handed over (every
    command gets ASK or TRYAGAIN), ``counts`` and ``pause`` keep trying past ``retries``
    and succeed on the new owner once the migration ends."""
    slot = key_slot(TAG.encode())
    url = f"redis+cluster://127.0.0.1:{plain_cluster.masters[0].port}"
    adapter = BullMQQueue(url, prefix=TAG, **TUNING)
    try:
        for n in range(5):
            await adapter.enqueue(QUEUE, "work", {"n": n})
        source = plain_cluster.owner_of(slot)
        target = next(node for node in plain_cluster.masters if node is not source)
        source_id = _run(source, "CLUSTER MYID")
        target_id = _run(target, "CLUSTER MYID")
        _run(target, "CLUSTER SETSLOT", slot, "IMPORTING", source_id)
        _run(source, "CLUSTER SETSLOT", slot, "MIGRATING", target_id)
        while keys := _run(source, "CLUSTER GETKEYSINSLOT", slot, 100):
            _run(source, "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
        before = _redirects(source)
        counting = asyncio.create_task(adapter.counts(QUEUE))
        pausing = asyncio.create_task(adapter.pause(QUEUE))
        await wait_for(
            lambda: _redirects(source) >= before + 2 * (RETRIES + 1) + 4,
            timeout=20,
            message="both commands to be redirected more often than their retries allow",
        )
        assert not counting.done()
        assert not pausing.done()
        for node in plain_cluster.masters:
            _run(node, "CLUSTER SETSLOT", slot, "NODE", target_id)
        counts = await asyncio.wait_for(counting, timeout=20)
        await asyncio.wait_for(pausing, timeout=20)
        assert counts.waiting + counts.paused == 5
        assert await adapter.is_paused(QUEUE)
        assert plain_cluster.owner_of(slot) is target
    finally:
        await adapter.close()
