"""The nightly batch: wires the stages and writes the run directory and its manifest.

ingest → link → rings → score (features + model + scores) → publish. Stage logic lives in the
stage packages as plain functions over polars frames; this module reads each stage's inputs from
the run directory, writes its artifact (atomically) and records counts, timings and peak memory in
the manifest. Any stage can be rerun from the previous stage's artifacts (`graphfraud link --run
DIR`, …). The manifest says `status: running` until the last stage finishes, so a crashed run is
never mistaken for a finished one, and rerunning into the same directory repairs it. A stage that
raises marks the run `status: failed` with `failed_stage` and a one-line `error` before the error
goes on to the caller; ingest raises when it accepted no user, since every later stage would only
turn nothing into a model error. While a stage runs the manifest names it (`stage`) and the
process writing the run holds its lock, so a run killed outright (SIGKILL, OOM) reads
`interrupted` in that stage (`graphfraud.schedule.runs`) rather than `running` forever.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from graphfraud import __version__
from graphfraud.config import Settings
from graphfraud.errors import ArtifactError, ConfigError, GraphFraudError, InputDataError
from graphfraud.identifiers import IdentifierRegistry, registry_from_manifest
from graphfraud.memory import release_freed_memory
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    CALIBRATION_FILE,
    COMMUNITIES_FILE,
    DEVICES_FILE,
    FEATURES_FILE,
    IDENTIFIERS_FILE,
    LINKS_FILE,
    LOOKALIKES_FILE,
    MANIFEST_FILE,
    MEMBERS_FILE,
    ONLINE_DIR,
    OPERATING_PLOT_FILE,
    OPERATING_POINTS_FILE,
    QUARANTINE_DIR,
    REPORT_FILE,
    RING_EVENTS_FILE,
    RING_HISTORY_FILE,
    RING_IDS_FILE,
    RING_SCORES_FILE,
    RINGS_FILE,
    SCORES_FILE,
    USERS_FILE,
    user_columns_optional,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from graphfraud.engine import Engine
    from graphfraud.graph.base import PublishReport
    from graphfraud.model.base import GraphData
    from graphfraud.model.inputs import GraphInputs
    from graphfraud.model.registry import ModelCard, ModelRegistry
    from graphfraud.model.retrain import RetrainDecision
    from graphfraud.model.stage import ModelScores
    from graphfraud.model.train import Provenance
    from graphfraud.report.contents import RunReport
    from graphfraud.scoring.decision import Bands

logger = logging.getLogger(__name__)
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    manifest: dict[str, Any]


MAX_ERROR_CHARS = 500


@contextmanager
def _stage(
    run: RunDir, name: str, say: Say, *, rewrites: bool = True, fails_run: bool = True
) -> Iterator[dict[str, Any]]:
    """Time a stage, record its wall time and the process's peak RSS in the manifest; if it
    raises, also mark the run failed (stage and one-line reason) and re-raise.

    A stage that `rewrites` artifacts first marks the run `running` in it (`stage`), clearing
    an earlier failure: the later artifacts are stale until the last stage ends, and a process
    killed meanwhile leaves the stage it died in (`graphfraud status`: interrupted). A stage
    that does not make the run's artifacts wrong (`fails_run=False`: publish) records its error
    only, so the complete run can be published again."""
    say(name)
    if rewrites:
        _mark_running(run, name)
    record: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        yield record
    except BaseException as exc:
        if fails_run:
            _record_stage(run, name, record, t0, failure=exc)
        else:
            record["error"] = _one_line_error(exc)
            _record_stage(run, name, record, t0)
        raise
    _record_stage(run, name, record, t0)
    release_freed_memory()  # what the stage dropped must not sit under the next one's peak


def _mark_running(run: RunDir, name: str) -> None:
    manifest = _manifest(run)
    manifest["status"] = "running"
    manifest["stage"] = name
    for stale in ("failed_stage", "error", "failed_at", "finished_at"):
        manifest.pop(stale, None)
    run.write_json(MANIFEST_FILE, manifest)


def _record_stage(
    run: RunDir,
    name: str,
    record: dict[str, Any],
    t0: float,
    failure: BaseException | None = None,
) -> None:
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    try:
        manifest = _manifest(run)
        manifest.setdefault("stages", {})[name] = {
            "seconds": round(time.perf_counter() - t0, 3),
            "peak_rss_mb": round(peak_mb, 1),
            **record,
        }
        manifest.pop("stage", None)
        if failure is not None:
            manifest["status"] = "failed"
            manifest["failed_stage"] = name
            manifest["error"] = _one_line_error(failure)
            manifest["failed_at"] = datetime.now(UTC).isoformat()
        run.write_json(MANIFEST_FILE, manifest)
    except (OSError, ArtifactError):
        if failure is None:
            raise
        # The stage's own error is the one to report; the manifest stays `running`, which no
        # reader mistakes for a finished run.
        logger.warning("could not record the failure of stage %s in the manifest", name)


def _one_line_error(exc: BaseException) -> str:
    """What the manifest says went wrong: the message of our own errors, else type + first line."""
    if isinstance(exc, GraphFraudError):
        text = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    else:
        first = next(iter(str(exc).strip().splitlines()), "")
        text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    text = " ".join(text.split())
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def _manifest(run: RunDir) -> dict[str, Any]:
    return run.manifest() if run.exists(MANIFEST_FILE) else {}


def fingerprint(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of an input file (the manifest's data fingerprint)."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise InputDataError(
            f"cannot read: {exc.strerror or exc}", file=str(path), hint="check the path"
        ) from exc
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _public_settings(settings: Settings) -> dict[str, Any]:
    dumped = settings.model_dump(mode="json")
    dumped.get("graph", {}).pop("password", None)
    dumped.get("service", {}).pop("api_keys", None)
    # Serving-only, and a mistaken GRAPHFRAUD_INTRADAY__URL could carry a password.
    dumped.pop("intraday", None)
    dumped.get("verdicts", {}).pop("dsn", None)
    return dumped


def run_registry(run: RunDir) -> IdentifierRegistry:
    """The identifier kinds a run was started with (recorded by the ingest stage), so later stages
    and rerun verbs use the same kinds whatever today's settings say."""
    return registry_from_manifest(_manifest(run))


