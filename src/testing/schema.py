"""What the template database gets: portside's migrations, then the project's own."""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

from portside.ports import ConfigurationError
from portside.testing.databases import Migrate, load_migrate

__all__ = ["INI_OPTION", "resolve", "template_migrations"]

INI_OPTION = "portside_migrations"


def resolve(spec: str) -> Callable[[str], Any]:
    """The callable named ``module:function`` (e.g. ``myapp.db:migrate``).

    Raises:
        ConfigurationError: Naming the ini option and what is wrong with ``spec``.
    """
    module_name, _, attribute = spec.partition(":")
    fix = f"list 'package.module:function' entries under the ini option {INI_OPTION}"
    if not module_name or not attribute:
        raise ConfigurationError(f"{INI_OPTION} entry {spec!r} is not 'module:function'", fix=fix)
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(
            f"{INI_OPTION} entry {spec!r} cannot be loaded: {exc}", fix=fix
        ) from exc
    if not callable(target):
        raise ConfigurationError(f"{INI_OPTION} entry {spec!r} is not callable", fix=fix)
    return target  # type: ignore[no-any-return]


def template_migrations(specs: Sequence[str]) -> Migrate | None:
    """A ``migrate(dsn)`` applying portside's migrations, then each of ``specs`` in order.

    Each spec names a function taking the template database's DSN, sync or async; it runs
    once per worker and session, and every test database is cloned from the result.
    Returns None (portside's migrations only) when ``specs`` is empty.
    """
    if not specs:
        return None

    async def migrate(dsn: str) -> list[str]:
        applied: list[str] = []
        portside_migrate = load_migrate()
        if portside_migrate is not None:
            applied.extend(await portside_migrate(dsn))
        for spec in specs:
            function = resolve(spec)
            if inspect.iscoroutinefunction(function):
                await function(dsn)
            else:
                # Off the harness's loop: a sync function may run its own (asyncio.run).
                outcome = await asyncio.to_thread(function, dsn)
                if inspect.isawaitable(outcome):
                    await outcome
            applied.append(spec)
        return applied

    return migrate
