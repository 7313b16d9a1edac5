"""The producer's wire layout: each job is the EVALSHA call Node BullMQ 5 makes (Q1, Q12)."""

from __future__ import annotations

import json
from typing import Any

import hiredis
import msgpack  # type: ignore[import-untyped]
import pytest

from portside.adapters.bullmq.names import map_queue
from portside.adapters.bullmq.producer import (
    _packed_options,
    new_job_id,
    prepare,
    prepare_bulk,
)
from portside.adapters.bullmq.transport.scripts import script
from portside.ports import Backoff, JobOptions, NewJob, Retention

QUEUE = map_queue("agents-run:orchestrator", "bull")
BASE = "bull:agents-run:orchestrator:"


def _call(command: bytes) -> list[Any]:
    """The RESP array ``command`` as a list of byte strings (hiredis parses both ways)."""
    reader = hiredis.Reader()
    reader.feed(command)
    parsed = reader.gets()
    assert reader.gets() is False, "one command per job"
    assert isinstance(parsed, list)
    return parsed


@pytest.mark.parametrize(
    ("options", "name", "keys"),
    [
        (
            None,
            "addStandardJob",
            ["wait", "paused", "meta", "id", "completed", "delayed", "active", "events", "marker"],
        ),
        (
            {"delay": 1.5},
            "addDelayedJob",
            ["marker", "meta", "id", "delayed", "completed", "events"],
        ),
        (
            {"priority": 4},
            "addPrioritizedJob",
            [
                "marker",
                "meta",
                "id",
                "prioritized",
                "delayed",
                "completed",
                "active",
                "events",
                "pc",
            ],
        ),
    ],
)
def test_q12_each_job_is_one_evalsha_with_bullmqs_keys_and_arguments(
    options: Any, name: str, keys: list[str]
) -> None:
    """Q12: script, keys and the three arguments (msgpack, JSON, msgpack) as BullMQ lays
    them out, so Node workers read what portside adds."""
    prepared = prepare(QUEUE, "charge", {"order": 7, "note": "é"}, options)
    lua = script(name)
    call = _call(prepared.command)
    assert call[:3] == [b"EVALSHA", lua.sha.encode(), str(lua.numkeys).encode()]
    assert call[3 : 3 + lua.numkeys] == [(BASE + key).encode() for key in keys]
    packed, data, opts = call[3 + lua.numkeys :]
    base, job_id, job_name, timestamp, *parent, dedupe = msgpack.unpackb(packed)
    assert (base, job_id, job_name, parent, dedupe) == (
        BASE,
        prepared.job_id,
        "charge",
        [None, None, None, None],
        None,
    )
    assert isinstance(timestamp, int)
    assert timestamp > 1_700_000_000_000
    assert json.loads(data) == {"order": 7, "note": "é"}
    assert msgpack.unpackb(opts)["attempts"] == 3
    assert prepared.lua == lua


def test_q1_caller_ids_dedupe_keys_and_options_reach_the_script() -> None:
    """Q1: a chosen job id is sent as the id and as ``opts.jobId``; a dedupe key becomes
    BullMQ's ``de:`` key and ``opts.de``."""
    options = JobOptions(
        job_id="order-42",
        attempts=5,
        backoff=Backoff.fixed(2),
        dedupe_key="daily",
        remove_on_complete=Retention(count=10),
    )
    prepared = prepare(QUEUE, "charge", {}, options)
    packed, _, opts = _call(prepared.command)[-3:]
    args = msgpack.unpackb(packed)
    assert (args[1], args[-1]) == ("order-42", BASE + "de:daily")
    assert msgpack.unpackb(opts) == {
        "attempts": 5,
        "delay": 0,
        "backoff": {"type": "fixed", "delay": 2000},
        "removeOnComplete": {"count": 10},
        "de": {"id": "daily"},
        "jobId": "order-42",
    }
    assert (prepared.ref.id, prepared.ref.queue) == ("order-42", "agents-run:orchestrator")


def test_q1_bulk_jobs_get_their_own_ids_and_share_the_default_options() -> None:
    """Q1: every bulk entry is its own job (own id) and dict entries are accepted too."""
    jobs: list[Any] = [NewJob(name="a", data={"i": 1}), {"name": "b", "data": {"i": 2}}]
    prepared = prepare_bulk(QUEUE, jobs)
    assert [p.name for p in prepared] == ["a", "b"]
    assert len({p.job_id for p in prepared}) == 2
    assert [json.loads(_call(p.command)[-2]) for p in prepared] == [{"i": 1}, {"i": 2}]


def test_q15_options_are_packed_per_object_never_by_equality() -> None:
    """Q15: ``remove_on_complete=True`` (remove at once) equals ``1`` (keep one) as a pydantic
    value, so a cache keyed by value would send the wrong one; the cache is by identity."""
    remove = JobOptions(remove_on_complete=True)
    keep_one = JobOptions(remove_on_complete=1)
    assert remove == keep_one
    assert msgpack.unpackb(_packed_options(remove))["removeOnComplete"] is True
    assert msgpack.unpackb(_packed_options(keep_one))["removeOnComplete"] == 1
    assert _packed_options(remove) == _packed_options(remove)


def test_q1_generated_ids_stay_unique_across_many_random_refills() -> None:
    """Q1: ids drawn past several refills of the buffered randomness never repeat."""
    ids = [new_job_id() for _ in range(5_000)]
    assert len(set(ids)) == len(ids)
    assert len({job_id[16:] for job_id in ids}) == len(ids)
