"""A real run's communities vs suspected rings, bands and operating points (the session's
synthetic run: households and cafés among planted rings)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import polars as pl
import pytest

from graphfraud import schema
from graphfraud.config import DecisionSettings
from graphfraud.evaluate import evaluate_run
from graphfraud.rundir import RunDir
from graphfraud.scoring.decision import Bands
from graphfraud.scoring.scores import scored_rings
from tests.online_run import OnlineRun, build_online_run


@pytest.fixture(scope="module")
def larger_run(tmp_path_factory: pytest.TempPathFactory) -> OnlineRun:
    """The session's kind of run at 10k users. The cut is calibrated on the labelled
    communities, and the 3k-user run's ~50 are too few to hold it still: there the assertions
    below held on 2 of 3 population seeds before birth years stopped counting as sequences and
    on 1 of 3 after; at 10k users on 2 of 3 before and 3 of 3 after."""
    return build_online_run(tmp_path_factory.mktemp("suspected"), users=10_000)


def test_households_are_communities_and_rings_are_suspected(larger_run: OnlineRun) -> None:
    online_run = larger_run
    run = RunDir(online_run.run_dir)
    truth = online_run.truth.select(pl.col("user_id").cast(pl.String), "is_fraud", "ring_id")
    truth.write_csv(online_run.run_dir.parent / "truth-eval.csv")
    ev = evaluate_run(online_run.run_dir, online_run.run_dir.parent / "truth-eval.csv")
    # many honest users share a household device or a café: communities, not suspected rings
    assert ev.honest_in_community > 0.15
    assert ev.honest_in_suspected < ev.honest_in_community / 5
    # while the planted rings mostly still are (recall of suspected rings alone)
    assert ev.suspected_recall >= 0.7 * ev.ring_recall
    assert ev.suspected_precision >= 0.8
    rings = scored_rings(run)
    cut = run.manifest()["rings_suspected"]
    assert cut["how"] == "calibrated"
    flagged = rings.filter(pl.col("suspected_ring"))
    assert flagged.height
    assert (flagged["ring_score"] >= cut["cut"]).all()
    assert (rings.filter(~pl.col("suspected_ring"))["ring_score"] < cut["cut"]).all()
    # scores.parquet says it per user: in a suspected ring exactly when its community is one
    scores = run.read(schema.SCORES_FILE)
    joined = scores.join(
        rings.select("ring_id", pl.col("suspected_ring").alias("s")), on="ring_id", how="left"
    )
    assert (joined["suspected_ring"] == joined["s"].fill_null(False)).all()


def test_every_user_gets_the_band_of_its_score(online_run: OnlineRun) -> None:
    run = RunDir(online_run.run_dir)
    scores = run.read(schema.SCORES_FILE)
    bands = Bands.of(DecisionSettings())
    assert scores["band"].to_list() == [bands.of_score(s) for s in scores["score"].to_list()]
    assert set(scores["band"]) == {"allow", "review", "decline"}
    decision = run.manifest()["decision"]
    assert decision["bands_count"] == dict(scores["band"].value_counts().iter_rows())


def test_the_run_directory_holds_operating_points_a_calibration_curve_and_a_plot(
    online_run: OnlineRun,
) -> None:
    run = RunDir(online_run.run_dir)
    table = run.read(schema.OPERATING_POINTS_FILE)
    assert table.height == 101
    assert {"fraud_caught_per_10k", "good_affected_per_10k", "labelled_fraud_caught",
            "labelled_good_affected", "flagged_per_10k"} <= set(table.columns)  # fmt: skip
    curve = run.read(schema.CALIBRATION_FILE)
    users = run.read(schema.USERS_FILE)
    assert curve["n"].sum() == users["label"].is_not_null().sum()
    ET.fromstring(run.file(schema.OPERATING_PLOT_FILE).read_text())
    manifest = json.loads(run.file(schema.MANIFEST_FILE).read_text())
    decision = manifest["decision"]
    assert decision["scores"] == "out-of-fold"
    truth = online_run.truth.join(users.filter(pl.col("label").is_null()).select(
        pl.col("user_id")), on="user_id")  # fmt: skip
    true = truth["is_fraud"].mean()
    assert abs(decision["prevalence"] - true) < 0.6 * true  # a 3,000-user night: rough
    assert decision["at_decision"]["threshold"] == decision["decision_threshold"]
