"""The ``OutboxDriver`` of the Postgres outbox: the outbox contract suite on a real database."""

from __future__ import annotations

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxPort
from portside.testing.contracts.drivers import OutboxDriver

__all__ = ["PostgresOutboxDriver"]


class PostgresOutboxDriver:
    """Drives a ``PostgresOutbox`` under test; extra instances share its database.

    Args:
        outbox: The adapter under test (its owner closes it).
        dsn: The test's database, for ``another_outbox``.
    """

    def __init__(self, outbox: PostgresOutbox, dsn: str) -> None:
        self._outbox = outbox
        self._dsn = dsn
        self._others: list[PostgresOutbox] = []

    @property
    def outbox(self) -> OutboxPort:
        """The adapter under test."""
        return self._outbox

    async def another_outbox(self) -> OutboxPort:
        """A second ``PostgresOutbox`` on the same database (a second publisher, O6).

        It is closed by ``aclose``.
        """
        other = PostgresOutbox(self._dsn, **self._outbox.settings.model_dump())
        self._others.append(other)
        return other

    async def aclose(self) -> None:
        """Close every outbox ``another_outbox`` created (not the one under test)."""
        others, self._others = self._others, []
        errors: list[BaseException] = []
        for other in others:
            try:
                await other.close()
            except Exception as exc:  # close the rest, then raise the first failure
                errors.append(exc)
        if errors:
            raise errors[0]


def _check(outbox: PostgresOutbox) -> OutboxDriver:
    return PostgresOutboxDriver(outbox, "postgresql://")
