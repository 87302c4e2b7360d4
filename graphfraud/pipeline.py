"""The nightly batch: wires the stages and writes the run directory and its manifest.

ingest → link → rings → score (features + model + scores) → publish. Stage logic lives in the
stage packages as plain functions over polars frames; this module reads each stage's inputs from
the run directory, writes its artifact (atomically) and records counts, timings and peak memory in
the manifest. Any stage can be rerun from the previous stage's artifacts (`graphfraud link --run
DIR`, …). The manifest says `status: running` until the last stage finishes, so a crashed run is
never mistaken for a finished one, and rerunning into the same directory repairs it. A stage that
raises marks the run `status: failed` with `failed_stage` and a one-line `error` before the error
goes on to the caller; ingest raises when it accepted no user, since every later stage would only
turn nothing into a model error.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from graphfraud import __version__
from graphfraud.config import Settings
from graphfraud.errors import ArtifactError, ConfigError, GraphFraudError, InputDataError
from graphfraud.identifiers import IdentifierRegistry, registry_from_manifest
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    COMMUNITIES_FILE,
    DEVICES_FILE,
    FEATURES_FILE,
    IDENTIFIERS_FILE,
    LINKS_FILE,
    LOOKALIKES_FILE,
    MANIFEST_FILE,
    MEMBERS_FILE,
    ONLINE_DIR,
    QUARANTINE_DIR,
    RING_SCORES_FILE,
    RINGS_FILE,
    SCORES_FILE,
    USERS_FILE,
    user_columns_optional,
)

if TYPE_CHECKING:
    from graphfraud.model.base import GraphData
    from graphfraud.model.registry import ModelRegistry
    from graphfraud.model.stage import ModelScores

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
def _stage(run: RunDir, name: str, say: Say) -> Iterator[dict[str, Any]]:
    """Time a stage, record its wall time and the process's peak RSS in the manifest; if it
    raises, also mark the run failed (stage and one-line reason) and re-raise."""
    say(name)
    record: dict[str, Any] = {}
    t0 = time.perf_counter()
    try:
        yield record
    except BaseException as exc:
        _record_stage(run, name, record, t0, failure=exc)
        raise
    _record_stage(run, name, record, t0)


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
        # `ingest` returns USERS/DEVICES_SCHEMA frames. Users in id order whatever the input's
        # (or a delta's) order: the model's node order, so a GNN's sums add up in the same order
        # on a full night and an incremental one.
        run.write(USERS_FILE, ingested.users.sort("user_id"))
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


def stage_link(run: RunDir, settings: Settings, say: Say = _quiet) -> None:
    """Users + devices → links.parquet (+ identifier support, + the look-alike pairs the next
    night reuses). On an incremental night, look-alikes are compared only where the changes
    against the previous run can matter (`linking.incremental`); the links are the same."""
    from graphfraud.linking.link import PreviousLinks, build_links

    registry = run_registry(run)
    with _stage(run, "link", say) as record:
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
        )
        run.write(LINKS_FILE, links.links)
        run.write(IDENTIFIERS_FILE, links.support)
        run.write(LOOKALIKES_FILE, links.lookalikes)
        record.update(links.stats)
        record["incremental"] = before is not None


def stage_rings(run: RunDir, settings: Settings, say: Say = _quiet) -> None:
    """Links → ring membership and ring features (ring scores come from the score stage)."""
    from graphfraud.rings.adopt import adopt_emerging, read_emerging
    from graphfraud.rings.detect import PreviousRings, build_rings

    registry = run_registry(run)
    with _stage(run, "rings", say) as record:
        before = reusable_previous(run, settings, ("link", "rings"), COMMUNITIES_FILE)
        found = build_rings(
            run.read(LINKS_FILE),
            run.read(USERS_FILE),
            settings.rings,
            registry,
            previous=None
            if before is None
            else PreviousRings(
                links=before.read(LINKS_FILE), communities=before.read(COMMUNITIES_FILE)
            ),
        )
        if settings.rings.emerging is not None:
            found = adopt_emerging(found, read_emerging(settings.rings.emerging))
            record["grew_from_emerging"] = int(found.rings["grew_from"].is_not_null().sum())
        run.write(MEMBERS_FILE, found.members)
        run.write(RINGS_FILE, found.rings)
        run.write(COMMUNITIES_FILE, found.communities)
        record["incremental"] = before is not None
        if run.exists(RING_SCORES_FILE):  # scores of an earlier ring partition
            run.file(RING_SCORES_FILE).unlink()
        record.update(found.stats)


def stage_score(
    run: RunDir,
    settings: Settings,
    say: Say = _quiet,
    *,
    progress: bool = False,
    retrain: bool | None = None,
) -> None:
    """Features → model (train candidates, pick, register) → user and ring scores. `retrain`
    None: train on a full night, score with the promoted model on an incremental one."""
    from graphfraud.model.dataset import build_graph_data
    from graphfraud.model.ego import node_state, save_state
    from graphfraud.model.features import user_features
    from graphfraud.model.inputs import GraphInputs
    from graphfraud.rings.detect import pair_strengths
    from graphfraud.scoring.scores import build_scores

    registry = run_registry(run)
    users = run.read(USERS_FILE)
    links = run.read(LINKS_FILE)
    members = run.read(MEMBERS_FILE)
    rings = run.read(RINGS_FILE)
    with _stage(run, "features", say) as record:
        features = user_features(
            users,
            run.read(DEVICES_FILE),
            links,
            run.read(IDENTIFIERS_FILE),
            pair_strengths(links),
            members,
            rings,
            max_share=settings.link.max_share,
            strong=settings.rings.min_weight,
            registry=registry,
        )
        run.write(FEATURES_FILE, features)
        record["features"] = features.width - 1
    with _stage(run, "model", say) as record:
        data = build_graph_data(
            features,
            links,
            users.select("user_id", "label"),
            members,
            relations=registry.link_kinds,
        )
        # An incremental night scores with the promoted model (no retraining); the retrain
        # policy decides otherwise once it exists.
        result = _model_scores(
            data,
            features,
            settings,
            progress,
            retrain=previous_run(run) is None if retrain is None else retrain,
        )
        version = result.version
        record.update({"version": version, "kind": result.kind, "metrics": result.metrics})
    with _stage(run, "scores", say):
        model_scores = pl.DataFrame(
            {"user_id": data.user_ids.astype(str), "model_score": result.scores}
        )
        scores = build_scores(features, model_scores, members, version, registry)
        run.write(RING_SCORES_FILE, scores.rings)
        run.write(SCORES_FILE, scores.users)
        # What a new account's neighbours offer its model inputs (`model/ego.py`): the online
        # scorer runs this run's model on the same rows.
        save_state(node_state(GraphInputs.of(data)), run.file(ONLINE_DIR))
    manifest = run.manifest()
    manifest["model_version"] = version
    manifest["model"] = {
        "version": version,
        "kind": result.kind,
        "metrics": result.metrics,
        "registry": str(settings.model.registry),
        "files": result.files,  # sha256 of every weight file that scored this run
    }
    if result.promotion is not None:
        manifest["model"]["promotion"] = {
            "promote": result.promotion.promote,
            "reason": result.promotion.reason,
            "done": False,
        }
    manifest["status"] = "complete"
    manifest["finished_at"] = datetime.now(UTC).isoformat()
    run.write_json(MANIFEST_FILE, manifest)
    # Promote only now that the run is complete: a crash before this line leaves the promoted
    # model as it was (the candidates stay saved), and rerunning the stage trains and promotes.
    if result.promotion is not None and result.promotion.promote:
        _registry(settings).promote(version)
        manifest["model"]["promotion"]["done"] = True
        run.write_json(MANIFEST_FILE, manifest)


def _model_scores(
    data: GraphData,
    features: pl.DataFrame,
    settings: Settings,
    progress: bool,
    *,
    retrain: bool = True,
) -> ModelScores:
    """The model stage (`model/stage.py`): trained, the promoted model's, or the label-free
    prior's scores; never a crash on valid data. Without `retrain`, the promoted model scores
    when there is one that fits tonight's data."""
    from graphfraud.errors import ModelMismatchError
    from graphfraud.model.registry import score_with_promoted
    from graphfraud.model.stage import ModelScores, score_users
    from graphfraud.scoring.scores import prior_scores

    if not retrain:
        registry = _registry(settings)
        card = registry.promoted()
        if card is not None:
            try:
                scores, version = score_with_promoted(data, registry, device=settings.model.device)
            except ModelMismatchError as exc:
                logger.warning("the promoted model cannot score tonight's data (%s): training", exc)
            else:
                why = "incremental night: the promoted model scores, no retraining"
                return ModelScores(scores, version, "promoted", {"retrain": why}, card.files)
    return score_users(
        data, settings.model, _registry(settings), lambda: prior_scores(features), progress=progress
    )


