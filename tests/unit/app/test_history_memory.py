"""A3, A4: the in-memory history store passes the history contract."""

from __future__ import annotations

import pytest

from portside.adapters.memory.history import InMemoryHistory
from portside.testing.contracts import HistoryContract


@pytest.fixture
def history() -> InMemoryHistory:
    return InMemoryHistory()


class TestInMemoryHistory(HistoryContract):
    """Every HistoryPort behaviour on InMemoryHistory."""
