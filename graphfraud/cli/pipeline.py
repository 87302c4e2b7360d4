"""CLI verbs of the batch: `run` (every stage), one verb per stage, and `evaluate`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from graphfraud.config import ModelSettings, Settings, load_settings
from graphfraud.errors import ConfigError, GraphFraudError

if TYPE_CHECKING:
    from graphfraud.rundir import RunDir

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


STAGES = ("ingest", "link", "rings", "features", "model", "scores", "publish")


def stage_counts(run_dir: Path, stage: str) -> str:
    """What a finished stage made, in words, from the manifest it recorded (or its artifact)."""
    from graphfraud.rundir import RunDir
    from graphfraud.schema import SCORES_FILE

    run = RunDir(run_dir)
    try:
        record = run.manifest().get("stages", {}).get(stage, {})
        if stage == "ingest":
            return " · ".join(
                f"{role} {c['input']:,} in, {c['accepted']:,} accepted, "
                f"{c['quarantined']:,} quarantined"
                for role, c in record.get("counts", {}).items()
            )
        if stage == "link":
            kinds = {
                key.removesuffix("_links"): n
                for key, n in record.items()
                if key.endswith("_links") and n
            }
            top = ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))
            return f"{record.get('links', 0):,} links" + (f" ({top})" if top else "")
        if stage == "rings":
            return (
                f"{record.get('rings', 0):,} rings holding {record.get('members', 0):,} users, "
                f"largest {record.get('largest', 0):,}"
            )
        if stage == "features":
            return f"{record.get('features', 0):,} features per user"
        if stage == "model":
            auprc = record.get("metrics", {}).get("selected.auprc")
            quality = f", out-of-fold AUPRC {auprc:.3f}" if isinstance(auprc, float) else ""
            return f"{record.get('kind')} {record.get('version')}{quality}"
        if stage == "scores":
            scores = run.read(SCORES_FILE, columns=["score"])
            high = int((scores["score"] >= 0.5).sum())
            return f"{scores.height:,} users scored, {high:,} with score ≥ 0.5"
        if stage == "publish":
            return (
                f"{record.get('nodes', 0):,} nodes, {record.get('relationships', 0):,} "
                "relationships"
            )
    except (GraphFraudError, KeyError, TypeError, ValueError):
        return ""  # counts are a courtesy: a finished stage never fails over them
    return ""


@contextmanager
def _progress(quiet: bool, run_dir: Path | None = None) -> Iterator[Callable[[str], None]]:
    """Progress by stage: a spinner on a terminal; piped to a file, a line when a stage starts.
    Each finished stage prints a tick line with what it made (`stage_counts`); sub-steps (the
    link kinds) print their own tick lines, indented."""
    if quiet:
        yield lambda _m: None
        return
    live = console.is_terminal
    stage: list[Any] = ["", 0.0]  # name, started
    step: list[Any] = ["", 0.0]

    def finish_step() -> None:
        if step[0]:
            took = time.perf_counter() - step[1]
            console.print(
                f"      [green]✓[/green] {step[0]} [dim]({took:.1f}s)[/dim]", soft_wrap=True
            )
            step[0] = ""

    def finish_stage() -> None:
        finish_step()
        if stage[0]:
            took = time.perf_counter() - stage[1]
            counts = stage_counts(run_dir, stage[0]) if run_dir is not None else ""
            console.print(
                f"  [green]✓[/green] {stage[0]}"
                + (f": {counts}" if counts else "")
                + f" [dim]({took:.1f}s)[/dim]",
                highlight=False,
                soft_wrap=True,
            )
            stage[0] = ""

    with console.status("starting", spinner="dots") as status:

        def say(message: str) -> None:
            if message in STAGES or not message:
                finish_stage()
                if message:
                    stage[0], stage[1] = message, time.perf_counter()
                    if not live:
                        console.print(f"  … {message}", highlight=False, soft_wrap=True)
            else:
                finish_step()
                step[0], step[1] = message, time.perf_counter()
            if message:
                status.update(f"{message} …")

        yield say
        say("")


MODELS_HELP = (
    "comma-separated candidate models, picked by out-of-fold AUPRC: "
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


USERS_OPTION = typer.Option(..., "--users", metavar="FILE", help="users file (CSV or Parquet)")
DEVICES_OPTION = typer.Option(
    None,
    "--devices",
    metavar="FILE",
    show_default="none: users only",
    help="device sightings file (CSV or Parquet)",
)
REGISTRY_OPTION = typer.Option(
    None,
    "--registry",
    envvar="GRAPHFRAUD_MODEL__REGISTRY",
    metavar="DIR",
    show_default=f"{ModelSettings().registry}/, in the working directory",
    help="model registry directory: every candidate is saved here and the best promoted",
)
DEVICE_OPTION = typer.Option(
    None,
    "--device",
    envvar="GRAPHFRAUD_MODEL__DEVICE",
    metavar="DEVICE",
    show_default=ModelSettings().device,
    help="auto | cpu | cuda for model training and scoring (auto: the GPU when torch sees one)",
)
MODELS_OPTION = typer.Option(
    None,
    "--models",
    metavar="KINDS",
    show_default=",".join(ModelSettings().candidates),
    help=MODELS_HELP,
)
IDENTIFIER_OPTION = typer.Option(
    None, "--identifier", metavar="KIND", show_default="none", help=IDENTIFIER_HELP
)
ENGINE_OPTION = typer.Option(
    None,
    "--engine",
    envvar="GRAPHFRAUD_ENGINE",
    metavar="ENGINE",
    show_default="local",
    help="where pair scoring, exact links, per-component Leiden, ring and user features run: "
    "local (this machine) or dask (a dask.distributed cluster, see --dask-scheduler); the "
    "artifacts are the same",
)
DASK_SCHEDULER_OPTION = typer.Option(
    None,
    "--dask-scheduler",
    envvar="GRAPHFRAUD_DASK_SCHEDULER",
    metavar="ADDRESS",
    show_default="none: a LocalCluster for the run",
    help="the Dask scheduler for --engine dask (tcp://scheduler:8786)",
)
ENGINE_WORKERS_OPTION = typer.Option(
    None,
    "--engine-workers",
    envvar="GRAPHFRAUD_ENGINE_WORKERS",
    metavar="N",
    show_default="1 local, one per CPU for a LocalCluster",
    help="local: processes for the partitioned stages; dask without --dask-scheduler: "
    "LocalCluster worker processes",
)
PREVIOUS_HELP = (
    "last night's complete run directory to build on: its rings' ids are kept where most members "
    "stay (a failed run is refused, naming the last good run), or a runs directory's CURRENT "
    "file for the run it names (none yet: a full night)"
)

# Options that several verbs take, declared once (`run` and the stage verbs here, `nightly` in
# cli/schedule.py): a verb writes `previous: PreviousOption = None`.
PreviousOption = Annotated[
    Path | None,
    typer.Option(
        "--previous", metavar="DIR", show_default="none: a full night", help=PREVIOUS_HELP
    ),
]
RetrainOption = Annotated[
    str | None,
    typer.Option(
        "--retrain",
        envvar="GRAPHFRAUD_MODEL__RETRAIN",
        metavar="POLICY",
        show_default="always (model.retrain)",
        help=RETRAIN_HELP,
    ),
]
GraphUriOption = Annotated[
    str | None,
    typer.Option(
        "--graph-uri",
        envvar="GRAPHFRAUD_GRAPH__URI",
        metavar="URI",
        show_default="none: no publish",
        help="bolt://host:7687 to also publish to Neo4j (password: GRAPHFRAUD_GRAPH__PASSWORD)",
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="no progress or summary (errors still print)")
]


def _with_engine(
    settings: Settings, engine: str | None, scheduler: str | None, workers: int | None
) -> Settings:
    """`settings` with the engine flags applied (`--engine`, `--dask-scheduler`, …)."""
    if engine is not None:
        if engine not in ("local", "dask"):
            raise ConfigError(f"--engine {engine!r} is not an engine", hint="local or dask")
        settings.engine = engine  # type: ignore[assignment]
    if scheduler is not None:
        settings.dask_scheduler = scheduler or None
    if workers is not None:
        if workers < 1:
            raise ConfigError(f"--engine-workers {workers} is not a count", hint="1 or more")
        settings.engine_workers = workers
    return settings


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


@contextmanager
def _writing(run_dir: Path, verb: str) -> Iterator[None]:
    """A stage verb holds the run's lock while it writes (`graphfraud.schedule.runs.hold_run`)."""
    from graphfraud.schedule.runs import hold_run

    with hold_run(run_dir, f"graphfraud {verb} {run_dir.name}"):
        yield


