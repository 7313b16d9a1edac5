"""The Grafana dashboard and Prometheus alert rules shipped with portside (OBS2)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["DASHBOARD_FILE", "GRAFANA_SCHEMA_VERSION", "RULES_FILE", "dashboard_path", "rules_path"]

DASHBOARD_FILE = "grafana-dashboard.json"
RULES_FILE = "prometheus-rules.yml"

GRAFANA_SCHEMA_VERSION = 39
"""The dashboard's ``schemaVersion``: Grafana 10.4 and 11.x (classic dashboard JSON model);
newer Grafana versions migrate it on import."""


def _path(name: str) -> Path:
    return Path(str(files(__name__) / name))


def dashboard_path() -> Path:
    """Where the installed Grafana dashboard JSON is (import it in Grafana, or provision it)."""
    return _path(DASHBOARD_FILE)


def rules_path() -> Path:
    """Where the installed Prometheus alert rules file is (list it in ``rule_files``)."""
    return _path(RULES_FILE)
