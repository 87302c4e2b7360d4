"""The `graphfraud` command line: a thin Typer app.

Each verb parses flags, calls one library function and prints a summary. Verbs live in one module
per audience (batch, graph database, models, service); heavy imports (torch, FastAPI, the neo4j
driver) happen inside the verbs so `--help` stays fast.
"""

from __future__ import annotations

import logging
import sys

import typer
from rich.console import Console

from graphfraud import __version__
from graphfraud.errors import GraphFraudError

app = typer.Typer(
    name="graphfraud",
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
        "warning", "--log-level", envvar="GRAPHFRAUD_LOG_LEVEL", help="debug shows tracebacks"
    ),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True),
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
