"""PSI (`report/drift.py`) against a hand computation, and its properties."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphfraud.report.drift import EPSILON, Bins, column_psi, psi, psi_of_counts


def test_psi_matches_a_hand_computation() -> None:
    """Reference 0..9 (10 values): the deciles' edges are 0, 1, …, 8, one value per bin.
    Current: four 0s, two 5s, two 9s and two nulls. By hand, with r = 0.1 in each of the 10
    value bins and 0 in the null bin (floored at ε):
      bin 0 (≤0): c = 0.4     → (0.4 − 0.1)·ln 4
      bin 5 (4, 5]: c = 0.2   → (0.2 − 0.1)·ln 2
      bin 9 (>8): c = 0.2     → (0.2 − 0.1)·ln 2
      7 empty bins: c = ε     → 7·(ε − 0.1)·ln(ε / 0.1)
      null bin: c = 0.2, r = ε → (0.2 − ε)·ln(0.2 / ε)
    """
    reference = np.arange(10, dtype=float)
    current = np.array([0, 0, 0, 0, 5, 5, 9, 9, np.nan, np.nan])
    eps = EPSILON
    by_hand = (
        0.3 * math.log(4)
        + 2 * 0.1 * math.log(2)
        + 7 * (eps - 0.1) * math.log(eps / 0.1)
        + (0.2 - eps) * math.log(0.2 / eps)
    )
    assert psi(reference, current) == pytest.approx(by_hand, rel=1e-12)


def test_bins_come_from_the_reference_and_are_right_closed() -> None:
    bins = Bins.of(np.arange(10, dtype=float))
    assert bins.edges == tuple(float(k) for k in range(9))
    # A value on an edge belongs to the bin the edge closes (right-closed); below the lowest and
    # above the highest edge fall into the open-ended outer bins; NaN into the null bin.
    counts = bins.counts(np.array([-100.0, 0.0, 0.5, 1.0, 1e9, np.nan]))
    assert counts.tolist() == [2, 2, 0, 0, 0, 0, 0, 0, 0, 1, 1]


def test_a_binary_feature_has_two_bins_not_ten() -> None:
    reference = np.array([0.0] * 70 + [1.0] * 30)
    assert Bins.of(reference).edges == (0.0, 1.0)
    # Same shares → 0; 30 % → 60 % ones by hand: (0.4-0.7)ln(0.4/0.7) + (0.6-0.3)ln(0.6/0.3).
    assert psi(reference, reference[::-1]) == 0.0
    moved = np.array([0.0] * 40 + [1.0] * 60)
    by_hand = (0.4 - 0.7) * math.log(0.4 / 0.7) + (0.6 - 0.3) * math.log(0.6 / 0.3)
    assert psi(reference, moved) == pytest.approx(by_hand, rel=1e-9)


def test_empty_sides_are_nan_not_zero() -> None:
    assert math.isnan(psi(np.array([]), np.array([1.0, 2.0])))
    assert math.isnan(psi(np.array([1.0, 2.0]), np.array([])))
    assert math.isnan(psi_of_counts(np.array([0, 0]), np.array([1, 2])))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
    st.lists(st.floats(-1e6, 1e6) | st.just(float("nan")), min_size=1, max_size=200),
)
def test_psi_is_zero_on_itself_and_never_negative(ref: list[float], cur: list[float]) -> None:
    reference, current = np.array(ref), np.array(cur)
    assert psi(reference, reference) == 0.0
    assert psi(reference, np.random.default_rng(0).permutation(reference)) == 0.0
    assert psi(reference, current) >= 0.0  # Σ (c−r)·ln(c/r): every term is ≥ 0


def test_a_shifted_population_drifts_and_a_resample_does_not() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 20_000)
    assert psi(reference, rng.normal(0, 1, 20_000)) < 0.01
    assert psi(reference, rng.normal(1, 1, 20_000)) > 0.25


def test_column_psi_skips_columns_one_side_lacks_and_text() -> None:
    a = pl.DataFrame({"user_id": ["u1", "u2"], "x": [0.0, 1.0], "old": [1.0, 2.0]})
    b = pl.DataFrame({"user_id": ["u1", "u2"], "x": [1.0, 1.0], "new": [1.0, 2.0]})
    table = column_psi(a, b)
    assert set(table) == {"x"}
    assert table["x"] > 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-5, 5).map(float), min_size=1, max_size=300),
    st.lists(st.floats(-10, 10) | st.just(float("nan")), max_size=300),
    st.integers(2, 20),
)
def test_bins_are_numpys_inverted_cdf_quantiles_and_counts_a_plain_loop(
    ref: list[float], cur: list[float], n_bins: int
) -> None:
    """Oracle: the edges are `np.quantile(..., method="inverted_cdf")` deduplicated, and each
    value's bin is the first edge at or above it (a loop over values), nulls last."""
    reference = np.array(ref)
    bins = Bins.of(reference, n_bins)
    expected = np.unique(
        np.quantile(reference, np.arange(1, n_bins) / n_bins, method="inverted_cdf")
    )
    assert bins.edges == tuple(expected.tolist())
    by_loop = [0] * (len(bins.edges) + 2)
    for v in cur:
        if math.isnan(v):
            by_loop[-1] += 1
        else:
            by_loop[next((i for i, e in enumerate(bins.edges) if v <= e), len(bins.edges))] += 1
    assert bins.counts(np.array(cur, dtype=float)).tolist() == by_loop
