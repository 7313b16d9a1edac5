"""The ``portside`` command line: worker, dispatch, backfill, schedule, migrate, failed, outbox,
and the operator's queues, pause, resume, purge, runs and api."""

from __future__ import annotations

from typing import Annotated

import typer

from portside import version
from portside.app.cli._common import PortsideGroup
from portside.app.cli.api import api
from portside.app.cli.dev import dev
from portside.app.cli.failed import failed
from portside.app.cli.jobs import backfill, dispatch
from portside.app.cli.ops import migrate, schedule
from portside.app.cli.outbox import outbox
from portside.app.cli.queues import outbox_streams, pause, purge, queues, resume, runs
from portside.app.cli.worker import worker

__all__ = ["app", "main"]

app = typer.Typer(
    cls=PortsideGroup,
    name="portside",
    help="Run and operate portside jobs. Configuration comes from options or the environment "
    "(PORTSIDE_APP, PORTSIDE_REDIS_URL, PORTSIDE_REDIS_PREFIX, PORTSIDE_POSTGRES_DSN, "
    "PORTSIDE_LOG_LEVEL). Bad input exits with code 2.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
# One line per command; `portside dev` (embedded servers + worker + API) registers here too.
app.command()(dev)
app.command()(worker)
app.command()(dispatch)
app.command()(backfill)
app.command()(schedule)
app.command()(migrate)
app.command()(api)
app.command()(queues)
app.command()(pause)
app.command()(resume)
app.command()(purge)
app.command()(runs)
app.add_typer(failed, name="failed")
app.add_typer(outbox, name="outbox")
outbox.command("streams")(outbox_streams)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"portside {version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Run and operate portside jobs."""


def main() -> None:
    """Console-script entry point (``portside = "portside.app.cli:main"``)."""
    app()
