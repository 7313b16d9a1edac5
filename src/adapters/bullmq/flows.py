"""Flows on BullMQ's layout: adding a tree of jobs as Node's FlowProducer does, reading it back.

A flow is one ``MULTI``/``EXEC`` of BullMQ's ``add*Job`` scripts, parents before children:
a job with children is added with ``addParentJob`` (into ``waiting-children``); every child
carries its parent as Node writes it: ``parentKey`` (the parent's job key), the parent's
``:dependencies`` set to join, ``parent = {id, queueKey, fpof|idof|rdof}`` in the hash and
``parent = {id, queue}`` plus the failure flag in its ``opts``. BullMQ's ``moveToFinished``
then stores each child's result in the parent's ``:processed`` hash and moves the parent on
once ``:dependencies`` is empty, whichever worker (portside or Node) finished the child.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from portside.adapters.bullmq.control import get_job
from portside.adapters.bullmq.names import QueueName, queue_of_key
from portside.adapters.bullmq.options import to_bullmq_opts
from portside.adapters.bullmq.producer import (
    Prepared,
    lay_out_call,
    new_job_id,
    script_for,
    submit_multi,
)
from portside.ports import (
    ChildFailure,
    FlowRef,
    FlowTree,
    JobRef,
    JobStateError,
    PortsideError,
)
from portside.ports.inputs import FlowNode

__all__ = ["add_flow", "get_flow"]

_FLAGS: dict[ChildFailure, str] = {
    "fail_parent": "fpof",
    "ignore": "idof",
    "remove": "rdof",
}
"""BullMQ's short names of a child's failure options (``failParentOnFailure`` ...)."""

QueueOf = Callable[[str], QueueName]


def _lay_out(
    nodes: list[FlowNode], targets: list[QueueName], ids: list[str], now: int
) -> list[Prepared]:
    parents = {node.parent for node in nodes if node.parent is not None}
    prepared: list[Prepared] = []
    for index, node in enumerate(nodes):
        target, job_id = targets[index], ids[index]
        opts = to_bullmq_opts(node.options, custom_id=node.options.job_id is not None)
        parent_key = deps_key = None
        parent: dict[str, Any] | None = None
        if node.parent is not None:
            above = targets[node.parent]
            parent_id = ids[node.parent]
            parent_key = above.job_key(parent_id)
            deps_key = parent_key + ":dependencies"
            parent = {"id": parent_id, "queueKey": above.qualified}
            opts["parent"] = {"id": parent_id, "queue": above.qualified}
            flag = _FLAGS.get(node.on_failure)
            if flag is not None:
                parent[flag] = True
                opts[flag] = True
        name = "addParentJob" if index in parents else script_for(node.options)
        args = [target.base, job_id, node.name, now, parent_key, deps_key, parent, None, None]
        command, lua = lay_out_call(target, name, args, node.payload, opts)
        prepared.append(Prepared(target.portside, job_id, node.name, lua, command))
    return prepared


async def _refuse_taken_ids(
    client: Redis, nodes: list[FlowNode], targets: list[QueueName], ids: list[str]
) -> None:
    """Refuse a child id that already belongs to another (existing) parent before anything
    is written: BullMQ would refuse that one job (code -7) and add the rest."""
    checked = [
        index
        for index, node in enumerate(nodes)
        if node.parent is not None and node.options.job_id is not None
    ]
    if not checked:
        return
    async with client.pipeline(transaction=False) as pipe:
        for index in checked:
            pipe.hget(targets[index].job_key(ids[index]), "parentKey")
        owners: list[str | None] = await pipe.execute()
    for index, owner in zip(checked, owners, strict=True):
        parent = nodes[index].parent
        assert parent is not None
        wanted = targets[parent].job_key(ids[parent])
        if owner and owner != wanted and await client.exists(owner):
            node = nodes[index]
            raise JobStateError(
                node.queue,
                ids[index],
                "unknown",
                f"job {ids[index]!r} of queue {node.queue!r} already belongs to parent {owner!r}",
                fix="give the flow's job another id, or leave the id out to get a fresh one",
                field="flow",
            )


def _refs(nodes: list[FlowNode], replies: list[tuple[Prepared, Any]]) -> FlowRef:
    children: list[list[FlowRef]] = [[] for _ in nodes]
    root: FlowRef | None = None
    for index in range(len(nodes) - 1, -1, -1):
        prepared, reply = replies[index]
        if isinstance(reply, int) and reply < 0:
            raise PortsideError(
                f"BullMQ refused job {prepared.job_id!r} of flow queue {prepared.queue!r} "
                f"(code {reply}); the other jobs of the flow were added",
                fix="remove the flow's root with remove_job and add the flow again",
            )
        ref = FlowRef(
            job=JobRef(queue=prepared.queue, id=str(reply), name=prepared.name),
            children=tuple(reversed(children[index])),
        )
        parent = nodes[index].parent
        if parent is None:
            root = ref
        else:
            children[parent].append(ref)
    assert root is not None
    return root


async def add_flow(client: Redis, nodes: list[FlowNode], queue_of: QueueOf) -> FlowRef:
    """Add a checked flow (``check_flow``) in one ``MULTI``/``EXEC``; returns its refs."""
    targets = [queue_of(node.queue) for node in nodes]
    ids = [node.options.job_id or new_job_id() for node in nodes]
    await _refuse_taken_ids(client, nodes, targets, ids)
    prepared = _lay_out(nodes, targets, ids, int(time.time() * 1000))
    return _refs(nodes, await submit_multi(client, prepared))


# -- reading a flow back -------------------------------------------------------------------


async def _children(client: Redis, queue: QueueName, job_id: str) -> list[str]:
    """The job keys a parent lists: pending, completed, failed-and-ignored, failed-it."""
    key = queue.job_key(job_id)
    async with client.pipeline(transaction=True) as pipe:
        pipe.smembers(key + ":dependencies")
        pipe.hkeys(key + ":processed")
        pipe.hkeys(key + ":failed")
        pipe.zrange(key + ":unsuccessful", 0, -1)
        replies: list[Any] = await pipe.execute()
    return sorted({str(member) for reply in replies for member in reply})


async def get_flow(
    client: Redis, queue: QueueName, job_id: str, depth: int, max_children: int
) -> FlowTree | None:
    """A job and its children (sorted by queue, then id), ``depth`` levels deep."""
    info = await get_job(client, queue, job_id)
    if info is None:
        return None
    if depth <= 1:
        return FlowTree(job=info)
    found: list[tuple[QueueName, str]] = []
    for key in await _children(client, queue, job_id):
        place = queue_of_key(key, queue.root)
        if place is not None:
            found.append(place)
    found.sort(key=lambda place: (place[0].portside, place[1]))
    below: list[FlowTree] = []
    for child_queue, child_id in found:
        if len(below) == max_children:
            break
        tree = await get_flow(client, child_queue, child_id, depth - 1, max_children)
        if tree is not None:
            below.append(tree)
    return FlowTree(job=info, children=tuple(below))
