"""Fixtures of the example unit tests: the job platform's (fake infra, history, a runtime)."""

from __future__ import annotations

from tests.unit.app.conftest import app_infra, clock, fake_queue, history, make_runtime

__all__ = ["app_infra", "clock", "fake_queue", "history", "make_runtime"]
