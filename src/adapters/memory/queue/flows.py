"""Flows in the queue fake: adding a tree of jobs, parents waiting for children, reading it back.

The rules are BullMQ's (``addParentJob``, and the parent updates of ``moveToFinished`` and
``removeJob``), so the fake and the BullMQ adapter pass the same contract suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from portside.adapters.memory.queue.jobs import FlowLinks, JobRecord
from portside.adapters.memory.queue.json_values import copy_json
from portside.adapters.memory.queue.state import QueueState
from portside.ports import FlowRef, FlowTree, JobRef, JobStateError
from portside.ports.inputs import FlowNode

__all__ = [
    "add_flow",
    "child_completed",
    "child_failed",
    "drop_from_parent",
    "get_flow",
    "links",
]

StateOf = Callable[[str], QueueState]
"""The state of a queue by name (created on first use): ``JobRunner.state``."""


def links(record: JobRecord) -> FlowLinks:
    """``record``'s flow links, made on first use."""
    found = record.links
    if found is None:
        found = record.links = FlowLinks()
    return found


def _conflict(nodes: list[FlowNode], state_of: StateOf) -> None:
    """Refuse, before anything is added, a job id that already belongs to another parent
    (BullMQ's code -7, which would leave half a flow behind)."""
    for node in nodes:
        job_id = node.options.job_id
        if job_id is None or node.parent is None:
            continue
        existing = state_of(node.queue).jobs.get(job_id)
        if existing is None or existing.links is None:
            continue
        parent = existing.links.parent
        wanted = nodes[node.parent]
        if parent is None or parent.removed:
            continue
        if (parent.queue, parent.id) != (wanted.queue, wanted.options.job_id):
            raise JobStateError(
                node.queue,
                job_id,
                existing.state,
                f"job {job_id!r} of queue {node.queue!r} already belongs to parent "
                f"{parent.id!r} of queue {parent.queue!r}",
                fix="give the flow's job another id, or leave the id out to get a fresh one",
                field="flow",
            )


def add_flow(
    nodes: list[FlowNode],
    state_of: StateOf,
    now: float,
    create: Callable[[QueueState, FlowNode, str, bool], JobRecord],
) -> FlowRef:
    """Add every job of a checked flow; parents wait in ``waiting-children``.

    Args:
        nodes: The checked flow (``check_flow``), parents first.
        state_of: The queue states by name.
        now: The clock's time.
        create: Stores a new record for a node (``parent`` True puts it in
            ``waiting-children``), emitting its ``enqueued`` event.
    """
    _conflict(nodes, state_of)
    parents = {node.parent for node in nodes if node.parent is not None}
    records: list[JobRecord] = []
    for index, node in enumerate(nodes):
        state = state_of(node.queue)
        job_id = node.options.job_id
        if job_id is None:
            state.next_id += 1
            job_id = str(state.next_id)
        record = state.jobs.get(job_id)
        if record is None:
            record = create(state, node, job_id, index in parents)
        records.append(record)
        if node.parent is not None:
            _link(records[node.parent], record, node, now, state_of)
    return _refs(nodes, records)


def _link(
    parent: JobRecord, child: JobRecord, node: FlowNode, now: float, state_of: StateOf
) -> None:
    """Make ``child`` a dependency of ``parent`` (a duplicate id links the existing job)."""
    child_links = links(child)
    child_links.parent = parent
    child_links.on_failure = node.on_failure
    parent_links = links(parent)
    parent_links.known[child.key] = child
    if child.state == "completed":
        parent_links.processed[child.key] = copy_json(child.result)
        if not parent_links.pending and parent.state == "waiting-children":
            _to_wait(parent, now, state_of)
    else:
        parent_links.pending[child.key] = child


def _refs(nodes: list[FlowNode], records: list[JobRecord]) -> FlowRef:
    children: list[list[FlowRef]] = [[] for _ in nodes]
    refs: list[FlowRef | None] = [None] * len(nodes)
    for index in range(len(nodes) - 1, -1, -1):
        record = records[index]
        ref = FlowRef(
            job=JobRef(queue=record.queue, id=record.id, name=nodes[index].name),
            children=tuple(reversed(children[index])),
        )
        refs[index] = ref
        parent = nodes[index].parent
        if parent is not None:
            children[parent].append(ref)
    root = refs[0]
    assert root is not None
    return root


