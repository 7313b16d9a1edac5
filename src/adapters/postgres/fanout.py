"""Shared reads for outbox subscriptions: one read per stream and wake-up, fanned out.

Subscribers of a stream that are up to date form a ``Group``. The group has one read
position (``next_seq``): the shared reader reads the stream from there once per wake-up and
hands each event to every member whose own position it has reached. A subscriber that is
behind (it joined with an old ``from_seq``) reads on its own until it reaches the group's
position, then joins. A member whose queue would grow past its bound leaves the group and
reads on its own again, so a slow subscriber never makes the shared reader buffer for it.

Everything here runs on the event loop without awaiting, so the shared reader's fan-out and
a subscriber's join never interleave. No I/O: ``subscriptions.py`` does the reading.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from portside.ports import OutboxEvent

__all__ = ["Fanout", "Group", "Subscriber"]


@dataclass(eq=False)
class Subscriber:
    """One ``subscribe`` iterator.

    Attributes:
        stream: The stream it follows.
        want: The next seq to queue for it: every event below was queued (or skipped as
            deleted by retention).
        limit: Most events its queue holds while it is a group member.
        queue: Events read for it and not yet yielded, in seq order.
        group: The group feeding it, or None while it reads on its own.
        woken: Set when events were queued, it left its group, or the watch closed.
    """

    stream: str
    want: int
    limit: int
    queue: deque[OutboxEvent] = field(default_factory=deque)
    group: Group | None = None
    woken: asyncio.Event = field(default_factory=asyncio.Event)

    def add_own(self, events: Sequence[OutboxEvent]) -> None:
        """Queue events of its own read (seq order, starting at ``want`` or after a gap)."""
        if events:
            self.queue.extend(events)
            self.want = events[-1].seq + 1


@dataclass(eq=False)
class Group:
    """The up-to-date subscribers of one stream and their shared read position.

    Attributes:
        stream: The stream.
        next_seq: Where the next shared read starts. No member needs an event below it.
        seen: The last seq the shared read fanned out (0 before the first): it and every
            event below it were committed.
        members: Subscribers fed by the shared read.
    """

    stream: str
    next_seq: int
    seen: int = 0
    members: set[Subscriber] = field(default_factory=set)


class Fanout:
    """The groups of one outbox instance, by stream.

    Args:
        needs_read: Called when a group is created or its position moves back, so the
            shared reader reads it (a commit notified before that is not missed).
    """

    def __init__(self, needs_read: Callable[[], None]) -> None:
        self._groups: dict[str, Group] = {}
        self._needs_read = needs_read

    def committed(self, stream: str) -> int | None:
        """The first seq of ``stream`` not yet known committed (all below were), or None."""
        group = self._groups.get(stream)
        return None if group is None or not group.seen else group.seen + 1

    def join(self, sub: Subscriber, before: int | None) -> bool:
        """Make ``sub`` a group member after a read of its own that returned a short page.

        Args:
            sub: The subscriber, reading on its own.
            before: ``committed(sub.stream)`` when that read started: every event below it
                was committed before the read, so the ones the read did not return were
                deleted by retention and are skipped.

        Returns:
            False when the shared read already fanned out events ``sub`` still needs (it
            moved on after ``sub``'s read): ``sub`` must read on its own again.
        """
        if before is not None:
            sub.want = max(sub.want, before)
        group = self._groups.get(sub.stream)
        if group is None:
            group = Group(sub.stream, sub.want)
            self._groups[sub.stream] = group
            self._needs_read()
        elif sub.want <= group.seen:
            return False
        elif sub.want < group.next_seq:
            # The group waits further ahead (a member asked for a seq not yet committed) and
            # fanned out nothing at or after sub.want: read from there, for sub's sake too.
            group.next_seq = sub.want
            self._needs_read()
        group.members.add(sub)
        sub.group = group
        return True

    def leave(self, sub: Subscriber) -> None:
        """Stop feeding ``sub`` from its group (it reads on its own, or it has ended)."""
        group, sub.group = sub.group, None
        if group is None:
            return
        group.members.discard(sub)
        if not group.members and self._groups.get(group.stream) is group:
            del self._groups[group.stream]

    def reads(self) -> list[tuple[Group, int]]:
        """The shared reads due: each group with members, and the position to read from."""
        return [(group, group.next_seq) for group in self._groups.values() if group.members]

    def current(self, group: Group, start: int) -> bool:
        """Whether a read of ``group`` from ``start`` is still the one to fan out."""
        return self._groups.get(group.stream) is group and group.next_seq == start

    def deliver(self, group: Group, events: Sequence[OutboxEvent]) -> None:
        """Fan the events a shared read returned (seq order) out to the group's members.

        Each member gets the events at or after its own position, as long as its queue has
        room; a member that runs out of room leaves the group and catches up on its own.
        """
        if not events:
            return
        group.seen = events[-1].seq
        group.next_seq = group.seen + 1
        seqs = [event.seq for event in events]
        for sub in list(group.members):
            first = bisect_left(seqs, sub.want)
            room = sub.limit - len(sub.queue)
            taken = events[first : first + max(room, 0)]
            if taken:
                sub.queue.extend(taken)
                sub.want = taken[-1].seq + 1
            if first + len(taken) < len(events):
                self.leave(sub)
            sub.woken.set()

    def close(self) -> list[Subscriber]:
        """Forget every group; returns their members (to be woken)."""
        members = [sub for group in self._groups.values() for sub in group.members]
        for sub in members:
            sub.group = None
        self._groups.clear()
        return members
