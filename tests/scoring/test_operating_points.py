"""Operating points: rates from labelled out-of-fold scores, counts per 10k from a prevalence
estimated on the unlabelled users (labels oversample fraud), a calibration curve, a plot."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from graphfraud.scoring.decision import Bands
from graphfraud.scoring.operating_points import (
    at_threshold,
    estimate_prevalence,
    operating_points,
    operating_svg,
)


def _night(seed: int, n: int = 40_000, prevalence: float = 0.03) -> tuple[np.ndarray, ...]:
    """Fraud scores ~ Beta(5, 2), good ~ Beta(2, 5); a tenth of the frauds and 2 % of the good
    users are labelled, so the labelled fraud share is ~5x the population's."""
    rng = np.random.default_rng(seed)
    fraud = rng.random(n) < prevalence
    scores = np.where(fraud, rng.beta(5, 2, n), rng.beta(2, 5, n))
    labelled = np.where(fraud, rng.random(n) < 0.10, rng.random(n) < 0.02)
    labels = np.where(labelled, fraud.astype(np.int8), -1).astype(np.int8)
    return labels, scores, fraud


def test_prevalence_is_estimated_on_the_unlabelled_users_not_from_the_labels() -> None:
    labels, scores, fraud = _night(3)
    points = operating_points(labels, scores, scores)
    true = fraud[labels < 0].mean()
    labelled_share = (labels == 1).sum() / (labels >= 0).sum()
    assert labelled_share > 3 * true  # the naive estimate is far off
    assert abs(points.prevalence - true) < 0.3 * true


def test_the_table_counts_per_10k_and_its_rates_fall_with_the_threshold() -> None:
    labels, scores, fraud = _night(4)
    points = operating_points(labels, scores, scores)
    table = points.table
    assert table.height == 101
    for column in ("labelled_fraud_caught", "labelled_good_affected", "flagged_per_10k"):
        assert (np.diff(table[column].to_numpy()) <= 1e-9).all(), column
    row = at_threshold(points, 0.5)
    unlabelled = labels < 0
    flagged = (scores[unlabelled] >= 0.5).mean() * 10_000
    assert abs(row["flagged_per_10k"] - flagged) < 0.01
    truly_caught = ((scores >= 0.5) & fraud)[unlabelled].mean() * 10_000
    assert abs(row["fraud_caught_per_10k"] - truly_caught) < 0.3 * truly_caught
    assert (
        abs(row["fraud_caught_per_10k"] + row["good_affected_per_10k"] - row["flagged_per_10k"])
        < 0.2 * row["flagged_per_10k"]
    )


def test_the_calibration_curve_bins_labelled_users() -> None:
    labels, scores, _ = _night(5)
    curve = operating_points(labels, scores, scores).calibration
    assert curve["n"].sum() == (labels >= 0).sum()
    rates = curve["fraud_rate"].to_numpy()
    assert rates[-1] > rates[0]  # higher scores, more fraud
    assert (
        (curve["mean_score"] >= curve["bin_lo"]) & (curve["mean_score"] <= curve["bin_hi"])
    ).all()


def test_no_separation_no_prevalence() -> None:
    tpr = fpr = np.linspace(1, 0, 11)
    assert np.isnan(estimate_prevalence(tpr, fpr, np.linspace(1, 0, 11)))


def test_the_plot_is_an_svg_with_both_panels() -> None:
    labels, scores, _ = _night(6)
    svg = operating_svg(operating_points(labels, scores, scores), Bands(0.2, 0.5, ("a", "r", "d")))
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 3  # operating curve, diagonal, calibration
    assert all(len(e.attrib["points"].split()) >= 2 for e in lines)
    assert "Operating points" in svg
    assert "Calibration" in svg


def test_a_night_without_labels_still_writes_a_table_and_a_plot() -> None:
    scores = np.linspace(0, 1, 50)
    points = operating_points(np.full(50, -1, dtype=np.int8), scores, scores)
    assert np.isnan(points.prevalence)
    assert points.table.height == 101
    assert points.calibration.is_empty()
    assert at_threshold(points, 0.5)["fraud_caught_per_10k"] is None
    assert at_threshold(points, 0.5)["flagged_per_10k"] == 5000.0  # still observed
    ET.fromstring(operating_svg(points, Bands(0.2, 0.5, ("a", "r", "d"))))
