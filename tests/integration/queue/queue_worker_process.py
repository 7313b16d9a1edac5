"""A portside worker in its own process, for crash and shutdown tests (Q10).

    python queue_worker_process.py <redis_url> <prefix> <queue> <mode> <tuning-json>

Prints ``ready`` once fetching, ``started <job id>`` when a job begins and ``done <job id>``
when it ends. Modes: ``hang`` (jobs never finish: kill the process), ``work`` (a job takes
``work_seconds``). SIGTERM closes the adapter (in-flight jobs finish within the grace) and
exits 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from typing import Any

from portside.adapters.bullmq import BullMQQueue
from portside.ports import Job


async def main() -> int:
    url, prefix, queue, mode, raw = sys.argv[1:6]
    tuning: dict[str, Any] = json.loads(raw)
    work_seconds = float(tuning.pop("work_seconds", 1.0))
    adapter = BullMQQueue(url, prefix=prefix, **tuning)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    async def handler(job: Job) -> Any:
        print(f"started {job.id}", flush=True)
        if mode == "hang":
            await asyncio.Event().wait()
        await asyncio.sleep(work_seconds)  # the job's own work, not a wait for a condition
        print(f"done {job.id}", flush=True)
        return {"pid": "child"}

    worker = adapter.consume(queue, handler)
    await worker.start()
    print("ready", flush=True)
    await stop.wait()
    await adapter.close()
    print("closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