def print_summary(run_dir: Path, top: int = 5) -> None:
    """Users, links by kind, rings, the riskiest rings with why, and where the outputs are."""
    from graphfraud.rings.wording import ring_in_words
    from graphfraud.rundir import RunDir
    from graphfraud.schema import LINKS_FILE, SCORES_FILE
    from graphfraud.scoring.scores import scored_rings

    run = RunDir(run_dir)
    manifest = run.manifest()
    counts = manifest.get("counts", {})
    links = run.read(LINKS_FILE, columns=["kind"])
    rings = scored_rings(run)
    present = set(pl.read_parquet_schema(run.file(SCORES_FILE)))
    scores = run.read(SCORES_FILE, columns=[c for c in ("score", "band") if c in present])
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
    suspected = int(rings["suspected_ring"].fill_null(False).sum())
    rule = manifest.get("rings_suspected", {})
    cut = rule.get("cut")
    console.print(
        f"rings    {rings.height:,} communities ({big.height:,} of ≥3), largest {largest} · "
        f"[bold]{suspected:,} suspected rings[/] (ring score ≥ "
        f"{'∞' if cut is None else f'{cut:.3f}'}, {rule.get('how', '?')} on "
        f"{rule.get('labelled_communities', 0):,} labelled communities)"
    )
    events = manifest.get("stages", {}).get("rings", {}).get("ring_events", {})
    if any(events.values()):
        console.print(
            "ring ids " + " · ".join(f"{n:,} {event}" for event, n in events.items() if n)
        )
    version = manifest.get("model_version")
    model = manifest.get("model", {})
    path = model.get("kind", "?")
    why = model.get("metrics", {}).get("fallback")
    gate = model.get("metrics", {}).get("gate")
    gated = (
        f" · gate: ROC-AUC {gate['roc_auc']:.3f}, lower bound {gate['lower']:.3f} "
        f"{'>' if gate['passed'] else '≤'} {gate['bar']:.2f}"
        if isinstance(gate, dict) and gate.get("lower") is not None
        else ""
    )
    console.print(
        f"model    {version} · scored by {path}{gated}" + (f" [yellow]({why})[/]" if why else "")
    )
    if "band" in scores.columns:
        counts = dict(scores["band"].value_counts().iter_rows())
        decision = manifest.get("decision", {})
        names = decision.get("bands", sorted(counts))
        console.print(
            f"scores   {scores.height:,} users · "
            + " · ".join(f"{n} {counts.get(n, 0):,}" for n in names)
            + f" (review ≥ {decision.get('review_threshold')}, "
            f"decline ≥ {decision.get('decision_threshold')})"
        )
    else:
        high = int((scores["score"] >= 0.5).sum())
        console.print(f"scores   {scores.height:,} users, {high:,} with score ≥ 0.5")
    registry = manifest.get("model", {}).get("registry")
    if registry:
        console.print(f"models   saved in {registry}/ (--registry)", highlight=False)
    _print_operating_points(run, manifest)
    if big.height:
        table = Table(title=f"Top {top} rings by risk", show_lines=False)
        for col in ("ring_id", "size", "risk", "suspected", "why"):
            table.add_column(col)
        for r in (
            big.sort("ring_score", descending=True, nulls_last=True).head(top).iter_rows(named=True)
        ):
            why = ring_in_words(r)
            table.add_row(
                r["ring_id"],
                str(r["size"]),
                f"{r['ring_score'] or 0:.2f}",
                "yes" if r["suspected_ring"] else "no",
                "; ".join(why),
            )
        console.print(table)
    _print_model_and_drift(manifest)
    console.print(
        f"outputs  {run_dir}/ report.html · scores.parquet · rings.parquet · links.parquet · "
        "operating_points.parquet + .svg · quarantine/ · manifest.json"
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


SUMMARY_THRESHOLDS = (0.1, 0.2, 0.3, 0.5, 0.7, 0.9)


def _print_operating_points(run: RunDir, manifest: dict[str, Any]) -> None:
    """A few rows of operating_points.parquet: what each threshold catches and costs."""
    from graphfraud.schema import OPERATING_POINTS_FILE

    if not run.exists(OPERATING_POINTS_FILE):
        return
    points = run.read(OPERATING_POINTS_FILE)
    decision = manifest.get("decision", {})
    marks = {
        decision.get("review_threshold"): "review",
        decision.get("decision_threshold"): "decline",
    }
    wanted = sorted({*SUMMARY_THRESHOLDS, *(t for t in marks if isinstance(t, float))})
    prevalence = decision.get("prevalence")
    table = Table(
        title=f"Operating points ({decision.get('scores', '?')} scores; est. fraud among "
        f"unlabelled {'?' if prevalence is None else f'{prevalence:.2%}'})",
        show_lines=False,
    )
    for col in ("score ≥", "fraud caught /10k", "good affected /10k", "flagged /10k",
                "labelled fraud caught", "labelled good affected", ""):  # fmt: skip
        table.add_column(col, justify="right")
    for row in points.filter(pl.col("threshold").round(2).is_in(wanted)).iter_rows(named=True):
        table.add_row(
            f"{row['threshold']:.2f}",
            f"{row['fraud_caught_per_10k']:,.1f}",
            f"{row['good_affected_per_10k']:,.1f}",
            f"{row['flagged_per_10k']:,.1f}",
            f"{row['labelled_fraud_caught']:.1%}",
            f"{row['labelled_good_affected']:.2%}",
            marks.get(round(row["threshold"], 2), ""),
        )
    console.print(table)


def run(
    users: Path = USERS_OPTION,
    devices: Path | None = DEVICES_OPTION,
    out: Path = typer.Option(
        ..., "--out", metavar="DIR", help="run directory to write (created; rerun to repair)"
    ),
    graph_uri: GraphUriOption = None,
    registry: Path | None = REGISTRY_OPTION,
    seed: int | None = typer.Option(
        None,
        "--seed",
        metavar="N",
        show_default=f"{ModelSettings().seed} (model.seed, rings.seed)",
        help="seed for ring detection and training",
    ),
    device: str | None = DEVICE_OPTION,
    models: str | None = MODELS_OPTION,
    identifier: list[str] | None = IDENTIFIER_OPTION,
    emerging: Path | None = typer.Option(
        None,
        "--emerging",
        envvar="GRAPHFRAUD_RINGS__EMERGING",
        metavar="FILE",
        show_default="none",
        help="the day's emerging rings (`graphfraud intraday export`): rings record which one "
        "they grew from",
    ),
    previous: PreviousOption = None,
    delta: bool = typer.Option(
        False,
        "--delta",
        help="--users/--devices hold only tonight's changes against --previous: users rows "
        "with an `op` column (upsert | delete; a delete erases the user everywhere) and new "
        "device sightings (see docs/incremental.md)",
    ),
    verdicts: str | None = typer.Option(
        None,
        "--verdicts",
        metavar="FILE|DSN",
        show_default="none: the input's labels only",
        help="analysts' verdicts to read as labels: the service's verdicts.sqlite3 (beside its "
        "audit log) or a postgresql:// DSN (put one with a password in GRAPHFRAUD_VERDICTS__DSN "
        "instead). Newest verdict wins; legit clears a fraud label",
    ),
    quiet: QuietOption = False,
    retrain: RetrainOption = None,
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help=FAIL_ON_DRIFT_HELP),
    engine: str | None = ENGINE_OPTION,
    dask_scheduler: str | None = DASK_SCHEDULER_OPTION,
    engine_workers: int | None = ENGINE_WORKERS_OPTION,
) -> None:
    """Run the whole batch on one set of input files (a full snapshot, or with --delta the
    changes since --previous)."""
    from pydantic import SecretStr

    from graphfraud.pipeline import run_pipeline
    from graphfraud.schedule.pointer import resolve_previous

    settings = _with_engine(
        _settings(registry, graph_uri, seed, device, models, identifier, retrain),
        engine,
        dask_scheduler,
        engine_workers,
    )
    if emerging is not None:
        settings.rings.emerging = emerging
    if verdicts is not None:
        if verdicts.startswith(("postgresql://", "postgres://")):
            settings.verdicts.dsn = SecretStr(verdicts)
        else:
            settings.verdicts.path = Path(verdicts)
    base = resolve_previous(previous)
    with _progress(quiet, out) as say:
        result = run_pipeline(
            users,
            devices,
            out,
            settings,
            progress=not quiet,
            say=say,
            previous=base,
            delta=delta,
        )
    if not quiet:
        print_summary(result.run_dir)
    if fail_on_drift and drift_warnings(result.run_dir):
        raise typer.Exit(DRIFT_EXIT_CODE)


