"""Day 1 full, then day 2 three ways — a full run, an incremental run on the full snapshot and
an incremental run on the delta — all scored by the same (promoted) model: the same links, ring
partition and scores; and the erased users are nowhere in the incremental nights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from graphfraud.config import Settings, load_settings
from graphfraud.errors import ConfigError
from graphfraud.model.ego import load_state
from graphfraud.pipeline import run_pipeline
from graphfraud.rundir import RunDir
from graphfraud.scoring.mapped import store_path
from graphfraud.scoring.snapshot import Strings, load_snapshot
from graphfraud.synthetic import generate_population
from graphfraud.synthetic.nights import Nights, two_nights


@dataclass(frozen=True)
class Runs:
    nights: Nights
    files: Path
    day1: Path
    full: Path
    snapshot: Path
    delta: Path
    settings: Settings


def _settings(tmp: Path) -> Settings:
    settings = load_settings()
    settings.model.registry = tmp / "models"
    settings.model.folds = 3
    settings.model.candidates = ["gbm"]
    return settings


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    tmp = tmp_path_factory.mktemp("nights")
    nights = two_nights(generate_population(2_500, 5), 3)
    erased = nights.deleted[0]
    kept = nights.day2_users["user_id"][0]
    # the delta's awkward rows: an upsert (with a bad timestamp: quarantined) of a user the same
    # delta erases, a sighting of an erased user, and an unknown op on a user who stays
    extra_users = pl.DataFrame(
        {
            "user_id": [erased, kept],
            "email": ["erased.person@example.com", None],
            "created_at": ["not a date", None],
            "op": ["upsert", "archive"],
        }
    )
    delta_users = pl.concat([nights.delta_users, extra_users], how="diagonal_relaxed")
    extra_sighting = nights.day1_devices.filter(pl.col("user_id") == erased).head(1)
    delta_devices = pl.concat([nights.delta_devices, extra_sighting])
    frames = {
        "day1_users": nights.day1_users,
        "day1_devices": nights.day1_devices,
        "day2_users": nights.day2_users,
        "day2_devices": nights.day2_devices,
        "delta_users": delta_users,
        "delta_devices": delta_devices,
    }
    for name, frame in frames.items():
        frame.write_csv(tmp / f"{name}.csv")
    settings = _settings(tmp)
    # Night 2 scores with night 1's promoted model, full or incremental (the retrain policy).
    promoted = settings.model_copy(deep=True)
    promoted.model.retrain = "never"

    def run(users: str, devices: str, out: str, night: Settings = promoted, **kw: object) -> Path:
        result = run_pipeline(
            tmp / f"{users}.csv",
            tmp / f"{devices}.csv",
            tmp / out,
            night,
            **kw,  # type: ignore[arg-type]
        )
        return result.run_dir

    day1 = run("day1_users", "day1_devices", "day1", settings)
    return Runs(
        nights=nights,
        files=tmp,
        day1=day1,
        full=run("day2_users", "day2_devices", "full"),
        snapshot=run("day2_users", "day2_devices", "snapshot", previous=day1),
        delta=run("delta_users", "delta_devices", "delta", previous=day1, delta=True),
        settings=settings,
    )


def _read(run: Path, name: str) -> pl.DataFrame:
    return pl.read_parquet(run / name)


def _partition(run: Path) -> set[frozenset[str]]:
    members = _read(run, "ring_members.parquet").group_by("ring_id").agg("user_id")
    return {frozenset(m) for m in members["user_id"].to_list()}


@pytest.mark.parametrize("night", ["snapshot", "delta"])
def test_an_incremental_night_equals_a_full_night(runs: Runs, night: str) -> None:
    full, incremental = runs.full, getattr(runs, night)
    order = ["user_a", "user_b", "kind"]
    assert (
        _read(incremental, "links.parquet")
        .sort(order)
        .equals(_read(full, "links.parquet").sort(order))
    )
    assert _partition(incremental) == _partition(full)
    assert len(_partition(full)) > 50
    want = _read(full, "scores.parquet").sort("user_id")
    got = _read(incremental, "scores.parquet").sort("user_id")
    assert got["user_id"].equals(want["user_id"])
    assert np.abs(got["score"].to_numpy() - want["score"].to_numpy()).max() <= 1e-6
    # Same rings, not the same ids: the incremental night keeps night 1's ids (`rings.lineage`),
    # the full reference has no previous night to keep them from.
    assert got["ring_id"].is_null().equals(want["ring_id"].is_null())
    assert got["model_version"].equals(want["model_version"])
    # incremental for real: the work was reused, and the model was not retrained
    manifest = json.loads((incremental / "manifest.json").read_text())
    stages = manifest["stages"]
    assert stages["link"]["incremental"]
    assert stages["rings"]["incremental"]
    assert stages["link"]["email_similar_reused_pairs"] > 0
    assert 0 < stages["rings"]["components_recomputed"] < stages["rings"]["components"]
    assert manifest["model"]["kind"] == "promoted"
    day1 = json.loads((runs.day1 / "manifest.json").read_text())
    assert manifest["model"]["version"] == day1["model"]["version"]


def test_the_delta_is_validated_and_counted(runs: Runs) -> None:
    manifest = json.loads((runs.delta / "manifest.json").read_text())
    counts = manifest["counts"]["users"]
    assert manifest["input_kind"] == "delta"
    assert counts["input"] == counts["accepted"] + counts["quarantined"]
    assert counts["deleted"] == len(runs.nights.deleted)
    assert counts["materialised"] == runs.nights.day2_users.height
    quarantine = _read(runs.delta, "quarantine/users.parquet")
    assert quarantine["reason"].to_list() == ["bad_op"]  # the erased user's bad row is gone
    assert counts["erased_from_quarantine"] == 1
    assert manifest["counts"]["devices"]["erased"] == 1


def _strings(frame: pl.DataFrame) -> set[str]:
    found: set[str] = set()
    for name, dtype in frame.schema.items():
        if dtype == pl.String:
            found.update(v for v in frame[name].drop_nulls().to_list())
    return found


@pytest.mark.parametrize("night", ["snapshot", "delta"])
def test_erased_users_vanish_from_every_artifact(runs: Runs, night: str) -> None:
    run = getattr(runs, night)
    erased = set(runs.nights.deleted)
    day1 = runs.nights.day1_users
    theirs = day1.filter(pl.col("user_id").is_in(list(erased)))
    others = _strings(runs.nights.day2_users)
    # PII only they held: emails and phones as typed, and as normalised
    normalised = _read(runs.day1, "users.parquet").filter(pl.col("user_id").is_in(list(erased)))
    pii = (
        (
            _strings(theirs.drop("user_id", "created_at", "label", "name"))
            | _strings(normalised.select("email", "phone"))
        )
        - others
        - _strings(_read(run, "users.parquet"))
    )
    assert len(pii) > len(erased)  # a typed and a normalised value at least, per user
    pii |= {"erased.person@example.com"}
    assert erased <= _strings(_read(runs.day1, "users.parquet"))  # they were there on day 1
    files = sorted(p for p in run.rglob("*") if p.is_file())
    assert len([p for p in files if p.suffix == ".parquet"]) >= 12
    for path in files:
        if path.suffix == ".parquet":
            held = _strings(pl.read_parquet(path))
            assert not held & erased, path
            assert not held & pii, path
        elif path.suffix == ".json":
            text = path.read_text()
            assert not any(u in text for u in erased), path
    store = store_path(run)  # the score store: every string column, whole values
    for offsets in sorted(store.glob("*.offsets.npy")):
        prefix = offsets.name[: -len(".offsets.npy")]
        column = Strings(np.load(offsets), np.load(store / f"{prefix}.data.npy"))
        held = set(column.to_series().to_list())
        assert not held & erased, prefix
        assert not held & pii, prefix
    users = _read(run, "users.parquet")
    assert load_state(run / "online").matrix.shape[0] == users.height
    snapshot = load_snapshot(run)
    assert all(snapshot.user(u) is None for u in erased)
    assert snapshot.user(users["user_id"][0]) is not None


def test_a_delta_needs_a_previous_run(runs: Runs, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--previous"):
        run_pipeline(
            runs.files / "delta_users.csv",
            None,
            tmp_path / "orphan",
            runs.settings,
            delta=True,
        )
    assert not (tmp_path / "orphan").exists()
    assert RunDir(runs.delta).manifest()["status"] == "complete"
