"""The Redis server's memory policy and use, from ``INFO`` (or ``CONFIG GET``) (E2)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from portside.ports import ServerInfo

__all__ = ["server_info"]


def _int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _backend(server: dict[str, Any]) -> str:
    name = str(server.get("server_name") or "redis")
    version = server.get(f"{name}_version") or server.get("redis_version")
    return f"{name} {version}" if version else name


async def server_info(client: Redis) -> ServerInfo:
    """Memory policy, use and limit of the server ``client`` talks to.

    ``INFO server`` and ``INFO memory`` give everything; where ``INFO`` is refused (ACLs,
    renamed commands on managed Redis) ``CONFIG GET`` is tried for the policy and limit, and
    whatever stays unknown is None with the refusal in ``unreadable``. Connection errors
    propagate.
    """
    refused: list[str] = []
    server: dict[str, Any] = {}
    memory: dict[str, Any] = {}
    try:
        server = await client.info("server")
        memory = await client.info("memory")
    except ResponseError as exc:
        refused.append(f"INFO refused: {exc}")
    if memory.get("maxmemory_policy") is None:
        try:
            config = await client.config_get("maxmemory*")
        except ResponseError as exc:
            refused.append(f"CONFIG GET refused: {exc}")
        else:
            memory.setdefault("maxmemory_policy", config.get("maxmemory-policy"))
            memory.setdefault("maxmemory", config.get("maxmemory"))
    policy = memory.get("maxmemory_policy")
    return ServerInfo(
        backend=_backend(server),
        maxmemory_policy=None if policy is None else str(policy),
        used_memory=_int(memory.get("used_memory")),
        maxmemory=_int(memory.get("maxmemory")),
        unreadable="; ".join(refused) or None,
    )
