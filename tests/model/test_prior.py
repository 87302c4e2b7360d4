from __future__ import annotations

import numpy as np
import polars as pl

from graphfraud.model.features import prior_of
from graphfraud.model.prior import prior_inputs, ring_prior
from graphfraud.scoring.scores import prior_scores

NAMES = (
    "in_ring",
    "ring_size",
    "ring_creation_burst",
    "ring_identifier_similarity",
    "ring_shared_device_ratio",
    "log_email_support",
    "log_max_device_support",  # a sighting's support: not an identifier the user holds
)


def _row(**values: float) -> np.ndarray:
    return np.array([[values.get(n, 0.0) for n in NAMES]], dtype=np.float32)


def _prior(**values: float) -> float:
    return float(ring_prior(_row(**values), NAMES)[0])


def test_a_burst_counts_in_a_community_of_three_not_in_a_pair() -> None:
    assert _prior(in_ring=1, ring_size=8, ring_creation_burst=0.9) > 0.85
    assert _prior(in_ring=1, ring_size=2, ring_creation_burst=1.0) == 0.0
    assert _prior(in_ring=0, ring_size=8, ring_creation_burst=1.0) == 0.0


def test_an_identifier_counts_past_a_household() -> None:
    held = {n: _prior(log_email_support=float(np.log1p(n))) for n in (1, 2, 3, 5, 40)}
    assert held[1] == held[2] == 0.0
    assert 0.3 < held[3] < 0.4
    assert held[5] == held[40] == 1.0
    assert _prior(log_max_device_support=float(np.log1p(40))) == 0.0


def test_evidence_combines_by_noisy_or_and_blocks_count_half() -> None:
    assert abs(_prior(in_ring=1, ring_shared_device_ratio=1.0) - 0.5) < 1e-6
    both = _prior(in_ring=1, ring_size=5, ring_creation_burst=0.5, ring_identifier_similarity=1.0)
    assert abs(both - (1 - 0.5 * 0.5)) < 1e-6
    assert np.all(ring_prior(np.zeros((3, 0), dtype=np.float32), ()) == 0.0)


def test_the_fallback_score_is_the_feature_tables_prior() -> None:
    rng = np.random.default_rng(0)
    frame = pl.DataFrame({n: rng.random(50).astype(np.float32) * 4 for n in NAMES}).with_columns(
        pl.lit(None, pl.Float32).alias("ring_size").fill_null(6.0)
    )
    assert prior_inputs(frame.columns) == [n for n in NAMES if n != "log_max_device_support"]
    np.testing.assert_array_equal(prior_scores(frame), prior_of(frame))
    assert prior_scores(frame).dtype == np.float32
