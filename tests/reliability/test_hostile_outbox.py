"""O1: hostile appends are refused, write nothing and leave the caller's transaction usable."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portside.adapters.postgres import PostgresOutbox
from portside.ports import OutboxEvent, ValidationError
from portside.testing import wait_for
from tests.reliability.conftest import Figures
from tests.reliability.hostile import good_json, hostile_payloads, hostile_text
from tests.reliability.scale import Scale
from tests.reliability.sync_env import Loop, examples

pytestmark = pytest.mark.reliability

PLAIN_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
names = st.text(alphabet=PLAIN_TEXT, min_size=1, max_size=200).filter(str.strip)
bad_names: st.SearchStrategy[Any] = (
    st.sampled_from(
        ["", " ", "\t\n", "x" * 201, "a\x00b", "\x00", "\ud800", None, 7, b"bytes", ["list"]]
    )
    | hostile_text
)


class OutboxEnv:
    """The outbox, a plain connection to count rows, and a loop, for one synchronous test."""

    def __init__(self, loop: Loop, outbox: PostgresOutbox, conn: asyncpg.Connection) -> None:
        self.loop = loop
        self.outbox = outbox
        self.conn = conn
        self.serial = itertools.count()

    def rows(self) -> int:
        count: int = self.loop.run(
            self.conn.fetchval("SELECT count(*) FROM portside_outbox_events")
        )
        return count

    def stored(self, event_id: str) -> tuple[str, str, Any, str | None]:
        row = self.loop.run(
            self.conn.fetchrow(
                "SELECT stream, type, payload::text AS payload, key FROM portside_outbox_events "
                "WHERE id = $1::uuid",
                event_id,
            )
        )
        assert row is not None, event_id
        return row["stream"], row["type"], json.loads(row["payload"]), row["key"]


@pytest.fixture
def env(postgres_dsn: str) -> Iterator[OutboxEnv]:
    with asyncio.Runner() as runner:
        outbox = PostgresOutbox(postgres_dsn)
        conn = runner.run(asyncpg.connect(postgres_dsn))
        try:
            yield OutboxEnv(Loop(runner), outbox, conn)
        finally:
            runner.run(outbox.close())
            runner.run(conn.close())


@st.composite
def hostile_appends(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """Append arguments with exactly one of them bad; returns (which, arguments)."""
    which = draw(st.sampled_from(["stream", "type", "payload", "key"]))
    args: dict[str, Any] = {"stream": "hostile", "type": "t", "payload": {"ok": 1}, "key": None}
    if which == "payload":
        nul = st.builds(lambda text: {"text": f"{text}\x00"}, st.text(max_size=5)) | st.builds(
            lambda text: {f"k\x00{text}": 1}, st.text(max_size=5)
        )
        args["payload"] = draw(hostile_payloads() | nul)
    else:
        args[which] = draw(bad_names.filter(lambda v: which != "key" or v is not None))
    return which, args


def test_o1_hostile_appends_are_refused_and_leave_the_transaction_usable(
    env: OutboxEnv, scale: Scale, figures: Figures
) -> None:
    """Bad stream, type, key or payload (NUL, lone surrogates in payloads, deep nesting, NaN,
    huge integers, oversized, not JSON): ``ValidationError`` naming the argument; the same
    transaction then appends a good event and commits it, and nothing else was written."""
    tried: Counter[str] = Counter()

    @examples(scale, factor=2)
    @given(case=hostile_appends())
    def check(case: tuple[str, dict[str, Any]]) -> None:
        which, args = case
        before = env.rows()
        stream = f"good-{next(env.serial)}"

        async def attempt() -> OutboxEvent:
            async with env.outbox.transaction() as tx:
                with pytest.raises(ValidationError) as caught:
                    await env.outbox.append(
                        tx, args["stream"], args["type"], args["payload"], key=args["key"]
                    )
                error = caught.value
                assert error.field is not None, error.field
                assert error.field.startswith(which), error.field
                assert error.fix, error
                return await env.outbox.append(tx, stream, "after.refusal", {"still": "usable"})

        good = env.loop.run(attempt())
        assert env.rows() == before + 1, "the refused append wrote something"
        assert env.stored(good.id) == (stream, "after.refusal", {"still": "usable"}, None)
        tried[which] += 1

    check()
    _publisher_still_delivers(env)
    figures.update(inputs_tried=sum(tried.values()), refused=dict(tried), written=0)


def test_o1_any_valid_names_and_payloads_round_trip(
    env: OutboxEnv, scale: Scale, figures: Figures
) -> None:
    """Any non-blank stream, type and key up to 200 characters (any script, emoji,
    punctuation) and any JSON payload: stored as given and published with the next seq."""
    delivered: list[OutboxEvent] = []

    async def handler(event: OutboxEvent) -> None:
        delivered.append(event)

    env.outbox.add_handler(handler)
    tried = 0

    @examples(scale, factor=2)
    @given(
        stream=names,
        type=names,
        key=st.none() | names,
        payload=st.dictionaries(
            st.text(alphabet=PLAIN_TEXT, max_size=12), good_json.filter(_no_nul), max_size=5
        ),
    )
    def check(stream: str, type: str, key: str | None, payload: dict[str, Any]) -> None:
        nonlocal tried
        env.loop.run(env.outbox.drain_once())  # what a failed example may have left behind

        async def append() -> OutboxEvent:
            async with env.outbox.transaction() as tx:
                return await env.outbox.append(tx, stream, type, payload, key=key)

        event = env.loop.run(append())
        stored_stream, stored_type, stored_payload, stored_key = env.stored(event.id)
        assert (stored_stream, stored_type, stored_key) == (stream, type, key)
        assert same_json(stored_payload, payload), (stored_payload, payload)
        delivered.clear()
        assert env.loop.run(env.outbox.drain_once(stream)) == 1
        assert [(e.id, e.seq) for e in delivered] == [(event.id, event.seq)]
        assert same_json(delivered[0].payload, payload)
        tried += 1

    check()
    figures.update(inputs_tried=tried, accepted=tried)


def same_json(left: Any, right: Any) -> bool:
    """Equal as JSON values: numbers by value, whatever Python type they parse back as.

    Postgres stores jsonb numbers as ``numeric`` and prints an integral float such as
    1.970843311212373e16 without exponent, so it reads back as a Python int.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return float(left) == float(right)
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_json, left, right))
    return bool(left == right)


