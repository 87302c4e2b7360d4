"""The batch end to end on the committed 2,000-user sample: artifacts, manifest, reruns."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from graphfraud.config import Settings, load_settings
from graphfraud.errors import ArtifactError
from graphfraud.evaluate import evaluate_run
from graphfraud.model.registry import ModelRegistry
from graphfraud.pipeline import run_pipeline, stage_ingest, stage_link, stage_rings, stage_score
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    LINKS_SCHEMA,
    RINGS_SCHEMA,
    SCORES_SCHEMA,
    polars_schema,
)

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "synthetic"


def _settings(tmp: Path) -> Settings:
    settings = load_settings()
    settings.model.registry = tmp / "models"
    settings.model.folds = 3
    settings.model.candidates = ["gbm"]
    return settings


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    run_pipeline(SAMPLE / "users.csv", SAMPLE / "devices.csv", tmp / "run", _settings(tmp))
    return tmp / "run"


def test_outputs_follow_the_contract(sample_run: Path) -> None:
    run = RunDir(sample_run)
    for name, schema in (
        ("scores.parquet", SCORES_SCHEMA),
        ("rings.parquet", RINGS_SCHEMA),
        ("links.parquet", LINKS_SCHEMA),
    ):
        frame = run.read(name)
        assert dict(frame.schema) == polars_schema(schema), name
    scores = run.read("scores.parquet")
    users = run.read("users.parquet")
    assert scores.height == users.height
    assert scores["score"].is_between(0, 1).all()
    assert scores["user_id"].is_unique().all()
    ringed = scores.filter(pl.col("ring_id").is_not_null())
    assert ringed["ring_score"].is_not_null().all()
    assert (run.path / "quarantine" / "users.parquet").is_file()


def test_manifest_reconciles_and_records_the_run(sample_run: Path) -> None:
    manifest = json.loads((sample_run / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    for counts in manifest["counts"].values():
        assert counts["input"] == counts["accepted"] + counts["quarantined"]
    assert set(manifest["stages"]) >= {"ingest", "link", "rings", "features", "model", "scores"}
    assert manifest["inputs"]["users"]["sha256"]
    assert (
        manifest["model_version"]
        == pl.read_parquet(sample_run / "scores.parquet")["model_version"][0]
    )
    assert "password" not in json.dumps(manifest["settings"]["graph"])
    assert "intraday" not in manifest["settings"]  # serving-only; its url may hold credentials
    # the weight files that scored this run, by sha256 (the registry's card agrees, and so do
    # the files themselves)
    files = manifest["model"]["files"]
    version = manifest["model"]["version"]
    assert files == ModelRegistry(sample_run.parent / "models").show(version).files
    assert all(rel.endswith((".txt", ".json", ".pt")) for rel in files)
    for rel, digest in files.items():
        path = sample_run.parent / "models" / version / rel
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_quality_floor_on_unlabelled_users(sample_run: Path) -> None:
    """A floor, not the target: the 2k sample has ~100 labels. The benchmarks measure the
    real targets at 100k users."""
    ev = evaluate_run(sample_run, SAMPLE / "truth.csv")
    assert ev.roc_auc >= 0.8
    assert ev.ring_recall >= 0.6
    assert ev.largest_ring_ratio <= 1.5


def test_stages_rerun_from_artifacts_deterministically(sample_run: Path, tmp_path: Path) -> None:
    """Rerunning link + rings from the ingest artifacts reproduces them byte for byte."""
    copy = RunDir(tmp_path / "copy").ensure()
    for name in ("users.parquet", "devices.parquet", "manifest.json"):
        (copy.path / name).write_bytes((sample_run / name).read_bytes())
    settings = _settings(tmp_path)
    stage_link(copy, settings)
    stage_rings(copy, settings)
    for name in ("links.parquet", "ring_members.parquet"):
        assert pl.read_parquet(copy.path / name).equals(pl.read_parquet(sample_run / name)), name


@pytest.mark.parametrize("status", ["running", None])
def test_an_unfinished_run_is_refused_by_serving_and_publishing(
    sample_run: Path, tmp_path: Path, status: str | None
) -> None:
    """A crashed batch leaves `status: running`: neither the snapshot nor the graph store may
    take it, whatever artifacts lie there. A manifest without a status is not finished either."""
    from graphfraud.errors import ArtifactError
    from graphfraud.graph.tables import load_tables
    from graphfraud.scoring.snapshot import load_snapshot

    crashed = tmp_path / "crashed"
    crashed.mkdir()
    for f in sample_run.iterdir():
        if f.is_file():
            (crashed / f.name).write_bytes(f.read_bytes())
    manifest = json.loads((crashed / "manifest.json").read_text())
    if status is None:
        del manifest["status"]
    else:
        manifest["status"] = status
    (crashed / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="not finished"):
        load_snapshot(crashed)
    with pytest.raises(ArtifactError, match="not finished"):
        load_tables(crashed)


def test_score_stage_trains_gnn_candidates_and_records_the_pick(
    sample_run: Path, tmp_path: Path
) -> None:
    """`gnn_stack` trains the GBM and the GNN once each, all three compete, the pick is
    registered and is what scores.parquet names."""
    copy = RunDir(tmp_path / "copy").ensure()
    for item in sample_run.iterdir():
        if item.is_file():
            (copy.path / item.name).write_bytes(item.read_bytes())
    settings = _settings(tmp_path)
    settings.model.candidates = ["gnn_stack"]
    stage_score(copy, settings)
    manifest = json.loads((copy.path / "manifest.json").read_text())
    metrics = manifest["model"]["metrics"]
    assert {"gbm.auprc", "gnn.auprc", "gnn_stack.auprc"} <= set(metrics)
    best = max(("gbm", "gnn", "gnn_stack"), key=lambda k: metrics[f"{k}.auprc"])
    assert manifest["model"]["kind"] == best
    versions = pl.read_parquet(copy.path / "scores.parquet")["model_version"].unique().to_list()
    assert versions == [manifest["model"]["version"]]
    saved = ModelRegistry(tmp_path / "models").list()
    assert {"gbm", "gnn", "gnn_stack"} <= {card.kind for card in saved}
    ev = evaluate_run(copy.path, SAMPLE / "truth.csv")
    assert ev.roc_auc >= 0.8


def test_rings_are_written_once_and_ring_scores_beside_them(
    sample_run: Path, tmp_path: Path
) -> None:
    """The score stage never rewrites rings.parquet (rerunning `rings` alone used to blank every
    ring_score): ring scores live in ring_scores.parquet, one per ring, and a new ring partition
    drops the old scores until the score stage writes new ones."""
    from graphfraud.schema import RING_SCORES_SCHEMA
    from graphfraud.scoring.scores import scored_rings

    copy = RunDir(tmp_path / "copy").ensure()
    for item in sample_run.iterdir():
        if item.is_file():
            (copy.path / item.name).write_bytes(item.read_bytes())
    before = (copy.path / "rings.parquet").read_bytes()
    ring_scores = copy.read("ring_scores.parquet")
    assert dict(ring_scores.schema) == polars_schema(RING_SCORES_SCHEMA)
    assert set(ring_scores["ring_id"]) == set(copy.read("rings.parquet")["ring_id"])
    assert ring_scores["ring_score"].is_not_null().all()
    settings = _settings(tmp_path)
    stage_score(copy, settings)
    assert (copy.path / "rings.parquet").read_bytes() == before
    stage_rings(copy, settings)
    assert not copy.exists("ring_scores.parquet")
    assert scored_rings(copy)["ring_score"].is_null().all()
    stage_score(copy, settings)
    assert scored_rings(copy)["ring_score"].is_not_null().all()


def test_a_failing_stage_marks_the_run_failed_with_its_stage_and_reason(tmp_path: Path) -> None:
    """A crash used to leave the manifest at `status: running` with no word on why."""
    run = RunDir(tmp_path / "run")
    stage_ingest(run, SAMPLE / "users.csv", SAMPLE / "devices.csv", _settings(tmp_path))
    run.file("devices.parquet").write_bytes(b"not parquet")
    with pytest.raises(ArtifactError):
        stage_link(run, _settings(tmp_path))
    manifest = run.manifest()
    assert (manifest["status"], manifest["failed_stage"]) == ("failed", "link")
    assert "devices.parquet is not a readable Parquet file" in manifest["error"]
    assert "\n" not in manifest["error"]
    assert manifest["stages"]["ingest"]["counts"]["users"]["accepted"] > 0


def _rerun_copy(sample_run: Path, tmp_path: Path, name: str = "copy") -> RunDir:
    """The sample run's artifacts, its manifest saying `running` as during a whole `run`."""
    copy = RunDir(tmp_path / name).ensure()
    for item in sample_run.iterdir():
        if item.is_file():
            (copy.path / item.name).write_bytes(item.read_bytes())
    manifest = copy.manifest()
    manifest["status"] = "running"
    copy.write_json("manifest.json", manifest)
    return copy


