"""Shared pieces of the benchmark scripts.

- servers: a private Redis (``RedisServer``) and a durable private Postgres
  (``durable_postgres``: fsync on, data on a disk-backed directory, never tmpfs);
- Node BullMQ: one pinned version (``NODE_PINS``), installed idempotently into ``NODE_DIR``;
- the run discipline: ``rotations`` (each run starts with a different contender),
  ``run_rotated`` (the loop collecting one sample per contender and run), ``spread``
  (median and range);
- cost sampling: Redis CPU from ``INFO cpu`` (``RedisCpu``) and the CPU of a process tree
  from ``/proc`` (``tree_cpu``: consumers, the Postgres postmaster and its backends);
- the section header: title, date, commit, machine, every version, load average at the start
  (``header``) and the load average at the end (``footer``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import asyncpg

from portside.servers import LocalPostgres, LocalRedis

__all__ = [
    "DURABLE_SETTINGS",
    "NODE_DIR",
    "NODE_PINS",
    "RedisCpu",
    "RedisServer",
    "commit_latency",
    "durable_postgres",
    "footer",
    "header",
    "node_ready",
    "node_script",
    "node_versions",
    "percentile",
    "python_versions",
    "rotations",
    "run_rotated",
    "spread",
    "tree_cpu",
]

ROOT = Path(__file__).resolve().parent.parent

NODE_PINS: dict[str, str] = {"bullmq": "5.81.5", "ioredis": "5.11.1"}
"""Node contender: the newest BullMQ 5.x on npm when pinned, and the ioredis it pins exactly."""

NODE_DIR = Path(
    os.environ.get("PORTSIDE_NODE_BULLMQ", "~/.cache/portside/node-bullmq")
).expanduser()

RUNS = 5
"""Runs per contender by default: the median of five, every contender first once."""

QUICK_RUNS = 3


# ---------------------------------------------------------------- servers


class RedisServer:
    """A throw-away private Redis (``portside.servers.LocalRedis``, no persistence)."""

    def __init__(self) -> None:
        self._server = LocalRedis().start()
        self.url = self._server.url
        self.version = self._server.binary.describe()
        self.pid = self._server.pid

    def stop(self) -> None:
        self._server.stop()


DURABLE_SETTINGS: dict[str, str] = {
    # Production durability: every commit waits for its WAL flush to the disk.
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # Postgres's own default, instead of the harness's 256 MB that checkpoints more often.
    "max_wal_size": "1GB",
    "shared_buffers": "256MB",
}
"""On top of ``portside.servers.TEST_SETTINGS`` (fsync, synchronous_commit and
full_page_writes off, for throw-away test data)."""

PG_DIR_ENV = "PORTSIDE_BENCH_PG_DIR"


def compile_portside() -> str:
    """Byte-compile portside's sources, as ``pip install`` of a wheel does, and say so.

    An editable install under ``PYTHONDONTWRITEBYTECODE`` (set on CI machines) never writes
    ``.pyc`` files, so every launched process would compile the package again: start-up
    figures would measure the compiler, not portside.
    """
    import compileall

    import portside

    root = Path(portside.__file__).parent
    compileall.compile_dir(root, quiet=1, workers=0)
    return f"bytecode: portside precompiled in {root} (as a wheel install does)"


def _fs_type(path: Path) -> str:
    """The file-system type of ``path`` (longest matching mount in /proc/mounts)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1]
        inside = resolved == point or resolved.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, parts[2]
    return kind


