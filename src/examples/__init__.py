"""Example domains built on portside, outside its core: no core module imports them.

- ``portside.examples.ingestion``: daily ingestion and aggregation, three dataset syncs.
- ``portside.examples.plans``: the plans' own queues (phase 1 tasks, weather ingestion and
  alert fan-out with cached preferences, color extraction in a process pool, moderation,
  analytics ingest and aggregate).
- ``portside.examples.agents``: agent runs, their outbox event streams and the orchestrator.
- ``portside.examples.migrations``: their tables, a migration source beside portside's.
- ``portside.examples.dev``: all of them as the application ``portside dev`` runs.
"""