def report_verb(
    run_dir: Path = typer.Option(..., "--run", metavar="DIR", help="run directory to report on"),
    previous: Path | None = typer.Option(
        None,
        "--previous",
        metavar="DIR",
        show_default="the run's own --previous, if any",
        help="the run to measure drift against",
    ),
    registry: Path | None = REGISTRY_OPTION,
    fail_on_drift: bool = typer.Option(False, "--fail-on-drift", help=FAIL_ON_DRIFT_HELP),
) -> None:
    """(Re)build RUN/report.html and the manifest's drift warnings, then print the summary.

    Example: graphfraud report --run runs/2026-11-28 --previous runs/2026-11-27
    """
    from graphfraud.pipeline import stage_report
    from graphfraud.rundir import RunDir, open_previous

    settings = _settings(registry)
    against = open_previous(previous) if previous is not None else None
    with _writing(run_dir, "report"):
        stage_report(RunDir(run_dir), settings, previous=against)
    print_summary(run_dir)
    if fail_on_drift and drift_warnings(run_dir):
        raise typer.Exit(DRIFT_EXIT_CODE)


def ingest_verb(
    users: Path = USERS_OPTION,
    devices: Path | None = DEVICES_OPTION,
    out: Path = typer.Option(..., "--out", metavar="DIR", help="run directory to write"),
    identifier: list[str] | None = IDENTIFIER_OPTION,
    previous: PreviousOption = None,
) -> None:
    """Stage 1: read, validate, quarantine and normalise the inputs into OUT (a fresh manifest:
    rerunning it starts the run over)."""
    from graphfraud.pipeline import stage_ingest
    from graphfraud.rundir import RunDir, open_previous
    from graphfraud.schedule.pointer import resolve_previous

    settings = _settings(identifiers=identifier)
    base = resolve_previous(previous)
    before = open_previous(base) if base is not None else None
    with _writing(out, "ingest"), _progress(False, out) as say:
        if before is not None and before.path.resolve() == out.resolve():
            raise ConfigError(f"--previous and --out are the same directory ({out})")
        stage_ingest(RunDir(out), users, devices, settings, say, previous=before)
    console.print(f"next: graphfraud link --run {out}", highlight=False, soft_wrap=True)


