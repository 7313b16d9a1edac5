"""portside: ports and adapters for background jobs and transactional events."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from portside.infra import Infra, get_infra, set_infra, use_infra

__all__ = ["Infra", "__version__", "get_infra", "set_infra", "use_infra", "version"]


def version() -> str:
    """The installed distribution's version."""
    try:
        return _dist_version("portside")
    except PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0+unknown"


__version__ = version()
