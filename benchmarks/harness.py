"""Harness benchmark: per-test isolation overhead and per-worker start-up (local provider).

Usage: python benchmarks/harness.py [--quick] [--iterations N]

Measures in one run, each figure next to a baseline from the same run and the same servers:

1. Start-up of one xdist worker with the local provider: Redis, Postgres (data directory
   copied from the cached initdb cluster) and the migrated template database. Cold is the
   first start on a machine (empty cluster cache: initdb runs), warm every later one.
2. Per-test isolation on private servers, as the fixtures do it:
   - Postgres: clone the migrated template and drop the clone, against a plain
     CREATE DATABASE (template1, no schema) + DROP, and against CREATE DATABASE + running
     the migrations + DROP (a per-test schema without templates).
   - Redis: a fresh prefix, 20 keys written under it, SCAN + UNLINK at teardown, against
     deleting the same 20 keys by name (no scan).
   - what a test waits for without prefetching: the clone (the drop runs in the background)
     plus the prefix.
3. End to end under pytest: wall time per test of tests requesting `postgres_dsn` and
   `redis_prefix` (the harness clones each next database in the background) against the same
   number of empty tests (first test of each run excluded, it pays the start-up); with empty
   test bodies there is no test time to hide the clone in, so this is the worst case.
4. The project's own suite: wall time of ``pytest -n auto`` (the README command) against
   ``pytest -n 0`` (one process, the baseline), both on a warm server cache. ``--quick`` runs
   ``tests/unit`` only; ``--no-suite`` skips this part.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
import redis

from portside.adapters.postgres.migrations import migrate
from portside.testing.background import BackgroundLoop
from portside.testing.harness import Harness
from portside.testing.provider_local import LocalProvider

KEYS_PER_TEST = 20
TARGET_MEDIAN_MS = 30.0
TARGET_STARTUP_S = 3.0


def ms(seconds: float) -> float:
    return seconds * 1000


def summary(samples: list[float]) -> tuple[float, float]:
    """Median and p95 of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return ms(statistics.median(ordered)), ms(p95)


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def local_harness(*, prefetch: bool = True) -> Harness:
    return Harness("local", "benchmark", "bench", {"local": LocalProvider}, prefetch=prefetch)


def startup(runs: int) -> list[tuple[str, float, float, float, float]]:
    """(label, redis s, postgres s, template s, total s) per start-up."""
    rows = []
    for run in range(runs + 1):
        cold = run == 0
        with tempfile.TemporaryDirectory(prefix="portside-bench-cache-") as cache:
            if cold:
                os.environ["PORTSIDE_CACHE_DIR"] = cache
            harness = local_harness()
            try:
                redis_s = timed(harness.keyspace)
                databases_started = time.perf_counter()
                databases = harness.databases()
                postgres_s = time.perf_counter() - databases_started
                template_s = timed(databases.create_database)
            finally:
                harness.close()
                os.environ.pop("PORTSIDE_CACHE_DIR", None)
        total = redis_s + postgres_s + template_s
        rows.append(("cold" if cold else f"warm {run}", redis_s, postgres_s, template_s, total))
    return rows


async def plain_create_drop(conn: asyncpg.Connection, dsn: str, name: str, migrated: bool) -> None:
    """The baselines, on a persistent admin connection like the harness's."""
    await conn.execute(f'CREATE DATABASE "{name}"')
    if migrated:
        await migrate(dsn.rsplit("/", 1)[0] + "/" + name)
    await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def isolation(iterations: int) -> dict[str, list[float]]:
    # Without prefetching, so that each sample is one whole clone.
    harness = local_harness(prefetch=False)
    background = BackgroundLoop("benchmark-baselines")
    samples: dict[str, list[float]] = {
        "clone+drop": [],
        "plain": [],
        "migrate": [],
        "prefix": [],
        "keys": [],
        "visible": [],
    }
    try:
        keyspace, databases = harness.keyspace(), harness.databases()
        databases.drop_database(databases.create_database().rsplit("/", 1)[1], wait=True)
        admin_dsn = harness.provider.postgres_dsn()
        conn = background.run(asyncpg.connect(admin_dsn))
        client = redis.Redis.from_url(keyspace.url)

        def baseline(name: str, migrated: bool) -> float:
            return timed(lambda: background.run(plain_create_drop(conn, admin_dsn, name, migrated)))

        for i in range(iterations):
            started = time.perf_counter()
            name = databases.create_database().rsplit("/", 1)[1]
            cloned = time.perf_counter()
            databases.drop_database(name, wait=True)
            samples["clone+drop"].append(time.perf_counter() - started)
            samples["plain"].append(baseline(f"plain_{i}", False))
            if i < max(5, iterations // 10):  # slow: a tenth of the iterations is plenty
                samples["migrate"].append(baseline(f"migrated_{i}", True))
            prefix_started = time.perf_counter()
            prefix = keyspace.new_prefix()
            written = time.perf_counter()
            client.mset({f"{prefix}:k{n}": n for n in range(KEYS_PER_TEST)})
            write_s = time.perf_counter() - written
            keyspace.cleanup(prefix)
            prefix_s = time.perf_counter() - prefix_started - write_s
            samples["prefix"].append(prefix_s)
            names = [f"plain-{i}:k{n}" for n in range(KEYS_PER_TEST)]
            client.mset(dict.fromkeys(names, 1))
            samples["keys"].append(timed(functools.partial(client.delete, *names)))
            samples["visible"].append(cloned - started + prefix_s)
        client.close()
        background.run(conn.close())
    finally:
        harness.close()
        background.close()
    return samples


CONFTEST = """
import json, os, time
STAMPS = []
def pytest_runtest_logstart(nodeid, location):
    STAMPS.append(time.perf_counter())
def pytest_sessionfinish(session):
    STAMPS.append(time.perf_counter())
    with open(os.environ["BENCH_STAMPS"], "w") as out:
        json.dump(STAMPS, out)
"""


def pytest_per_test(tests: int, fixtures: str, directory: Path) -> list[float]:
    """Wall seconds per test (from one test's start to the next) of a generated suite."""
    directory.mkdir()
    (directory / "conftest.py").write_text(CONFTEST)
    (directory / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    (directory / "test_suite.py").write_text(
        textwrap.dedent(
            f"""
            import pytest
            @pytest.mark.parametrize("n", range({tests}))
            def test_case({fixtures}n):
                pass
            """
        )
    )
    stamps = directory / "stamps.json"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
         "--portside-servers=local", str(directory)],
        cwd=directory, env={**os.environ, "BENCH_STAMPS": str(stamps)}, check=True,
        capture_output=True,
    )  # fmt: skip
    times = json.loads(stamps.read_text())
    return [b - a for a, b in itertools.pairwise(times[1:])]