def link_verb(
    run_dir: Path = typer.Option(..., "--run", metavar="DIR", help="run directory after `ingest`"),
    engine: str | None = ENGINE_OPTION,
    dask_scheduler: str | None = DASK_SCHEDULER_OPTION,
    engine_workers: int | None = ENGINE_WORKERS_OPTION,
) -> None:
    """Stage 2: block, compare and link users (writes links.parquet)."""
    from graphfraud.pipeline import stage_link
    from graphfraud.rundir import RunDir

    settings = _with_engine(_settings(), engine, dask_scheduler, engine_workers)
    with _writing(run_dir, "link"), _progress(False, run_dir) as say:
        stage_link(RunDir(run_dir), settings, say)
    console.print(f"next: graphfraud rings --run {run_dir}", highlight=False, soft_wrap=True)


def rings_verb(
    run_dir: Path = typer.Option(..., "--run", metavar="DIR", help="run directory after `link`"),
    engine: str | None = ENGINE_OPTION,
    dask_scheduler: str | None = DASK_SCHEDULER_OPTION,
    engine_workers: int | None = ENGINE_WORKERS_OPTION,
) -> None:
    """Stage 3: find rings on the weighted user graph, keeping the previous run's ring ids
    (writes ring_members/rings.parquet and the ring events)."""
    from graphfraud.pipeline import stage_rings
    from graphfraud.rundir import RunDir

    settings = _with_engine(_settings(), engine, dask_scheduler, engine_workers)
    with _writing(run_dir, "rings"), _progress(False, run_dir) as say:
        stage_rings(RunDir(run_dir), settings, say)
    console.print(f"next: graphfraud score --run {run_dir}", highlight=False, soft_wrap=True)