def _registry(settings: Settings) -> ModelRegistry:
    from graphfraud.model.registry import ModelRegistry

    return ModelRegistry(settings.model.registry, signing_key=settings.model.signing_key)


def stage_publish(
    run: RunDir, settings: Settings, say: Say = _quiet, *, progress: bool = False
) -> dict[str, Any]:
    """Publish a finished run to the graph database named by settings.graph.uri."""
    from graphfraud.graph import open_graph_store

    if run.manifest().get("status") != "complete":
        raise ArtifactError(
            f"{run.path} is not a finished run", hint="rerun `graphfraud run` first"
        )
    with _stage(run, "publish", say) as record:
        store = open_graph_store(settings.graph, run.path)
        try:
            report = store.publish(str(run.path), progress=progress)
        finally:
            store.close()
        record.update(
            {"nodes": report.nodes, "relationships": report.relationships, "rows": report.rows}
        )
    return record


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
    retrain: bool | None = None,
) -> RunResult:
    """Run every stage on the input files into the run directory `out` (and publish if
    `settings.graph.uri` is set). `previous` is the last night's complete run to build on; a
    failed or unfinished one is refused before anything is written. With `delta`, the inputs
    are a delta against `previous` (`ingest.delta`), else a full snapshot. `retrain`: see
    `stage_score`."""
    from graphfraud.rundir import open_previous

    tell = say or _quiet
    run = RunDir(out)
    before = open_previous(previous) if previous is not None else None
    if before is not None and before.path.resolve() == run.path.resolve():
        raise ArtifactError(
            f"--previous and --out are the same directory ({out})",
            hint="write each night into its own run directory",
        )
    stage_ingest(
        run,
        Path(users),
        Path(devices) if devices is not None else None,
        settings,
        tell,
        previous=before,
        delta=delta,
    )
    stage_link(run, settings, tell)
    stage_rings(run, settings, tell)
    stage_score(run, settings, tell, progress=progress, retrain=retrain)
    if settings.graph.uri:
        # The caller's spinner already names the step; a second live display would fight it.
        stage_publish(run, settings, tell, progress=progress and say is None)
    manifest = run.manifest()
    manifest["seconds"] = round(sum(s["seconds"] for s in manifest.get("stages", {}).values()), 3)
    run.write_json(MANIFEST_FILE, manifest)
    return RunResult(run_dir=run.path, manifest=manifest)
