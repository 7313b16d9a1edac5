"""Jobs whose stored hash holds bad data or bytes that are not UTF-8 (Q2, Q4, A3, A4)."""

from __future__ import annotations

from typing import Any

import msgpack  # type: ignore[import-untyped]
import pytest

from portside.adapters.bullmq.jobs import (
    RAW_DATA_LIMIT,
    BullMQJob,
    clean_text,
    decode_data,
    job_info,
    stored_options,
)
from portside.adapters.bullmq.names import map_queue
from portside.adapters.bullmq.transport.pipelined import _as_stored
from portside.adapters.bullmq.worker.attempts import run_attempt
from portside.adapters.bullmq.worker.commands import QueueCommands
from portside.ports import FailureKind, Job, ValidationError, default_classify

QUEUE = "stored"


def _escaped(raw: bytes) -> str:
    """What a worker connection (``surrogateescape``) makes of stored bytes."""
    return raw.decode("utf-8", "surrogateescape")


class _NoActions:
    """A worker that is never asked for anything (``JobActions``)."""

    async def progress(self, job_id: str, progress: Any) -> None:
        return None

    async def log(self, job: BullMQJob, line: str) -> None:
        return None

    async def children_values(self, job_id: str) -> dict[str, Any]:
        return {}


def _job(data: str | None, **fields: str) -> BullMQJob:
    stored = {"name": "run", "opts": '{"attempts":3}', "atm": "0", **fields}
    if data is not None:
        stored["data"] = data
    return BullMQJob("j1", stored, QUEUE, "tok:0", _NoActions())


BAD: dict[str, tuple[str, str]] = {
    "invalid-json": ("{nope", "job data is not valid JSON"),
    "list": ("[1, 2]", "job data is a JSON list, not an object"),
    "string": ('"text"', "job data is a JSON string, not an object"),
    "number": ("42", "job data is a JSON number, not an object"),
    "null": ("null", "job data is a JSON null, not an object"),
    "deep": ("[" * 100_000 + "]" * 100_000, "job data is nested too deeply to decode"),
    "invalid-utf8": (_escaped(b'{"a": "\xff\xfe"}'), "job data is not valid UTF-8 (byte 0xff"),
}


@pytest.mark.parametrize(("raw", "message"), list(BAD.values()), ids=list(BAD))
def test_q2_undecodable_data_raises_a_validation_error_naming_data(raw: str, message: str) -> None:
    """Q2: reading ``job.data`` of a job whose stored data is not a JSON object raises
    ValidationError on field ``data`` saying what is wrong and what to do."""
    job = _job(raw)
    with pytest.raises(ValidationError) as info:
        job.data  # noqa: B018
    assert info.value.field == "data"
    assert str(info.value).startswith(message)
    assert "enqueue the job again with a JSON object" in str(info.value)
    assert default_classify(info.value) == "permanent"
    with pytest.raises(ValidationError):
        job.data  # noqa: B018  (every read raises, not only the first)
    assert job.data_problem() is not None


def test_q2_data_is_decoded_once_and_cached() -> None:
    """Q2: the payload is decoded on first use and the same object is returned after."""
    job = _job('{"n": 1, "text": "é"}')
    first = job.data
    assert first == {"n": 1, "text": "é"}
    assert job.data is first
    assert job.data_problem() is None


@pytest.mark.parametrize("raw", [None, ""])
def test_q2_missing_or_empty_data_is_an_empty_payload(raw: str | None) -> None:
    """Q2: like BullMQ, a job without data has the payload ``{}``."""
    job = _job(raw)
    assert job.data == {}
    assert job.raw_data == raw


def test_a4_raw_data_keeps_the_stored_text_clean_and_bounded() -> None:
    """A4: ``raw_data`` is the stored text for a dead letter: U+FFFD for bytes that are not
    UTF-8, at most ``RAW_DATA_LIMIT`` characters."""
    assert _job(_escaped(b'{"a": "\xff"}')).raw_data == '{"a": "\ufffd"}'
    long = "[" + "1," * 5000 + "1]"
    raw = _job(long).raw_data
    assert raw is not None
    assert len(raw) == RAW_DATA_LIMIT
    assert long.startswith(raw)


def test_q2_other_fields_with_bad_bytes_never_crash_the_job_object() -> None:
    """Q2: invalid bytes or junk in name, opts and counters give usable defaults."""
    job = _job(
        "{}",
        name=_escaped(b"na\xffme"),
        opts=_escaped(b'{"attempts": 2, "x": "\xfe"}'),
        atm=_escaped(b"\xff"),
        stacktrace=_escaped(b'["\xff"]'),
    )
    assert job.name == "na\ufffdme"
    assert job.max_attempts == 2
    assert job.attempt == 1
    assert job.text("stacktrace") == '["\ufffd"]'
    assert job.text("absent") is None


def test_q2_hostile_opts_give_default_settings() -> None:
    """Q2: opts that are no JSON object, or carry odd retention and timeouts, are ignored."""
    assert stored_options("[1]").attempts == 1
    assert stored_options("{" * 100_000).attempts == 1
    odd = stored_options(
        '{"removeOnComplete": {"count": 3, "\\ud800": 1, "age": "x"},'
        ' "portside": {"timeout": 1e400}}'
    )
    assert odd.keep_completed == {"count": 3}
    assert odd.timeout is None
    assert stored_options('{"portside": {"timeout": ' + "9" * 400 + "}}").timeout is None


