"""The retrain policy in the pipeline: `auto` retrains on a drifted night, `never` and a quiet
`auto` score with the promoted model and train nothing, and the registry records which run
trained each model, on which inputs, and why it was (not) promoted."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

from graphfraud.config import Settings, load_settings
from graphfraud.model.registry import ModelRegistry
from graphfraud.pipeline import stage_score
from graphfraud.rundir import RunDir
from tests.drift_nights import DriftNights


def _nights(drift_nights: object) -> DriftNights:
    assert isinstance(drift_nights, DriftNights)
    return drift_nights


def _settings(registry: Path, policy: str) -> Settings:
    settings = load_settings()
    settings.model.registry = registry
    settings.model.candidates = ["gbm"]
    settings.model.retrain = policy  # type: ignore[assignment]
    return settings


def _copy(nights: DriftNights, tmp: Path, *, previous: Path | None = None) -> tuple[RunDir, Path]:
    """Night 2's run directory and registry, copied; `previous` re-points its --previous."""
    run = RunDir(tmp / "run")
    shutil.copytree(nights.day2, run.path)
    registry = tmp / "models"
    shutil.copytree(nights.registry, registry)
    manifest = run.manifest()
    if previous is not None:
        manifest["previous"] = {
            "run_id": RunDir(previous).manifest()["run_id"],
            "path": str(previous.resolve()),
        }
    manifest["status"] = "running"
    run.write_json("manifest.json", manifest)
    return run, registry


def test_auto_retrains_on_drift_and_the_registry_records_run_inputs_and_reason(
    drift_nights: object,
) -> None:
    nights = _nights(drift_nights)
    manifest = RunDir(nights.day2).manifest()
    retrain = manifest["model"]["retrain"]
    assert retrain["policy"] == "auto"
    assert retrain["train"] is True
    assert "PSI" in retrain["reason"]
    assert manifest["model"]["kind"] == "gbm"  # trained tonight, not the promoted one
    day1 = RunDir(nights.day1).manifest()
    assert manifest["model"]["promoted_before"]["version"] == day1["model"]["version"]

    registry = ModelRegistry(nights.registry)
    card = registry.show(manifest["model"]["version"])
    assert card.trained_on["run_id"] == manifest["run_id"]
    assert card.trained_on["users_sha256"] == manifest["inputs"]["users"]["sha256"]
    assert card.trained_on["devices_sha256"] == manifest["inputs"]["devices"]["sha256"]
    first = registry.show(day1["model"]["version"])
    assert first.trained_on["run_id"] == day1["run_id"]

    # Night 2's labels are new to night 1's model: both were compared on the same rows.
    promotion = manifest["model"]["promotion"]
    same = promotion["same_rows"]
    assert same["rows"] >= 10
    assert f"on the same {same['rows']} validation rows" in promotion["reason"]
    event = registry.history()[-1]
    assert event["version"] == card.version
    assert event["action"] == ("promote" if promotion["promote"] else "not_promoted")
    assert (event["reason"], event["run_id"]) == (promotion["reason"], manifest["run_id"])


def test_never_scores_with_the_promoted_model_and_trains_nothing(
    drift_nights: object, tmp_path: Path
) -> None:
    nights = _nights(drift_nights)
    run, registry_dir = _copy(nights, tmp_path)
    registry = ModelRegistry(registry_dir)
    promoted = registry.promoted()
    assert promoted is not None
    saved = [c.version for c in registry.list()]
    stage_score(run, _settings(registry_dir, "never"))
    manifest = run.manifest()
    assert manifest["status"] == "complete"
    assert manifest["model"]["kind"] == "promoted"
    assert manifest["model"]["version"] == promoted.version
    assert manifest["model"]["retrain"]["train"] is False
    assert manifest["model"]["retrain"]["reason"].startswith("policy never; model 0.")
    assert "promotion" not in manifest["model"]
    assert [c.version for c in registry.list()] == saved  # nothing trained, nothing saved
    assert registry.promoted() == promoted
    versions = run.read("scores.parquet")["model_version"].unique().to_list()
    assert versions == [promoted.version]


def test_auto_scores_with_the_promoted_model_when_nothing_moved(
    drift_nights: object, tmp_path: Path
) -> None:
    """Night 2 again against itself: no drift, a fresh model, no new labels → skipped."""
    nights = _nights(drift_nights)
    run, registry_dir = _copy(nights, tmp_path, previous=nights.day2)
    registry = ModelRegistry(registry_dir)
    saved = len(registry.list())
    settings = _settings(registry_dir, "auto")
    settings.model.retrain_new_labels = 10**6  # night 1's model has fewer labels than night 2
    stage_score(run, settings)
    retrain = run.manifest()["model"]["retrain"]
    assert retrain["train"] is False, retrain
    assert "max PSI 0.00" in retrain["reason"]
    assert len(registry.list()) == saved


def test_never_without_a_promoted_model_trains_and_says_so(
    drift_nights: object, tmp_path: Path
) -> None:
    nights = _nights(drift_nights)
    run, _ = _copy(nights, tmp_path)
    empty = tmp_path / "empty-registry"
    stage_score(run, _settings(empty, "never"))
    manifest = run.manifest()
    assert manifest["model"]["retrain"]["train"] is True
    assert (
        "no promoted model to score with (policy never)" in manifest["model"]["retrain"]["reason"]
    )
    assert manifest["model"]["kind"] == "gbm"
    assert manifest["model"]["promotion"]["reason"] == "nothing promoted yet"
    assert ModelRegistry(empty).promoted() is not None
    assert (
        pl.read_parquet(run.file("scores.parquet")).height
        == manifest["counts"]["users"]["accepted"]
    )
