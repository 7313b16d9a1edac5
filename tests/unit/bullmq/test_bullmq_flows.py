"""A flow's script calls, job keys and children's values in BullMQ's layout (Q7, Q12)."""

from __future__ import annotations

import json
from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from portside.adapters.bullmq.flows import _lay_out
from portside.adapters.bullmq.jobs import BullMQJob, children_values, job_info, stored_options
from portside.adapters.bullmq.names import map_queue, portside_queue, queue_of_key
from portside.adapters.bullmq.options import from_bullmq_opts, to_bullmq_opts
from portside.adapters.bullmq.transport.scripts import script
from portside.adapters.bullmq.worker.attempts import run_attempt
from portside.ports import FlowJob, JobOptions, JobParent, default_classify
from portside.ports.inputs import check_flow


def _arguments(command: bytes) -> list[bytes]:
    """The bulk strings of one RESP command."""
    parts = command.split(b"\r\n")
    return [parts[i + 1] for i in range(1, len(parts) - 1, 2) if parts[i].startswith(b"$")]


def test_q12_a_flow_is_addparentjob_for_parents_and_add_job_for_leaves() -> None:
    """Q12: the parent is added with ``addParentJob``; a child's packed arguments carry the
    parent's key, its ``:dependencies`` key and ``{id, queueKey}`` with the failure flag;
    its opts carry ``parent {id, queue}`` and the flag, as Node's FlowProducer writes them."""
    nodes = check_flow(
        FlowJob(
            queue="jobs:p",
            name="parent",
            children=(
                FlowJob(queue="c", name="kid", on_failure="remove", options=JobOptions(delay=5)),
            ),
        )
    )
    targets = [map_queue(node.queue, "bull") for node in nodes]
    prepared = _lay_out(nodes, targets, ["p1", "k1"], 1_000)
    assert [item.lua.name for item in prepared] == ["addParentJob", "addDelayedJob"]
    parts = _arguments(prepared[1].command)
    assert parts[1] == script("addDelayedJob").sha.encode()
    args, data, opts = (msgpack.unpackb(parts[-3]), parts[-2], msgpack.unpackb(parts[-1]))
    assert args == [
        "bull:c:",
        "k1",
        "kid",
        1_000,
        "bull:jobs:p:p1",
        "bull:jobs:p:p1:dependencies",
        {"id": "p1", "queueKey": "bull:jobs:p", "rdof": True},
        None,
        None,
    ]
    assert json.loads(data) == {}
    assert opts["parent"] == {"id": "p1", "queue": "bull:jobs:p"}
    assert (opts["rdof"], opts["delay"]) == (True, 5000)
    root_args = msgpack.unpackb(_arguments(prepared[0].command)[-3])
    assert root_args[4:7] == [None, None, None]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("bull:agents-run:orch:j1", ("agents-run:orch", "bull:agents-run", "orch", "j1")),
        ("bull:q:j2", ("q", "bull", "q", "j2")),
        ("node:other:j3", ("node:other", "node", "other", "j3")),
    ],
)
def test_q12_child_keys_map_back_to_queues(key: str, expected: tuple[str, ...]) -> None:
    """Q12: a child key names its queue (by portside name under the adapter's prefix)."""
    found = queue_of_key(key, "bull")
    assert found is not None
    queue, job_id = found
    assert (queue.portside, queue.prefix, queue.name, job_id) == expected
    assert queue.job_key(job_id) == key
    assert queue_of_key("nocolon", "bull") is None


def test_q7_children_values_are_keyed_by_queue_and_id() -> None:
    """Q7: the ``:processed`` hash becomes ``{"<queue>:<id>": result}``; a child under
    another prefix keeps its full key."""
    reply = ["bull:a:b:1", '{"n":1}', "bull:c:2", "7", "x:y:3", "not json"]
    assert children_values(reply, "bull") == {"a:b:1": {"n": 1}, "c:2": 7, "x:y:3": "not json"}
    assert children_values({"bull:c:2": "null"}, "bull") == {"c:2": None}
    assert portside_queue("bull:a:b", "bull") == "a:b"
    assert map_queue("a:b", "bull").qualified == "bull:a:b"
    assert map_queue("a:b", "bull").root == "bull"


def test_q7_a_child_reads_its_parent_from_the_hash() -> None:
    """Q7: ``JobInfo.parent`` from ``parent`` (JSON) or, without it, ``parentKey``."""
    fields = {"name": "k", "parent": '{"id":"p1","queueKey":"bull:jobs:p"}', "timestamp": "1"}
    info = job_info("c", "k1", fields, "waiting-children", False, "bull")
    assert (info.state, info.parent) == ("waiting-children", JobParent(queue="jobs:p", id="p1"))
    keyed = job_info("c", "k1", {"parentKey": "bull:p:p2"}, "wait", False, "bull")
    assert keyed.parent == JobParent(queue="p", id="p2")
    assert job_info("c", "k1", {}, "wait", False, "bull").parent is None


def test_q7_keep_logs_is_stored_as_bullmqs_kl() -> None:
    """Q7: ``keep_logs`` is BullMQ's ``keepLogs``, stored as ``kl``, read back by workers."""
    opts = to_bullmq_opts(JobOptions(keep_logs=50), custom_id=False)
    assert opts["kl"] == 50
    assert from_bullmq_opts(opts).keep_logs == 50
    assert stored_options(json.dumps(opts)).keep_logs == 50
    assert stored_options('{"kl": 0}').keep_logs is None
    assert "kl" not in to_bullmq_opts(JobOptions(), custom_id=False)


class _Untouched:
    async def progress(self, job_id: str, progress: Any) -> None:
        raise AssertionError("not called")

    async def log(self, job: BullMQJob, line: str) -> None:
        raise AssertionError("not called")

    async def children_values(self, job_id: str) -> dict[str, Any]:
        raise AssertionError("not called")


async def _never(job: Any) -> Any:
    raise AssertionError("a parent failed by its child does not run")


@pytest.mark.asyncio
async def test_q7_a_parent_failed_by_its_child_fails_permanently_unrun() -> None:
    """Q7: BullMQ's deferred failure ``child <key> failed`` (failParentOnFailure) fails the
    parent permanently without running it; a stall's deferred failure stays transient."""
    fields = {"name": "p", "opts": '{"attempts":3}', "defa": "child bull:c:k1 failed"}
    parent = BullMQJob("p1", fields, "p", "tok", _Untouched())
    ending = await run_attempt(parent, _never, None, default_classify)
    assert (ending.status, ending.failure_kind) == ("failed", "permanent")
    assert ending.error == "PermanentError: child bull:c:k1 failed"
    stalled = BullMQJob(
        "s1", {**fields, "defa": "job stalled more than allowable limit"}, "p", "tok", _Untouched()
    )
    ending = await run_attempt(stalled, _never, None, default_classify)
    assert (ending.status, ending.failure_kind) == ("failed", "transient")