def _no_nul(value: Any) -> bool:
    return "\\u0000" not in json.dumps(value)


def _publisher_still_delivers(env: OutboxEnv) -> None:
    seen: list[OutboxEvent] = []

    async def handler(event: OutboxEvent) -> None:
        seen.append(event)

    async def check() -> None:
        env.outbox.add_handler(handler)
        await env.outbox.start()
        try:
            async with env.outbox.transaction() as tx:
                event = await env.outbox.append(tx, "after-hostile", "ok", {"n": 1})
            await wait_for(
                lambda: event.id in {e.id for e in seen},
                timeout=30,
                message="the publisher to deliver a good event after the hostile ones",
            )

            async def nothing_pending() -> bool:
                return await env.outbox.pending() == 0

            # The handler sees an event before the publisher records its delivery, and the
            # good events of the hostile cases live on other streams: wait for all of them.
            await wait_for(
                nothing_pending,
                timeout=30,
                message="every event appended after the hostile ones to be delivered",
            )
        finally:
            await env.outbox.stop()

    env.loop.run(check())


@pytest.mark.parametrize("argument", ["stream", "type", "key"])
def test_o1_lone_surrogates_in_stream_type_or_key_are_refused(
    env: OutboxEnv, argument: str
) -> None:
    """Invalid UTF-8 (a lone surrogate) in a name is refused before anything is sent."""
    args: dict[str, Any] = {"stream": "s", "type": "t", "key": "k", argument: "bad-\udc80"}
    before = env.rows()

    async def attempt() -> None:
        async with env.outbox.transaction() as tx:
            with pytest.raises(ValidationError) as caught:
                await env.outbox.append(tx, args["stream"], args["type"], {}, key=args["key"])
            assert caught.value.field == argument

    env.loop.run(attempt())
    assert env.rows() == before
