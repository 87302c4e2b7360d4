"""The nightly batch: wires the stages and writes the run directory and its manifest.

ingest → link → rings → score (features + model + scores) → publish. Stage logic lives in the
stage packages as plain functions over polars frames; this module reads each stage's inputs from
the run directory, writes its artifact (atomically) and records counts, timings and peak memory in
the manifest. Any stage can be rerun from the previous stage's artifacts (`graphfraud link --run
DIR`, …). The manifest says `status: running` until the last stage finishes, so a crashed run is
never mistaken for a finished one, and rerunning into the same directory repairs it.
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
from graphfraud.errors import ArtifactError, InputDataError
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    DEVICES_FILE,
    FEATURES_FILE,
    LINKS_FILE,
    MANIFEST_FILE,
    MEMBERS_FILE,
    QUARANTINE_DIR,
    RINGS_FILE,
    RINGS_SCHEMA,
    SCORES_FILE,
    USERS_FILE,
    conform_frame,
)

if TYPE_CHECKING:
    from graphfraud.model.base import GraphData
    from graphfraud.model.registry import ModelRegistry
    from graphfraud.model.stage import ModelScores

logger = logging.getLogger(__name__)
IDENTIFIERS_FILE = "identifiers.parquet"  # kind, value, support: how many users hold each value
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    manifest: dict[str, Any]


@contextmanager
def _stage(run: RunDir, name: str, say: Say) -> Iterator[dict[str, Any]]:
    """Time a stage, record its wall time and the process's peak RSS in the manifest."""
    say(name)
    record: dict[str, Any] = {}
    t0 = time.perf_counter()
    yield record
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    manifest = _manifest(run)
    manifest.setdefault("stages", {})[name] = {
        "seconds": round(time.perf_counter() - t0, 3),
        "peak_rss_mb": round(peak_mb, 1),
        **record,
    }
    run.write_json(MANIFEST_FILE, manifest)


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
    return dumped


def stage_ingest(
    run: RunDir, users: Path, devices: Path | None, settings: Settings, say: Say = _quiet
) -> None:
    """Read, validate, quarantine and normalise the inputs; starts a fresh manifest."""
    from graphfraud.ingest.read import read_table
    from graphfraud.ingest.validate import ingest

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
        },
    )
    with _stage(run, "ingest", say) as record:
        users_raw = read_table(users, role="users")
        devices_raw = read_table(devices, role="devices") if devices is not None else None
        ingested = ingest(
            users_raw,
            devices_raw,
            settings.ingest,
            users_file=str(users),
            devices_file=str(devices) if devices is not None else None,
        )
        run.write(USERS_FILE, ingested.users)  # `ingest` returns USERS/DEVICES_SCHEMA frames
        run.write(DEVICES_FILE, ingested.devices)
        for role, rows in ingested.quarantine.items():
            run.write(f"{QUARANTINE_DIR}/{role}.parquet", rows)
        record["counts"] = ingested.counts
    manifest = run.manifest()
    manifest["counts"] = ingested.counts
    run.write_json(MANIFEST_FILE, manifest)


def stage_link(run: RunDir, settings: Settings, say: Say = _quiet) -> None:
    """Users + devices → links.parquet (+ identifier support)."""
    from graphfraud.linking.link import build_links

    with _stage(run, "link", say) as record:
        links = build_links(
            run.read(USERS_FILE), run.read(DEVICES_FILE), settings.link, progress=say
        )
        run.write(LINKS_FILE, links.links)
        run.write(IDENTIFIERS_FILE, links.support)
        record.update(links.stats)


def stage_rings(run: RunDir, settings: Settings, say: Say = _quiet) -> None:
    """Links → ring membership and ring features (ring_score is filled by the score stage)."""
    from graphfraud.rings.detect import detect_rings
    from graphfraud.rings.features import ring_features

    with _stage(run, "rings", say) as record:
        links = run.read(LINKS_FILE)
        members = detect_rings(links, settings.rings)
        rings = ring_features(members, run.read(USERS_FILE), links)
        run.write(MEMBERS_FILE, members)
        run.write(RINGS_FILE, rings)
        sizes = rings["size"].to_numpy()
        record.update(
            {
                "rings": rings.height,
                "members": members.height,
                "largest": int(sizes.max()) if sizes.size else 0,
            }
        )


def stage_score(
    run: RunDir, settings: Settings, say: Say = _quiet, *, progress: bool = False
) -> None:
    """Features → model (train candidates, pick, register) → user and ring scores."""
    from graphfraud.model.dataset import build_graph_data
    from graphfraud.model.features import user_features
    from graphfraud.rings.detect import pair_strengths
    from graphfraud.scoring.scores import build_scores

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
        )
        run.write(FEATURES_FILE, features)
        record["features"] = features.width - 1
    with _stage(run, "model", say) as record:
        data = build_graph_data(features, links, users.select("user_id", "label"), members)
        result = _model_scores(data, features, settings, progress)
        version = result.version
        record.update({"version": version, "kind": result.kind, "metrics": result.metrics})
    with _stage(run, "scores", say):
        model_scores = pl.DataFrame(
            {"user_id": data.user_ids.astype(str), "model_score": result.scores}
        )
        scores, ring_risk = build_scores(features, model_scores, members, version)
        rings = conform_frame(
            rings.drop("ring_score").join(ring_risk, on="ring_id", how="left"), RINGS_SCHEMA
        )
        run.write(RINGS_FILE, rings.sort("ring_id"))
        run.write(SCORES_FILE, scores)
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
    data: GraphData, features: pl.DataFrame, settings: Settings, progress: bool
) -> ModelScores:
    """The model stage (`model/stage.py`): trained, the promoted model's, or the label-free
    prior's scores; never a crash on valid data."""
    from graphfraud.model.stage import score_users
    from graphfraud.scoring.scores import prior_scores

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
) -> RunResult:
    """Run every stage on the input files into the run directory `out` (and publish if
    `settings.graph.uri` is set)."""
    tell = say or _quiet
    run = RunDir(out)
    stage_ingest(run, Path(users), Path(devices) if devices is not None else None, settings, tell)
    stage_link(run, settings, tell)
    stage_rings(run, settings, tell)
    stage_score(run, settings, tell, progress=progress)
    if settings.graph.uri:
        # The caller's spinner already names the step; a second live display would fight it.
        stage_publish(run, settings, tell, progress=progress and say is None)
    manifest = run.manifest()
    manifest["seconds"] = round(sum(s["seconds"] for s in manifest.get("stages", {}).values()), 3)
    run.write_json(MANIFEST_FILE, manifest)
    return RunResult(run_dir=run.path, manifest=manifest)
