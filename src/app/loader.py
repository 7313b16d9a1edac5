"""Load an application (or its jobs) from a ``module:attribute`` string, as ``--app`` names it."""

from __future__ import annotations

import importlib

from portside.app.application import Application
from portside.app.registry import Registry
from portside.ports import ConfigurationError

__all__ = ["load_application", "load_registry"]

EXAMPLE_SPEC = "portside.examples.dev:application"


def load_application(spec: str) -> Application:
    """Import ``module:attribute``: an ``Application``, a ``Registry`` (an application with
    jobs only) or a function returning either.

    Raises:
        ConfigurationError: a malformed spec, a missing module or attribute, or a wrong type.
    """
    target = _load(spec)
    return Application(target) if isinstance(target, Registry) else target


def load_registry(spec: str) -> Registry:
    """The jobs of what ``spec`` names: a ``Registry`` as it is; of an ``Application``, every
    job its workers run (``Application.worker_registry``: its jobs, its run service's and
    webhook deliveries).

    Raises:
        ConfigurationError: a malformed spec, a missing module or attribute, or a wrong type.
    """
    target = _load(spec)
    return target if isinstance(target, Registry) else target.worker_registry()


def _load(spec: str) -> Application | Registry:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(
            f"app {spec!r} is not in the form module:attribute",
            fix=f"pass e.g. --app {EXAMPLE_SPEC}",
            field="app",
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(
            f"app module {module_name!r} cannot be imported ({exc})",
            fix="check the module path and that it is importable (PYTHONPATH)",
            field="app",
        ) from exc
    target = getattr(module, attr, None)
    if target is None:
        raise ConfigurationError(
            f"module {module_name!r} has no attribute {attr!r}",
            fix="point --app at the Application or Registry object (module:attribute)",
            field="app",
        )
    if callable(target) and not isinstance(target, (Registry, Application)):
        target = target()
    if not isinstance(target, (Registry, Application)):
        raise ConfigurationError(
            f"{spec} is a {type(target).__name__}, not a portside Registry or Application",
            fix="point --app at a portside.app.Registry or Application (or a function "
            "returning one)",
            field="app",
        )
    return target
