"""Example jobs (A7): ingestion, aggregation and dataset syncs on a deterministic fake source.

``portside worker --app portside.app.examples:registry`` runs them on Postgres; unit tests
build their own with ``build_registry(store=MemoryExampleStore())``.
"""

from __future__ import annotations

from portside.app.examples.jobs import ExampleJobs, build_registry
from portside.app.examples.memory_store import MemoryExampleStore
from portside.app.examples.payloads import AggregatePayload, IngestPayload, SyncPayload
from portside.app.examples.sources import (
    FakeSourceClient,
    SourceAuthError,
    SourceClient,
    SourceUnavailableError,
)
from portside.app.examples.store import ExampleStore, SqlExampleStore

__all__ = [
    "AggregatePayload",
    "ExampleJobs",
    "ExampleStore",
    "FakeSourceClient",
    "IngestPayload",
    "MemoryExampleStore",
    "SourceAuthError",
    "SourceClient",
    "SourceUnavailableError",
    "SqlExampleStore",
    "SyncPayload",
    "build_registry",
    "registry",
]

registry = build_registry()
