"""S1: ``portside worker`` itself on a Redis Cluster URL (not only the adapter): jobs run, each
with its run-history row, under a hash-tagged prefix."""

from __future__ import annotations

import textwrap
from pathlib import Path

from portside.adapters.bullmq import BullMQQueue
from portside.ports import HistoryPort
from portside.servers.cluster import LocalCluster
from portside.testing import wait_for
from tests.integration.app.worker_support import Worker, worker_env

QUEUE = "cluster:echo"
PREFIX = "{bull}"
JOBS = 30
APP = textwrap.dedent(
    '''
    """One job that returns its input."""
    from pydantic import BaseModel

    from portside.app import JobDefinition, Registry


    class Echo(BaseModel):
        n: int


    async def echo(payload: Echo, ctx) -> dict[str, int]:
        return {"n": payload.n}


    registry = Registry([JobDefinition(name="echo", queue="cluster:echo", payload=Echo,
                                       handler=echo)])
    '''
)


async def test_s1_portside_worker_runs_jobs_from_a_cluster_url(
    tmp_path: Path, plain_cluster: LocalCluster, postgres_dsn: str, history_adapter: HistoryPort
) -> None:
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in plain_cluster.masters)
    (tmp_path / "echo_app.py").write_text(APP)
    env = worker_env(url, PREFIX, postgres_dsn, "echo_app:registry", app_dir=tmp_path)
    worker = await Worker.start(env, tmp_path)
    queue = BullMQQueue(url, prefix=PREFIX)
    try:
        await worker.ready()
        refs = [await queue.enqueue(QUEUE, "echo", {"n": n}) for n in range(JOBS)]

        async def all_completed() -> bool:
            return (await queue.counts(QUEUE)).completed == JOBS

        await wait_for(all_completed, timeout=30, message=f"{JOBS} jobs completed on the cluster")
        results = [await queue.get_job(QUEUE, ref.id) for ref in refs]
        assert [info.result for info in results if info is not None] == [
            {"n": n} for n in range(JOBS)
        ]
        runs = await history_adapter.list_runs(queue=QUEUE, limit=JOBS + 10)
        assert sorted((run.job_id, run.status) for run in runs) == sorted(
            (ref.id, "completed") for ref in refs
        )
        assert await worker.stop() == 0
    finally:
        await queue.close()
        if worker.process.returncode is None:
            worker.process.kill()
            await worker.process.wait()
