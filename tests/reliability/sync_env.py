"""A real adapter driven from a synchronous test, so Hypothesis settings can follow the scale."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings

from portside.ports import ValidationError
from tests.reliability.scale import Scale

__all__ = ["Loop", "examples"]

T = TypeVar("T")


@dataclass
class Loop:
    """One event loop for the whole test: adapters keep their connections across examples."""

    runner: asyncio.Runner

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.runner.run(coroutine)

    def run_or_refusal(self, coroutine: Coroutine[Any, Any, T]) -> T | ValidationError:
        """Run ``coroutine`` whose input may be refused: its result, or the refusal."""
        try:
            return self.runner.run(coroutine)
        except ValidationError as refusal:
            return refusal


def examples(scale: Scale, factor: float = 1.0) -> settings:
    """Hypothesis settings for this scale: modest in CI, many more at full scale."""
    return settings(
        max_examples=max(5, int(scale.examples * factor)),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.function_scoped_fixture,
        ],
    )
