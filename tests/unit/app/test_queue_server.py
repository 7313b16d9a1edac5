"""E2: the rules about the queue server (eviction policy, memory left), at worker start-up
and in the health report, on the fakes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from portside.adapters.memory import InMemoryQueue
from portside.app.http.health import queue_server_health
from portside.app.logs import JsonFormatter
from portside.app.queue_server import (
    MEMORY_WARN_RATIO,
    check_queue_server,
    memory_used_ratio,
    server_warnings,
)
from portside.ports import BackendUnavailableError, ServerInfo
from tests.unit.app.support import Captured

MIB = 1024 * 1024


def _info(**fields: Any) -> ServerInfo:
    fields.setdefault("backend", "redis 7.2.4")
    fields.setdefault("maxmemory_policy", "noeviction")
    return ServerInfo(**fields)


@pytest.mark.parametrize(
    ("policy", "warned"),
    [
        ("noeviction", False),
        ("allkeys-lru", True),
        ("allkeys-lfu", True),
        ("volatile-lru", True),
        ("volatile-ttl", True),
        ("allkeys-random", True),
        (None, False),  # unknown: reported as such, not as a warning
    ],
)
def test_e2_any_policy_but_noeviction_is_a_warning(policy: str | None, warned: bool) -> None:
    warnings = server_warnings(_info(maxmemory_policy=policy))

    assert [w.rule for w in warnings] == (["eviction"] if warned else [])
    if warned:
        assert f"maxmemory-policy {policy}" in warnings[0].message
        assert "CONFIG SET maxmemory-policy noeviction" in warnings[0].fix
        assert "separate Redis with an LRU policy" in warnings[0].fix


def test_e2_memory_nearly_full_is_a_warning_with_the_numbers() -> None:
    full = _info(used_memory=int(0.95 * 512 * MIB), maxmemory=512 * MIB)
    roomy = _info(used_memory=int(0.5 * 512 * MIB), maxmemory=512 * MIB)
    unlimited = _info(used_memory=900 * MIB, maxmemory=0)

    (warning,) = server_warnings(full)
    assert warning.rule == "memory"
    assert "95% of its maxmemory (486.4 MiB of 512.0 MiB)" in warning.message
    assert "remove_on_complete" in warning.fix
    assert server_warnings(roomy) == []
    assert server_warnings(unlimited) == []
    assert memory_used_ratio(roomy) == 0.5
    assert memory_used_ratio(unlimited) is None
    assert MEMORY_WARN_RATIO == 0.9


def test_e2_health_reports_status_numbers_and_warnings() -> None:
    evicting = queue_server_health(
        _info(maxmemory_policy="allkeys-lru", used_memory=MIB, maxmemory=4 * MIB)
    )
    unknown = queue_server_health(_info(maxmemory_policy=None, unreadable="INFO refused: NOPERM"))
    fine = queue_server_health(_info(used_memory=MIB, maxmemory=0))

    assert (evicting.status, evicting.memory_used_ratio) == ("warning", 0.25)
    assert [w.rule for w in evicting.warnings] == ["eviction"]
    assert (unknown.status, unknown.unreadable) == ("unknown", "INFO refused: NOPERM")
    assert (fine.status, fine.memory_used_ratio, fine.warnings) == ("ok", None, [])
    body = evicting.model_dump(mode="json", by_alias=True)
    assert set(body) >= {"maxmemoryPolicy", "usedMemoryBytes", "maxmemoryBytes", "memoryUsedRatio"}


class _EvictingQueue(InMemoryQueue):
    def __init__(self, info: ServerInfo | Exception) -> None:
        super().__init__()
        self._info = info

    async def server_info(self) -> ServerInfo:
        if isinstance(self._info, Exception):
            raise self._info
        return self._info


def _events(captured: Captured) -> list[dict[str, Any]]:
    formatter = JsonFormatter()
    return [json.loads(formatter.format(record)) for record in captured.records]


async def test_e2_start_up_check_logs_memory_and_warns_with_the_fix(captured: Captured) -> None:
    info = _info(maxmemory_policy="allkeys-lru", used_memory=8 * MIB, maxmemory=64 * MIB)

    assert await check_queue_server(_EvictingQueue(info)) == info

    lines = {line["event"]: line for line in _events(captured)}
    assert lines["queue.server"]["memory_used"] == 0.125
    assert lines["queue.server"]["maxmemory_policy"] == "allkeys-lru"
    assert lines["queue.server_eviction"]["level"] == "warning"
    assert "noeviction" in lines["queue.server_eviction"]["fix"]


async def test_e2_start_up_check_never_stops_a_worker(captured: Captured) -> None:
    refused = _info(maxmemory_policy=None, unreadable="INFO refused: NOPERM")

    assert await check_queue_server(_EvictingQueue(BackendUnavailableError("down"))) is None
    assert await check_queue_server(_EvictingQueue(refused)) == refused

    unreadable = [line for line in _events(captured) if line["event"] == "queue.server_unreadable"]
    assert [line["error"] for line in unreadable] == ["down", "INFO refused: NOPERM"]
    assert "noeviction" in unreadable[1]["fix"]


async def test_e2_a_fake_queue_is_a_safe_queue_server(captured: Captured) -> None:
    assert await check_queue_server(InMemoryQueue()) is not None
    assert [line["event"] for line in _events(captured)] == ["queue.server"]
