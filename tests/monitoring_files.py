"""Read the shipped Grafana dashboard and Prometheus rules: the metric names they use."""

from __future__ import annotations

import json
import re
from typing import Any

from portside.app.monitoring import dashboard_path, rules_path

_METRIC = re.compile(r"\bportside_[a-z0-9_]+\b")


def dashboard() -> dict[str, Any]:
    """The shipped dashboard, parsed."""
    loaded: dict[str, Any] = json.loads(dashboard_path().read_text(encoding="utf-8"))
    return loaded


def dashboard_expressions() -> list[str]:
    """Every PromQL expression of the dashboard: panel targets and query variables."""
    board = dashboard()
    found = [target["expr"] for panel in board["panels"] for target in panel["targets"]]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["definition"])
    return found


def rule_expressions() -> list[str]:
    """Every ``expr`` of the shipped rules file (single-line or ``|`` blocks)."""
    expressions: list[str] = []
    lines = rules_path().read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        key, _, value = line.strip().partition(":")
        if key != "expr":
            continue
        value = value.strip()
        if value != "|":
            expressions.append(value)
            continue
        indent = len(line) - len(line.lstrip())
        block = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= indent:
                break
            block.append(following.strip())
        expressions.append(" ".join(block).strip())
    return expressions


def metric_names(expressions: list[str]) -> set[str]:
    """The portside metric names the expressions read, as exposed series names (a
    histogram's ``_bucket``, ``_sum`` and ``_count`` as written)."""
    return {name for expression in expressions for name in _METRIC.findall(expression)}
