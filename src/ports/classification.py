"""Default failure classification: which handler exceptions are worth a retry (Q4)."""

from __future__ import annotations

from collections.abc import Callable

import pydantic

from portside.ports.errors import PermanentError, TransientError, ValidationError
from portside.ports.queue_types import FailureKind

__all__ = ["Classifier", "default_classify", "describe_error"]

Classifier = Callable[[BaseException], FailureKind]


def default_classify(error: BaseException) -> FailureKind:
    """``PermanentError`` and validation errors (bad input) are permanent; the rest transient.

    A validation error is pydantic's (a payload that fails its model) or portside's own; no
    retry can make bad input valid.
    """
    if isinstance(error, TransientError):
        return "transient"
    if isinstance(error, (PermanentError, ValidationError, pydantic.ValidationError)):
        return "permanent"
    return "transient"


def describe_error(error: BaseException) -> str:
    """``ClassName: message`` — the failure reason stored on a job."""
    text = str(error)
    name = type(error).__name__
    return f"{name}: {text}" if text else name
