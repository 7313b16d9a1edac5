"""How big each reliability test runs: scaled down for CI, the issue's counts at full scale."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CI", "FULL", "Scale"]


@dataclass(frozen=True)
class Scale:
    """Counts and deadlines of one scale.

    Attributes:
        name: ``ci`` or ``full``.
        crash_jobs: Jobs enqueued before a worker holding ``crash_in_flight`` is SIGKILLed.
        crash_in_flight: Jobs the killed worker holds (its concurrency).
        redis_fault_jobs: Jobs produced while Redis connections are killed and Redis restarts.
        postgres_fault_events: Events committed while Postgres backends are terminated and the
            server restarts.
        postgres_fault_streams: Streams those events are spread over.
        sigterm_jobs: Jobs queued when a worker under load gets SIGTERM.
        sigterm_released: Jobs let through before the SIGTERM.
        load_jobs: Jobs over ``load_queues`` queues for two worker processes.
        load_queues: Queues of the job load.
        load_events: Outbox events over ``load_streams`` streams.
        load_streams: Streams of the event load.
        soak_jobs: Jobs one ``portside worker`` with default settings runs in the soak test.
        examples: Hypothesis examples per property.
        deadline: Seconds any single wait may take before the test fails.
    """

    name: str
    crash_jobs: int
    crash_in_flight: int
    redis_fault_jobs: int
    postgres_fault_events: int
    postgres_fault_streams: int
    sigterm_jobs: int
    sigterm_released: int
    load_jobs: int
    load_queues: int
    load_events: int
    load_streams: int
    soak_jobs: int
    examples: int
    deadline: float


CI = Scale(
    name="ci",
    crash_jobs=2_000,
    crash_in_flight=50,
    redis_fault_jobs=1_500,
    postgres_fault_events=1_500,
    postgres_fault_streams=50,
    sigterm_jobs=300,
    sigterm_released=100,
    load_jobs=2_000,
    load_queues=4,
    load_events=2_000,
    load_streams=100,
    soak_jobs=3_000,
    examples=25,
    deadline=90.0,
)

FULL = Scale(
    name="full",
    crash_jobs=2_000,
    crash_in_flight=50,
    redis_fault_jobs=20_000,
    postgres_fault_events=20_000,
    postgres_fault_streams=200,
    sigterm_jobs=5_000,
    sigterm_released=2_000,
    load_jobs=100_000,
    load_queues=4,
    load_events=100_000,
    load_streams=1_000,
    soak_jobs=200_000,
    examples=400,
    deadline=900.0,
)