def durable_postgres() -> tuple[LocalPostgres, str]:
    """A started private Postgres with fsync on, its data on disk; (server, description).

    ``LocalPostgres`` turns fsync off and puts its data in /dev/shm (tmpfs, where fsync costs
    nothing); benchmarks that write run history or outbox events use this one instead. The
    directory is ``$PORTSIDE_BENCH_PG_DIR``, else /var/tmp (world-writable, so the server's
    unprivileged user can enter it when we run as root).
    """
    base = Path(os.environ.get(PG_DIR_ENV, "/var/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    kind = _fs_type(base)
    if kind in ("tmpfs", "ramfs"):
        print(f"warning: {base} is {kind}: fsync costs nothing there; set {PG_DIR_ENV}")
    server = LocalPostgres(settings=DURABLE_SETTINGS, base_dir=base).start()
    description = (
        f"{server.install.describe()}, fsync on, synchronous_commit on, data in {base} ({kind}); "
        f"{commit_latency(server.dsn)}"
    )
    return server, description


COMMIT_PROBES = 300


def commit_latency(dsn: str) -> str:
    """How long one single-row commit takes on this server's disk now, as text.

    Every run-history and outbox write waits for such a commit (its WAL flush), and on a
    shared virtual disk that wait varies from run to run far more than the CPU work does:
    printed with each section, it says what the disk gave the Postgres-bound contenders.
    """

    async def probe() -> list[float]:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (v int)")
            took = []
            for i in range(COMMIT_PROBES):
                started = time.perf_counter()
                await conn.execute("INSERT INTO bench_commit_probe VALUES ($1)", i)
                took.append((time.perf_counter() - started) * 1e6)
            await conn.execute("DROP TABLE bench_commit_probe")
            return took
        finally:
            await conn.close()

    took = asyncio.run(probe())
    return (
        f"single-row commit p50 {percentile(took, 0.5):,.0f} µs, p99 "
        f"{percentile(took, 0.99):,.0f} µs ({COMMIT_PROBES} commits at start)"
    )


# ---------------------------------------------------------------- Node BullMQ


def _installed(name: str) -> str | None:
    manifest = NODE_DIR / "node_modules" / name / "package.json"
    try:
        version = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def _pins_installed() -> bool:
    if any(_installed(name) != version for name, version in NODE_PINS.items()):
        return False
    # bullmq must use the ioredis our scripts create connections with, not a nested copy.
    nested = NODE_DIR / "node_modules" / "bullmq" / "node_modules" / "ioredis"
    return not nested.exists()


def node_ready(install: bool) -> bool:
    """Whether the pinned Node BullMQ is usable from ``NODE_DIR``, installing it if asked.

    Idempotent: nothing runs when the pinned versions are installed; a changed pin reinstalls.
    """
    if shutil.which("node") is None:
        return False
    if _pins_installed():
        return True
    if not install or shutil.which("npm") is None:
        return False
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    manifest = {"name": "portside-node-bullmq", "private": True, "dependencies": NODE_PINS}
    (NODE_DIR / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (NODE_DIR / "package-lock.json").unlink(missing_ok=True)
    specs = [f"{name}@{version}" for name, version in NODE_PINS.items()]
    print(f"installing Node {' '.join(specs)} into {NODE_DIR}", file=sys.stderr)
    result = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--save-exact", *specs],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        print(f"npm install failed: {result.stderr.strip()[:300]}", file=sys.stderr)
        return False
    return _pins_installed()


def node_versions() -> str:
    """``node v20.x, bullmq 5.x, ioredis 5.x`` as installed (the pins)."""
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    parts = [f"node {node.stdout.strip() or '?'}"]
    parts += [f"{name} {_installed(name) or 'missing'}" for name in NODE_PINS]
    return ", ".join(parts)


def node_script(name: str, source: str) -> str:
    """Write a Node script next to the BullMQ install (so ``require`` finds it); its path."""
    script = NODE_DIR / name
    script.write_text(source)
    return str(script)


# ---------------------------------------------------------------- header and versions


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def python_versions() -> str:
    """The Python contenders' versions: interpreter, portside and its client libraries."""
    return (
        f"python {platform.python_version()}, portside {_package('portside')}, "
        f"redis-py {_package('redis')}, hiredis {_package('hiredis')}, "
        f"bullmq (python) {_package('bullmq')}, asyncpg {_package('asyncpg')}"
    )


def commit() -> str:
    """The checked-out commit, ``-dirty`` when files other than docs/benchmarks.md (which
    ``run_all.py`` rewrites after each section) differ from it; ``unknown`` without git."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    try:
        revision = git("rev-parse", "--short=12", "HEAD")
        changed = git(
            "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs/benchmarks.md"
        )
    except OSError:
        return "unknown"
    if not revision:
        return "unknown"
    return f"{revision}-dirty" if changed else revision


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min)"


def header(title: str) -> str:
    """The lines every section starts with: what, when, which commit, where, load average."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{title}\n"
        f"date: {now}; commit: {commit()}\n"
        f"machine: {_cpu_model()}, {os.cpu_count()} cpus, {platform.platform()}\n"
        f"versions: {python_versions()}\n"
        f"load average at start: {_load()}"
    )


def footer() -> str:
    """The load average at the end of a section (next to the one at its start)."""
    return f"load average at end: {_load()}"


# ---------------------------------------------------------------- statistics

T = TypeVar("T")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def rotations(contenders: Sequence[str], runs: int) -> list[list[str]]:
    """Run ``i`` starts with contender ``i mod n`` and keeps the cyclic order after it."""
    n = len(contenders)
    return [[*contenders[i % n :], *contenders[: i % n]] for i in range(runs)]


def run_rotated(
    contenders: Sequence[str],
    runs: int,
    measure: Callable[[str, int], T],
    show: Callable[[T], str] = str,
) -> dict[str, list[T]]:
    """Call ``measure(contender, run)`` for every run and contender in rotated order.

    Prints one progress line per measurement; returns the samples per contender.
    """
    samples: dict[str, list[T]] = {name: [] for name in contenders}
    for run, order in enumerate(rotations(contenders, runs)):
        for contender in order:
            sample = measure(contender, run)
            samples[contender].append(sample)
            print(f"  run {run + 1}/{runs}  {contender:<28} {show(sample)}", flush=True)
    return samples


def spread(values: Sequence[float], fmt: str = "{:,.0f}") -> str:
    """``median [min-max]`` of ``values``."""
    if not values:
        return "n/a"
    median = statistics.median(values)
    if len(values) == 1:
        return fmt.format(median)
    return f"{fmt.format(median)} [{fmt.format(min(values))}-{fmt.format(max(values))}]"


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# ---------------------------------------------------------------- CPU sampling


class RedisCpu:
    """Redis's own CPU seconds (``INFO cpu``: used_cpu_sys + used_cpu_user), via redis-py."""

    def __init__(self, url: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url)

    def sample(self) -> float:
        info = self._client.info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def close(self) -> None:
        self._client.close()


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds incl. reaped children) of ``pid``, None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    # After the command: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based.
    ticks = sum(int(value) for value in fields[11:15])
    return int(fields[1]), ticks / _TICK


def tree_cpu(pid: int | None) -> float | None:
    """CPU seconds of ``pid`` and all its live descendants, plus their reaped children.

    A Postgres backend that exits is reaped by the postmaster and moves into its ``cutime``,
    so the sum over the tree does not drop when connections close. None when unavailable.
    """
    if pid is None or not Path(f"/proc/{pid}/stat").exists():
        return None
    parents: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is not None:
            parents.setdefault(found[0], []).append(int(entry.name))
            cpu[int(entry.name)] = found[1]
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += cpu.get(current, 0.0)
        todo += parents.get(current, [])
    return total
