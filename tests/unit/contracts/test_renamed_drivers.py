"""The fakes' contract drivers renamed to InMemory* keep their old names for one release."""

from __future__ import annotations

import pytest

import portside.testing.contracts as contracts

RENAMED = [
    ("MemoryOutboxDriver", "InMemoryOutboxDriver"),
    ("MemoryQueueDriver", "InMemoryQueueDriver"),
]


@pytest.mark.parametrize(("old", "new"), RENAMED)
def test_old_driver_name_resolves_to_the_new_class_with_a_deprecation_warning(
    old: str, new: str
) -> None:
    message = f"{old} is deprecated, use {new}; the alias goes in portside 0.3"
    with pytest.deprecated_call(match=message):
        value = getattr(contracts, old)
    assert value is getattr(contracts, new)
    assert old not in contracts.__all__
    assert new in contracts.__all__


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'MemoryCacheDriver'"):
        _ = contracts.MemoryCacheDriver  # type: ignore[attr-defined]
