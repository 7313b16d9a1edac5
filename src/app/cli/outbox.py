"""``portside outbox purge``: delete published outbox events past an age (Q15)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

import typer

from portside.app.cli._common import (
    PostgresOption,
    RedisOption,
    command_infra,
    fail,
    run,
    user_errors,
)
from portside.app.settings import Settings

__all__ = ["outbox", "parse_age"]

outbox = typer.Typer(
    help="The transactional outbox: list streams, purge published events.", no_args_is_help=True
)

_AGE = re.compile(r"^\s*(?P<amount>\d+(?:\.\d+)?)\s*(?P<unit>[smhd]?)\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "": 86400}


def parse_age(text: str, option: str = "--older-than") -> timedelta:
    """An age such as ``7d``, ``12h``, ``30m``, ``90s`` (a bare number is days); exits 2
    naming ``option`` and the fix otherwise."""
    match = _AGE.match(text)
    if match is None:
        fail(
            f"{option} {text!r} is not an age; give a number with a unit: 7d, 12h, 30m or 90s "
            "(a bare number means days)"
        )
    seconds = float(match["amount"]) * _UNITS[match["unit"]]
    if seconds > 100 * 365 * 86400:
        fail(f"{option} {text!r} is over 100 years; give for example 7d")
    return timedelta(seconds=seconds)


@outbox.command("purge")
def purge(
    older_than: Annotated[
        str,
        typer.Option(
            metavar="AGE",
            help="Delete events published longer ago than this: 7d, 12h, 30m, 90s "
            "(a bare number is days).",
        ),
    ] = "7d",
    redis_url: RedisOption = None,
    postgres_dsn: PostgresOption = None,
) -> None:
    """Delete published outbox events older than --older-than (the worker also does this
    every 6 hours, keeping PORTSIDE_OUTBOX_RETENTION days, 7 by default). Events not yet
    published are never deleted."""
    age = parse_age(older_than)
    with user_errors():
        settings = Settings.from_env(redis_url=redis_url, postgres_dsn=postgres_dsn)

    async def go() -> None:
        async with command_infra(settings) as infra:
            removed = await infra.outbox.purge_published(age.total_seconds())
        typer.echo(f"purged {removed} published outbox event(s) older than {older_than.strip()}")

    run(go())
