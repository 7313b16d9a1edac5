"""The HTTP API: jobs, agent runs with SSE replay, health, metrics, admin and webhooks (A6)."""
