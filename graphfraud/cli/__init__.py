"""The `graphfraud` command line: a thin Typer app.

Each verb parses flags, calls one library function and prints a summary. Verbs live in one module
per audience (batch, graph database, models, service); heavy imports (torch, FastAPI, the neo4j
driver) happen inside the verbs so `--help` stays fast.
"""

from __future__ import annotations

import logging
import sys
import typing
from typing import Any

import click
import typer
from rich.console import Console
from typer.core import TyperGroup

from graphfraud import __version__
from graphfraud.errors import GraphFraudError

# Value names for options that do not set their own `metavar`: what a user types, never a Python
# type (`<bool>`, `<int>`). Flags take no value and show none.
_METAVARS: dict[object, str] = {int: "N", float: "NUMBER", str: "TEXT"}


def _value_name(param: click.Parameter) -> str:
    desc = getattr(param, "type_descriptor", None)
    if desc is None:
        return "VALUE"
    if getattr(desc, "is_path", False):
        return "PATH"
    annotation = getattr(desc, "annotation", None)
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is list and args:
        annotation = args[0]
    return _METAVARS.get(annotation, "VALUE")


def _plain_help(command: click.Command) -> None:
    """Plain click help for `command` and everything under it (Rich's markup would eat the
    `[default: …]` and `[env var: …]` notes help texts carry), with value names filled in."""
    command.rich_markup_mode = None  # type: ignore[attr-defined]
    for param in command.params:
        if param.metavar is not None or getattr(param, "is_flag", False):
            continue
        if param.param_type_name == "argument":
            param.metavar = (param.name or "value").upper()
        elif param.param_type_name == "option":
            param.metavar = _value_name(param)
    for sub in getattr(command, "commands", {}).values():
        _plain_help(sub)


class _HelpGroup(TyperGroup):
    """The root group: applies `_plain_help` to every verb, whichever module defines it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _plain_help(typing.cast(click.Command, self))


app = typer.Typer(
    name="graphfraud",
    cls=_HelpGroup,
    rich_markup_mode=None,
    help=(
        "Graph-based fraud-ring detection.\n\n"
        "Typical night: `graphfraud synth --out data/` (or your own exports), then "
        "`graphfraud run --users data/users.csv --devices data/devices.csv --out runs/today`, "
        "then `graphfraud serve --run runs/today`. Every setting is also an env var "
        "GRAPHFRAUD_<GROUP>__<NAME> (e.g. GRAPHFRAUD_GRAPH__URI)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"graphfraud {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    log_level: str = typer.Option(
        "warning",
        "--log-level",
        envvar="GRAPHFRAUD_LOG_LEVEL",
        metavar="LEVEL",
        help="debug | info | warning | error; debug shows tracebacks",
    ),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _register() -> None:
    # Imported here so each module can `from graphfraud.cli import app` without a cycle.
    from graphfraud.cli import batch, graphdb, intraday, models, pipeline, schedule, serve

    for module in (batch, pipeline, schedule, graphdb, models, serve, intraday):
        module.register(app)


_register()


def main() -> None:
    """Entry point: known errors become one red line and exit code 1 (traceback only in debug)."""
    try:
        code = app(standalone_mode=False)
    except GraphFraudError as exc:
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            logging.exception("failed")
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except (typer.Exit, typer.Abort) as exc:
        code = getattr(exc, "exit_code", 1)
        sys.exit(code)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/red]")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: missing option, bad value
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err_console.print(f"[red]error:[/red] {exc.format_message()}")
        sys.exit(exc.exit_code or 2)
    # Without standalone mode click returns a verb's `typer.Exit(code)` instead of exiting.
    sys.exit(code if isinstance(code, int) else 0)