def previous_run(run: RunDir) -> RunDir | None:
    """The previous run this one builds on (`--previous`, recorded by ingest), or None for a
    full night; every later stage and rerun verb reads it from the manifest."""
    previous = _manifest(run).get("previous")
    return RunDir(previous["path"]) if isinstance(previous, dict) else None


def reusable_previous(
    run: RunDir, settings: Settings, sections: tuple[str, ...], needs: str
) -> RunDir | None:
    """The previous run, when tonight may reuse its work: it ran with the same identifier kinds
    and the same `sections` of settings, and holds the artifact `needs`. Otherwise None (the
    stage recomputes everything; the manifest says why)."""
    before = previous_run(run)
    if before is None:
        return None
    theirs, ours = _manifest(before), _public_settings(settings)
    same = theirs.get("identifiers") == _identifiers(settings) and all(
        _section(theirs.get("settings", {}), s) == _section(ours, s) for s in sections
    )
    if not same or not before.exists(needs):
        logger.warning(
            "not reusing %s: %s", before.path, "other settings" if not same else f"no {needs}"
        )
        return None
    return before


# Settings that change nightly without changing what a stage computes.
_NIGHTLY = {"rings": ("emerging",)}


def _section(dumped: dict[str, Any], name: str) -> Any:
    """One section of dumped settings, without its nightly inputs (`_NIGHTLY`)."""
    section = dumped.get(name)
    if not isinstance(section, dict):
        return section
    return {k: v for k, v in section.items() if k not in _NIGHTLY.get(name, ())}


def _identifiers(settings: Settings) -> list[dict[str, Any]]:
    return [d.model_dump(mode="json", exclude_none=True) for d in settings.identifiers]


