"""The shared read of outbox subscriptions, without a database (O4; issue 9)."""

from __future__ import annotations

from datetime import UTC, datetime

from portside.adapters.postgres.fanout import Fanout, Subscriber
from portside.ports import OutboxEvent


def _events(first: int, last: int, stream: str = "run") -> list[OutboxEvent]:
    return [
        OutboxEvent(
            id=f"{stream}-{seq}",
            stream=stream,
            seq=seq,
            type="step",
            payload={},
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )
        for seq in range(first, last + 1)
    ]


class _Groups:
    def __init__(self) -> None:
        self.created = 0
        self.fanout = Fanout(self.needs_read)

    def needs_read(self) -> None:
        self.created += 1


def _seqs(sub: Subscriber) -> list[int]:
    return [event.seq for event in sub.queue]


def test_o4_up_to_date_subscribers_share_one_group_and_each_event_object() -> None:
    """O4: subscribers at the shared position join one group; one read feeds them all."""
    groups = _Groups()
    first, second = Subscriber("run", 4, limit=10), Subscriber("run", 4, limit=10)
    assert groups.fanout.join(first, None)
    assert groups.fanout.join(second, 4)
    assert groups.created == 1, "the second subscriber made a group of its own"
    assert [(group.stream, start) for group, start in groups.fanout.reads()] == [("run", 4)]

    events = _events(4, 6)
    group, start = groups.fanout.reads()[0]
    assert groups.fanout.current(group, start)
    groups.fanout.deliver(group, events)
    assert _seqs(first) == _seqs(second) == [4, 5, 6]
    assert all(a is b for a, b in zip(first.queue, second.queue, strict=True))
    assert (first.want, second.want, group.next_seq, groups.fanout.committed("run")) == (
        7,
        7,
        7,
        7,
    )
    assert first.woken.is_set()
    assert second.woken.is_set()
    assert not groups.fanout.current(group, start), "a read from the old position is stale"


def test_o4_a_subscriber_behind_the_shared_position_must_read_on_its_own() -> None:
    """O4: a subscriber behind the group does not join until it has caught up itself."""
    groups = _Groups()
    ahead, behind = Subscriber("run", 1, limit=10), Subscriber("run", 1, limit=10)
    groups.fanout.join(ahead, None)
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(1, 5))
    assert not groups.fanout.join(behind, None)
    assert behind.group is None
    behind.add_own(_events(1, 5))
    assert groups.fanout.join(behind, None)
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(6, 6))
    assert _seqs(behind) == [1, 2, 3, 4, 5, 6]


def test_o4_events_below_the_position_at_read_time_were_purged_and_are_skipped() -> None:
    """O4/O6: a short own read that returned nothing below the shared position it started
    from means retention deleted those events: the subscriber skips them and joins."""
    groups = _Groups()
    member = Subscriber("run", 1, limit=10)
    groups.fanout.join(member, None)
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(1, 9))
    late = Subscriber("run", 2, limit=10)
    assert groups.fanout.join(late, before=10)
    assert late.want == 10
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(10, 11))
    assert _seqs(late) == [10, 11]


def test_o4_a_subscriber_ahead_of_the_shared_read_gets_only_newer_events() -> None:
    groups = _Groups()
    member, ahead = Subscriber("run", 1, limit=10), Subscriber("run", 3, limit=10)
    groups.fanout.join(member, None)
    assert groups.fanout.join(ahead, 1)
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(1, 4))
    assert (_seqs(member), _seqs(ahead)) == ([1, 2, 3, 4], [3, 4])


def test_o4_a_slow_subscriber_leaves_the_group_at_its_bound_and_loses_nothing() -> None:
    """O4: a member whose queue is full leaves the group (the shared reader never buffers
    for it); it keeps what fitted and resumes right after it on its own."""
    groups = _Groups()
    slow, fast = Subscriber("run", 1, limit=3), Subscriber("run", 1, limit=100)
    groups.fanout.join(slow, None)
    groups.fanout.join(fast, None)
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(1, 2))
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(3, 6))
    assert _seqs(slow) == [1, 2, 3]
    assert (slow.group, slow.want, len(slow.queue)) == (None, 4, 3)
    assert slow.woken.is_set()
    assert _seqs(fast) == [1, 2, 3, 4, 5, 6]
    groups.fanout.deliver(groups.fanout.reads()[0][0], _events(7, 8))
    assert _seqs(slow) == [1, 2, 3], "a member that left still received events"


def test_o4_the_group_ends_with_its_last_member() -> None:
    groups = _Groups()
    only = Subscriber("run", 1, limit=1)
    groups.fanout.join(only, None)
    groups.fanout.leave(only)
    assert groups.fanout.committed("run") is None
    assert groups.fanout.reads() == []
    again = Subscriber("run", 5, limit=1)
    assert groups.fanout.join(again, None)
    assert groups.created == 2
    assert [start for _, start in groups.fanout.reads()] == [5]


def test_o4_streams_are_grouped_apart_and_close_releases_every_member() -> None:
    groups = _Groups()
    a, b = Subscriber("a", 1, limit=5), Subscriber("b", 7, limit=5)
    groups.fanout.join(a, None)
    groups.fanout.join(b, None)
    assert sorted((group.stream, start) for group, start in groups.fanout.reads()) == [
        ("a", 1),
        ("b", 7),
    ]
    assert set(groups.fanout.close()) == {a, b}
    assert (a.group, b.group, groups.fanout.reads()) == (None, None, [])


def test_o4_a_group_waiting_ahead_moves_back_for_a_subscriber_at_the_head() -> None:
    """O4: a subscriber that asked for a seq not committed yet must not make one at the head
    skip events or spin: the group, which fanned out nothing yet, reads from the earlier one."""
    groups = _Groups()
    ahead, head = Subscriber("run", 100, limit=10), Subscriber("run", 11, limit=10)
    groups.fanout.join(ahead, None)
    assert groups.fanout.committed("run") is None, "nothing below 100 is known committed"
    assert groups.fanout.join(head, groups.fanout.committed("run"))
    assert head.want == 11
    assert groups.created == 2, "moving the position back asked for no read"
    group, start = groups.fanout.reads()[0]
    assert start == 11
    groups.fanout.deliver(group, _events(11, 12))
    assert (_seqs(head), _seqs(ahead)) == ([11, 12], [])
