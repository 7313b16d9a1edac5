"""The agent-run domain: runs, their outbox event streams and the orchestrator job (A7)."""
