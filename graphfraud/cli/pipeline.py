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

DRIFT_EXIT_CODE = 3
"""Exit code of a complete run (or `report`) with drift warnings under `--fail-on-drift`."""

RUN_HELP = (
    "Run the whole batch: ingest → normalise → fuzzy-link → rings → features → model → scores "
    "(→ publish to Neo4j when --graph-uri is given).\n\n"
    "Inputs follow the contract in docs: users (user_id, email, phone, name, created_at, label) "
    "and optional device sightings (user_id, device_id, ip, seen_at), CSV or Parquet. Bad rows go "
    "to OUT/quarantine/ with a reason; OUT/manifest.json reconciles every input row.\n\n"
    "Every run writes OUT/report.html (drift against --previous, rings, links, hubs, model, "
    "timings) and lists drift warnings in the manifest and the summary; with --fail-on-drift a "
    f"complete run with warnings exits {DRIFT_EXIT_CODE} (for schedulers), a failed run exits "
    "1.\n\n"
    "Example: graphfraud run --users data/users.csv --devices data/devices.csv --out runs/today"
)

RETRAIN_HELP = (
    "always: train every night; never: score with the promoted model (train only if none is "
    "promoted); auto: train when the promoted model is old, a feature drifted or enough new "
    "labels arrived (GRAPHFRAUD_MODEL__RETRAIN_* thresholds), else score with it "
    "[env var: GRAPHFRAUD_MODEL__RETRAIN; default always]"
)
FAIL_ON_DRIFT_HELP = (
    f"exit with code {DRIFT_EXIT_CODE} when the report raises drift warnings (thresholds: "
    "GRAPHFRAUD_REPORT__*), after the run is complete and written"
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
    retrain: str | None = None,
) -> Settings:
    settings = load_settings()
    if retrain is not None:
        if retrain not in ("auto", "always", "never"):
            raise ConfigError(
                f"--retrain {retrain!r} is not a policy", hint="auto, always or never"
            )
        settings.model.retrain = retrain  # type: ignore[assignment]
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
    _print_model_and_drift(manifest)
    console.print(
        f"outputs  {run_dir}/ report.html · scores.parquet · rings.parquet · links.parquet · "
        "quarantine/ · manifest.json"
    )
    console.print(
        f"took     {manifest.get('seconds', 0):.1f}s · next: graphfraud serve --run {run_dir}"
    )


MAX_WARNINGS_SHOWN = 6


def _print_model_and_drift(manifest: dict[str, object]) -> None:
    """The retrain decision, the promotion verdict, drift and its warnings (one line each)."""
    model = manifest.get("model")
    if isinstance(model, dict):
        retrain = model.get("retrain")
        if isinstance(retrain, dict):
            did = "yes" if retrain.get("train") else "skipped"
            console.print(f"model    retrain: {did} ({retrain.get('reason')})", highlight=False)
        promotion = model.get("promotion")
        if isinstance(promotion, dict):
            verdict = "promoted" if promotion.get("promote") else "[yellow]not promoted[/]"
            console.print(f"         {verdict}: {promotion.get('reason')}", highlight=False)
    report = manifest.get("report")
    if not isinstance(report, dict):
        return
    if report.get("previous_run_id"):
        top = report.get("max_feature_psi")
        feature = (
            f" · max feature PSI {top['psi']:.3f} ({top['feature']})"
            if isinstance(top, dict)
            else ""
        )
        score_psi = report.get("score_psi")
        shown = f"{score_psi:.3f}" if isinstance(score_psi, float) else "n/a"
        console.print(
            f"drift    score PSI {shown}{feature} vs {report['previous_run_id']}", highlight=False
        )
    warnings = report.get("warnings")
    if isinstance(warnings, list):
        for w in warnings[:MAX_WARNINGS_SHOWN]:
            console.print(f"[yellow]warning[/]  {w['code']}: {w['message']}", highlight=False)
        if len(warnings) > MAX_WARNINGS_SHOWN:
            console.print(f"         (+{len(warnings) - MAX_WARNINGS_SHOWN} more in report.html)")


def drift_warnings(run_dir: Path) -> int:
    """How many drift warnings the run's report raised (`manifest.report.warnings`)."""
    from graphfraud.rundir import RunDir

    report = RunDir(run_dir).manifest().get("report", {})
    return len(report.get("warnings", [])) if isinstance(report, dict) else 0


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
        "the last good run)",
    ),
    retrain: str | None = typer.Option(None, "--retrain", help=RETRAIN_HELP),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help=FAIL_ON_DRIFT_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress or summary"),
) -> None:
    """Run the whole batch on one set of input files."""
    from graphfraud.pipeline import run_pipeline

    settings = _settings(registry, graph_uri, seed, device, models, identifier, retrain)
    if emerging is not None:
        settings.rings.emerging = emerging
    with _progress(quiet) as say:
        result = run_pipeline(
            users, devices, out, settings, progress=not quiet, say=say, previous=previous
        )
    if not quiet:
        print_summary(result.run_dir)
    if fail_on_drift and drift_warnings(result.run_dir):
        raise typer.Exit(DRIFT_EXIT_CODE)


def report_verb(
    run_dir: Path = typer.Option(..., "--run", help="run directory to report on"),
    previous: Path | None = typer.Option(
        None,
        "--previous",
        help="the run to measure drift against [default: the run's own --previous, if any]",
    ),
    registry: Path | None = typer.Option(None, "--registry", envvar="GRAPHFRAUD_MODEL__REGISTRY"),
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help=FAIL_ON_DRIFT_HELP),
) -> None:
    """(Re)build RUN/report.html and the manifest's drift warnings, then print the summary.

    Example: graphfraud report --run runs/2026-11-28 --previous runs/2026-11-27
    """
    from graphfraud.pipeline import stage_report
    from graphfraud.rundir import RunDir, open_previous

    settings = _settings(registry)
    against = open_previous(previous) if previous is not None else None
    stage_report(RunDir(run_dir), settings, previous=against)
    print_summary(run_dir)
    if fail_on_drift and drift_warnings(run_dir):
        raise typer.Exit(DRIFT_EXIT_CODE)


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
    retrain: str | None = typer.Option(None, "--retrain", help=RETRAIN_HELP),
) -> None:
    """Stage 4: features, model training/selection (by the retrain policy), user and ring
    scores."""
    from graphfraud.pipeline import stage_score
    from graphfraud.rundir import RunDir

    settings = _settings(registry, device=device, models=models, retrain=retrain)
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
    app.command("report")(report_verb)
    app.command()(evaluate)
