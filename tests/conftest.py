"""Root conftest: plugins every test directory may use."""

from __future__ import annotations

pytest_plugins = ["pytester"]
