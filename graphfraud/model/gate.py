"""The ranking gate: a model whose out-of-fold ranking is near chance never scores a night.

On a quiet night (a few dozen fraud labels, or labels that carry no signal) the candidates'
out-of-fold ROC-AUC can sit at 0.55–0.6 by luck; promoting such a model replaces a working one
with noise. The gate asks the *lower* 95 % bound of the out-of-fold ROC-AUC, by the Hanley–McNeil
(1982) standard error, to beat `0.5 + margin` (`model.gate_margin`); otherwise the night scores
with the promoted model or the label-free prior (`model/stage.py`), and the manifest says why.

Hanley–McNeil: with A the AUC, n1 positives, n0 negatives, Q1 = A/(2 − A), Q2 = 2A²/(1 + A),
SE² = (A(1 − A) + (n1 − 1)(Q1 − A²) + (n0 − 1)(Q2 − A²)) / (n1·n0). With 50 fraud labels an
AUC of 0.585 has a lower bound near 0.50; with 400, an AUC of 0.95 one near 0.94.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.metrics import average_precision, roc_auc

Z95 = 1.959964


def hanley_mcneil_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Standard error of an ROC-AUC (inf when a class is empty)."""
    if n_pos < 1 or n_neg < 1 or not math.isfinite(auc):
        return math.inf
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def auc_lower_bound(auc: float, n_pos: int, n_neg: int) -> float:
    """The lower 95 % bound of an ROC-AUC (-inf when unknown)."""
    se = hanley_mcneil_se(auc, n_pos, n_neg)
    return auc - Z95 * se if math.isfinite(se) else -math.inf


@dataclass(frozen=True)
class Gate:
    """The gate's verdict on one model (recorded in the manifest's model metrics)."""

    passed: bool
    roc_auc: float
    lower: float
    bar: float
    n_pos: int
    n_neg: int

    @property
    def reason(self) -> str:
        verdict = "passes" if self.passed else "is near chance"
        return (
            f"out-of-fold ROC-AUC {self.roc_auc:.3f} (95 % lower bound {self.lower:.3f}, "
            f"{self.n_pos} fraud / {self.n_neg} legit labels) {verdict}: the bar is {self.bar:.3f}"
        )

    def public(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "roc_auc": round(self.roc_auc, 4),
            "lower": round(self.lower, 4) if math.isfinite(self.lower) else None,
            "bar": self.bar,
            "reason": self.reason,
        }


def beats(
    labels: npt.NDArray[np.integer[Any]],
    scores: npt.NDArray[np.floating[Any]],
    other: npt.NDArray[np.floating[Any]],
    *,
    rounds: int = 200,
    seed: int = 0,
) -> tuple[bool, float, float]:
    """Does `scores` rank the labelled users better than `other` by AUPRC, at the 5th
    percentile of a paired bootstrap of the difference? (verdict, its AUPRC, the other's).

    A gated candidate still scores the night when it beats the label-free prior this way: with
    ring-grouped folds the out-of-fold ranking is that of rings nobody labelled, while the model
    also reads labelled ring-mates, so a candidate near chance out-of-fold can still rank the
    night far better than the prior (a 0.5 % night: AUPRC 0.18 vs the prior's 0.07)."""
    y = np.asarray(labels)
    a = average_precision(y, scores)
    b = average_precision(y, other)
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        i = rng.integers(0, len(y), len(y))
        if 0 < int(y[i].sum()) < len(i):
            diffs.append(average_precision(y[i], scores[i]) - average_precision(y[i], other[i]))
    return bool(diffs) and float(np.percentile(diffs, 5)) > 0, a, b


def ranking_gate(
    labels: npt.NDArray[np.integer[Any]], scores: npt.NDArray[np.floating[Any]], margin: float
) -> Gate:
    """Does the ranking of `scores` (out-of-fold, one per labelled user) beat chance by
    `margin` at its lower 95 % bound?"""
    y = np.asarray(labels)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    auc = roc_auc(y, scores) if n_pos and n_neg else float("nan")
    lower = auc_lower_bound(auc, n_pos, n_neg)
    bar = 0.5 + margin
    return Gate(lower > bar, auc, lower, bar, n_pos, n_neg)
