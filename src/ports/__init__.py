"""Contracts: the queue and outbox ports, their value types and errors."""

from __future__ import annotations

from portside.ports.classification import Classifier, default_classify, describe_error
from portside.ports.errors import (
    BackendUnavailableError,
    ConfigurationError,
    InfraNotSetError,
    JobTimeoutError,
    PermanentError,
    PortsideError,
    TransientError,
    ValidationError,
)
from portside.ports.outbox import OutboxPort, Transaction
from portside.ports.outbox_types import OutboxErrorCallback, OutboxEvent, OutboxHandler
from portside.ports.queue import EventStream, Job, JobHandler, QueuePort, WorkerHandle
from portside.ports.queue_types import (
    Backoff,
    FailureKind,
    JobInfo,
    JobOptions,
    JobOutcome,
    JobRef,
    JobState,
    NewJob,
    QueueCounts,
    QueueEvent,
    QueueEventKind,
    RateLimit,
    Retention,
    Schedule,
    WorkerStatus,
    default_attempts,
)

__all__ = [
    "BackendUnavailableError",
    "Backoff",
    "Classifier",
    "ConfigurationError",
    "EventStream",
    "FailureKind",
    "InfraNotSetError",
    "Job",
    "JobHandler",
    "JobInfo",
    "JobOptions",
    "JobOutcome",
    "JobRef",
    "JobState",
    "JobTimeoutError",
    "NewJob",
    "OutboxErrorCallback",
    "OutboxEvent",
    "OutboxHandler",
    "OutboxPort",
    "PermanentError",
    "PortsideError",
    "QueueCounts",
    "QueueEvent",
    "QueueEventKind",
    "QueuePort",
    "RateLimit",
    "Retention",
    "Schedule",
    "Transaction",
    "TransientError",
    "ValidationError",
    "WorkerHandle",
    "WorkerStatus",
    "default_attempts",
    "default_classify",
    "describe_error",
]
