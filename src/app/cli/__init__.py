"""The ``portside`` command line: worker, dispatch, backfill, schedule, migrate, failed, outbox."""

from __future__ import annotations

import typer

from portside.app.cli._common import PortsideGroup
from portside.app.cli.dev import dev
from portside.app.cli.failed import failed
from portside.app.cli.jobs import backfill, dispatch
from portside.app.cli.ops import migrate, schedule
from portside.app.cli.outbox import outbox
from portside.app.cli.worker import worker

__all__ = ["app", "main"]

app = typer.Typer(
    cls=PortsideGroup,
    name="portside",
    help="Run and operate portside jobs. Configuration comes from options or the environment "
    "(PORTSIDE_APP, PORTSIDE_REDIS_URL, PORTSIDE_REDIS_PREFIX, PORTSIDE_POSTGRES_DSN, "
    "PORTSIDE_LOG_LEVEL). Bad input exits with code 2.",
    no_args_is_help=True,
    add_completion=False,
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
app.add_typer(failed, name="failed")
app.add_typer(outbox, name="outbox")


def main() -> None:
    """Console-script entry point (``portside = "portside.app.cli:main"``)."""
    app()
