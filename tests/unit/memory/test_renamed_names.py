"""The fakes' classes renamed to InMemory* keep their old names for one release, with a warning."""

from __future__ import annotations

import pytest

import portside.adapters.memory as memory

RENAMED = [
    ("MemoryJob", "InMemoryJob"),
    ("MemoryTransaction", "InMemoryTransaction"),
    ("MemoryWorker", "InMemoryWorker"),
    ("OutboxStore", "InMemoryOutboxStore"),
]


@pytest.mark.parametrize(("old", "new"), RENAMED)
def test_old_name_resolves_to_the_new_class_with_a_deprecation_warning(old: str, new: str) -> None:
    message = f"{old} is deprecated, use {new}; the alias goes in portside 0.3"
    with pytest.deprecated_call(match=message):
        value = getattr(memory, old)
    assert value is getattr(memory, new)
    assert old not in memory.__all__
    assert new in memory.__all__


def test_from_import_of_an_old_name_warns_too() -> None:
    with pytest.deprecated_call(match="MemoryWorker is deprecated, use InMemoryWorker"):
        # The old names are hidden from type checkers on purpose (a misspelt import fails mypy).
        from portside.adapters.memory import MemoryWorker  # type: ignore[attr-defined]
    assert MemoryWorker is memory.InMemoryWorker


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'MemoryQueue'"):
        _ = memory.MemoryQueue  # type: ignore[attr-defined]
