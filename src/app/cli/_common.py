"""Shared CLI plumbing: one-line errors with exit code 2, options, infra for a command."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click; older releases use the click package
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - depends on the installed typer
    from click import exceptions as click_errors  # type: ignore[no-redef]

from portside.app.settings import Settings
from portside.infra import Infra, get_infra, use_infra
from portside.ports import ConfigurationError, InfraNotSetError, PortsideError, ValidationError

__all__ = [
    "AppOption",
    "PortsideGroup",
    "PostgresOption",
    "RedisOption",
    "command_infra",
    "fail",
    "parse_json_object",
    "run",
    "user_errors",
]

T = TypeVar("T")
USAGE_EXIT = 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fail(message: str, code: int = USAGE_EXIT) -> NoReturn:
    """Print ``error: message`` on one line to stderr and exit with ``code``."""
    typer.echo(f"error: {_one_line(message)}", err=True)
    raise typer.Exit(code)


class PortsideGroup(TyperGroup):
    """Prints click's usage errors on one line (``error: ...``) with exit code 2."""

    def main(  # type: ignore[override]
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_errors.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                # `portside` or `portside failed` alone: the help text is the message.
                typer.echo(exc.format_message(), err=True)
                sys.exit(USAGE_EXIT)
            command = f" {exc.ctx.info_name}" if exc.ctx and exc.ctx.parent else ""
            typer.echo(f"error:{command} {_one_line(exc.format_message())} (see --help)", err=True)
            sys.exit(USAGE_EXIT)
        except click_errors.ClickException as exc:
            typer.echo(f"error: {_one_line(exc.format_message())}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="MODULE:ATTR",
        help="The application as module:attribute, an Application or a job Registry, e.g. "
        "portside.examples.dev:application [env: PORTSIDE_APP].",
        show_default=False,
    ),
]
RedisOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        metavar="URL",
        help="Redis URL [env: PORTSIDE_REDIS_URL].",
        show_default=False,
    ),
]
PostgresOption = Annotated[
    str | None,
    typer.Option(
        "--postgres-dsn",
        metavar="DSN",
        help="Postgres DSN [env: PORTSIDE_POSTGRES_DSN].",
        show_default=False,
    ),
]


@contextmanager
def user_errors() -> Iterator[None]:
    """Bad input and configuration exit 2, unreachable servers exit 1, each on one line."""
    try:
        yield
    except (ValidationError, ConfigurationError) as exc:
        fail(str(exc))
    except PortsideError as exc:
        fail(str(exc), code=1)
    except OSError as exc:
        fail(f"cannot reach a server: {exc}", code=1)


def parse_json_object(text: str, option: str = "--data") -> dict[str, Any]:
    """``text`` as a JSON object, or a one-line ``ValidationError``."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{option} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            fix=f"""pass an object such as {option} '{{"organizationId": "org-1"}}'""",
            field=option,
        ) from exc
    if not isinstance(value, dict):
        raise ValidationError(
            f"{option} must be a JSON object, got {type(value).__name__}",
            fix="wrap the fields in {...}",
            field=option,
        )
    return value


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, mapping portside errors to one-line exits."""
    with user_errors():
        return asyncio.run(coroutine)


@asynccontextmanager
async def command_infra(settings: Settings) -> AsyncIterator[Infra]:
    """The Infra already installed in this context (tests), else one built from ``settings``."""
    try:
        installed: Infra | None = get_infra()
    except InfraNotSetError:
        installed = None
    if installed is not None:
        yield installed
        return
    from portside.app.wiring import build_infra

    infra = build_infra(settings)
    async with infra:
        with use_infra(infra):
            yield infra
