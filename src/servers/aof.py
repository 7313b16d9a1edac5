"""Cutting a crashed Redis's append-only file back to its last whole transaction.

A SIGKILL can stop the server in the middle of writing a ``MULTI``/``EXEC`` block (Redis
wraps every script's writes in one). Redis 7.0 then loads the file without the block, as it
should, but truncates the file at the last whole *command*, which leaves the ``MULTI`` and the
block's first commands in it. Writes made after that restart are appended behind them, so
the next restart replays the dangling block: with a later ``EXEC`` it brings back writes no
client saw acknowledged (a job pushed to ``wait`` a second time after its producer added it
again), without one it drops every write made since the crash. Cutting the file back to
before the unfinished ``MULTI`` before the server starts again avoids both.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["complete_prefix", "repair_appendonly"]


def _line(data: bytes, at: int, kind: int) -> tuple[int, int] | None:
    """The integer of the ``<kind><n>\\r\\n`` line at ``at`` and where the line ends."""
    if at >= len(data) or data[at] != kind:
        return None
    end = data.find(b"\r\n", at)
    if end < 0:
        return None
    try:
        return int(data[at + 1 : end]), end + 2
    except ValueError:
        return None


def _command(data: bytes, at: int) -> tuple[bytes, int] | None:
    """The name of the whole command at ``at`` and where it ends, or None if it is cut."""
    head = _line(data, at, ord("*"))
    if head is None or head[0] < 1:
        return None
    count, at = head
    name = b""
    for index in range(count):
        size = _line(data, at, ord("$"))
        if size is None or size[0] < 0:
            return None
        length, at = size
        if data[at + length : at + length + 2] != b"\r\n":
            return None
        if index == 0:
            name = data[at : at + length].upper()
        at += length + 2
    return name, at


def complete_prefix(data: bytes) -> int:
    """The length of the longest prefix of ``data`` (RESP commands, as an AOF holds them)
    that ends with a whole command outside any ``MULTI``/``EXEC`` block."""
    good = 0
    at = 0
    in_multi = False
    while at < len(data):
        parsed = _command(data, at)
        if parsed is None:
            break
        name, at = parsed
        if name == b"MULTI":
            in_multi = True
        elif name in (b"EXEC", b"DISCARD"):
            in_multi = False
        if not in_multi:
            good = at
    return good


def _newest_increment(directory: Path) -> Path | None:
    """The file Redis appends to: the newest ``*.incr.aof`` (Redis 7 multi-part AOF) or a
    single ``appendonly.aof`` (older servers)."""
    parts = sorted(
        (directory / "appendonlydir").glob("*.incr.aof"),
        key=lambda path: int(path.name.rsplit(".", 3)[-3]),
    )
    if parts:
        return parts[-1]
    single = directory / "appendonly.aof"
    return single if single.is_file() else None


def repair_appendonly(directory: Path) -> int:
    """Cut the AOF in the server directory ``directory`` back to its last whole transaction.

    Returns:
        The number of bytes cut (0 when the file ended cleanly or there is none).
    """
    path = _newest_increment(directory)
    if path is None:
        return 0
    data = path.read_bytes()
    keep = complete_prefix(data)
    if keep < len(data):
        with open(path, "r+b") as handle:
            handle.truncate(keep)
    return len(data) - keep
