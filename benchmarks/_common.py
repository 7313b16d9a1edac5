"""Shared pieces of the benchmark scripts: private Redis, Node BullMQ install, stats, header."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from portside.servers import LocalRedis

__all__ = [
    "NODE_DIR",
    "RedisServer",
    "header",
    "node_ready",
    "node_script",
    "percentile",
]

NODE_DIR = Path(
    os.environ.get("PORTSIDE_NODE_BULLMQ", "~/.cache/portside/node-bullmq")
).expanduser()


class RedisServer:
    """A throw-away private Redis (``portside.servers.LocalRedis``, no persistence)."""

    def __init__(self) -> None:
        self._server = LocalRedis().start()
        self.url = self._server.url
        self.version = self._server.binary.describe()

    def stop(self) -> None:
        self._server.stop()


def node_ready(install: bool) -> bool:
    """Whether Node BullMQ 5 is usable from ``NODE_DIR``, running ``npm install`` if asked."""
    if shutil.which("node") is None:
        return False
    if (NODE_DIR / "node_modules" / "bullmq").exists():
        return True
    if not install or shutil.which("npm") is None:
        return False
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    if not (NODE_DIR / "package.json").exists():
        (NODE_DIR / "package.json").write_text('{"name": "portside-node-bullmq", "private": true}')
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "bullmq@5"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        print(f"npm install bullmq@5 failed: {result.stderr.strip()[:300]}", file=sys.stderr)
        return False
    return True


def node_script(name: str, source: str) -> str:
    """Write a Node script next to the BullMQ install (so ``require`` finds it); its path."""
    script = NODE_DIR / name
    script.write_text(source)
    return str(script)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def header(title: str) -> str:
    """Lines naming the benchmark, the machine and its load average right now."""
    one, five, fifteen = os.getloadavg()
    return (
        f"{title}\n"
        f"machine: {platform.machine()} {os.cpu_count()} cpus, {platform.platform()}, "
        f"python {platform.python_version()}\n"
        f"load average at start: {one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"
    )