ROOT = Path(__file__).resolve().parent.parent


def suite_wall(workers: str, paths: list[str]) -> tuple[float, str]:
    """Wall seconds of the project's suite with ``-n workers`` and pytest's summary line."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n", workers, "-p", "no:cacheprovider", *paths],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    summary_line = lines[-1].strip("= ") if lines else f"exit {result.returncode}"
    if result.returncode != 0:
        raise SystemExit(f"pytest -n {workers} failed (exit {result.returncode}): {summary_line}")
    return seconds, summary_line


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer iterations")
    parser.add_argument("--iterations", type=int, default=None)
    parser.add_argument("--no-suite", action="store_true", help="skip the whole-suite timing")
    args = parser.parse_args()
    iterations = args.iterations or (40 if args.quick else 200)
    runs = 2 if args.quick else 5

    local = LocalProvider()
    print(f"local servers: {local.probe()}")
    print(f"\n1. Start-up of one worker, local provider (target < {TARGET_STARTUP_S:.0f} s)")
    print(f"{'start':<8} {'redis':>8} {'postgres':>9} {'template':>9} {'total':>8}")
    print("(template: migrated template database and the first clone)")
    rows = startup(runs)
    for label, redis_s, postgres_s, template_s, total in rows:
        print(f"{label:<8} {redis_s:>7.2f}s {postgres_s:>8.2f}s {template_s:>8.2f}s {total:>7.2f}s")
    warm = statistics.median(r[4] for r in rows[1:])
    print(f"warm median {warm:.2f} s; cold {rows[0][4]:.2f} s")

    print(f"\n2. Isolation per test, {iterations} iterations (median / p95, ms)")
    samples = isolation(iterations)
    labels = {
        "clone+drop": "postgres: clone template + drop",
        "plain": "baseline: plain CREATE DATABASE + drop",
        "migrate": "baseline: CREATE DATABASE + migrate + drop",
        "prefix": f"redis: prefix + SCAN/UNLINK of {KEYS_PER_TEST} keys",
        "keys": f"baseline: DEL of the {KEYS_PER_TEST} keys by name",
        "visible": "test waits for, no prefetch (clone + prefix)",
    }
    plain = statistics.median(samples["plain"])
    for key, label in labels.items():
        median, p95 = summary(samples[key])
        ratio = statistics.median(samples[key]) / plain
        print(f"{label:<46} {median:>7.1f} {p95:>7.1f}   x{ratio:.2f} of plain CREATE")
    overhead = ms(statistics.median(samples["clone+drop"]) + statistics.median(samples["prefix"]))
    print(f"isolation overhead (clone + drop + prefix), median: {overhead:.1f} ms "
          f"(target < {TARGET_MEDIAN_MS:.0f} ms)")  # fmt: skip

    tests = 30 if args.quick else 150
    print(f"\n3. End to end under pytest, {tests} tests per run (wall ms per test)")
    with tempfile.TemporaryDirectory(prefix="portside-bench-") as tmp:
        empty = pytest_per_test(tests, "", Path(tmp) / "empty")
        isolated = pytest_per_test(tests, "postgres_dsn, redis_prefix, ", Path(tmp) / "iso")
    for label, values in (("empty tests", empty), ("postgres_dsn + redis_prefix", isolated)):
        median, p95 = summary(values)
        print(f"{label:<46} {median:>7.1f} {p95:>7.1f}")
    extra = ms(statistics.median(isolated) - statistics.median(empty))
    print(f"fixture overhead per test vs empty tests, median: {extra:.1f} ms")
    if not args.no_suite:
        paths = ["tests/unit"] if args.quick else []
        shown = " ".join(paths) or "(whole suite, default markers)"
        print(f"\n4. The project's suite: pytest -n auto vs -n 0, {shown}")
        parallel, parallel_summary = suite_wall("auto", paths)
        serial, serial_summary = suite_wall("0", paths)
        print(f"{'pytest -n 0 (baseline)':<28} {serial:>7.1f} s   {serial_summary}")
        print(f"{'pytest -n auto':<28} {parallel:>7.1f} s   {parallel_summary}")
        print(f"speed-up with -n auto ({os.cpu_count()} cores): x{serial / parallel:.2f}")
    ok = overhead < TARGET_MEDIAN_MS and warm < TARGET_STARTUP_S
    print()
    print(
        f"target isolation overhead median < {TARGET_MEDIAN_MS:.0f} ms: "
        f"{'met' if overhead < TARGET_MEDIAN_MS else 'NOT met'} ({overhead:.1f} ms)"
    )
    print(
        f"target warm worker start-up < {TARGET_STARTUP_S:.0f} s: "
        f"{'met' if warm < TARGET_STARTUP_S else 'NOT met'} ({warm:.2f} s)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
