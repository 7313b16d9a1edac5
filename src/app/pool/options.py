"""`ProcessPool`: a job definition's request to run its handler in child processes (Q14)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from portside.ports import ValidationError

__all__ = ["MIN_MEMORY_LIMIT_MB", "ProcessPool", "import_path"]

MIN_MEMORY_LIMIT_MB = 256
"""The smallest ``memory_limit_mb``: a child needs about this much address space to import
Python, pydantic and the handler's module at all."""


@dataclass(frozen=True)
class ProcessPool:
    """Run a job's handler in a pool of child processes.

    Attributes:
        size: Children at most, so jobs of this definition running at once in one worker
            process; more wait for a free child (the wait counts towards the timeout).
        memory_limit_mb: Address space a child may use (``RLIMIT_AS``); a handler going over it
            fails its attempt as transient and the child is replaced. None for no limit.
    """

    size: int = 2
    memory_limit_mb: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValidationError(
                f"ProcessPool.size is {self.size!r}",
                fix="give a whole number of child processes >= 1",
                field="executor.size",
            )
        limit = self.memory_limit_mb
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < MIN_MEMORY_LIMIT_MB
        ):
            raise ValidationError(
                f"ProcessPool.memory_limit_mb is {limit!r}",
                fix=f"give megabytes >= {MIN_MEMORY_LIMIT_MB}, or None for no limit",
                field="executor.memory_limit_mb",
            )


def import_path(target: Callable[..., Any] | type[Any], what: str) -> str:
    """``module:qualname`` of a module-level function or class, for a child to import it.

    Raises:
        ValidationError: ``target`` is defined inside a function, in ``__main__``, or is not
            a plain function or class (a bound method, a lambda, a ``functools.partial``).
    """
    module = getattr(target, "__module__", None)
    qualname = getattr(target, "__qualname__", None)
    plain = inspect.isfunction(target) or inspect.isclass(target)
    if (
        not plain
        or not module
        or not qualname
        or module == "__main__"
        or "<" in qualname
        or "." in qualname
    ):
        raise ValidationError(
            f"{what} {target!r} cannot be imported by a child process",
            fix=f"define the {what} at the top level of an importable module (not in __main__, "
            "not inside a function, not a method or lambda)",
            field=what,
        )
    return f"{module}:{qualname}"
