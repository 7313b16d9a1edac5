"""Old names kept for one release: renamed model fields and renamed module attributes."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any

import pydantic

__all__ = ["REMOVAL", "deprecated_name", "renamed_fields", "renamed_module_names"]

REMOVAL = "portside 0.3"
"""The release in which the old names go."""


def renamed_fields(data: Any, model: type[pydantic.BaseModel], renames: dict[str, str]) -> Any:
    """``data`` with each old field name of ``renames`` moved to its new name, warning once
    per use that the old name goes away (for a ``model_validator(mode="before")``)."""
    if not isinstance(data, dict) or not renames.keys() & data.keys():
        return data
    moved = dict(data)
    for old, new in renames.items():
        if old in moved and new not in moved:
            warnings.warn(
                f"{model.__name__}({old}=...) is deprecated, use {new}=...; "
                f"the old name goes in {REMOVAL}",
                DeprecationWarning,
                stacklevel=6,
            )
            moved[new] = moved.pop(old)
    return moved


def deprecated_name(model: str, old: str, new: str) -> None:
    """Warn that attribute ``old`` of ``model`` is now ``new``."""
    warnings.warn(
        f"{model}.{old} is deprecated, use {model}.{new}; the old name goes in {REMOVAL}",
        DeprecationWarning,
        stacklevel=3,
    )


def renamed_module_names(
    module: str, namespace: Mapping[str, Any], renames: Mapping[str, str]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` serving each old name of ``renames`` as the object its new name
    has in ``namespace`` (the module's ``globals()``), with a DeprecationWarning."""

    def __getattr__(name: str) -> Any:
        new = renames.get(name)
        if new is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{name} is deprecated, use {new}; the alias goes in {REMOVAL}",
            DeprecationWarning,
            stacklevel=2,
        )
        return namespace[new]

    return __getattr__
