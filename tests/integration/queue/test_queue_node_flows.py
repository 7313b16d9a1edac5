"""Flows and job logs across Node BullMQ 5 and portside, both ways (Q7, Q12).

The queues have no namespace, so their BullMQ prefix is the test's prefix itself: Node's
``FlowProducer.getFlow`` splits child keys at ``:`` and reads only such prefixes. Needs
``node`` and ``npm`` like ``test_queue_node_interop.py``.
"""

from __future__ import annotations

from typing import Any

import pytest

from portside.ports import FlowJob, FlowTree, Job, JobOptions, PermanentError, QueuePort

pytestmark = [pytest.mark.integration, pytest.mark.node]

PARENTS = "flowparent"
CHILDREN = "flowchild"


def _names(tree: FlowTree) -> tuple[str, list[Any]]:
    return (tree.job.name, sorted(_names(child) for child in tree.children))


def _node_names(tree: dict[str, Any]) -> tuple[str, list[Any]]:
    return (tree["name"], sorted(_node_names(child) for child in tree["children"]))


async def test_q12_node_workers_process_a_flow_the_adapter_added(
    queue_adapter: QueuePort, node_bullmq: Any, redis_url: str, redis_prefix: str
) -> None:
    """Q12: a flow portside adds (parent and children on two queues, a grandchild) is run by
    Node workers: each parent reads its children's values with ``getChildrenValues``,
    Node's ``getFlow`` sees portside's tree, and portside reads Node's results and log lines
    (written with ``job.log``) back."""
    ref = await queue_adapter.add_flow(
        FlowJob(
            queue=PARENTS,
            name="py-root",
            data={"children": True},
            children=(
                FlowJob(queue=CHILDREN, name="py-a", data={"n": 1}),
                FlowJob(
                    queue=CHILDREN,
                    name="py-b",
                    data={"children": True},
                    options=JobOptions(keep_logs=5),
                    children=(FlowJob(queue=PARENTS, name="py-grandchild", data={"n": 3}),),
                ),
            ),
        )
    )
    a, b = (child.job.id for child in ref.children)
    grandchild = ref.children[1].children[0].job.id
    seen = await node_bullmq.run(
        "flow_consume.cjs", redis_url, redis_prefix, PARENTS, CHILDREN, ref.job.id, "4"
    )
    key = f"{redis_prefix}:{{}}:{{}}".format
    node_b = {"by": "node", "children": {key(PARENTS, grandchild): {"by": "node", "n": 3}}}
    expected_root = {
        "by": "node",
        "children": {key(CHILDREN, a): {"by": "node", "n": 1}, key(CHILDREN, b): node_b},
    }
    assert seen["jobs"][ref.job.id]["returnvalue"] == expected_root
    assert _node_names(seen["tree"]) == (
        "py-root",
        [("py-a", []), ("py-b", [("py-grandchild", [])])],
    )
    root = await queue_adapter.get_job(PARENTS, ref.job.id)
    assert root is not None
    assert (root.state, root.result) == ("completed", expected_root)
    tree = await queue_adapter.get_flow(PARENTS, ref.job.id)
    assert tree is not None
    assert _names(tree) == ("py-root", [("py-a", []), ("py-b", [("py-grandchild", [])])])
    logs = await queue_adapter.get_logs(CHILDREN, b)
    assert (logs.lines, logs.count) == (["node ran py-b"], 1)


async def test_q12_adapter_processes_a_flow_node_added(
    queue_adapter: QueuePort, node_bullmq: Any, redis_url: str, redis_prefix: str
) -> None:
    """Q12: a flow Node's ``FlowProducer`` adds (with a grandchild and a child whose failure
    is ignored) runs on portside workers: parents wait for their children, read their values
    with ``children_values()``, and log lines Node reads with ``getJobLogs``; Node reads the
    results, ``getChildrenValues`` and the ignored failure, and portside reads the line Node
    logged with ``addJobLog``."""
    added = await node_bullmq.run("flow_produce.cjs", redis_url, redis_prefix, PARENTS, CHILDREN)
    root_id = added["id"]
    a, b, bad = (child["id"] for child in added["children"])
    grandchild = added["children"][1]["children"][0]["id"]
    before = await queue_adapter.get_flow(PARENTS, root_id)
    assert before is not None
    assert before.job.state == "waiting-children"
    assert _names(before) == (
        "node-root",
        [("node-a", []), ("node-b", [("node-grandchild", [])]), ("node-bad", [])],
    )
    child = await queue_adapter.get_job(CHILDREN, a)
    assert child is not None
    assert (child.parent.queue, child.parent.id) == (PARENTS, root_id)  # type: ignore[union-attr]

    async def handler(job: Job) -> Any:
        await job.log(f"portside ran {job.name}")
        if job.data.get("fail"):
            raise PermanentError("planned failure")
        if job.data.get("children"):
            return {"by": "portside", "children": await job.children_values()}
        return {"by": "portside", "n": job.data["n"]}

    queue_adapter.consume(PARENTS, handler)
    queue_adapter.consume(CHILDREN, handler)
    ran = []
    for queue in (PARENTS, CHILDREN, PARENTS):
        ran += [(o.name, o.status) for o in await queue_adapter.drain(queue)]  # type: ignore[attr-defined]
    # node-b, freed by its grandchild, is first in line (BullMQ puts a freed parent there)
    assert ran == [
        ("node-grandchild", "completed"),
        ("node-b", "completed"),
        ("node-a", "completed"),
        ("node-bad", "failed"),
        ("node-root", "completed"),
    ]
    root = await queue_adapter.get_job(PARENTS, root_id)
    assert root is not None
    node_b = {"by": "portside", "children": {f"{PARENTS}:{grandchild}": {"by": "portside", "n": 3}}}
    assert root.result == {
        "by": "portside",
        "children": {f"{CHILDREN}:{a}": {"by": "portside", "n": 1}, f"{CHILDREN}:{b}": node_b},
    }
    own = await queue_adapter.get_logs(PARENTS, root_id)
    assert own.lines == ["node wrote this", "portside ran node-root"]
    read = await node_bullmq.run("inspect.cjs", redis_url, redis_prefix, PARENTS, root_id)
    node_view = read["jobs"][root_id]
    assert node_view["state"] == "completed"
    assert node_view["returnvalue"] == root.result
    assert node_view["logs"] == {"logs": own.lines, "count": 2}
    key = f"{redis_prefix}:{{}}:{{}}".format
    assert node_view["childrenValues"] == {
        key(CHILDREN, a): {"by": "portside", "n": 1},
        key(CHILDREN, b): node_b,
    }
    assert node_view["ignoredFailures"] == {key(CHILDREN, bad): "PermanentError: planned failure"}
    children = await node_bullmq.run("inspect.cjs", redis_url, redis_prefix, CHILDREN, a)
    assert children["jobs"][a]["logs"]["logs"] == ["portside ran node-a"]
    assert children["jobs"][a]["parentKey"] == key(PARENTS, root_id)
