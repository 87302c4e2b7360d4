"""Ranking metrics: average precision and ROC-AUC, the one definition batch and benchmarks use.

They equal scikit-learn's `average_precision_score` and `roc_auc_score` (binary labels, ties
grouped by distinct score) but skip its input validation, which costs ~5 ms a call: the GNN
checks its validation ranking after every epoch and the gate bootstraps hundreds of AUPRCs, so
that overhead alone was seconds of every model stage.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.stats import rankdata

Labels = npt.NDArray[np.integer[Any]] | npt.NDArray[np.bool_]
Scores = npt.NDArray[np.floating[Any]]


def average_precision(labels: Labels, scores: Scores) -> float:
    """Σ_k (R_k − R_{k−1}) · P_k over the distinct score thresholds, highest first; NaN without
    a positive."""
    y = np.asarray(labels).astype(bool, copy=False)
    s = np.asarray(scores)
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last row of each tie group
    tps = np.cumsum(y)[last]
    if len(tps) == 0 or tps[-1] == 0:
        return float("nan")
    precision = tps / (last + 1)
    recall_gain = np.diff(tps, prepend=0) / tps[-1]
    return float(np.sum(recall_gain * precision))


def roc_auc(labels: Labels, scores: Scores) -> float:
    """P(a random positive outscores a random negative), ties counting half (Mann–Whitney U on
    mid-ranks); NaN unless both classes are present."""
    y = np.asarray(labels).astype(bool, copy=False)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(scores))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