def score_verb(
    run_dir: Path = typer.Option(..., "--run", metavar="DIR", help="run directory after `rings`"),
    registry: Path | None = REGISTRY_OPTION,
    device: str | None = DEVICE_OPTION,
    models: str | None = MODELS_OPTION,
    retrain: RetrainOption = None,
    engine: str | None = ENGINE_OPTION,
    dask_scheduler: str | None = DASK_SCHEDULER_OPTION,
    engine_workers: int | None = ENGINE_WORKERS_OPTION,
) -> None:
    """Stage 4: features, model training/selection (by the retrain policy), user and ring
    scores."""
    from graphfraud.pipeline import stage_score
    from graphfraud.rundir import RunDir

    settings = _with_engine(
        _settings(registry, device=device, models=models, retrain=retrain),
        engine,
        dask_scheduler,
        engine_workers,
    )
    with _writing(run_dir, "score"), _progress(False, run_dir) as say:
        stage_score(RunDir(run_dir), settings, say, progress=True)
    print_summary(run_dir)


def evaluate(
    run_dir: Path = typer.Option(..., "--run", metavar="DIR", help="finished run directory"),
    truth: Path = typer.Option(
        ..., "--truth", metavar="FILE", help="truth file: user_id, is_fraud[, ring_id[, ring_kind]]"
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON instead of a table"),
) -> None:
    """Score a run against known truth, on users whose label the run did NOT see.

    Reports ROC-AUC, average precision, precision@K, ring recall (Jaccard ≥ 0.5; per ring kind
    when the truth has `ring_kind`), ring precision and the largest predicted ring over the
    largest true ring.
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
    for key, value in result.flat().items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else f"{value:,}")
    console.print(table)


def reasons(
    run_dir: Path | None = typer.Option(
        None,
        "--run",
        metavar="DIR",
        show_default="none: the built-in kinds",
        help="a run directory: also its declared identifier kinds' reasons",
    ),
) -> None:
    """Every reason code a score can carry, in the words the API and the analyst page use."""
    from graphfraud.identifiers import BUILTIN
    from graphfraud.pipeline import run_registry
    from graphfraud.rundir import RunDir
    from graphfraud.scoring.reasons import reason_table

    registry = run_registry(RunDir(run_dir)) if run_dir is not None else BUILTIN
    table = Table(title="Reason codes, most important first")
    table.add_column("code")
    table.add_column("meaning")
    for reason in reason_table(registry).values():
        table.add_row(reason.code, reason.text)
    console.print(table)


def register(app: typer.Typer) -> None:
    """Attach the batch verbs."""
    app.command("reasons")(reasons)
    app.command(help=RUN_HELP)(run)
    app.command("ingest")(ingest_verb)
    app.command("link")(link_verb)
    app.command("rings")(rings_verb)
    app.command("score")(score_verb)
    app.command("report")(report_verb)
    app.command()(evaluate)