def test_a_crash_after_the_model_stage_promotes_nothing_and_a_rerun_repairs(
    sample_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import graphfraud.scoring.scores as scores_module

    copy = _rerun_copy(sample_run, tmp_path)
    settings = _settings(tmp_path)
    registry = ModelRegistry(settings.model.registry)

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("the machine went away during the scores stage")

    monkeypatch.setattr(scores_module, "build_scores", crash)
    with pytest.raises(RuntimeError, match="went away"):
        stage_score(copy, settings)
    assert copy.manifest()["status"] == "failed"  # the stage wrapper records the crash
    assert [c.kind for c in registry.list()] == ["gbm"]  # the candidate is saved...
    assert registry.promoted() is None  # ...but not promoted
    monkeypatch.undo()
    stage_score(copy, settings)  # the rerun repairs
    manifest = copy.manifest()
    assert manifest["status"] == "complete"
    promoted = registry.promoted()
    assert promoted is not None
    assert promoted.version == manifest["model"]["version"]
    assert manifest["model"]["promotion"]["done"] is True


def test_a_crash_between_completion_and_promotion_leaves_nothing_promoted(
    sample_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = _rerun_copy(sample_run, tmp_path)
    settings = _settings(tmp_path)
    registry = ModelRegistry(settings.model.registry)

    def crash(*_: object, **__: object) -> None:
        raise RuntimeError("killed before the pointer moved")

    monkeypatch.setattr(ModelRegistry, "promote", crash)
    with pytest.raises(RuntimeError, match="killed"):
        stage_score(copy, settings)
    monkeypatch.undo()
    manifest = copy.manifest()
    assert manifest["status"] == "complete"
    assert manifest["model"]["promotion"] == {
        "promote": True,
        "reason": "nothing promoted yet",
        "done": False,
    }
    assert registry.promoted() is None
    stage_score(copy, settings)
    assert registry.promoted().version == copy.manifest()["model"]["version"]  # type: ignore[union-attr]


def test_previous_is_recorded_and_a_failed_previous_is_refused_naming_the_last_good_run(
    sample_run: Path, tmp_path: Path
) -> None:
    """`--previous` must be a complete run; a failed night is refused before anything is
    written, and the message names the newest complete run beside it."""
    nights = tmp_path / "runs"
    good = _rerun_copy(sample_run, nights, "day1")
    manifest = good.manifest()
    manifest["status"] = "complete"
    good.write_json("manifest.json", manifest)
    failed = RunDir(nights / "day2").ensure()
    failed.write_json("manifest.json", {"status": "failed", "failed_stage": "link"})
    settings = _settings(tmp_path)
    with pytest.raises(ArtifactError) as refused:
        run_pipeline(SAMPLE / "users.csv", None, nights / "day3", settings, previous=failed.path)
    assert "failed in stage 'link'" in str(refused.value)
    assert str(good.path) in (refused.value.hint or "")
    assert not (nights / "day3").exists()

    run = RunDir(nights / "day3")
    stage_ingest(run, SAMPLE / "users.csv", None, settings, previous=good)
    assert run.manifest()["previous"] == {
        "run_id": manifest["run_id"],
        "path": str(good.path.resolve()),
    }
    from graphfraud.pipeline import previous_run

    assert previous_run(run) is not None
    assert previous_run(RunDir(sample_run)) is None
