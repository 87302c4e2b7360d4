"""The nightly batch: wires the stages and writes the run directory and its manifest.

ingest → normalise → link → rings → features → model → scores → (publish). Stages are plain
functions over polars frames; this module does the file I/O, timing and bookkeeping. The manifest
is written twice: `status: running` first (so a crashed run is never mistaken for a finished one),
`status: complete` last. Every artifact is written atomically, so rerunning into the same directory
repairs a crashed run.
"""

from __future__ import annotations

import hashlib
import platform
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from graphfraud import __version__
from graphfraud.config import Settings
from graphfraud.ingest.read import read_table
from graphfraud.ingest.validate import ingest
from graphfraud.linking.link import build_links
from graphfraud.model.features import user_features
from graphfraud.rings.detect import detect_rings, pair_strengths
from graphfraud.rings.features import ring_features
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    DEVICES_FILE,
    FEATURES_FILE,
    LINKS_FILE,
    MANIFEST_FILE,
    MEMBERS_FILE,
    QUARANTINE_DIR,
    RINGS_FILE,
    SCORES_FILE,
    USERS_FILE,
    DEVICES_SCHEMA,
    RINGS_SCHEMA,
    USERS_SCHEMA,
    conform_frame,
)
from graphfraud.scoring.scores import build_scores

Say = Callable[[str], None]
STAGES = ("read", "ingest", "link", "rings", "features", "model", "scores", "publish")


@dataclass
class StageLog:
    """Wall time and peak RSS (MB, process-wide high-water mark) per stage."""

    stages: dict[str, dict[str, float]] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.stages[name] = {"seconds": round(time.perf_counter() - t0, 3), "peak_rss_mb": round(peak_mb, 1)}


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    manifest: dict[str, Any]


def fingerprint(path: Path) -> dict[str, Any]:
    """Size and SHA-256 of an input file (the manifest's data fingerprint)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def _public_settings(settings: Settings) -> dict[str, Any]:
    dumped = settings.model_dump(mode="json")
    dumped.get("graph", {}).pop("password", None)
    dumped.get("service", {}).pop("api_keys", None)
    return dumped


def run_pipeline(
    users: Path,
    devices: Path | None,
    out: Path,
    settings: Settings,
    *,
    progress: bool = False,
    say: Say | None = None,
) -> RunResult:
    """Run every stage on the input files and write the run directory `out`."""
    tell = say or (lambda _m: None)
    run = RunDir(out).ensure()
    log = StageLog()
    inputs = {"users": fingerprint(Path(users))}
    if devices is not None:
        inputs["devices"] = fingerprint(Path(devices))
    started = datetime.now(UTC)
    combined = hashlib.sha256("".join(v["sha256"] for v in inputs.values()).encode()).hexdigest()
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{combined[:8]}"
    manifest: dict[str, Any] = {
        "run_id": run_id,
        "status": "running",
        "created_at": started.isoformat(),
        "package_version": __version__,
        "python": platform.python_version(),
        "inputs": inputs,
        "settings": _public_settings(settings),
    }
    run.write_json(MANIFEST_FILE, manifest)

    with log.stage("read"):
        tell("reading inputs")
        users_raw = read_table(Path(users), role="users")
        devices_raw = read_table(Path(devices), role="devices") if devices is not None else None
    with log.stage("ingest"):
        tell("validating and normalising")
        ingested = ingest(
            users_raw,
            devices_raw,
            settings.ingest,
            users_file=str(users),
            devices_file=str(devices) if devices is not None else None,
        )
        users_df = conform_frame(ingested.users, USERS_SCHEMA)
        devices_df = conform_frame(ingested.devices, DEVICES_SCHEMA)
        run.write(USERS_FILE, users_df)
        run.write(DEVICES_FILE, devices_df)
        for role, rows in ingested.quarantine.items():
            run.write(f"{QUARANTINE_DIR}/{role}.parquet", rows)
        del users_raw, devices_raw
    with log.stage("link"):
        tell("linking users (blocking + fuzzy comparison)")
        links = build_links(users_df, devices_df, settings.link, progress=tell)
        run.write(LINKS_FILE, links.links)
    with log.stage("rings"):
        tell("finding rings")
        pairs = pair_strengths(links.links)
        members = detect_rings(links.links, settings.rings)
        rings = ring_features(members, users_df, links.links)
    with log.stage("features"):
        tell("building user features")
        features = user_features(
            users_df,
            devices_df,
            links.links,
            links.support,
            pairs,
            members,
            rings,
            max_share=settings.link.max_share,
            strong=settings.rings.min_weight,
        )
        run.write(FEATURES_FILE, features)
    with log.stage("model"):
        tell("training and scoring the risk model")
        trained = _train(features, links.links, users_df, settings, progress=progress)
    with log.stage("scores"):
        tell("scoring users and rings")
        model_scores = pl.DataFrame(
            {"user_id": trained.user_ids, "model_score": trained.scores}
        ).with_columns(pl.col("user_id").cast(pl.Utf8))
        scores, ring_risk = build_scores(features, model_scores, members, trained.model_version)
        rings = rings.drop("ring_score").join(ring_risk, on="ring_id", how="left")
        rings = conform_frame(rings, RINGS_SCHEMA).sort("ring_id")
        run.write(MEMBERS_FILE, members)
        run.write(RINGS_FILE, rings)
        run.write(SCORES_FILE, scores)
    manifest.update(
        {
            "counts": ingested.counts,
            "links": links.stats,
            "rings": {
                "rings": rings.height,
                "members": members.height,
                "largest": int(rings["size"].max() or 0) if rings.height else 0,
            },
            "model": trained.card,
            "model_version": trained.model_version,
        }
    )
    if settings.graph.uri:
        with log.stage("publish"):
            tell(f"publishing to {settings.graph.uri}")
            manifest["publish"] = _publish(run.path, settings, progress=progress)
    manifest["stages"] = log.stages
    manifest["status"] = "complete"
    manifest["finished_at"] = datetime.now(UTC).isoformat()
    manifest["seconds"] = round(sum(s["seconds"] for s in log.stages.values()), 3)
    run.write_json(MANIFEST_FILE, manifest)
    return RunResult(run_dir=run.path, manifest=manifest)


@dataclass(frozen=True)
class _Trained:
    user_ids: Any
    scores: Any
    model_version: str
    card: dict[str, Any]


def _train(
    features: pl.DataFrame, links: pl.DataFrame, users: pl.DataFrame, settings: Settings, *, progress: bool
) -> _Trained:
    from graphfraud.model.dataset import build_graph_data
    from graphfraud.model.registry import ModelRegistry
    from graphfraud.model.train import train_and_score

    data = build_graph_data(features, links, users.select("user_id", "label"))
    registry = ModelRegistry(settings.model.registry)
    result = train_and_score(data, settings.model, registry=registry, progress=progress)
    card = {
        "version": result.model_version,
        "kind": result.model_kind,
        "metrics": result.metrics,
        "seconds": round(result.seconds, 3),
        "n_features": len(result.feature_names),
    }
    return _Trained(data.user_ids, result.scores, result.model_version, card)


def _publish(run_dir: Path, settings: Settings, *, progress: bool) -> dict[str, Any]:
    from graphfraud.graph import open_graph_store

    store = open_graph_store(settings.graph, run_dir)
    try:
        report = store.publish(str(run_dir), progress=progress)
    finally:
        store.close()
    return {"nodes": report.nodes, "relationships": report.relationships, "rows": report.rows, "seconds": round(report.seconds, 3)}
