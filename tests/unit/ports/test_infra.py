"""Infra, set_infra, get_infra and use_infra: clear errors and per-context isolation (H2)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

import portside
from portside import Infra, get_infra, set_infra, use_infra
from portside.adapters.memory import InMemoryOutbox, InMemoryQueue
from portside.infra import _process
from portside.ports import ConfigurationError, InfraNotSetError, ValidationError


@pytest.fixture(autouse=True)
def no_process_infra() -> Iterator[None]:
    """Each test starts with no process-wide Infra and leaves the previous one in place."""
    previous = _process.infra
    set_infra(None)
    try:
        yield
    finally:
        set_infra(previous)


def _infra(name: str = "custom") -> Infra:
    return Infra(queue=InMemoryQueue(), outbox=InMemoryOutbox(), name=name)


def test_get_infra_without_one_names_set_infra() -> None:
    with pytest.raises(InfraNotSetError) as info:
        get_infra()
    message = str(info.value)
    assert message.startswith("no Infra is installed. call portside.set_infra(Infra(")
    assert "use_infra" in message
    assert "fake_infra" in message
    assert isinstance(info.value, ConfigurationError)


def test_set_infra_installs_for_the_process_and_none_uninstalls() -> None:
    infra = _infra()
    set_infra(infra)
    assert get_infra() is infra
    assert portside.get_infra() is infra
    set_infra(None)
    with pytest.raises(InfraNotSetError):
        get_infra()


def test_installing_something_else_is_refused() -> None:
    not_infra: Any = {"queue": None}
    with pytest.raises(ValidationError) as by_set:
        set_infra(not_infra)
    with pytest.raises(ValidationError) as by_use, use_infra(not_infra):
        pass
    for error, call in ((by_set.value, "set_infra"), (by_use.value, "use_infra")):
        assert str(error) == (
            f"{call}() takes an Infra, got dict. build one with Infra(queue=..., outbox=...)"
        )
        assert error.field == "infra"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"queue": "redis://", "outbox": InMemoryOutbox()},
            "Infra.queue is a str, which does not implement QueuePort",
        ),
        ({"queue": InMemoryQueue(), "outbox": None}, "Infra.outbox is a NoneType"),
        (
            {"queue": InMemoryQueue(), "outbox": InMemoryOutbox(), "history": 3},
            "Infra.history is a int, which does not implement HistoryPort",
        ),
        ({"queue": InMemoryQueue(), "outbox": InMemoryQueue()}, "does not implement OutboxPort"),
    ],
)
def test_infra_checks_its_adapters(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        Infra(**kwargs)
    assert message in str(info.value)


def test_missing_optional_adapters_say_how_to_add_them() -> None:
    infra = _infra("unit")
    with pytest.raises(ConfigurationError, match="Infra 'unit' has no history store") as info:
        infra.require_history()
    assert info.value.field == "history"
    with pytest.raises(ConfigurationError, match="Infra 'unit' has no cache"):
        infra.require_cache()


def test_use_infra_wins_over_the_process_infra_and_nests() -> None:
    process, outer, inner = _infra("process"), _infra("outer"), _infra("inner")
    set_infra(process)
    with use_infra(outer):
        assert get_infra() is outer
        with use_infra(inner):
            assert get_infra() is inner
        assert get_infra() is outer
    assert get_infra() is process


async def test_h2_use_infra_is_isolated_between_concurrent_tasks() -> None:
    """H2: two tasks each install their own Infra; neither ever sees the other's."""
    seen: dict[str, list[str]] = {"a": [], "b": []}
    both_inside = asyncio.Barrier(2)

    async def task(label: str) -> None:
        with use_infra(_infra(label)):
            for _ in range(3):
                await both_inside.wait()
                seen[label].append(get_infra().name)
        with pytest.raises(InfraNotSetError):
            get_infra()

    await asyncio.gather(task("a"), task("b"))
    assert seen == {"a": ["a"] * 3, "b": ["b"] * 3}
    with pytest.raises(InfraNotSetError):
        get_infra()


async def test_closing_infra_closes_every_adapter_and_raises_the_first_error() -> None:
    class Boom(Exception):
        pass

    class FailingQueue(InMemoryQueue):
        async def close(self) -> None:
            await super().close()
            raise Boom("queue close failed")

    outbox = InMemoryOutbox()
    infra = Infra(queue=FailingQueue(), outbox=outbox)
    with pytest.raises(Boom):
        await infra.close()
    with pytest.raises(ConfigurationError, match="closed"):
        await outbox.pending()