def stage_ingest(
    run: RunDir,
    users: Path,
    devices: Path | None,
    settings: Settings,
    say: Say = _quiet,
    *,
    previous: RunDir | None = None,
    delta: bool = False,
) -> None:
    """Read, validate, quarantine and normalise the inputs; starts a fresh manifest (which
    records `previous`, already checked by `open_previous`). With `delta`, the inputs are a
    delta (`ingest.delta`) applied to `previous`'s users and devices."""
    from graphfraud.ingest.read import read_table
    from graphfraud.ingest.validate import ingest

    registry = settings.identifier_registry()
    if delta:
        _check_delta(previous, settings)
    run.ensure()
    inputs = {"users": fingerprint(users)}
    if devices is not None:
        inputs["devices"] = fingerprint(devices)
    started = datetime.now(UTC)
    combined = hashlib.sha256("".join(v["sha256"] for v in inputs.values()).encode()).hexdigest()
    run.write_json(
        MANIFEST_FILE,
        {
            "run_id": f"{started:%Y%m%dT%H%M%SZ}-{combined[:8]}",
            "status": "running",
            "created_at": started.isoformat(),
            "package_version": __version__,
            "python": platform.python_version(),
            "inputs": inputs,
            "settings": _public_settings(settings),
            "identifiers": _identifiers(settings),
            "input_kind": "delta" if delta else "snapshot",
            **(
                {}
                if previous is None
                else {
                    "previous": {
                        "run_id": previous.manifest().get("run_id"),
                        "path": str(previous.path.resolve()),
                    }
                }
            ),
        },
    )
    with _stage(run, "ingest", say) as record:
        optional = user_columns_optional(registry)
        if delta:
            from graphfraud.ingest.delta import OP_COLUMN, ingest_delta

            optional = (*optional, OP_COLUMN)
        users_raw = read_table(users, role="users", optional=optional)
        devices_raw = read_table(devices, role="devices") if devices is not None else None
        if delta:
            assert previous is not None  # _check_delta
            ingested = ingest_delta(
                users_raw,
                devices_raw,
                settings.ingest,
                previous_users=previous.read(USERS_FILE),
                previous_devices=previous.read(DEVICES_FILE),
                registry=registry,
            ).ingested
        else:
            ingested = ingest(users_raw, devices_raw, settings.ingest, registry=registry)
        accepted = ingested.users
        verdicts = settings.verdicts.target()
        if verdicts is not None:
            accepted, record["verdicts"] = _with_verdicts(accepted, verdicts, say)
        # `ingest` returns USERS/DEVICES_SCHEMA frames. Users in id order whatever the input's
        # (or a delta's) order: the model's node order, so a GNN's sums add up in the same order
        # on a full night and an incremental one.
        run.write(USERS_FILE, accepted.sort("user_id"))
        run.write(DEVICES_FILE, ingested.devices)
        for role, rows in ingested.quarantine.items():
            run.write(f"{QUARANTINE_DIR}/{role}.parquet", rows)
        counts = {
            role: {**c, "rejected_fields": ingested.rejected_fields.get(role, {})}
            for role, c in ingested.counts.items()
        }
        record["counts"] = counts
        manifest = run.manifest()
        manifest["counts"] = counts
        if "verdicts" in record:
            manifest["verdicts"] = record["verdicts"]
        run.write_json(MANIFEST_FILE, manifest)
        if delta and ingested.users.is_empty():
            raise InputDataError(
                "the delta leaves no user (every one was deleted)", file=str(users)
            )
        if not delta:
            _refuse_no_users(ingested.quarantine["users"], counts["users"], users, run)


def _check_delta(previous: RunDir | None, settings: Settings) -> None:
    """A delta needs last night's artifacts, normalised with tonight's identifier kinds."""
    if previous is None:
        raise ConfigError(
            "a delta input needs the run it applies to", hint="pass --previous RUN_DIR"
        )
    theirs = _manifest(previous)
    if theirs.get("identifiers") != _identifiers(settings) or _section(
        theirs.get("settings", {}), "ingest"
    ) != _section(_public_settings(settings), "ingest"):
        raise ConfigError(
            f"{previous.path} was run with other identifier kinds or ingest settings than "
            "tonight's, so its users cannot be merged with tonight's delta",
            hint="send a full snapshot tonight (drop --delta)",
        )


TOP_REASONS = 3


