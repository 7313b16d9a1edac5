"""Telling a lost Postgres connection from a failed statement (O5; issue 10)."""

from __future__ import annotations

import asyncpg
import asyncpg.exceptions
import pytest

from portside.adapters.postgres.errors import backend_errors, connection_gone, connection_lost
from portside.ports import BackendUnavailableError, TransientError

LOST = [
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
    asyncpg.exceptions.InternalClientError('protocol is in the "failed" state'),
    asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already"),
    asyncpg.InterfaceError("cannot perform operation: connection is closed"),
    ConnectionResetError(104, "Connection reset by peer"),
    ConnectionRefusedError(111, "Connect call failed"),
]

NOT_LOST = [
    asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
    asyncpg.exceptions.DivisionByZeroError("division by zero"),
    asyncpg.exceptions.UndefinedTableError('relation "nope" does not exist'),
    asyncpg.exceptions.QueryCanceledError("canceling statement due to statement timeout"),
    asyncpg.exceptions.DataError("invalid input for query argument $1"),
    asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
    TimeoutError(),
    ValueError("not a database error"),
]


@pytest.mark.parametrize("error", LOST, ids=lambda error: type(error).__name__)
def test_connection_loss_is_recognised(error: Exception) -> None:
    assert connection_lost(error)


@pytest.mark.parametrize("error", NOT_LOST, ids=lambda error: type(error).__name__)
def test_statement_errors_are_not_connection_loss(error: Exception) -> None:
    assert not connection_lost(error)


def test_a_timeout_while_connecting_is_connection_loss() -> None:
    assert connection_lost(TimeoutError(), connecting=True)


class _Closed:
    def is_closed(self) -> bool:
        return True


class _Detached:
    """Like an asyncpg pool proxy whose connection the pool took back after it died."""

    def is_closed(self) -> bool:
        raise asyncpg.InterfaceError(
            "cannot call Connection.is_closed(): connection has been released back to the pool"
        )


class _Open:
    def is_closed(self) -> bool:
        return False


def test_an_interface_error_counts_as_loss_only_on_a_connection_that_is_gone() -> None:
    released = asyncpg.InterfaceError(
        "cannot call Connection.fetchrow(): connection has been released back to the pool"
    )
    assert not connection_lost(released)
    assert not connection_lost(released, _Open())
    assert connection_lost(released, _Closed())
    assert connection_lost(released, _Detached())
    assert (connection_gone(_Detached()), connection_gone(_Open()), connection_gone(object())) == (
        True,
        False,
        False,
    )


def test_backend_errors_maps_loss_keeping_the_original_as_cause() -> None:
    """Issue 10: a lost connection surfaces as a transient BackendUnavailableError with a fix,
    and the asyncpg error stays reachable as __cause__."""
    original = asyncpg.exceptions.InternalClientError('protocol is in the "failed" state')
    with pytest.raises(BackendUnavailableError) as raised, backend_errors("outbox append"):
        raise original
    error = raised.value
    assert isinstance(error, TransientError)
    assert error.__cause__ is original
    assert "outbox append" in str(error)
    assert "InternalClientError" in str(error)
    assert error.fix is not None
    assert "retry" in error.fix


@pytest.mark.parametrize("error", NOT_LOST, ids=lambda error: type(error).__name__)
def test_backend_errors_passes_statement_errors_through(error: Exception) -> None:
    with pytest.raises(type(error)) as raised, backend_errors("outbox append"):
        raise error
    assert raised.value is error


def test_backend_errors_leaves_an_already_mapped_error_alone() -> None:
    mapped = BackendUnavailableError("already mapped", fix="nothing")
    with pytest.raises(BackendUnavailableError) as raised, backend_errors("outbox append"):
        raise mapped
    assert raised.value is mapped
