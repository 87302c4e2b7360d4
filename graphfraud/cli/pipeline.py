"""CLI verbs of the batch: `run` (every stage), one verb per stage, and `evaluate`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from graphfraud.config import Settings, load_settings
from graphfraud.errors import ConfigError

console = Console()

RUN_HELP = (
    "Run the whole batch: ingest → normalise → fuzzy-link → rings → features → model → scores "
    "(→ publish to Neo4j when --graph-uri is given).\n\n"
    "Inputs follow the contract in docs: users (user_id, email, phone, name, created_at, label) "
    "and optional device sightings (user_id, device_id, ip, seen_at), CSV or Parquet. Bad rows go "
    "to OUT/quarantine/ with a reason; OUT/manifest.json reconciles every input row.\n\n"
    "Example: graphfraud run --users data/users.csv --devices data/devices.csv --out runs/today"
)


@contextmanager
def _progress(quiet: bool) -> Iterator[Callable[[str], None]]:
    """A spinner naming the current step, with a tick line per finished step."""
    if quiet:
        yield lambda _m: None
        return
    current = [""]
    started = [time.perf_counter()]
    with console.status("starting", spinner="dots") as status:

        def say(message: str) -> None:
            if current[0]:
                took = time.perf_counter() - started[0]
                console.print(f"  [green]✓[/green] {current[0]} [dim]({took:.1f}s)[/dim]")
            current[0], started[0] = message, time.perf_counter()
            status.update(f"{message} …")

        yield say
        say("")


MODELS_HELP = (
    "comma-separated candidate models, picked by out-of-fold AUPRC (default gbm,gnn,gnn_stack): "
    "gbm (gradient boosting on neighbour aggregates), gnn (relation-aware GNN), gnn_stack (their "
    "blend; costs what gbm + gnn cost); gbm alone is ~5x faster at 1M users [env var: "
    "GRAPHFRAUD_MODEL__CANDIDATES as JSON, e.g. '[\"gbm\"]']"
)


IDENTIFIER_HELP = (
    "declare an exact-match identifier kind held in the users file's column of that name, e.g. "
    "--identifier pan_hash (repeatable); accounts sharing a value are linked like a shared "
    "mailbox. More options (weight, reason code, masking) via GRAPHFRAUD_IDENTIFIERS as JSON, "
    'e.g. \'[{"name": "pan_hash", "prior": 0.9}]\''
)


def _settings(
    registry: Path | None = None,
    graph_uri: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    models: str | None = None,
    identifiers: list[str] | None = None,
) -> Settings:
    settings = load_settings()
    if identifiers:
        from graphfraud.config import DeclaredIdentifier

        known = {d.name for d in settings.identifiers}
        try:
            settings.identifiers += [
                DeclaredIdentifier(name=name) for name in identifiers if name not in known
            ]
        except ValueError as exc:
            raise ConfigError(
                f"--identifier: {identifiers} are not all kind names",
                hint="lower-case letters, digits and _, starting with a letter (e.g. pan_hash)",
            ) from exc
        settings.identifier_registry()  # a clash with a built-in kind fails here, in one line
    if models is not None:
        from graphfraud.model.kinds import model_kinds

        kinds = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [k for k in kinds if k not in model_kinds()]
        if unknown or not kinds:
            what = f"unknown model {unknown[0]!r}" if unknown else "no model named"
            raise ConfigError(f"--models: {what}", hint=f"pick from {', '.join(model_kinds())}")
        settings.model.candidates = kinds
    if registry is not None:
        settings.model.registry = registry
    if graph_uri is not None:
        settings.graph.uri = graph_uri
    if seed is not None:
        settings.model.seed = seed
        settings.rings.seed = seed
    if device is not None:
        settings.model.device = device
    return settings


def print_summary(run_dir: Path, top: int = 5) -> None:
    """Users, links by kind, rings, the riskiest rings with why, and where the outputs are."""
    from graphfraud.rundir import RunDir
    from graphfraud.schema import LINKS_FILE, SCORES_FILE
    from graphfraud.scoring.scores import scored_rings

    run = RunDir(run_dir)
    manifest = run.manifest()
    counts = manifest.get("counts", {})
    links = run.read(LINKS_FILE, columns=["kind"])
    rings = scored_rings(run)
    scores = run.read(SCORES_FILE, columns=["score"])
    console.print()
    console.rule(f"[bold]graphfraud run {manifest.get('run_id', '')}")
    for role, c in counts.items():
        nulled = " · ".join(
            f"{n:,} {f} nulled" for f, n in c.get("rejected_fields", {}).items() if n
        )
        console.print(
            f"{role:8s} {c['input']:>10,} rows in · {c['accepted']:>10,} accepted · "
            f"[{'red' if c['quarantined'] else 'green'}]{c['quarantined']:,} quarantined[/]"
            + (f" · [yellow]{nulled}[/]" if nulled else "")
        )
    by_kind = links.group_by("kind").len().sort("len", descending=True)
    console.print(
        "links    " + " · ".join(f"{k} {n:,}" for k, n in by_kind.iter_rows()) or "links    none"
    )
    big = rings.filter(pl.col("size") >= 3)
    largest = int(rings["size"].max() or 0) if rings.height else 0  # type: ignore[arg-type]
    console.print(f"rings    {rings.height:,} found ({big.height:,} of ≥3), largest {largest}")
    high = int((scores["score"] >= 0.5).sum())
    version = manifest.get("model_version")
    console.print(f"scores   {scores.height:,} users, {high:,} with score ≥ 0.5 · model {version}")
    if big.height:
        table = Table(title=f"Top {top} rings by risk", show_lines=False)
        for col in ("ring_id", "size", "risk", "why"):
            table.add_column(col)
        for r in (
            big.sort("ring_score", descending=True, nulls_last=True).head(top).iter_rows(named=True)
        ):
            why = [r["top_link_kinds"].replace(",", ", ")]
            if r["shared_device_ratio"] and r["shared_device_ratio"] >= 0.5:
                why.append(f"{r['shared_device_ratio']:.0%} share a device")
            if r["creation_burst"] and r["creation_burst"] >= 0.6:
                why.append(f"{r['creation_burst']:.0%} signed up within 48 h")
            if r["n_labelled_fraud"]:
                why.append(f"{r['n_labelled_fraud']} confirmed fraud")
            table.add_row(
                r["ring_id"], str(r["size"]), f"{r['ring_score'] or 0:.2f}", "; ".join(why)
            )
        console.print(table)
    console.print(
        f"outputs  {run_dir}/ scores.parquet · rings.parquet · links.parquet · quarantine/ · "
        "manifest.json"
    )
    console.print(
        f"took     {manifest.get('seconds', 0):.1f}s · next: graphfraud serve --run {run_dir}"
    )


def run(
    users: Path = typer.Option(..., "--users", help="users file (CSV or Parquet)", exists=False),
    devices: Path | None = typer.Option(None, "--devices", help="device sightings file (optional)"),
    out: Path = typer.Option(
        ..., "--out", help="run directory to write (created; rerun to repair)"
    ),
    graph_uri: str | None = typer.Option(
        None,
        "--graph-uri",
        envvar="GRAPHFRAUD_GRAPH__URI",
        help="bolt://host:7687 to also publish to Neo4j",
    ),
    registry: Path | None = typer.Option(
        None,
        "--registry",
        envvar="GRAPHFRAUD_MODEL__REGISTRY",
        help="model registry directory [default: models]",
    ),
    seed: int | None = typer.Option(None, "--seed", help="seed for ring detection and training"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda (model training)"),
    models: str | None = typer.Option(None, "--models", help=MODELS_HELP),
    identifier: list[str] | None = typer.Option(None, "--identifier", help=IDENTIFIER_HELP),
    emerging: Path | None = typer.Option(
        None,
        "--emerging",
        envvar="GRAPHFRAUD_RINGS__EMERGING",
        help="the day's emerging rings (`graphfraud intraday export`): rings record which one "
        "they grew from",
    ),
    previous: Path | None = typer.Option(
        None,
        "--previous",
        help="last night's complete run directory to build on (a failed one is refused, naming "
        "the last good run): only what changed since is compared, clustered and re-scored "
        "(with the promoted model), to the same links, rings and scores as a full run",
    ),
    delta: bool = typer.Option(
        False,
        "--delta",
        help="--users/--devices hold only tonight's changes against --previous: users rows "
        "with an `op` column (upsert | delete; a delete erases the user everywhere) and new "
        "device sightings (see README, incremental nights)",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress or summary"),
) -> None:
    """Run the whole batch on one set of input files (a full snapshot, or with --delta the
    changes since --previous)."""
    from graphfraud.pipeline import run_pipeline

    settings = _settings(registry, graph_uri, seed, device, models, identifier)
    if emerging is not None:
        settings.rings.emerging = emerging
    with _progress(quiet) as say:
        result = run_pipeline(
            users,
            devices,
            out,
            settings,
            progress=not quiet,
            say=say,
            previous=previous,
            delta=delta,
        )
    if not quiet:
        print_summary(result.run_dir)


def ingest_verb(
    users: Path = typer.Option(..., "--users", help="users file (CSV or Parquet)"),
    devices: Path | None = typer.Option(None, "--devices", help="device sightings file (optional)"),
    out: Path = typer.Option(..., "--out", help="run directory to write"),
    identifier: list[str] | None = typer.Option(None, "--identifier", help=IDENTIFIER_HELP),
) -> None:
    """Stage 1: read, validate, quarantine and normalise the inputs into OUT."""
    from graphfraud.pipeline import stage_ingest
    from graphfraud.rundir import RunDir

    settings = _settings(identifiers=identifier)
    with _progress(False) as say:
        stage_ingest(RunDir(out), users, devices, settings, say)


def link_verb(
    run_dir: Path = typer.Option(..., "--run", help="run directory after `ingest`"),
) -> None:
    """Stage 2: block, compare and link users (writes links.parquet)."""
    from graphfraud.pipeline import stage_link
    from graphfraud.rundir import RunDir

    with _progress(False) as say:
        stage_link(RunDir(run_dir), _settings(), say)


def rings_verb(
    run_dir: Path = typer.Option(..., "--run", help="run directory after `link`"),
) -> None:
    """Stage 3: find rings on the weighted user graph (writes ring_members/rings.parquet)."""
    from graphfraud.pipeline import stage_rings
    from graphfraud.rundir import RunDir

    with _progress(False) as say:
        stage_rings(RunDir(run_dir), _settings(), say)


def score_verb(
    run_dir: Path = typer.Option(..., "--run", help="run directory after `rings`"),
    registry: Path | None = typer.Option(None, "--registry", envvar="GRAPHFRAUD_MODEL__REGISTRY"),
    device: str | None = typer.Option(None, "--device", help="auto | cpu | cuda"),
    models: str | None = typer.Option(None, "--models", help=MODELS_HELP),
) -> None:
    """Stage 4: features, model training/selection, user and ring scores."""
    from graphfraud.pipeline import stage_score
    from graphfraud.rundir import RunDir

    settings = _settings(registry, device=device, models=models)
    with _progress(False) as say:
        stage_score(RunDir(run_dir), settings, say, progress=True)
    print_summary(run_dir)


def evaluate(
    run_dir: Path = typer.Option(..., "--run", help="finished run directory"),
    truth: Path = typer.Option(..., "--truth", help="truth file: user_id, is_fraud[, ring_id]"),
    json_out: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Score a run against known truth, on users whose label the run did NOT see.

    Reports ROC-AUC, average precision, precision@K, ring recall (Jaccard ≥ 0.5), ring precision
    and the largest predicted ring over the largest true ring.
    """
    import json

    from graphfraud.evaluate import evaluate_run

    result = evaluate_run(run_dir, truth)
    if json_out:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    table = Table(title=f"Evaluation of {run_dir} on {result.eval_users:,} unlabelled users")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.as_dict().items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach the batch verbs."""
    app.command(help=RUN_HELP)(run)
    app.command("ingest")(ingest_verb)
    app.command("link")(link_verb)
    app.command("rings")(rings_verb)
    app.command("score")(score_verb)
    app.command()(evaluate)
