"""Example jobs (A7): ingestion, aggregation and dataset syncs on a deterministic fake source.

``portside worker --app portside.examples.ingestion:registry`` runs them on Postgres; unit tests
build their own with ``build_registry(store=InMemoryExampleStore())``.
"""

from __future__ import annotations

from portside.examples.ingestion.jobs import ExampleJobs, build_registry
from portside.examples.ingestion.memory_store import InMemoryExampleStore
from portside.examples.ingestion.payloads import AggregatePayload, IngestPayload, SyncPayload
from portside.examples.ingestion.sources import (
    FakeSourceClient,
    SourceAuthError,
    SourceClient,
    SourceUnavailableError,
)
from portside.examples.ingestion.store import ExampleStore, SqlExampleStore

__all__ = [
    "AggregatePayload",
    "ExampleJobs",
    "ExampleStore",
    "FakeSourceClient",
    "InMemoryExampleStore",
    "IngestPayload",
    "SourceAuthError",
    "SourceClient",
    "SourceUnavailableError",
    "SqlExampleStore",
    "SyncPayload",
    "build_registry",
    "registry",
]

registry = build_registry()
