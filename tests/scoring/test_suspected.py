"""The suspected-ring rule: a cut calibrated on labelled communities, one test for all paths."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from graphfraud.scoring.suspected import (
    MIN_EACH,
    RingCut,
    calibrate_cut,
    is_suspected,
    labelled_ring_scores,
    suspected_expr,
)


def _labelled(scores: list[float], fraud: list[bool]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ring_id": [f"R{i}" for i in range(len(scores))],
            "ring_score": scores,
            "has_fraud": fraud,
        },
        schema={"ring_id": pl.String, "ring_score": pl.Float32, "has_fraud": pl.Boolean},
    )


def test_the_cut_falls_between_clean_and_fraud_communities() -> None:
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.0, 0.2, 60).tolist()
    fraud = rng.uniform(0.6, 0.9, 12).tolist()
    cut = calibrate_cut(_labelled(clean + fraud, [False] * 60 + [True] * 12), 0.5, 0.99)
    assert cut.how == "calibrated"
    assert max(clean) < cut.cut <= min(fraud)
    assert (cut.labelled_communities, cut.with_fraud) == (72, 12)
    assert cut.curve[-1]["rate"] >= 0.5 > cut.curve[0]["rate"]


def test_a_higher_probability_asks_for_a_higher_cut() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 400)
    y = rng.uniform(0, 1, 400) < x  # P(fraud | score) = score
    frame = _labelled(x.tolist(), y.tolist())
    low, high = calibrate_cut(frame, 0.3, 0.99), calibrate_cut(frame, 0.7, 0.99)
    assert low.how == high.how == "calibrated"
    assert low.cut < high.cut
    assert 0.1 < low.cut < 0.5 < high.cut < 0.9


def test_a_lone_fraud_ring_on_top_is_no_certainty() -> None:
    """Beta smoothing: one fraud community above 40 clean ones does not reach 0.5."""
    frame = _labelled([0.01 * i for i in range(40)] + [0.9] * 1 + [0.02] * 3,
                      [False] * 40 + [True] + [True] * 3)  # fmt: skip
    cut = calibrate_cut(frame, 0.5, 0.99)
    assert cut.how == "none"
    assert math.isinf(cut.cut)
    assert not is_suspected(0.99, cut.cut)


def test_a_lone_fraud_community_on_top_of_fraud_ones_keeps_their_cut() -> None:
    """Isotonic blocks, then smoothing: a block of one fraud community (raw rate 1) above 28
    mostly fraud ones (25 of 28) smooths to ~0.47 on its own. The smoothed rates are made
    monotone, so it does not stop every score below it from reaching the probability."""
    rng = np.random.default_rng(4)
    clean = rng.uniform(0.0, 0.2, 100).tolist()
    # the three clean ones at the top of the range pool with the fraud ones below them
    high = np.sort(rng.uniform(0.75, 0.99, 28)).tolist()
    frame = _labelled(
        clean + high + [0.9995],
        [False] * 100 + [True] * 25 + [False] * 3 + [True],
    )
    cut = calibrate_cut(frame, 0.5, 0.99)
    assert cut.how == "calibrated"
    assert max(clean) < cut.cut < min(high)
    rates = [block["rate"] for block in cut.curve]
    assert rates == sorted(rates)


def test_too_few_labelled_communities_use_the_fallback_cut() -> None:
    frame = _labelled([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    assert MIN_EACH > 2
    cut = calibrate_cut(frame, 0.5, 0.7)
    assert (cut.how, cut.cut) == ("fallback", 0.7)


def test_batch_and_online_apply_one_rule() -> None:
    scores = [None, float("nan"), 0.0, 0.29, 0.3, 0.31, 1.0]
    batch = (
        pl.DataFrame({"ring_score": scores}, schema={"ring_score": pl.Float64})
        .select(suspected_expr(0.3))
        .to_series()
        .to_list()
    )
    assert batch == [is_suspected(s, 0.3) for s in scores]
    assert batch == [False, False, False, False, True, True, True]


def test_the_rule_survives_the_manifest() -> None:
    cut = RingCut(0.4, 0.5, "calibrated", 10, 3)
    again = RingCut.from_manifest(cut.public(), fallback=0.9)
    assert (again.cut, again.how) == (0.4, "calibrated")
    none = RingCut.from_manifest(RingCut(math.inf, 0.5, "none").public(), fallback=0.9)
    assert math.isinf(none.cut)
    assert RingCut.from_manifest(None, fallback=0.9).cut == 0.9  # a run from before


def test_ring_scores_are_over_labelled_members_only() -> None:
    """An unlabelled member's score saw its ring-mates' labels; a labelled one's did not."""
    members = pl.DataFrame({"user_id": ["a", "b", "c", "d"], "ring_id": ["R1"] * 3 + ["R2"]})
    scores = pl.DataFrame({"user_id": ["a", "b", "c", "d"], "model_score": [0.2, 0.2, 0.99, 0.5]})
    labels = pl.DataFrame(
        {"user_id": ["a", "b", "c", "d"], "label": [1, 0, None, None]},
        schema={"user_id": pl.String, "label": pl.Int8},
    )
    got = labelled_ring_scores(members, scores, labels)
    assert got["ring_id"].to_list() == ["R1"]  # R2 has no labelled member
    assert got["has_fraud"].to_list() == [True]
    assert abs(got["ring_score"][0] - 0.2) < 1e-6  # c's 0.99 left out


def test_a_wide_block_does_not_pull_the_cut_down_to_its_lowest_member() -> None:
    """One fraud community at 0.07 pooled with five at 0.4-0.75: the cut lies inside that
    block, where the rate crosses the probability, not at 0.07."""
    clean = [0.001 * i for i in range(1, 24)] + [0.04, 0.05]
    fraud_ish = [0.055, 0.07, 0.4, 0.5, 0.6, 0.75]
    frame = _labelled(clean + fraud_ish, [False] * 25 + [False] + [True] * 5)
    cut = calibrate_cut(frame, 0.5, 0.99)
    assert cut.how == "calibrated"
    assert 0.1 < cut.cut < 0.5
