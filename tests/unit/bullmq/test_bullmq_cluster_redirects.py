"""S1: cluster redirects on a slot-owner connection become reconnects to the named node."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection
from redis.exceptions import AskError, MovedError, ResponseError, TryAgainError

from portside.adapters.bullmq.transport.cluster import (
    SlotMigratingError,
    SlotMovedError,
    SlotOwnerConnection,
    SlotOwnerPool,
    _owner,
)
from portside.adapters.bullmq.transport.errors import is_connection_error


def _replying(
    monkeypatch: pytest.MonkeyPatch, error: ResponseError
) -> tuple[SlotOwnerPool, SlotOwnerConnection]:
    async def read_response(self: Connection, *args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(Connection, "read_response", read_response)
    pool = SlotOwnerPool([("127.0.0.1", 7000)], slot=1234)
    pool.owner = ("127.0.0.1", 7000)
    connection = pool.make_connection()  # type: ignore[no-untyped-call]
    assert isinstance(connection, SlotOwnerConnection)
    return pool, connection


async def test_s1_moved_is_a_connection_error_and_the_next_connect_goes_to_the_new_owner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S1: a `MOVED` reply surfaces as a connection error (so the caller's reconnect and
    retry runs) and the pool's next connection goes to the node it named, unasked."""
    pool, connection = _replying(monkeypatch, MovedError("1234 127.0.0.1:7002"))
    with pytest.raises(SlotMovedError, match=r"127\.0\.0\.1:7002") as caught:
        await connection.read_response()
    assert is_connection_error(caught.value)
    assert await pool.find_owner() == ("127.0.0.1", 7002)


@pytest.mark.parametrize(
    "error", [AskError("1234 127.0.0.1:7002"), TryAgainError("Multiple keys request")]
)
async def test_s1_ask_and_tryagain_during_a_migration_are_retried_as_connection_errors(
    monkeypatch: pytest.MonkeyPatch, error: ResponseError
) -> None:
    """S1: `ASK` and `TRYAGAIN` (the slot is moving) surface as a connection error, so
    the command is sent again after the back-off; the owner stays as it was."""
    pool, connection = _replying(monkeypatch, error)
    with pytest.raises(SlotMigratingError, match="slot 1234 is being migrated") as caught:
        await connection.read_response()
    assert is_connection_error(caught.value)
    assert pool.owner == ("127.0.0.1", 7000)


async def test_s1_other_error_replies_pass_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """S1: an ordinary error reply is not mistaken for a redirect."""
    _pool, connection = _replying(monkeypatch, ResponseError("WRONGTYPE"))
    with pytest.raises(ResponseError, match="WRONGTYPE") as caught:
        await connection.read_response()
    assert not is_connection_error(caught.value)


async def test_s1_moved_to_an_unknown_endpoint_means_the_same_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """S1: `MOVED 1234 :7002` (a node that does not announce its endpoint) names port 7002
    on the host the reply came from."""
    pool, connection = _replying(monkeypatch, MovedError("1234 :7002"))
    connection.host, connection.port = "10.0.0.5", 7000
    with pytest.raises(SlotMovedError, match=r"10\.0\.0\.5:7002"):
        await connection.read_response()
    assert await pool.find_owner() == ("10.0.0.5", 7002)


@pytest.mark.parametrize("unknown", ["", "?", None])
def test_s1_cluster_slots_with_an_unknown_endpoint_name_the_node_asked(unknown: str | None) -> None:
    """S1: a `CLUSTER SLOTS` entry without an endpoint is on the host that answered, in
    both reply shapes redis-py may return."""
    flat = [[0, 5460, [unknown, 7000, "id-a"]], [5461, 16383, ["10.0.0.9", 7001, "id-b"]]]
    assert _owner(flat, 1234, "10.0.0.5") == ("10.0.0.5", 7000)
    assert _owner(flat, 9000, "10.0.0.5") == ("10.0.0.9", 7001)
    parsed = {(0, 5460): {"primary": (unknown, 7000)}}
    assert _owner(parsed, 1234, "10.0.0.5") == ("10.0.0.5", 7000)
