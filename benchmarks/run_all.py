"""Run every benchmark in this directory and write docs/benchmarks.md.

Usage: python benchmarks/run_all.py [--only NAME ...] [--quick]

Each benchmark is a script that starts its own private servers, measures every contender in
the same invocation and prints a plain-text table with absolute figures and ratios.
This runner records the machine, the versions and the exact commands next to the tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUTPUT = ROOT / "docs" / "benchmarks.md"

BENCHMARKS: list[tuple[str, str, list[str]]] = [
    ("fakes", "In-memory queue drain", ["benchmarks/fakes.py"]),
    ("queue", "Queue throughput and latency", ["benchmarks/queue_throughput.py"]),
    ("queue_latency", "Queue enqueue and end-to-end latency", ["benchmarks/queue_latency.py"]),
    ("scaling", "Worker scaling across processes", ["benchmarks/worker_scaling.py"]),
    ("outbox", "Outbox latency and throughput", ["benchmarks/outbox.py"]),
    ("sse", "SSE fan-out to 100 subscribers", ["benchmarks/sse_fanout.py"]),
    ("harness", "Harness isolation overhead and start-up", ["benchmarks/harness.py"]),
    ("http", "HTTP status poll latency", ["benchmarks/http_status.py"]),
]


def _version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else "?"


def _package(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_section() -> str:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rows = [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("cpu", f"{cpu} ({os.cpu_count()} cores)"),
        ("os", platform.platform()),
        ("python", platform.python_version()),
        ("portside", _package("portside")),
        ("bullmq (Python)", _package("bullmq")),
        ("redis-py / hiredis", f"{_package('redis')} / {_package('hiredis')}"),
        ("asyncpg", _package("asyncpg")),
        ("node", _version(["node", "--version"])),
    ]
    return "\n".join(["| | |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


def run(name: str, title: str, script: list[str], extra: list[str]) -> str:
    command = [sys.executable, *script, *extra]
    shown = " ".join(["python", *script, *extra])
    print(f"== {name}: {shown}", flush=True)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr[-4000:])
    status = "" if result.returncode == 0 else f"\n**exit status {result.returncode}**\n"
    output = result.stdout.strip() or result.stderr.strip()[-2000:]
    return f"## {title}\n\nCommand: `{shown}` ({elapsed:.0f} s)\n{status}\n```text\n{output}\n```\n"


_TARGET = re.compile(r"^\s*targets? (.+?):\s*(met|NOT met|MISSED)\b(.*)$", re.M)


def targets_section(sections: list[str]) -> str:
    """Every ``target ...: met/NOT met`` line the benchmarks printed, as one table."""
    rows = []
    for section in sections:
        name = re.match(r"<!-- bench:(\S+) -->", section)
        for target, verdict, detail in _TARGET.findall(section):
            shown = "met" if verdict == "met" else "**not met**"
            rows.append(
                f"| {name.group(1) if name else '?'} | {target} | {shown} {detail.strip()} |"
            )
    if not rows:
        return ""
    table = "\n".join(["| benchmark | target | result |", "| --- | --- | --- |", *rows])
    return f"## Targets\n\nCollected from the sections below.\n\n{table}\n\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="benchmark names to run")
    parser.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    args = parser.parse_args()
    chosen = [b for b in BENCHMARKS if not args.only or b[0] in args.only]
    extra = ["--quick"] if args.quick else []
    previous = OUTPUT.read_text() if OUTPUT.exists() else ""
    sections = []
    for name, title, script in BENCHMARKS:
        if (name, title, script) in chosen:
            body = run(name, title, script, extra)
        else:
            kept = re.search(rf"<!-- bench:{name} -->\n(.*?)<!-- /bench:{name} -->", previous, re.S)
            if kept is None:
                continue
            body = kept.group(1)
        sections.append(f"<!-- bench:{name} -->\n{body}<!-- /bench:{name} -->\n")
    OUTPUT.write_text(
        "# Benchmarks\n\n"
        "Every figure below was produced by one command on one machine, each benchmark\n"
        "measuring all of its contenders in the same run against the same private servers.\n"
        "Reproduce everything with `python benchmarks/run_all.py`, or one section with\n"
        "`python benchmarks/run_all.py --only NAME` (names: "
        + ", ".join(b[0] for b in BENCHMARKS)
        + ").\n\n"
        f"## Machine\n\n{machine_section()}\n\n" + targets_section(sections) + "\n".join(sections)
    )
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
