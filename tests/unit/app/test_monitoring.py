"""OBS2: the shipped alert rules load in promtool; the dashboard has the structure of the
Grafana schema version it targets; metric names follow Prometheus' conventions; one registry
per process carries the process and runtime collectors and no ``_created`` series."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from portside.app.http.metrics import HttpMetrics
from portside.app.metrics import WorkerMetrics
from portside.app.monitoring import GRAFANA_SCHEMA_VERSION, dashboard_path, rules_path
from tests.monitoring_files import (
    dashboard,
    dashboard_expressions,
    metric_names,
    rule_expressions,
)

_PANEL_TYPES = {"timeseries", "stat", "gauge", "bargauge", "table", "text", "row"}
_ALERT_THRESHOLDS = {
    "PortsideQueueBacklog": "> 100",
    "PortsideJobLatency": "> 2 *",
    "PortsideFailureRate": "> 0.05",
    "PortsideQueueServerMemory": ">= 0.9",
    "PortsideQueueServerEviction": 'policy!="noeviction"',
}


def test_the_files_ship_inside_the_package() -> None:
    """OBS2: dashboard and rules are package data, found from the installed package."""
    assert dashboard_path().is_file()
    assert rules_path().is_file()
    assert dashboard_path().parent.name == "monitoring"


def test_the_alert_rules_load_in_promtool() -> None:
    """OBS2: ``promtool check rules`` accepts the shipped rules (CI installs Debian's
    ``prometheus``; set PORTSIDE_REQUIRE_PROMTOOL=1 to fail rather than skip without it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("PORTSIDE_REQUIRE_PROMTOOL") == "1":
            pytest.fail("promtool is not on PATH (apt-get install prometheus)")
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    result = subprocess.run(
        [promtool, "check", "rules", str(rules_path())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout + result.stderr


def test_the_rules_cover_the_a6_and_obs2_thresholds() -> None:
    """A6, OBS2: depth > 100, latency > 2x baseline, failures > 5 %, Redis memory near
    maxmemory, eviction policy other than noeviction."""
    text = rules_path().read_text(encoding="utf-8")
    for alert, threshold in _ALERT_THRESHOLDS.items():
        start = text.index(f"alert: {alert}")
        end = text.find("- alert:", start + 1)
        assert threshold in text[start : end if end > 0 else None], alert


def test_the_dashboard_has_the_structure_of_its_grafana_schema_version() -> None:
    """OBS2: the classic dashboard model of schemaVersion 39 (Grafana 10.4/11): required
    fields, panels on the 24-column grid without overlap, unique ids, Prometheus targets
    with refIds, and the datasource variable every panel uses."""
    board = dashboard()
    assert board["schemaVersion"] == GRAFANA_SCHEMA_VERSION == 39
    for key, kind in {
        "title": str,
        "uid": str,
        "panels": list,
        "templating": dict,
        "time": dict,
        "editable": bool,
        "graphTooltip": int,
        "annotations": dict,
    }.items():
        assert isinstance(board[key], kind), key
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids: set[int] = set()
    cells: set[tuple[int, int]] = set()
    for panel in board["panels"]:
        assert panel["type"] in _PANEL_TYPES
        assert isinstance(panel["id"], int)
        assert panel["id"] not in ids
        ids.add(panel["id"])
        assert panel["title"]
        assert set(panel["fieldConfig"]) == {"defaults", "overrides"}
        assert isinstance(panel["options"], dict)
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert 1 <= grid["w"] <= 24
        assert 0 <= grid["x"] <= 23
        assert grid["x"] + grid["w"] <= 24
        assert grid["h"] >= 1
        assert grid["y"] >= 0
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"panel {panel['title']!r} overlaps another"
                cells.add((x, y))
        ref_ids = [target["refId"] for target in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids) >= 1
        assert all(target["expr"] for target in panel["targets"])


def test_the_dashboard_shows_what_obs2_asks_for() -> None:
    """OBS2: queue depth, throughput, latency percentiles, failure rate, dead letters, outbox
    lag and Redis memory each have a panel."""
    text = " ".join(dashboard_expressions())
    for needed in (
        "portside_queue_depth",
        "rate(portside_attempts_completed_total",
        "histogram_quantile(0.95",
        "histogram_quantile(0.99",
        'portside_attempts_failed_total{final="true"',
        "portside_outbox_pending_events",
        "portside_queue_server_memory_used_bytes",
    ):
        assert needed in text, needed
    assert metric_names(rule_expressions())


def test_one_registry_with_process_and_runtime_collectors_and_no_created_series() -> None:
    """OBS2: a worker's registry, which the API's metrics join in one process, exports
    process_*, python_info and python_gc_* series, and no _created series."""
    worker = WorkerMetrics()
    api = HttpMetrics(registry=worker.registry)
    worker.attempt_finished("q", "job", 0.01)
    worker.attempt_finished("q", "job", 0.02, "transient", final=True)
    api.requests.labels("GET", "/livez", "200").inc()
    text = worker.exposition().decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}
    assert "python_info" in names
    assert "python_gc_collections_total" in names
    if os.path.exists("/proc/self/stat"):
        assert "process_cpu_seconds_total" in names
        assert "process_resident_memory_bytes" in names
    assert "portside_http_requests_total" in names
    assert not [name for name in names if name.endswith("_created")]


def test_metric_names_follow_prometheus_conventions() -> None:
    """OBS2: counters end in _total, ratios in _ratio (never _rate), units in the names."""
    worker = WorkerMetrics()
    api = HttpMetrics(registry=worker.registry)
    worker.attempt_finished("q", "job", 0.01)
    api.failure_rate.labels("q").set(0.5)
    families = list(worker.registry.collect())
    portside = [family for family in families if family.name.startswith("portside_")]
    assert portside
    for family in portside:
        if family.type == "counter":
            assert all(sample.name.endswith("_total") for sample in family.samples), family.name
        assert not family.name.endswith("_rate"), family.name
        if "duration" in family.name or "startup" in family.name:
            assert family.name.endswith("_seconds"), family.name
    assert "portside_health_failure_ratio" in {family.name for family in portside}