def test_q7_job_info_reads_any_stored_text() -> None:
    """Q7: ``get_job``'s conversion accepts replacement characters and junk numbers."""
    fields = {
        "name": "n\ufffd",
        "data": '{"a": "\ufffd\ufffd"}',
        "atm": "x",
        "priority": "\ufffd",
        "timestamp": "9" * 400,
        "failedReason": "E: \ufffd",
        "pskind": "permanent",
    }
    info = job_info(QUEUE, "j1", fields, "failed", False)
    assert info.data == {"a": "\ufffd\ufffd"}
    assert (info.attempts_made, info.priority, info.created_at) == (0, 0, 0.0)
    assert (info.failed_reason, info.failure_kind) == ("E: \ufffd", "permanent")


def test_clean_text_turns_escaped_bytes_and_lone_surrogates_into_replacements() -> None:
    """Text from a worker connection becomes valid Unicode; valid text is returned as is."""
    text = "ascii"
    assert clean_text(text) is text
    assert clean_text("é🚀") == "é🚀"
    assert clean_text(_escaped(b"a\xffb")) == "a\ufffdb"
    assert clean_text("a\ud800b") == "a?b"


def test_q2_decode_data_reports_the_first_bad_byte() -> None:
    """Q2: the message points at the offending byte so an operator can find it."""
    problem = decode_data(_escaped(b'{"ok": "\xc3\xa9", "bad": "\xc3"}'))
    assert isinstance(problem, ValidationError)
    assert problem.message == "job data is not valid UTF-8 (byte 0xc3 at offset 21)"


def test_q2_link_writes_escaped_bytes_back_byte_for_byte() -> None:
    """Q2: a job id read with bad bytes is sent back to Redis as exactly those bytes."""
    job_id = _escaped(b"id-\xff")
    assert _as_stored(("EVALSHA", "sha", 1, "key:" + job_id, 5, b"raw")) == (
        b"EVALSHA",
        b"sha",
        1,
        b"key:id-\xff",
        5,
        b"raw",
    )


def _classify_transient(error: BaseException) -> FailureKind:
    return "transient"


async def test_a3_the_handler_runs_and_reading_bad_data_fails_the_job_permanently() -> None:
    """A3, A4: the handler is called (so a runtime can record the attempt), reading
    ``job.data`` raises ValidationError, and the attempt ends failed for good even when the
    queue's classifier calls everything transient."""
    seen: list[str | None] = []

    async def handler(job: Job) -> Any:
        seen.append(getattr(job, "raw_data", None))
        return job.data

    job = _job("[1, 2]")
    ending = await run_attempt(job, handler, None, _classify_transient)
    assert seen == ["[1, 2]"]
    assert (ending.status, ending.failure_kind) == ("failed", "permanent")
    assert ending.error is not None
    assert ending.error.startswith("ValidationError: job data is a JSON list, not an object")
    assert ending.fields is not None
    assert "handler" in ending.fields["stacktrace"]


async def test_q2_a_handler_that_ignores_bad_data_still_cannot_complete_the_job() -> None:
    """Q2: a job whose stored data cannot be decoded never completes, whatever the handler
    did: the attempt fails permanently with the data's error."""

    async def ignores_data(job: Job) -> Any:
        return "done"

    async def fails_otherwise(job: Job) -> Any:
        raise RuntimeError("unrelated")

    for handler in (ignores_data, fails_otherwise):
        ending = await run_attempt(_job("{nope"), handler, None, default_classify)
        assert (ending.status, ending.failure_kind) == ("failed", "permanent")
        assert ending.error is not None
        assert "job data is not valid JSON" in ending.error


async def test_q2_good_data_completes_as_before() -> None:
    """Q2: a valid payload reaches the handler and the attempt completes with its result."""

    async def handler(job: Job) -> Any:
        return {"n": job.data["n"] + 1}

    ending = await run_attempt(_job('{"n": 1}'), handler, None, default_classify)
    assert (ending.status, ending.result, ending.value) == ("completed", {"n": 2}, '{"n":2}')


async def test_q4_failure_reasons_with_bad_text_are_stored_clean() -> None:
    """Q4: an error message carrying undecodable bytes (e.g. an echoed job id) is stored
    with replacement characters instead of breaking the command that records it."""

    async def handler(job: Job) -> Any:
        raise ValueError(_escaped(b"bad \xff"))

    ending = await run_attempt(_job("{}"), handler, None, default_classify)
    assert ending.error == "ValueError: bad \ufffd"
    assert ending.fields is not None
    assert ending.fields["failedReason"] == ending.error


def test_q2_lock_renewal_packs_ids_with_bad_bytes_as_those_bytes() -> None:
    """Q2: renewing the lock of a job whose id holds bytes that are not UTF-8 sends exactly
    those bytes (the renewal loop must not die on it)."""
    commands = QueueCommands(map_queue(QUEUE, "bull"), lock_duration_ms=30_000, worker_name="w")
    command = commands.extend_locks([_escaped(b"id-\xff"), "ok"], ["t:0", "t\ud800"])
    args = command[3 + command[2] :]
    assert msgpack.unpackb(args[2], raw=True) == [b"id-\xff", b"ok"]
    assert msgpack.unpackb(args[1]) == ["t:0", "t?"]
