"""Q14: the process pool's pure logic, with fake children (no process is started)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from portside.app import JobDefinition
from portside.app.pool import (
    ChildCrashedError,
    ChildHandlerError,
    PoolContext,
    ProcessPool,
    WorkerPool,
)
from portside.app.pool.errors import describe_exit
from portside.app.pool.process import PoolProcess
from portside.app.pool.protocol import (
    ErrorReply,
    ProgressReply,
    ResultReply,
    Task,
    decode_reply,
    encode_error,
    encode_progress,
    encode_result,
)
from portside.app.pool.serve import run_task, serve
from portside.ports import PermanentError, ValidationError
from portside.testing import wait_for


class Image(BaseModel):
    pixels: int


def count_pixels(payload: Image, ctx: PoolContext) -> dict[str, int]:
    ctx.progress(50)
    if payload.pixels < 0:
        raise PermanentError("negative image")
    if payload.pixels == 0:
        raise KeyError("empty")
    return {"pixels": payload.pixels, "attempt": ctx.attempt}


def not_json(payload: Image, ctx: PoolContext) -> object:
    return object()


async def on_loop(payload: Image, ctx: Any) -> None:
    return None


def task(pixels: int, handler: str = "count_pixels") -> Task:
    return Task(
        handler=f"{__name__}:{handler}",
        model=f"{__name__}:Image",
        payload={"pixels": pixels},
        job_id="j1",
        name="count",
        queue="media:colors",
        attempt=2,
    )


def pooled(**overrides: Any) -> JobDefinition[Any]:
    fields: dict[str, Any] = {
        "name": "count",
        "queue": "media:colors",
        "payload": Image,
        "handler": count_pixels,
        "executor": ProcessPool(size=2),
    }
    return JobDefinition(**{**fields, **overrides})


def test_q14_a_task_and_each_reply_round_trip_as_json_lines() -> None:
    line = task(3).encode()
    assert line.endswith(b"\n")
    assert Task.decode(line) == task(3)
    assert decode_reply(encode_progress({"done": 1})) == ProgressReply({"done": 1})
    assert decode_reply(encode_result([1, "a"])) == ResultReply([1, "a"])
    assert decode_reply(encode_error("KeyError", "x", ["builtins.KeyError"], "transient")) == (
        ErrorReply("KeyError", "x", ["builtins.KeyError"], "transient")
    )
    with pytest.raises(ValueError, match="not a pool reply"):
        decode_reply(b'{"other": 1}\n')


def test_q14_the_child_runs_a_task_and_answers() -> None:
    sent: list[bytes] = []
    answer = run_task(task(7), sent.append)
    assert [decode_reply(line) for line in sent] == [ProgressReply(50)]
    assert decode_reply(answer) == ResultReply({"pixels": 7, "attempt": 2})


@pytest.mark.parametrize(
    ("pixels", "handler", "error_class", "kind"),
    [
        (-1, "count_pixels", "PermanentError", "permanent"),
        (0, "count_pixels", "KeyError", "transient"),
        (1, "not_json", "TypeError", "permanent"),
    ],
)
def test_q14_the_child_reports_a_handler_error_with_its_class_and_kind(
    pixels: int, handler: str, error_class: str, kind: str
) -> None:
    reply = decode_reply(run_task(task(pixels, handler), lambda _: None))
    assert isinstance(reply, ErrorReply)
    assert (reply.error_class, reply.kind) == (error_class, kind)
    assert "builtins.BaseException" in reply.error_types


def test_q14_the_child_serves_tasks_until_its_input_ends() -> None:
    answers = io.BytesIO()
    serve(io.BytesIO(task(1).encode() + task(2).encode()), answers)
    lines = answers.getvalue().splitlines()
    results = [json.loads(line) for line in lines if b"result" in line]
    assert results == [
        {"result": {"pixels": 1, "attempt": 2}},
        {"result": {"pixels": 2, "attempt": 2}},
    ]


def test_q14_process_pool_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="size") as error:
        ProcessPool(size=0)
    assert error.value.field == "executor.size"
    with pytest.raises(ValidationError, match="memory_limit_mb"):
        ProcessPool(memory_limit_mb=10)


def test_q14_a_pooled_definition_knows_what_its_child_imports() -> None:
    assert pooled().pool_paths == (f"{__name__}:count_pixels", f"{__name__}:Image")


def test_q14_a_pooled_handler_must_be_a_plain_importable_function() -> None:
    with pytest.raises(ValidationError, match="is async") as error:
        pooled(handler=on_loop)
    assert error.value.field == "count.handler"

    def local(payload: Image, ctx: PoolContext) -> None:
        return None

    with pytest.raises(ValidationError, match="cannot be imported by a child") as error:
        pooled(handler=local)
    assert error.value.field == "count.handler"
    with pytest.raises(ValidationError, match="executor is"):
        pooled(executor=4)
    with pytest.raises(ValidationError, match="not an async function"):
        pooled(executor=None)


def test_q14_classification_matches_a_child_error_by_class_name() -> None:
    definition = pooled(classification={KeyError: "permanent"})
    mapped = ChildHandlerError(
        "KeyError", "empty", ["builtins.KeyError", "builtins.LookupError"], "transient"
    )
    other = ChildHandlerError("OSError", "disk", ["builtins.OSError"], "transient")
    assert definition.classify(mapped) == "permanent"
    assert definition.classify(other) == "transient"
    assert definition.classify(ChildCrashedError("count", 10, -11)) == "transient"


def test_q14_exits_are_described_by_status_or_signal() -> None:
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-11) == "signal SIGSEGV"
    assert "signal SIGKILL" in str(ChildCrashedError("count", 10, -9))


class FakeChild:
    """A child that answers from a script: a result, or a crash."""

    started = 0

    def __init__(self, *, gated: bool) -> None:
        FakeChild.started += 1
        self.pid = FakeChild.started
        self.alive = True
        self.ran: list[Task] = []
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()

    async def run(self, task: Task, on_progress: Callable[[Any], Awaitable[None]]) -> Any:
        self.ran.append(task)
        await on_progress(self.pid)
        await self.gate.wait()
        if task.payload["pixels"] < 0:
            self.alive = False
            raise ChildCrashedError(task.name, self.pid, -11)
        return self.pid

    async def close(self) -> None:
        self.alive = False

    async def kill(self) -> None:
        self.alive = False


def fake_pool(size: int, children: list[FakeChild], *, gated: bool = False) -> WorkerPool:
    async def start(_: int | None) -> PoolProcess:
        child = FakeChild(gated=gated)
        children.append(child)
        return child  # type: ignore[return-value]

    return WorkerPool("count", ProcessPool(size=size), start)


async def _ignore(_: Any) -> None:
    return None


async def test_q14_the_pool_reuses_a_child_and_replaces_a_crashed_one() -> None:
    children: list[FakeChild] = []
    pool = fake_pool(2, children)
    first = await pool.run(task(1), _ignore)
    assert await pool.run(task(1), _ignore) == first
    with pytest.raises(ChildCrashedError):
        await pool.run(task(-1), _ignore)
    replacement = await pool.run(task(1), _ignore)
    assert replacement != first
    assert (pool.started, pool.crashed) == (2, 1)
    await pool.close()
    assert not any(child.alive for child in children)


async def test_q14_the_pool_never_runs_more_children_than_its_size() -> None:
    children: list[FakeChild] = []
    pool = fake_pool(2, children, gated=True)
    progress: list[Any] = []

    async def seen(value: Any) -> None:
        progress.append(value)

    runs = [asyncio.create_task(pool.run(task(1), seen)) for _ in range(5)]
    await wait_for(lambda: len(progress) == 2, message="two children to start their task")
    assert len(children) == 2
    for child in children:
        child.gate.set()
    await asyncio.gather(*runs)
    assert len(children) == 2
    assert sum(len(child.ran) for child in children) == 5
    assert len(progress) == 5
