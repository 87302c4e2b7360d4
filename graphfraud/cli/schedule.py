"""CLI verbs for scheduled nights: `nightly` (cron / systemd), `status` and `current`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from graphfraud.cli.pipeline import (
    DEVICE_OPTION,
    DEVICES_OPTION,
    IDENTIFIER_OPTION,
    MODELS_OPTION,
    REGISTRY_OPTION,
    GraphUriOption,
    QuietOption,
    _progress,
    _settings,
)

if TYPE_CHECKING:
    from graphfraud.schedule.runs import RunState

console = Console()
err_console = Console(stderr=True)

RUNS_DIR_HELP = "the runs directory: one run directory per night, and CURRENT"

NIGHTLY_HELP = (
    "Run one night into RUNS_DIR/NAME and move RUNS_DIR/CURRENT to it once it passed its checks "
    "(for cron or a systemd timer; the Airflow DAG runs the same steps as tasks).\n\n"
    "Holds RUNS_DIR's lock (a second nightly fails at once, naming the first), marks runs that "
    "were killed mid-way as failed, builds on the run CURRENT names (--previous; none: a full "
    "night), then checks the run as the service's swap gate does (complete, users, scores, "
    "model version, not under service.swap_min_user_ratio of the current run's users). A "
    "failure leaves CURRENT where it was and exits 1; rerun the night to repair it.\n\n"
    "Example: graphfraud nightly --runs-dir /srv/graphfraud/runs --users export/users.parquet "
    "--devices export/devices.parquet"
)


def nightly(
    runs_dir: Path = typer.Option(..., "--runs-dir", metavar="DIR", help=RUNS_DIR_HELP),
    users: Path = typer.Option(
        ..., "--users", metavar="FILE", help="tonight's users file (CSV or Parquet)"
    ),
    devices: Path | None = DEVICES_OPTION,
    name: str | None = typer.Option(
        None,
        "--name",
        metavar="NAME",
        show_default="today's UTC date, YYYY-MM-DD",
        help="run directory name",
    ),
    graph_uri: GraphUriOption = None,
    registry: Path | None = REGISTRY_OPTION,
    models: str | None = MODELS_OPTION,
    device: str | None = DEVICE_OPTION,
    identifier: list[str] | None = IDENTIFIER_OPTION,
    quiet: QuietOption = False,
) -> None:
    from graphfraud.cli.pipeline import print_summary
    from graphfraud.schedule.nightly import run_nightly

    settings = _settings(registry, graph_uri, device=device, models=models, identifiers=identifier)
    with _progress(quiet, runs_dir) as say:
        result = run_nightly(
            runs_dir, users, devices, settings, name=name, progress=not quiet, say=say
        )
    for marked in result.marked_interrupted:
        err_console.print(f"[yellow]marked failed:[/yellow] {marked.name}: {marked.error}")
    if not quiet:
        print_summary(result.run_dir)
    base = result.previous.name if result.previous is not None else "none (a full night)"
    console.print(f"current  → {result.run_dir.name} (built on {base})", highlight=False)


STATE_STYLE = {
    "complete": "green",
    "running": "cyan",
    "failed": "red",
    "interrupted": "red",
    "unreadable": "yellow",
}
BAD_STATES = frozenset({"failed", "interrupted", "unreadable"})


def status(
    runs_dir: Path | None = typer.Option(
        None, "--runs-dir", metavar="DIR", show_default="none: give --run", help=RUNS_DIR_HELP
    ),
    run: Path | None = typer.Option(
        None, "--run", metavar="DIR", show_default="none", help="one run directory instead"
    ),
    last: int = typer.Option(10, "--last", min=1, help="how many runs to list, newest first"),
    json_out: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
    mark_interrupted: bool = typer.Option(
        False,
        "--mark-interrupted",
        help="record runs whose process died mid-way (status running, nobody holds their lock) "
        "as failed, with the stage and why; `nightly` does this before it starts",
    ),
) -> None:
    """The last runs: state (complete, running — by which process —, failed — in which stage
    and why —, interrupted — killed mid-way), and which one CURRENT names.

    Exit code 1 when the newest run (or --run) failed, was interrupted or cannot be read, so a
    scheduler or a monitoring check can alert on it; 0 otherwise (also while one is running).
    """
    from graphfraud.errors import ConfigError
    from graphfraud.schedule import runs as runs_mod

    if (runs_dir is None) == (run is None):
        raise ConfigError("pass --runs-dir DIR or --run DIR (one of them)")
    if run is not None:
        if mark_interrupted:
            runs_mod.mark_interrupted(run.parent)
        states = [_one_run(run)]
    else:
        assert runs_dir is not None
        if mark_interrupted:
            for marked in runs_mod.mark_interrupted(runs_dir):
                err_console.print(f"[yellow]marked failed:[/yellow] {marked.name}")
        states = runs_mod.run_states(runs_dir)[:last]
    if json_out:
        typer.echo(json.dumps([s.as_dict() for s in states], indent=2))
    else:
        _print_states(states, runs_dir)
    if states and states[0].state in BAD_STATES:
        raise typer.Exit(1)


def _one_run(run: Path) -> RunState:
    from graphfraud.errors import ArtifactError
    from graphfraud.schedule.pointer import read_current
    from graphfraud.schedule.runs import run_state

    try:
        current = read_current(run.parent)
    except ArtifactError:
        current = None
    return run_state(run, current=current is not None and current.resolve() == run.resolve())


def _print_states(rows: list[RunState], runs_dir: Path | None) -> None:
    if not rows:
        console.print(f"no runs in {runs_dir}", highlight=False)
        return
    title = f"runs in {runs_dir}" if runs_dir is not None else f"run {rows[0].path}"
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for column in ("", "run", "state", "stage", "started (UTC)", "took", "built on"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", overflow="fold")
    for s in rows:
        detail = s.error or ""
        if s.holder is not None:
            detail = s.holder.describe()
        table.add_row(
            "→" if s.current else "",
            s.name,
            f"[{STATE_STYLE.get(s.state, 'white')}]{s.state}[/]",
            s.stage or "",
            (s.created_at or "")[:16].replace("T", " "),
            _took(s),
            s.previous or "",
            detail,
        )
    console.print(table)
    if not any(s.current for s in rows) and runs_dir is not None:
        console.print("CURRENT names none of these runs", style="yellow")


def _took(state: RunState) -> str:
    from datetime import datetime

    if not (state.created_at and state.finished_at):
        return ""
    try:
        seconds = (
            datetime.fromisoformat(state.finished_at) - datetime.fromisoformat(state.created_at)
        ).total_seconds()
    except ValueError:
        return ""
    return f"{seconds:.0f}s" if seconds < 600 else f"{seconds / 60:.0f}m"


def current(
    runs_dir: Path = typer.Option(..., "--runs-dir", metavar="DIR", help=RUNS_DIR_HELP),
    set_to: str | None = typer.Option(
        None,
        "--set",
        metavar="RUN",
        show_default="none: print CURRENT",
        help="move CURRENT to this run (its directory name, or its path inside RUNS_DIR) once "
        "it passes the checks; idempotent",
    ),
) -> None:
    """Print the run CURRENT names (its path; nothing before the first night), or move it.

    `--set` moves the pointer only to a run that passes the checks `nightly` applies (complete,
    users, scores, model version, not under service.swap_min_user_ratio of the current run's
    users), atomically; a refused move exits 1 and leaves it. Rolling back is `--set` with the
    earlier run's name. The service follows it (`graphfraud serve --runs-root RUNS_DIR`).
    """
    from graphfraud.config import load_settings
    from graphfraud.errors import ArtifactError
    from graphfraud.schedule.pointer import move_current, read_current

    if set_to is None:
        now = read_current(runs_dir)
        if now is None:
            err_console.print(f"no CURRENT in {runs_dir} yet (no night has passed its checks)")
            return
        typer.echo(str(now))
        return
    target = Path(set_to)
    run_dir = target if target.parent != Path(".") else runs_dir / set_to
    try:
        before = read_current(runs_dir)
    except ArtifactError:
        before = None  # a broken pointer: the move repairs it
    settings = load_settings()
    moved = move_current(runs_dir, run_dir, min_user_ratio=settings.service.swap_min_user_ratio)
    was = before.name if before is not None else "none"
    console.print(f"current  → {moved.name} (was {was})", highlight=False)


def register(app: typer.Typer) -> None:
    """Attach this module's verbs to the root app."""
    app.command("nightly", help=NIGHTLY_HELP)(nightly)
    app.command("status")(status)
    app.command("current")(current)
