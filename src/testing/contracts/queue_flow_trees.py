"""Queue contract, part 5: flows, trees of parent and child jobs across queues (Q7)."""

from __future__ import annotations

from typing import Any

import pytest

from portside.ports import (
    FlowJob,
    FlowTree,
    Job,
    JobOptions,
    JobParent,
    NewJob,
    PermanentError,
)
from portside.testing.contracts.drivers import QueueDriver
from portside.testing.contracts.support import expect_invalid

__all__ = ["FlowTreeContract"]


class _Recorder:
    """Handlers that record what ran; children return their data's ``n`` doubled, a parent
    returns its children's values; a job whose data says ``fail`` fails for good."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, str]] = []

    async def __call__(self, job: Job) -> Any:
        self.ran.append((job.queue, job.name))
        if job.data.get("fail"):
            raise PermanentError(f"{job.name} cannot work")
        if job.data.get("parent"):
            return {"children": await job.children_values()}
        return job.data.get("n", 0) * 2


def _tree(tree: FlowTree) -> tuple[str, str, list[Any]]:
    """(name, state, children) of a tree, for comparing shapes."""
    return (tree.job.name, tree.job.state, [_tree(child) for child in tree.children])


class FlowTreeContract:
    """Q7 for flows. Needs a ``queue_driver`` fixture yielding a ``QueueDriver``."""

    pytestmark = pytest.mark.asyncio

    async def test_q7_parent_runs_after_its_children_and_reads_their_results(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a flow across two queues is added at once; the parent waits in
        ``waiting-children`` until every child completed, then runs and reads their results
        by ``"<queue>:<job id>"``; each child names its parent."""
        queue = queue_driver.queue
        flow = FlowJob(
            queue="reports",
            name="report",
            data={"parent": True},
            children=(
                FlowJob(queue="pages", name="page-1", data={"n": 1}),
                FlowJob(queue="pages", name="page-2", data={"n": 2}),
                FlowJob(queue="reports", name="summary", data={"n": 5}),
            ),
        )
        ref = await queue.add_flow(flow)
        assert (ref.job.queue, ref.job.name) == ("reports", "report")
        assert [(c.job.queue, c.job.name) for c in ref.children] == [
            ("pages", "page-1"),
            ("pages", "page-2"),
            ("reports", "summary"),
        ]
        parent = await queue.get_job("reports", ref.job.id)
        assert parent is not None
        assert (parent.state, parent.parent) == ("waiting-children", None)
        assert (await queue.counts("reports")).waiting_children == 1
        child = await queue.get_job("pages", ref.children[0].job.id)
        assert child is not None
        assert child.parent == JobParent(queue="reports", id=ref.job.id)
        handler = _Recorder()
        queue.consume("pages", handler)
        queue.consume("reports", handler)
        assert [o.name for o in await queue_driver.drain("pages")] == ["page-1", "page-2"]
        still = await queue.get_job("reports", ref.job.id)
        assert still is not None
        assert still.state == "waiting-children"
        outcomes = await queue_driver.drain("reports")
        assert [(o.name, o.status) for o in outcomes] == [
            ("summary", "completed"),
            ("report", "completed"),
        ]
        ids = [c.job.id for c in ref.children]
        assert outcomes[1].result == {
            "children": {f"pages:{ids[0]}": 2, f"pages:{ids[1]}": 4, f"reports:{ids[2]}": 10}
        }
        counts = await queue.counts("reports")
        assert (counts.waiting_children, counts.completed) == (0, 2)

    async def test_q7_a_three_level_flow_completes_bottom_up(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a grandchild runs first, then its parent, then the root; ``get_flow`` reads
        the tree back, ``depth`` levels deep and ``max_children`` per job."""
        queue = queue_driver.queue
        flow = FlowJob(
            queue="tree",
            name="root",
            data={"parent": True},
            children=(
                FlowJob(
                    queue="tree",
                    name="middle",
                    data={"parent": True},
                    children=(FlowJob(queue="leaves", name="leaf", data={"n": 3}),),
                ),
                FlowJob(queue="leaves", name="other", data={"n": 1}),
            ),
        )
        ref = await queue.add_flow(flow)
        middle, leaf = ref.children[0].job, ref.children[0].children[0].job
        before = await queue.get_flow("tree", ref.job.id)
        assert before is not None
        assert _tree(before) == (
            "root",
            "waiting-children",
            [("other", "waiting", []), ("middle", "waiting-children", [("leaf", "waiting", [])])],
        )
        handler = _Recorder()
        queue.consume("tree", handler)
        queue.consume("leaves", handler)
        await queue_driver.drain("leaves")
        await queue_driver.drain("tree")
        assert handler.ran == [
            ("leaves", "leaf"),
            ("leaves", "other"),
            ("tree", "middle"),
            ("tree", "root"),
        ]
        root = await queue.get_job("tree", ref.job.id)
        assert root is not None
        assert root.result == {
            "children": {
                f"tree:{middle.id}": {"children": {f"leaves:{leaf.id}": 6}},
                f"leaves:{ref.children[1].job.id}": 2,
            }
        }
        after = await queue.get_flow("tree", ref.job.id)
        assert after is not None
        assert _tree(after) == (
            "root",
            "completed",
            [("other", "completed", []), ("middle", "completed", [("leaf", "completed", [])])],
        )
        shallow = await queue.get_flow("tree", ref.job.id, depth=2, max_children=1)
        assert shallow is not None
        assert _tree(shallow) == ("root", "completed", [("other", "completed", [])])
        assert await queue.get_flow("tree", "no-such-job") is None

    async def test_q7_a_failed_child_with_fail_parent_fails_the_parent_unrun(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: ``on_failure="fail_parent"`` (BullMQ ``failParentOnFailure``): the parent fails
        for good at once, without its handler, naming the child."""
        queue = queue_driver.queue
        ref = await queue.add_flow(
            FlowJob(
                queue="orders",
                name="ship",
                data={"parent": True},
                children=(
                    FlowJob(
                        queue="payments",
                        name="charge",
                        data={"fail": True},
                        options=JobOptions(attempts=1),
                        on_failure="fail_parent",
                    ),
                    FlowJob(queue="payments", name="reserve", data={"n": 1}),
                ),
            )
        )
        handler = _Recorder()
        queue.consume("payments", handler)
        queue.consume("orders", handler)
        await queue_driver.drain("payments")
        outcomes = await queue_driver.drain("orders")
        assert [(o.name, o.status, o.failure_kind) for o in outcomes] == [
            ("ship", "failed", "permanent")
        ]
        assert ("orders", "ship") not in handler.ran
        parent = await queue.get_job("orders", ref.job.id)
        assert parent is not None
        assert parent.state == "failed"
        assert f"payments:{ref.children[0].job.id}" in (parent.failed_reason or "")

    async def test_q7_ignore_and_remove_let_the_parent_run_without_the_failed_child(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: ``ignore`` and ``remove`` (BullMQ ``ignoreDependencyOnFailure`` and
        ``removeDependencyOnFailure``): the parent runs with the other children's results;
        an ignored child stays in the flow, a removed one leaves it."""
        queue = queue_driver.queue
        ref = await queue.add_flow(
            FlowJob(
                queue="digest",
                name="send",
                data={"parent": True},
                children=(
                    FlowJob(queue="feeds", name="a", data={"n": 1}),
                    FlowJob(
                        queue="feeds",
                        name="b",
                        data={"fail": True},
                        options=JobOptions(attempts=1),
                        on_failure="ignore",
                    ),
                    FlowJob(
                        queue="feeds",
                        name="c",
                        data={"fail": True},
                        options=JobOptions(attempts=1),
                        on_failure="remove",
                    ),
                ),
            )
        )
        queue.consume("feeds", _Recorder())
        queue.consume("digest", _Recorder())
        await queue_driver.drain("feeds")
        outcomes = await queue_driver.drain("digest")
        first = ref.children[0].job.id
        assert [(o.name, o.status, o.result) for o in outcomes] == [
            ("send", "completed", {"children": {f"feeds:{first}": 2}})
        ]
        tree = await queue.get_flow("digest", ref.job.id)
        assert tree is not None
        assert sorted((c.job.name, c.job.state) for c in tree.children) == [
            ("a", "completed"),
            ("b", "failed"),
        ]

    async def test_q7_by_default_a_failed_child_holds_the_parent_until_retried(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: with the default ``on_failure="wait"`` the parent keeps waiting for a failed
        child; once ``retry_failed`` runs the child to completion, the parent runs."""
        queue = queue_driver.queue
        broken = {"yes": True}

        async def child(job: Job) -> Any:
            if broken["yes"]:
                raise PermanentError("source down")
            return "fetched"

        ref = await queue.add_flow(
            FlowJob(
                queue="imports",
                name="merge",
                data={"parent": True},
                children=(FlowJob(queue="fetches", name="fetch"),),
            )
        )
        queue.consume("fetches", child)
        queue.consume("imports", _Recorder())
        assert [o.status for o in await queue_driver.drain("fetches")] == ["failed"]
        assert await queue_driver.drain("imports") == []
        parent = await queue.get_job("imports", ref.job.id)
        assert parent is not None
        assert parent.state == "waiting-children"
        broken["yes"] = False
        assert await queue.retry_failed("fetches", job_id=ref.children[0].job.id) == 1
        assert [o.status for o in await queue_driver.drain("fetches")] == ["completed"]
        outcomes = await queue_driver.drain("imports")
        assert [(o.name, o.result) for o in outcomes] == [
            ("merge", {"children": {f"fetches:{ref.children[0].job.id}": "fetched"}})
        ]

    async def test_q7_a_parents_delay_and_priority_apply_once_its_children_completed(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a parent's delay starts when its last child completes; children keep their
        priorities (the lower number runs first)."""
        queue = queue_driver.queue
        ref = await queue.add_flow(
            FlowJob(
                queue="batch",
                name="close",
                data={"parent": True},
                options=JobOptions(delay=30, priority=3),
                children=(
                    FlowJob(queue="steps", name="late", options=JobOptions(priority=9)),
                    FlowJob(queue="steps", name="early", options=JobOptions(priority=1)),
                ),
            )
        )
        handler = _Recorder()
        queue.consume("steps", handler)
        queue.consume("batch", handler)
        assert [o.name for o in await queue_driver.drain("steps")] == ["early", "late"]
        parent = await queue.get_job("batch", ref.job.id)
        assert parent is not None
        assert (parent.state, parent.priority) == ("delayed", 3)
        assert await queue_driver.drain("batch") == []
        await queue_driver.advance(30.5)
        assert [o.name for o in await queue_driver.drain("batch")] == ["close"]

    async def test_q7_a_parent_freed_by_its_children_runs_next_on_its_queue(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: once its last child completed, a parent (without priority) goes first in line
        on its queue, before jobs that were already waiting there (BullMQ's
        ``moveParentToWait``)."""
        queue = queue_driver.queue
        ref = await queue.add_flow(
            FlowJob(queue="line", name="parent", children=(FlowJob(queue="aside", name="kid"),))
        )
        await queue.enqueue_bulk("line", [NewJob(name=f"queued-{i}", data={}) for i in range(2)])
        queue.consume("aside", _Recorder())
        queue.consume("line", _Recorder())
        await queue_driver.drain("aside")
        waiting = await queue.list_jobs("line", "waiting", ascending=True)
        assert [job.name for job in waiting.jobs] == ["parent", "queued-0", "queued-1"]
        outcomes = await queue_driver.drain("line")
        assert [o.name for o in outcomes] == ["parent", "queued-0", "queued-1"]
        assert outcomes[0].job_id == ref.job.id

    async def test_q7_adding_a_flow_with_job_ids_twice_adds_it_once(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: with caller-chosen ids, adding the same flow again adds nothing new and the
        parent still waits for its one child."""
        queue = queue_driver.queue
        flow = FlowJob(
            queue="nightly",
            name="rollup",
            data={"parent": True},
            options=JobOptions(job_id="rollup-1"),
            children=(FlowJob(queue="nightly", name="part", options=JobOptions(job_id="part-1")),),
        )
        first = await queue.add_flow(flow)
        second = await queue.add_flow(flow)
        assert (first.job.id, first.children[0].job.id) == ("rollup-1", "part-1")
        assert second == first
        counts = await queue.counts("nightly")
        assert (counts.waiting, counts.waiting_children) == (1, 1)
        queue.consume("nightly", _Recorder())
        outcomes = await queue_driver.drain("nightly")
        assert [(o.job_id, o.status) for o in outcomes] == [
            ("part-1", "completed"),
            ("rollup-1", "completed"),
        ]

    async def test_q2_a_bad_flow_names_the_job_and_adds_nothing(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q2: every job of a flow is checked before any is added; errors name the job's
        place in the flow (``flow.children[0].data.when``)."""
        queue = queue_driver.queue
        good = FlowJob(queue="checked", name="ok")
        with expect_invalid("flow.children[1].data.when"):
            await queue.add_flow(
                FlowJob(
                    queue="checked",
                    name="parent",
                    children=(good, FlowJob(queue="checked", name="bad", data={"when": {1}})),
                )
            )
        with expect_invalid("flow.children[0].queue"):
            await queue.add_flow(
                FlowJob(queue="checked", name="p", children=(FlowJob(queue="no good", name="x"),))
            )
        with expect_invalid("flow.children[0].options.dedupe_key", "parent"):
            await queue.add_flow(
                FlowJob(
                    queue="checked",
                    name="p",
                    children=(
                        FlowJob(queue="checked", name="x", options=JobOptions(dedupe_key="k")),
                    ),
                )
            )
        twice = FlowJob(queue="checked", name="x", options=JobOptions(job_id="same"))
        with expect_invalid("flow.children[1].options.job_id", "twice"):
            await queue.add_flow(FlowJob(queue="checked", name="p", children=(twice, twice)))
        with expect_invalid("flow.on_failure"):
            await queue.add_flow(FlowJob(queue="checked", name="p", on_failure="ignore"))
        with expect_invalid("flow.name"):
            await queue.add_flow({"queue": "checked", "name": ""})  # type: ignore[arg-type]
        counts = await queue.counts("checked")
        assert (counts.depth, counts.waiting_children) == (0, 0)

    async def test_q7_a_job_id_owned_by_another_parent_is_refused_before_anything_is_added(
        self, queue_driver: QueueDriver
    ) -> None:
        """Q7: a child id that already belongs to another parent is refused (BullMQ would
        leave half a flow behind), naming the job; nothing of the new flow is added."""
        queue = queue_driver.queue
        child = FlowJob(queue="shared", name="c", options=JobOptions(job_id="c-1"))
        await queue.add_flow(
            FlowJob(queue="shared", name="p", options=JobOptions(job_id="p-1"), children=(child,))
        )
        with pytest.raises(ValueError, match="c-1") as info:
            await queue.add_flow(
                FlowJob(
                    queue="shared",
                    name="q",
                    options=JobOptions(job_id="p-2"),
                    children=(FlowJob(queue="others", name="o"), child),
                )
            )
        assert getattr(info.value, "field", None) == "flow"
        assert await queue.get_job("shared", "p-2") is None
        assert (await queue.counts("others")).depth == 0
