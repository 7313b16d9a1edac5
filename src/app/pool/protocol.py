"""The lines a worker and its pool children exchange: one JSON object per line.

The worker writes a task; the child answers with any number of ``progress`` lines, then one
``result`` or ``error`` line. A child reads its next task only after answering the last.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from portside.ports import FailureKind

__all__ = [
    "ErrorReply",
    "ProgressReply",
    "Reply",
    "ResultReply",
    "Task",
    "decode_reply",
    "encode_error",
    "encode_progress",
    "encode_result",
]


@dataclass(frozen=True)
class Task:
    """One attempt for a child: what to import, the payload as JSON data, the job's identity."""

    handler: str
    model: str
    payload: dict[str, Any]
    job_id: str
    name: str
    queue: str
    attempt: int

    def encode(self) -> bytes:
        """The task as one line."""
        return _line(
            {
                "handler": self.handler,
                "model": self.model,
                "payload": self.payload,
                "job": [self.job_id, self.name, self.queue, self.attempt],
            }
        )

    @classmethod
    def decode(cls, line: bytes) -> Task:
        """The task a worker wrote."""
        data = json.loads(line)
        job_id, name, queue, attempt = data["job"]
        return cls(data["handler"], data["model"], data["payload"], job_id, name, queue, attempt)


@dataclass(frozen=True)
class ProgressReply:
    """The handler reported progress."""

    value: Any


@dataclass(frozen=True)
class ResultReply:
    """The handler returned ``value``."""

    value: Any


@dataclass(frozen=True)
class ErrorReply:
    """The handler raised; see ``ChildHandlerError`` for the fields."""

    error_class: str
    message: str
    error_types: list[str]
    kind: FailureKind


Reply: TypeAlias = ProgressReply | ResultReply | ErrorReply
_Kind = Literal["progress", "result", "error"]


def _line(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def encode_progress(value: Any) -> bytes:
    """A progress line; raises ``TypeError``/``ValueError`` for a value that is not JSON."""
    return _line({"progress": value})


def encode_result(value: Any) -> bytes:
    """A result line; raises ``TypeError``/``ValueError`` for a value that is not JSON."""
    return _line({"result": value})


def encode_error(error_class: str, message: str, types: list[str], kind: FailureKind) -> bytes:
    """An error line."""
    return _line({"error": [error_class, message, types, kind]})


def decode_reply(line: bytes) -> Reply:
    """A child's line as a reply.

    Raises:
        ValueError: the line is not one of the three replies.
    """
    data = json.loads(line)
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"not a pool reply: {line[:200]!r}")
    kind: _Kind
    ((kind, value),) = data.items()
    if kind == "progress":
        return ProgressReply(value)
    if kind == "result":
        return ResultReply(value)
    if kind == "error":
        error_class, message, types, failure = value
        return ErrorReply(error_class, message, list(types), failure)
    raise ValueError(f"not a pool reply: {line[:200]!r}")
