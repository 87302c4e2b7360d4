"""`--help` that teaches: every option says what it is, shows its default and a value name a
user types (no `<bool>`, `<int>`), for every verb of every module."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
import typer.main
from typer.testing import CliRunner

from graphfraud.cli import app

SKIP = {"help"}


def _commands() -> Iterator[tuple[list[str], click.Command]]:
    root = typer.main.get_command(app)

    def walk(path: list[str], command: click.Command) -> Iterator[tuple[list[str], click.Command]]:
        yield path, command
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk([*path, name], sub)

    yield from walk([], root)


COMMANDS = list(_commands())


def test_the_walk_reaches_every_module_verb() -> None:
    verbs = {" ".join(path) for path, _ in COMMANDS}
    assert {
        "run",
        "ingest",
        "link",
        "rings",
        "score",
        "serve",
        "graphdb start",
        "models list",
    } <= verbs


@pytest.mark.parametrize(
    ("path", "command"),
    COMMANDS,
    ids=lambda v: " ".join(v) or "root" if isinstance(v, list) else "",
)
def test_every_option_has_help_a_value_name_and_its_default(
    path: list[str], command: click.Command
) -> None:
    ctx = click.Context(command, info_name=" ".join(["graphfraud", *path]))
    for param in command.params:
        if param.name in SKIP or getattr(param, "hidden", False):
            continue
        record = param.get_help_record(ctx)
        assert record is not None, param.name
        names, text = record
        where = f"{' '.join(path)} {names}"
        if param.param_type_name == "argument":
            continue  # shown as NAME with its type, e.g. `VERSION <str>`
        assert "<" not in names, f"{where}: a Python type as value name"
        assert text.strip(), f"{where}: no help"
        if getattr(param, "is_flag", False) or param.required:
            continue
        assert "default" in text.lower(), f"{where}: default not shown"


def test_help_renders_plain_with_defaults_and_env_vars() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    text = " ".join(result.output.split())
    for needle in (
        "--port PORT",
        "[default: (8000)",
        "--host HOST",
        "[default: (127.0.0.1)]",
        "--workers N",
        "GRAPHFRAUD_SERVICE__PORT",
        "(audit.log, in the working directory)",
    ):
        assert needle in text, needle
