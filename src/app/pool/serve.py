"""A pool child's entry point: ``python -m portside.app.pool.serve [MEMORY_LIMIT_MB]``.

It runs tasks read from stdin one at a time and answers on what was its stdout; the handler's
own ``print`` output goes to stderr, so it can never garble an answer. SIGINT and SIGTERM are
ignored: the worker decides when its children end (end of stdin, or SIGKILL).
"""

from __future__ import annotations

import importlib
import os
import resource
import signal
import sys
from collections.abc import Callable
from functools import cache
from typing import IO, Any

from pydantic import BaseModel

from portside.app.pool.context import PoolContext
from portside.app.pool.errors import OUT_OF_MEMORY_EXIT
from portside.app.pool.protocol import (
    Task,
    encode_error,
    encode_progress,
    encode_result,
)
from portside.ports import default_classify

__all__ = ["main", "run_task"]


@cache
def load(path: str) -> Any:
    """The object at ``module:qualname``."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _types(error: BaseException) -> list[str]:
    return [f"{klass.__module__}.{klass.__qualname__}" for klass in type(error).__mro__]


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    return value


def run_task(task: Task, send: Callable[[bytes], None]) -> bytes:
    """Run one task; the line that answers it (progress lines go out through ``send``)."""

    def progress(value: Any) -> None:
        send(encode_progress(_jsonable(value)))

    ctx = PoolContext(task.job_id, task.name, task.queue, task.attempt, progress)
    try:
        handler = load(task.handler)
        payload = load(task.model).model_validate(task.payload)
        result = handler(payload, ctx)
        try:
            return encode_result(_jsonable(result))
        except (TypeError, ValueError) as error:
            message = f"the handler's result is not JSON: {error}"
            return encode_error(type(error).__name__, message, _types(error), "permanent")
    except MemoryError:
        os._exit(OUT_OF_MEMORY_EXIT)
    except Exception as error:
        return encode_error(
            type(error).__name__, str(error), _types(error), default_classify(error)
        )


def _limit_memory(megabytes: int) -> None:
    limit = megabytes * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def serve(tasks: IO[bytes], answers: IO[bytes]) -> None:
    """Answer tasks until ``tasks`` ends."""

    def send(line: bytes) -> None:
        answers.write(line)
        answers.flush()

    while line := tasks.readline():
        send(run_task(Task.decode(line), send))


def main(argv: list[str] | None = None) -> None:
    """Start a pool child: answers go to the original stdout, stdout becomes stderr."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if args and args[0] != "-":
        _limit_memory(int(args[0]))
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, answers)


if __name__ == "__main__":
    main()
