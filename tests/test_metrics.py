"""The ranking metrics are scikit-learn's, ties and all, without its per-call overhead."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from graphfraud.metrics import average_precision, roc_auc


@pytest.mark.parametrize("seed", range(40))
def test_the_metrics_equal_scikit_learns_with_and_without_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    y = (rng.random(n) < rng.uniform(0.01, 0.9)).astype(np.int8)
    y[0], y[-1] = 0, 1  # both classes
    if seed % 2:  # a handful of distinct values: heavy ties
        s = rng.integers(0, int(rng.integers(1, 30)), n).astype(np.float32)
    else:
        s = rng.random(n).astype(np.float32)
    assert average_precision(y, s) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_a_perfect_ranking_scores_one_and_a_reversed_one_scores_its_floor() -> None:
    y = np.array([0, 0, 0, 1, 1])
    s = np.arange(5, dtype=np.float64)
    assert average_precision(y, s) == 1.0
    assert roc_auc(y, s) == 1.0
    assert roc_auc(y, -s) == 0.0
    # reversed: the positives come 4th and 5th, precision 1/4 then 2/5
    assert average_precision(y, -s) == pytest.approx(0.5 * 1 / 4 + 0.5 * 2 / 5)


def test_one_class_is_undefined_not_a_number() -> None:
    assert math.isnan(roc_auc(np.ones(4, dtype=np.int8), np.arange(4.0)))
    assert math.isnan(roc_auc(np.zeros(4, dtype=np.int8), np.arange(4.0)))
    assert math.isnan(average_precision(np.zeros(4, dtype=np.int8), np.arange(4.0)))
