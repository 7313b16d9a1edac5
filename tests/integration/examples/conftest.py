"""Fixtures of the example integration tests: the job platform's real adapters."""

from __future__ import annotations

from tests.integration.app.conftest import db, platform_infra

__all__ = ["db", "platform_infra"]
