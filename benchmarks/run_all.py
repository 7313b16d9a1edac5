"""Run every benchmark in this directory and write docs/benchmarks.md.

Usage: python benchmarks/run_all.py [--only NAME ...] [--quick] [--note TEXT]

Each benchmark is a script that starts its own private servers, measures every contender in
the same invocation and prints a plain-text table with absolute figures and ratios. This
runner writes each section with its own exact command, date, commit, machine and versions, so
a section that ``--only`` did not rerun keeps the ones it was measured with; the Targets table
at the top collects every ``target ...: met|NOT met (...)`` line with the date of its section.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from _common import commit, python_versions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTPUT = ROOT / "docs" / "benchmarks.md"

BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("fakes", "In-memory queue drain", ["benchmarks/fakes.py"]),
    (
        "platform",
        "Platform throughput: portside worker vs Node BullMQ vs the bare adapter",
        ["benchmarks/platform_throughput.py"],
    ),
    ("queue", "Queue throughput", ["benchmarks/queue_throughput.py"]),
    ("queue_latency", "Queue enqueue and end-to-end latency", ["benchmarks/queue_latency.py"]),
    ("scaling", "Worker scaling across processes", ["benchmarks/worker_scaling.py"]),
    (
        "cluster_shards",
        "Queue throughput over Redis Cluster shards",
        ["benchmarks/cluster_shards.py"],
    ),
    ("outbox", "Outbox latency and throughput", ["benchmarks/outbox.py"]),
    ("sse", "SSE fan-out to 100 subscribers", ["benchmarks/sse_fanout.py"]),
    ("harness", "Harness isolation overhead and start-up", ["benchmarks/harness.py"]),
    ("http", "HTTP status poll latency", ["benchmarks/http_status.py"]),
    (
        "tracing",
        "Tracing overhead: portside worker with tracing off, API only, SDK",
        ["benchmarks/tracing_overhead.py"],
    ),
]


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _node() -> str:
    try:
        out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return out.stdout.strip() or "not installed"


def run(name: str, title: str, script: list[str], extra: list[str], note: str) -> str:
    command = [sys.executable, *script, *extra]
    shown = " ".join(["python", *script, *extra])
    print(f"== {name}: {shown}", flush=True)
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    revision = commit()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr[-4000:])
    status = "" if result.returncode == 0 else f"\n**exit status {result.returncode}**\n"
    output = result.stdout.strip() or result.stderr.strip()[-2000:]
    meta = "\n".join(
        [
            f"- command: `{shown}` ({elapsed:.0f} s)",
            f"- date: {date}; commit: `{revision}`",
            f"- machine: {_cpu()}, {os.cpu_count()} cores, {platform.platform()}; load "
            f"average at start {load}",
            f"- versions: {python_versions()}, node {_node()} (servers and Node BullMQ: in "
            "the output)",
            *([f"- note: {note}"] if note else []),
        ]
    )
    return f"## {title}\n\n{meta}\n{status}\n```text\n{output}\n```\n"


_TARGET = re.compile(r"^\s*targets? (.+?):\s*(met|NOT met|MISSED)\b(.*)$", re.M)


def targets_section(sections: list[str]) -> str:
    """Every ``target ...: met/NOT met`` line the benchmarks printed, as one table."""
    rows = []
    for section in sections:
        name = re.match(r"<!-- bench:(\S+) -->", section)
        date = re.search(r"^- date: ([^;(]+)", section, re.M)
        for target, verdict, detail in _TARGET.findall(section):
            shown = "met" if verdict == "met" else "**not met**"
            rows.append(
                f"| {name.group(1) if name else '?'} | {target} | {shown} {detail.strip()} | "
                f"{date.group(1).strip() if date else '?'} |"
            )
    if not rows:
        return ""
    table = "\n".join(
        ["| benchmark | target | result | measured |", "| --- | --- | --- | --- |", *rows]
    )
    return f"## Targets\n\nCollected from the sections below.\n\n{table}\n\n"


def _with_metadata(body: str, previous: str) -> str:
    """A kept section, given metadata lines if it predates sections carrying their own."""
    if re.search(r"^- date: ", body, re.M):
        return body
    header = re.search(r"^\| date \| (.+?) \|$", previous, re.M)
    said = f"; the page header then said {header.group(1)}" if header else ""
    command = re.search(r"^Command: (.+)$", body, re.M)
    lines = [
        f"- command: {command.group(1) if command else 'unknown'}",
        f"- date: unknown (measured before each section carried its own date{said})",
        "- commit and versions: not recorded",
    ]
    if command is not None:
        body = body.replace(command.group(0), "\n".join(lines), 1)
    return body


def write_page(bodies: dict[str, str]) -> None:
    """docs/benchmarks.md: the introduction, the Targets table, then the sections by name."""
    sections = [
        f"<!-- bench:{name} -->\n{bodies[name]}<!-- /bench:{name} -->\n"
        for name, _, _ in BENCHMARKS
        if name in bodies
    ]
    OUTPUT.write_text(
        "# Benchmarks\n\n"
        "Every figure below was produced by one command on one machine, each benchmark\n"
        "measuring all of its contenders in the same run against the same private servers.\n"
        "Reproduce everything with `python benchmarks/run_all.py`, or one section with\n"
        "`python benchmarks/run_all.py --only NAME` (names: "
        + ", ".join(b[0] for b in BENCHMARKS)
        + "). Each section states its own command, date, commit, machine and versions: a\n"
        "section not rerun keeps those it was measured with. The shared statistics rules (five\n"
        "runs or more in rotated order, median and range, load average at the start and end,\n"
        "Redis CPU per job from `INFO cpu`) are in `benchmarks/_common.py`; the timing protocol\n"
        "of the consumer benchmarks is in `benchmarks/_consumers.py`. A commit marked `-dirty`\n"
        "in a section measured before 2026-12-05 12:17 UTC differed from it only in this page,\n"
        "which `run_all.py` rewrites after each section (the mark now ignores this file).\n\n"
        "How to read the tables:\n\n"
        "- *portside bare adapter* is `BullMQQueue` alone (`consume` with the handler, or\n"
        "  `enqueue`); *portside worker (history+logs+metrics)* is the `portside worker` CLI with\n"
        "  run history in Postgres (fsync on, data on disk), JSON logs at INFO to a file and\n"
        "  Prometheus metrics, checked after every run for one completed history row per job.\n"
        "- *Node BullMQ* is the pinned version printed in the section; the *enableAutoPipelining*\n"
        "  row is the same worker with ioredis auto-pipelining.\n"
        "- Figures are `median [min-max]` over the runs; ratios are ratios of medians.\n"
        "- *Redis CPU µs/job* comes from `INFO cpu` before and after the timed part; *Redis busy*\n"
        "  is Redis CPU seconds over wall seconds (near 100 % means Redis is the limit).\n"
        "  *consumer* and *Postgres* CPU come from `/proc` (the process tree).\n\n"
        + targets_section(sections)
        + "\n".join(sections)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="benchmark names to run")
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    parser.add_argument("--note", default="", help="a remark written into each section run")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
    extra = ["--quick"] if args.quick else []
    previous = OUTPUT.read_text() if OUTPUT.exists() else ""
    sections: dict[str, str] = {}
    for name, _, _ in BENCHMARKS:
        kept = re.search(rf"<!-- bench:{name} -->\n(.*?)<!-- /bench:{name} -->", previous, re.S)
        if kept is not None:
            sections[name] = _with_metadata(kept.group(1), previous)
    for name, title, script in chosen:
        sections[name] = run(name, title, script, extra, args.note)
        # After every section, so a run stopped part-way keeps what it measured.
        write_page(sections)
    write_page(sections)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
