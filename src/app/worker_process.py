"""Run a worker runtime until a stop signal: shared by ``portside worker`` and ``portside dev``."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from datetime import timedelta

from portside.app.logs import event
from portside.app.queue_server import check_queue_server
from portside.app.registry import Registry
from portside.app.runtime import DEFAULT_LOST_AFTER, DEFAULT_OUTBOX_RETENTION, WorkerRuntime
from portside.infra import Infra
from portside.ports import DEFAULT_RUN_RETENTION, PortsideError

__all__ = ["UnreleasedJobsError", "install_stop_signals", "run_worker"]

_log = logging.getLogger("portside.worker")


class UnreleasedJobsError(PortsideError):
    """A consumer did not close in time, so some in-flight jobs were not released."""

    def __init__(self, count: int) -> None:
        super().__init__(
            f"the worker stopped with {count} in-flight job(s) not released to the queue "
            "(a consumer did not close in time; see the worker.close_timeout log event)",
            fix="they are requeued once their lock expires (the stalled check); "
            "nothing to do unless this repeats",
        )
        self.count = count


def install_stop_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop`` (the first one; later ones are logged and ignored)."""
    loop = asyncio.get_running_loop()

    def received(sig: signal.Signals) -> None:
        if stop.is_set():
            event(_log, "worker.signal_ignored", signal=sig.name, reason="already stopping")
            return
        event(_log, "worker.signal", signal=sig.name)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, received, sig)


async def run_worker(
    registry: Registry,
    infra: Infra,
    stop: asyncio.Event,
    *,
    queues: Sequence[str] | None = None,
    grace: float = 30.0,
    metrics_port: int | None = None,
    started_at: float | None = None,
    run_retention: timedelta | None = DEFAULT_RUN_RETENTION,
    outbox_retention: timedelta | None = DEFAULT_OUTBOX_RETENTION,
    lost_after: float | None = DEFAULT_LOST_AFTER,
) -> WorkerRuntime:
    """Start consumers, serve until ``stop`` is set, then stop gracefully within ``grace``.

    Args:
        registry: The jobs.
        infra: Adapters (with history); the caller closes it.
        stop: Set it (or send SIGTERM after ``install_stop_signals``) to shut down.
        queues: Only these queues.
        grace: Seconds in-flight jobs get to finish after ``stop``.
        metrics_port: Serve Prometheus metrics, ``/livez`` and ``/readyz`` on this port
            (0.0.0.0) while running (0: a free port, logged as ``worker.metrics``).
        started_at: ``time.perf_counter()`` at process start, for the start-up measurement.
        run_retention: How long finished runs are kept (None: forever).
        outbox_retention: How long published outbox events are kept (None: forever).
        lost_after: Seconds after which a running row nobody vouched for is ``lost``.

    Returns:
        The stopped runtime (its counters and ``startup_seconds`` stay readable).

    Raises:
        UnreleasedJobsError: A consumer's close did not finish within ``grace`` plus
            ``STOP_MARGIN`` while it still held jobs (``portside worker`` then exits 1).
    """
    runtime = WorkerRuntime(
        registry,
        infra,
        queues=queues,
        grace=grace,
        started_at=started_at,
        run_retention=run_retention,
        outbox_retention=outbox_retention,
        lost_after=lost_after,
    )
    server = None
    if metrics_port is not None:
        from portside.app.probe_server import ProbeServer
        from portside.app.readiness import Readiness

        readiness = Readiness(infra.queue, infra.history, workers=runtime.status)
        server = ProbeServer(
            runtime.metrics.registry, readiness, asyncio.get_running_loop(), metrics_port
        )
        server.start()
        event(_log, "worker.metrics", port=server.port, paths=["/metrics", "/livez", "/readyz"])
    try:
        await check_queue_server(infra.queue)  # E2: warn when the queue Redis would evict
        await runtime.start()
        await stop.wait()
    finally:
        await runtime.stop()
        if server is not None:
            server.stop()
    if runtime.unreleased:
        raise UnreleasedJobsError(runtime.unreleased)
    return runtime