def _to_wait(parent: JobRecord, now: float, state_of: StateOf) -> None:
    """BullMQ's ``moveParentToWait``: after its delay, or now: by its priority, or else
    first in line (BullMQ pushes it to the end of ``wait`` that workers take from)."""
    state = state_of(parent.queue)
    if parent.delay > 0:
        state.push_delayed(parent, now + parent.delay)
    else:
        state.push_ready(parent, front=True)
    state.wake()


def child_completed(record: JobRecord, result: object, now: float, state_of: StateOf) -> None:
    """A child completed: the parent stores its result and runs once none is pending."""
    parent = _live_parent(record)
    if parent is None:
        return
    parent_links = links(parent)
    if parent_links.pending.pop(record.key, None) is None:
        return
    parent_links.processed[record.key] = copy_json(result)
    if not parent_links.pending and parent.state == "waiting-children":
        _to_wait(parent, now, state_of)


def child_failed(record: JobRecord, reason: str, now: float, state_of: StateOf) -> None:
    """A child failed for good: the parent follows the child's ``on_failure``."""
    parent = _live_parent(record)
    if parent is None:
        return
    policy = links(record).on_failure
    parent_links = links(parent)
    if policy == "wait" or parent_links.pending.pop(record.key, None) is None:
        return
    if policy == "fail_parent":
        parent_links.unsuccessful[record.key] = now
        _fail_parent(parent, f"child {record.key} failed", now, state_of)
        return
    if policy == "ignore":
        parent_links.ignored[record.key] = reason
    if not parent_links.pending and parent.state == "waiting-children":
        _to_wait(parent, now, state_of)


def _fail_parent(parent: JobRecord, reason: str, now: float, state_of: StateOf) -> None:
    """BullMQ's ``handleChildFailureAndMoveParentToWait``: the parent fails when it next
    runs, and runs now (or after its delay) if it was waiting for children."""
    if parent.state == "waiting-children":
        parent.deferred = reason
        _to_wait(parent, now, state_of)
    elif parent.state == "delayed":
        parent.delay = 0.0
        parent.deferred = reason
        state_of(parent.queue).push_ready(parent)
        state_of(parent.queue).wake()
    elif parent.state != "failed":
        parent.deferred = reason


def _live_parent(record: JobRecord) -> JobRecord | None:
    found = record.links
    if found is None or found.parent is None or found.parent.removed:
        return None
    return found.parent


def drop_from_parent(record: JobRecord, state_of: StateOf, *, hard: bool) -> None:
    """BullMQ's ``removeParentDependencyKey``: a removed job no longer holds its parent back.

    When it was the last pending child the parent moves on: to the front of its queue's
    wait list (priority and delay ignored, as BullMQ does); with ``hard`` (cleaning), a
    parent on the same queue is deleted instead.
    """
    parent = _live_parent(record)
    if parent is None:
        return
    parent_links = links(parent)
    if parent_links.pending.pop(record.key, None) is None:
        return
    if parent_links.pending or parent.state != "waiting-children":
        return
    state = state_of(parent.queue)
    if hard and parent.queue == record.queue:
        drop_from_parent(parent, state_of, hard=True)
        state.remove(parent)
        return
    state.push_ready(parent, front=True, by_priority=False)
    state.wake()


def children(record: JobRecord) -> list[JobRecord]:
    """The live children a parent lists (see ``FlowTree``), sorted by queue and job id."""
    found = record.links
    if found is None or not found.known:
        return []
    keys = {*found.pending, *found.processed, *found.ignored, *found.unsuccessful}
    live = [found.known[key] for key in keys if not found.known[key].removed]
    return sorted(live, key=lambda child: (child.queue, child.id))


def get_flow(
    record: JobRecord, depth: int, max_children: int, paused: Callable[[str], bool]
) -> FlowTree:
    """``record`` and its children, ``depth`` levels deep, at most ``max_children`` each."""
    info = record.info(paused=paused(record.queue))
    if depth <= 1:
        return FlowTree(job=info)
    below = [
        get_flow(child, depth - 1, max_children, paused)
        for child in children(record)[:max_children]
    ]
    return FlowTree(job=info, children=tuple(below))


def decode(node: FlowNode) -> dict[str, object]:
    """A node's payload as a fresh dict."""
    data: dict[str, object] = json.loads(node.payload)
    return data
