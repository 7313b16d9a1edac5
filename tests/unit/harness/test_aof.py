"""Cutting a crashed Redis's append-only file back to its last whole transaction."""

from __future__ import annotations

from pathlib import Path

from portside.servers.aof import complete_prefix, repair_appendonly


def _resp(*parts: str) -> bytes:
    out = b"*%d\r\n" % len(parts)
    for part in parts:
        raw = part.encode()
        out += b"$%d\r\n%b\r\n" % (len(raw), raw)
    return out


SET = _resp("SET", "before", "1")
BLOCK = _resp("MULTI") + _resp("HSET", "h:1", "v", "1") + _resp("LPUSH", "wait", "j1")
EXEC = _resp("EXEC")


def test_h1_a_file_of_whole_commands_and_transactions_is_kept_whole() -> None:
    data = SET + BLOCK + EXEC + _resp("SET", "after", "1")
    assert complete_prefix(data) == len(data)


def test_h1_an_unfinished_transaction_is_cut_back_to_before_its_multi() -> None:
    # Redis 7.0 itself keeps the MULTI and the whole commands after it (the reason for this).
    assert complete_prefix(SET + BLOCK) == len(SET)
    assert complete_prefix(SET + BLOCK + EXEC[:5]) == len(SET)


def test_h1_a_command_cut_outside_a_transaction_is_dropped() -> None:
    cut = _resp("SET", "after", "1")[:-3]
    assert complete_prefix(SET + cut) == len(SET)
    assert complete_prefix(b"") == 0
    assert complete_prefix(b"garbage") == 0


def test_h1_repair_cuts_the_newest_increment_file(tmp_path: Path) -> None:
    parts = tmp_path / "appendonlydir"
    parts.mkdir()
    older = parts / "appendonly.aof.2.incr.aof"
    newest = parts / "appendonly.aof.10.incr.aof"
    older.write_bytes(SET + BLOCK)
    newest.write_bytes(SET + BLOCK)
    assert repair_appendonly(tmp_path) == len(BLOCK)
    assert newest.read_bytes() == SET
    assert older.read_bytes() == SET + BLOCK
    assert repair_appendonly(tmp_path) == 0
    assert repair_appendonly(tmp_path / "missing") == 0