def _with_verdicts(
    users: pl.DataFrame, target: str | Path, say: Say
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Analysts' verdicts as labels (`graphfraud.verdicts.labels`): newest wins, a user verdict
    over a ring's, `legit` clears a fraud label."""
    from graphfraud.verdicts.labels import apply_verdicts
    from graphfraud.verdicts.store import open_verdict_store

    store = open_verdict_store(target)
    try:
        applied = apply_verdicts(users, store.frame())
    finally:
        store.close()
    c = applied.counts
    say(
        f"verdicts: {c['verdicts']:,} read, {c['labelled_fraud']:,} users labelled fraud, "
        f"{c['labelled_legit']:,} legit, {c['labels_changed']:,} labels changed"
    )
    return applied.users, c


def _refuse_no_users(
    quarantine: pl.DataFrame, counts: dict[str, Any], users: Path, run: RunDir
) -> None:
    """Stop after ingest when no user was accepted: say why (top quarantine reasons) and where
    the rows are, instead of letting linking and the model fail on an empty population."""
    if counts["accepted"]:
        return
    if not counts["input"]:
        raise InputDataError("no user rows (the file holds a header only)", file=str(users))
    top = (
        quarantine.get_column("reason")
        .value_counts()
        .sort(["count", "reason"], descending=[True, False])
        .head(TOP_REASONS)
    )
    reasons = ", ".join(f"{reason}: {n:,}" for reason, n in top.iter_rows())
    raise InputDataError(
        f"none of its {counts['input']:,} user rows was accepted ({reasons})",
        file=str(users),
        hint=f"the rows and their reasons are in {run.file(QUARANTINE_DIR)}/users.parquet",
    )


@contextmanager
def _engine(settings: Settings, engine: Engine | None) -> Iterator[Engine]:
    """`engine` when the caller holds one (a whole run opens it once), else the one
    `settings.engine` names, for this stage alone."""
    if engine is not None:
        yield engine
        return
    from graphfraud.engine import open_engine

    with open_engine(settings) as opened:
        yield opened


def stage_link(
    run: RunDir, settings: Settings, say: Say = _quiet, *, engine: Engine | None = None
) -> None:
    """Users + devices → links.parquet (+ identifier support, + the look-alike pairs the next
    night reuses). On an incremental night, look-alikes are compared only where the changes
    against the previous run can matter (`linking.incremental`); the links are the same, and
    on any engine (`settings.engine`)."""
    from graphfraud.linking.link import PreviousLinks, build_links

    registry = run_registry(run)
    with _stage(run, "link", say) as record, _engine(settings, engine) as on:
        record["engine"] = on.name
        before = reusable_previous(run, settings, ("link",), LOOKALIKES_FILE)
        links = build_links(
            run.read(USERS_FILE),
            run.read(DEVICES_FILE),
            settings.link,
            registry=registry,
            progress=say,
            previous=None
            if before is None
            else PreviousLinks(
                users=before.read(USERS_FILE),
                devices=before.read(DEVICES_FILE),
                links=before.read(LINKS_FILE),
                lookalikes=before.read(LOOKALIKES_FILE),
            ),
            engine=on,
        )
        run.write(LINKS_FILE, links.links)
        run.write(IDENTIFIERS_FILE, links.support)
        run.write(LOOKALIKES_FILE, links.lookalikes)
        record.update(links.stats)
        record["incremental"] = before is not None


def stage_rings(
    run: RunDir, settings: Settings, say: Say = _quiet, *, engine: Engine | None = None
) -> None:
    """Links → ring membership and ring features (ring scores come from the score stage), with
    ids kept from the previous run's rings and the night's ring events (`rings.lineage`).
    Leiden runs per connected component on the engine (`settings.engine`)."""
    from graphfraud.rings.adopt import adopt_emerging, read_emerging
    from graphfraud.rings.detect import RING_LINK_COLUMNS, PreviousRings, build_rings
    from graphfraud.rings.lineage import assign_ring_ids, read_ledger

    registry = run_registry(run)
    before = previous_run(run)  # ring ids carry over from it, whatever changed
    with _stage(run, "rings", say) as record, _engine(settings, engine) as on:
        record["engine"] = on.name
        # Its communities are reused only where tonight's settings would make the same ones.
        reusable = reusable_previous(run, settings, ("link", "rings"), COMMUNITIES_FILE)
        found = build_rings(
            run.read(LINKS_FILE, columns=RING_LINK_COLUMNS),
            run.read(USERS_FILE),
            settings.rings,
            registry,
            previous=None
            if reusable is None
            else PreviousRings(
                links=reusable.read(LINKS_FILE, columns=RING_LINK_COLUMNS),
                communities=reusable.read(COMMUNITIES_FILE),
            ),
            engine=on,
        )
        run.write(COMMUNITIES_FILE, found.communities)  # before ids: lineage renames rings only
        if settings.rings.emerging is not None:
            found = adopt_emerging(found, read_emerging(settings.rings.emerging))
            record["grew_from_emerging"] = int(found.rings["grew_from"].is_not_null().sum())
        record.update(found.stats)  # the detection's (lineage's rings carry its own below)
        run_id, started = _run_stamp(run)
        lineage = assign_ring_ids(
            found,
            read_ledger(before) if before is not None else None,
            run_id=run_id,
            at=started,
        )
        found = lineage.rings
        run.write(MEMBERS_FILE, found.members)
        run.write(RINGS_FILE, found.rings)
        run.write(RING_EVENTS_FILE, lineage.events)
        run.write(RING_HISTORY_FILE, lineage.history)
        run.write(RING_IDS_FILE, lineage.issued)
        record["ring_events"] = lineage.stats
        record["incremental"] = reusable is not None
        if run.exists(RING_SCORES_FILE):  # scores of an earlier ring partition
            run.file(RING_SCORES_FILE).unlink()
        record.update(found.stats)


def _run_stamp(run: RunDir) -> tuple[str, datetime]:
    """The run's id and start (from the manifest ingest wrote), which stamp its ring events."""
    manifest = _manifest(run)
    run_id, created = manifest.get("run_id"), manifest.get("created_at")
    if not isinstance(run_id, str) or not isinstance(created, str):
        raise ArtifactError(
            f"{run.file(MANIFEST_FILE)} has no run_id / created_at",
            hint="rerun `graphfraud ingest` into this directory",
        )
    started = datetime.fromisoformat(created)
    return run_id, started if started.tzinfo is not None else started.replace(tzinfo=UTC)


def stage_score(
    run: RunDir,
    settings: Settings,
    say: Say = _quiet,
    *,
    progress: bool = False,
    engine: Engine | None = None,
) -> None:
    """Features (in parts of users on the engine, `settings.engine`) → model (train
    candidates, pick, register) → user and ring scores; whether to train is the retrain
    policy's (`model.retrain`: an incremental night wants `auto` or `never`)."""
    from graphfraud.model.dataset import GRAPH_LINK_COLUMNS, build_graph_data
    from graphfraud.model.ego import node_state, save_state
    from graphfraud.model.feature_parts import user_features_on
    from graphfraud.model.inputs import GraphInputs
    from graphfraud.rings.detect import pair_strengths
    from graphfraud.scoring.decision import Bands
    from graphfraud.scoring.mapped import write_score_store
    from graphfraud.scoring.scores import build_scores
    from graphfraud.scoring.suspected import calibrate_cut, labelled_ring_scores

    registry = run_registry(run)
    users = run.read(USERS_FILE)
    links = run.read(LINKS_FILE, columns=list(GRAPH_LINK_COLUMNS))
    members = run.read(MEMBERS_FILE)
    rings = run.read(RINGS_FILE)
    with _stage(run, "features", say) as record, _engine(settings, engine) as on:
        record["engine"] = on.name
        features = user_features_on(
            on,
            users,
            run.read(DEVICES_FILE),
            links,
            run.read(IDENTIFIERS_FILE),
            pair_strengths(links),
            members,
            rings,
            max_share=settings.link.max_share,
            strong=settings.rings.min_weight,
            identifiers=_manifest(run).get("identifiers", []),
        )
        run.write(FEATURES_FILE, features)
        record["features"] = features.width - 1
    labels = users.select("user_id", "label")
    with _stage(run, "model", say) as record:
        data = build_graph_data(features, links, labels, members, relations=registry.link_kinds)
        del users, links, rings  # the graph holds what the model needs of them
        models = _registry(settings)
        promoted = models.promoted()
        decision = _retrain_decision(run, data, features, promoted, settings)
        # `data.x` holds the features now; the frame (0.24 GB at 1M users) is read back for
        # the score frames, once the model inputs are gone.
        del features
        # One set of model inputs for every model that scores tonight and for the online state
        # below: at 1M users the GNN's encoded inputs alone take 13 s and 0.9 GB to derive.
        inputs = GraphInputs(data)
        result = _model_scores(
            inputs,
            run,
            settings,
            progress,
            train=decision.train,
            # Also on a skipped night: it trains after all if the promoted model cannot score.
            provenance=_provenance(run, data, promoted),
        )
        if not decision.train and result.kind != "promoted":
            decision = replace(
                decision,
                train=True,
                reason=f"{decision.reason}; the promoted model could not score: trained",
            )
        version = result.version
        record.update(
            {
                "version": version,
                "kind": result.kind,
                "metrics": result.metrics,
                "retrain": decision.as_dict(),
            }
        )
    with _stage(run, "scores", say) as record:
        # What a new account's neighbours offer its model inputs (`model/ego.py`) and, when a
        # GNN scored, its layers (`model/gnn/state.py`): the online scorer runs this run's
        # model on the same rows, from the inputs the model stage derived.
        inputs.forget_label_copies()
        _save_gnn_states(inputs, version, settings, run.file(ONLINE_DIR))
        inputs.forget_all_but_adjacency()
        save_state(node_state(inputs), run.file(ONLINE_DIR))
        model_scores = pl.DataFrame(
            {"user_id": data.user_ids.astype(str), "model_score": result.scores}
        )
        # What is left of the model inputs (the graph and its adjacency, 1 GB at 1M users) goes
        # before the score frames and the score store (`scoring.mapped`) are built.
        del inputs, data
        features = run.read(FEATURES_FILE)
        labelled_rings = labelled_ring_scores(members, model_scores, labels)
        # A promoted model may have trained on tonight's labels: its cut is not out-of-fold.
        cut = calibrate_cut(
            labelled_rings,
            settings.rings.suspect_probability,
            settings.rings.suspect_fallback_score,
            out_of_fold=result.kind != "promoted",
        )
        bands = Bands.of(settings.decision)
        scores = build_scores(
            features, model_scores, members, version, registry, ring_cut=cut.cut, bands=bands
        )
        run.write(RING_SCORES_FILE, scores.rings)
        run.write(SCORES_FILE, scores.users)
        operating = _operating_points(run, scores.users, model_scores, members, labels,
                                      labelled_rings, bands, result.kind)  # fmt: skip
        record["suspected_rings"] = int(scores.rings["suspected_ring"].sum())
        # The score store the service maps (`scoring.mapped`), from the scores just written;
        # the frames behind them go first, or the store's build adds its own peak on top.
        del features, model_scores, scores
        write_score_store(run.path)
    manifest = run.manifest()
    manifest["rings_suspected"] = cut.public()
    manifest["decision"] = operating
    manifest["model_version"] = version
    manifest["model"] = {
        "version": version,
        "kind": result.kind,
        "metrics": result.metrics,
        "registry": str(settings.model.registry),
        "files": result.files,  # sha256 of every weight file that scored this run
        "retrain": decision.as_dict(),
        # The model tonight was measured against (the report's "vs promoted" column).
        "promoted_before": None
        if promoted is None
        else {"version": promoted.version, "kind": promoted.kind, "metrics": promoted.metrics},
    }
    if result.promotion is not None:
        manifest["model"]["promotion"] = {
            "promote": result.promotion.promote,
            "reason": result.promotion.reason,
            "done": False,
        }
        if result.promotion.same_rows is not None:
            manifest["model"]["promotion"]["same_rows"] = result.promotion.same_rows.as_dict()
    manifest["status"] = "complete"
    manifest["finished_at"] = datetime.now(UTC).isoformat()
    run.write_json(MANIFEST_FILE, manifest)
    # Promote only now that the run is complete: a crash before this line leaves the promoted
    # model as it was (the candidates stay saved), and rerunning the stage trains and promotes.
    if result.promotion is not None:
        run_id = str(manifest.get("run_id", ""))
        if result.promotion.promote:
            models.promote(version, reason=result.promotion.reason, run_id=run_id)
            manifest["model"]["promotion"]["done"] = True
            run.write_json(MANIFEST_FILE, manifest)
        else:
            models.keep(version, reason=result.promotion.reason, run_id=run_id)


def _retrain_decision(
    run: RunDir,
    data: GraphData,
    features: pl.DataFrame,
    promoted: ModelCard | None,
    settings: Settings,
) -> RetrainDecision:
    """Tonight's retrain decision (`model/retrain.py`) from the promoted card, the labels and,
    for `auto`, the features' PSI against the previous run's (`report/drift.py`)."""
    from graphfraud.errors import ModelMismatchError
    from graphfraud.model.registry import check_compatible
    from graphfraud.model.retrain import RetrainFacts, decide_retrain

    policy = settings.model.retrain
    mismatch = None
    if promoted is not None and policy != "always":
        try:
            check_compatible(promoted, data)
        except ModelMismatchError as exc:
            mismatch = str(exc)
    max_psi, drifted = None, None
    before = previous_run(run)
    if policy == "auto" and before is not None and before.exists(FEATURES_FILE):
        from graphfraud.report.drift import column_psi

        names = [c for c in features.columns if c != "user_id"]
        table = column_psi(before.read(FEATURES_FILE, columns=None), features, names)
        finite = {k: v for k, v in table.items() if math.isfinite(v)}
        if finite:
            drifted = max(finite, key=lambda k: (finite[k], k))
            max_psi = finite[drifted]
    facts = RetrainFacts(int((data.labels >= 0).sum()), max_psi, drifted, mismatch)
    return decide_retrain(policy, promoted, facts, settings.model, datetime.now(UTC))


def _provenance(run: RunDir, data: GraphData, promoted: ModelCard | None) -> Provenance:
    """Which run trains tonight (for every card it saves) and which labelled rows the
    promoted model did not train on (`model/promotion.py` compares both models on them)."""
    from graphfraud.model.train import Provenance

    manifest = run.manifest()
    trained_on = {"run_id": str(manifest.get("run_id", "")), "run_dir": str(run.path.resolve())}
    for role, fp in manifest.get("inputs", {}).items():
        trained_on[f"{role}_sha256"] = str(fp.get("sha256", ""))
    return Provenance(trained_on, _fresh_rows(data, promoted))


def _fresh_rows(data: GraphData, promoted: ModelCard | None) -> npt.NDArray[np.bool_] | None:
    """Per node: labelled tonight with a label the promoted model did not train on (unlabelled,
    or labelled otherwise, in the run that trained it). None when that run is not at hand
    (moved, rerun since, or a model saved before cards recorded their run)."""
    if promoted is None or not promoted.trained_on.get("run_dir"):
        return None
    source = RunDir(promoted.trained_on["run_dir"])
    try:
        if source.manifest().get("run_id") != promoted.trained_on.get("run_id"):
            return None
        then = source.read(USERS_FILE, columns=["user_id", "label"])
    except (ArtifactError, OSError):
        return None
    tonight = pl.DataFrame({"user_id": data.user_ids.astype(str), "now": data.labels})
    joined = tonight.join(
        then.rename({"label": "then"}), on="user_id", how="left", maintain_order="left"
    )
    fresh = (pl.col("now") >= 0) & (pl.col("then").is_null() | (pl.col("then") != pl.col("now")))
    return joined.select(fresh.alias("fresh"))["fresh"].to_numpy()


def _save_gnn_states(
    inputs: GraphInputs, version: str, settings: Settings, directory: Path
) -> None:
    """The GNN states of the model that scored the run (none for a GBM or the prior)."""
    from graphfraud.errors import NotFound
    from graphfraud.model.ego import ids_digest
    from graphfraud.model.gnn.state import gnn_members, remove_gnn_states, save_gnn_states

    remove_gnn_states(directory)
    registry = _registry(settings)
    try:
        kind = registry.show(version).kind
    except NotFound:  # the prior: no network to run online
        return
    if kind not in ("gnn", "gnn_stack"):
        return
    ensemble = registry.load(version, device=settings.model.device)
    gnns = gnn_members(list(ensemble.members))
    if gnns:
        digest = ids_digest(inputs.data.user_ids.tolist())
        save_gnn_states(gnns, inputs, version, digest, directory)


def _operating_points(
    run: RunDir,
    users: pl.DataFrame,
    model_scores: pl.DataFrame,
    members: pl.DataFrame,
    labels: pl.DataFrame,
    labelled_rings: pl.DataFrame,
    bands: Bands,
    kind: str,
) -> dict[str, Any]:
    """Write operating_points.parquet, calibration.parquet and the plot; the manifest's
    `decision` record (bands, estimated prevalence, the rows at both thresholds)."""
    from graphfraud.scoring.operating_points import (
        at_threshold,
        operating_svg,
        run_operating_points,
    )

    points = run_operating_points(users, model_scores, members, labels, labelled_rings)
    run.write(OPERATING_POINTS_FILE, points.table)
    run.write(CALIBRATION_FILE, points.calibration)
    run.write_text(OPERATING_PLOT_FILE, operating_svg(points, bands))
    basis = {"prior": "label-free", "promoted": "promoted model (may have seen the labels)"}
    return {
        **bands.public(),
        "scores": basis.get(kind, "out-of-fold"),
        "prevalence": None if points.prevalence != points.prevalence else points.prevalence,
        "labelled_fraud": points.n_fraud,
        "labelled_good": points.n_good,
        "at_review": at_threshold(points, bands.review),
        "at_decision": at_threshold(points, bands.decline),
        "bands_count": dict(users["band"].value_counts().iter_rows()),
    }


def _model_scores(
    inputs: GraphInputs,
    run: RunDir,
    settings: Settings,
    progress: bool,
    *,
    train: bool = True,
    provenance: Provenance | None = None,
) -> ModelScores:
    """The model stage (`model/stage.py`): trained, the promoted model's, or the label-free
    prior's scores (from the run's feature table); never a crash on valid data."""
    from graphfraud.model.stage import score_users
    from graphfraud.scoring.scores import prior_scores

    return score_users(
        inputs,
        settings.model,
        _registry(settings),
        lambda: prior_scores(run.read(FEATURES_FILE)),
        progress=progress,
        model_params=settings.model.params,
        train=train,
        provenance=provenance,
    )


def _registry(settings: Settings) -> ModelRegistry:
    from graphfraud.model.registry import ModelRegistry

    return ModelRegistry(settings.model.registry, signing_key=settings.model.signing_key)


def stage_publish(
    run: RunDir,
    settings: Settings,
    say: Say = _quiet,
    *,
    progress: bool = False,
    full: bool = False,
) -> PublishReport:
    """Publish a finished run to the graph database named by settings.graph.uri (a delta unless
    `full` or settings.graph.full_publish) and record what it did in the manifest."""
    from graphfraud.graph import open_graph_store

    if run.manifest().get("status") != "complete":
        raise ArtifactError(
            f"{run.path} is not a finished run", hint="rerun `graphfraud run` first"
        )
    with _stage(run, "publish", say, rewrites=False, fails_run=False) as record:
        store = open_graph_store(settings.graph, run.path)
        try:
            report = store.publish(
                str(run.path), progress=progress, full=full or settings.graph.full_publish
            )
        finally:
            store.close()
        record.update(publish_record(report))
    return report


def publish_record(report: PublishReport) -> dict[str, Any]:
    """What the manifest says about a publish: full or delta (and why), from which run, and
    how many nodes and relationships were upserted and deleted."""
    return {
        "nodes": report.nodes,
        "relationships": report.relationships,
        "rows": report.rows,
        "mode": report.mode,
        "reason": report.reason,
        "base_run_id": report.base_run_id,
        "upserted_nodes": report.upserted_nodes,
        "upserted_relationships": report.upserted_relationships,
        "deleted_nodes": report.deleted_nodes,
        "deleted_relationships": report.deleted_relationships,
    }


def stage_report(
    run: RunDir,
    settings: Settings,
    say: Say = _quiet,
    *,
    previous: RunDir | None = None,
) -> RunReport:
    """report.html and `manifest.report` (drift against `previous`, by default the run's own
    `--previous`; warnings by `settings.report`). Drift is not failure: the run's status stays
    as it is (the CLI's `--fail-on-drift` turns warnings into exit code 3)."""
    from graphfraud.report.contents import build_report, read_artifacts, read_previous
    from graphfraud.report.html import render_html

    against = previous if previous is not None else previous_run(run)
    with _stage(run, "report", say, rewrites=False, fails_run=False) as record:
        current = read_artifacts(
            run, top_hubs=settings.report.top_hubs, features=against is not None
        )
        card = None
        if "promoted_before" not in current.manifest.get("model", {}):
            # A run from before manifests recorded the model it was measured against.
            promoted = _registry(settings).promoted()
            card = None if promoted is None else promoted.to_json()
        report = build_report(
            current, read_previous(run, against, top_hubs=0), settings.report, card
        )
        path = run.file(REPORT_FILE)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(render_html(report), encoding="utf-8")
        os.replace(tmp, path)
        record["warnings"] = len(report.warnings)
    manifest = run.manifest()
    manifest["report"] = report.manifest_entry()
    run.write_json(MANIFEST_FILE, manifest)
    return report


def run_pipeline(
    users: Path,
    devices: Path | None,
    out: Path,
    settings: Settings,
    *,
    progress: bool = False,
    say: Say | None = None,
    previous: Path | None = None,
    delta: bool = False,
) -> RunResult:
    """Run every stage on the input files into the run directory `out` (and publish if
    `settings.graph.uri` is set). `previous` is the last night's complete run to build on; a
    failed or unfinished one is refused before anything is written. With `delta`, the inputs
    are a delta against `previous` (`ingest.delta`), else a full snapshot."""
    from graphfraud.engine import open_engine
    from graphfraud.rundir import open_previous
    from graphfraud.schedule.runs import hold_run

    tell = say or _quiet
    run = RunDir(out)
    before = open_previous(previous) if previous is not None else None
    if before is not None and before.path.resolve() == run.path.resolve():
        raise ArtifactError(
            f"--previous and --out are the same directory ({out})",
            hint="write each night into its own run directory",
        )
    if delta:  # before the run directory (and its lock) exists: a refused night writes nothing
        _check_delta(before, settings)
    with hold_run(run.path, f"graphfraud run {run.path.name}"), open_engine(settings) as engine:
        stage_ingest(
            run,
            Path(users),
            Path(devices) if devices is not None else None,
            settings,
            tell,
            previous=before,
            delta=delta,
        )
        stage_link(run, settings, tell, engine=engine)
        stage_rings(run, settings, tell, engine=engine)
        stage_score(run, settings, tell, progress=progress, engine=engine)
        if settings.graph.uri:
            # The caller's spinner already names the step; a second live display would fight it.
            stage_publish(run, settings, tell, progress=progress and say is None)
        stage_report(run, settings, tell)
        manifest = run.manifest()
        manifest["seconds"] = round(
            sum(s["seconds"] for s in manifest.get("stages", {}).values()), 3
        )
        run.write_json(MANIFEST_FILE, manifest)
    return RunResult(run_dir=run.path, manifest=manifest)
