"""Operating points: what each threshold catches and costs, from out-of-fold predictions.

For thresholds 0.00, 0.01, …, 1.00 on the final score (`score`, what the bands cut):
* `labelled_fraud_caught` / `labelled_good_affected`: the share of labelled frauds / labelled
  good users at or above the threshold, on their **out-of-fold** scores (the fold model that
  scored a user never saw its label, nor its ring-mates'); the ring part of the score is the
  ring score over the ring's labelled members' out-of-fold scores, as `scoring.suspected` does.
* `fraud_caught_per_10k` / `good_affected_per_10k`: per 10,000 unlabelled users, those two
  rates times the fraud prevalence among them, `prevalence`. Labels oversample fraud (a
  chargeback labels, a quiet good customer does not), so the labelled fraud share is no
  estimate of it: it is the *adjusted classify-and-count* estimate (Forman 2008) — at each
  threshold the flagged share q of the unlabelled users is π·TPR + (1 − π)·FPR, so
  π = (q − FPR) / (TPR − FPR); the median over thresholds where TPR − FPR ≥ 0.25.
* `flagged_per_10k`: the unlabelled users actually at or above it, per 10,000 (observed).
* `precision`: π·TPR / (π·TPR + (1 − π)·FPR), the estimated share of fraud among the flagged.

The calibration curve bins the same out-of-fold scores (ten equal-width bins) against the
labelled fraud rate in each bin: the rate among *labelled* users, which labels' oversampling
of fraud lifts above the population's. `operating_svg` draws both (no plotting dependency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.scoring.decision import Bands
from graphfraud.scoring.scores import blended_expr

THRESHOLDS = np.round(np.linspace(0.0, 1.0, 101), 2)
PER = 10_000
MIN_SEPARATION = 0.25
CALIBRATION_BINS = 10


@dataclass(frozen=True)
class OperatingPoints:
    table: pl.DataFrame  # one row per threshold (see the module docstring)
    calibration: pl.DataFrame  # bin_lo, bin_hi, n, mean_score, fraud_rate
    prevalence: float  # estimated fraud share among unlabelled users (NaN: unknown)
    n_fraud: int
    n_good: int


def _rate_at(scores: npt.NDArray[np.float64], thresholds: npt.NDArray[np.float64]) -> Any:
    """Share of `scores` at or above each threshold (one sort, no loop)."""
    if scores.size == 0:
        return np.full(thresholds.shape, np.nan)
    ordered = np.sort(scores)
    below = np.searchsorted(ordered, thresholds, side="left")
    return (scores.size - below) / scores.size


def estimate_prevalence(
    tpr: npt.NDArray[np.float64], fpr: npt.NDArray[np.float64], flagged: npt.NDArray[np.float64]
) -> float:
    """Adjusted classify-and-count, median over the thresholds that separate (NaN: none does)."""
    sep = tpr - fpr
    ok = np.isfinite(sep) & np.isfinite(flagged) & (sep >= MIN_SEPARATION)
    if not ok.any():
        return float("nan")
    return float(np.clip(np.median((flagged[ok] - fpr[ok]) / sep[ok]), 0.0, 1.0))


def operating_points(
    labels: npt.NDArray[np.int8],
    oof_scores: npt.NDArray[np.floating[Any]],
    scores: npt.NDArray[np.floating[Any]],
) -> OperatingPoints:
    """The table and the calibration curve. `labels` per user (1, 0, -1 unknown);
    `oof_scores`: out-of-fold final scores (read for labelled users); `scores`: the served
    final scores (read for unlabelled users)."""
    y = np.asarray(labels)
    oof = np.asarray(oof_scores, dtype=np.float64)
    served = np.asarray(scores, dtype=np.float64)
    t = THRESHOLDS.astype(np.float64)
    tpr = _rate_at(oof[y == 1], t)
    fpr = _rate_at(oof[y == 0], t)
    flagged = _rate_at(served[y < 0], t)
    pi = estimate_prevalence(tpr, fpr, flagged)
    with np.errstate(invalid="ignore", divide="ignore"):
        caught, affected = pi * tpr, (1 - pi) * fpr
        precision = np.where(caught + affected > 0, caught / (caught + affected), np.nan)
    table = pl.DataFrame(
        {
            "threshold": t,
            "fraud_caught_per_10k": caught * PER,
            "good_affected_per_10k": affected * PER,
            "flagged_per_10k": flagged * PER,
            "labelled_fraud_caught": tpr,
            "labelled_good_affected": fpr,
            "precision": precision,
        }
    ).with_columns(pl.exclude("threshold").cast(pl.Float64).round(4))
    return OperatingPoints(
        table=table,
        calibration=calibration_curve(y, oof),
        prevalence=pi,
        n_fraud=int((y == 1).sum()),
        n_good=int((y == 0).sum()),
    )


def run_operating_points(
    users: pl.DataFrame,
    model_scores: pl.DataFrame,
    members: pl.DataFrame,
    labels: pl.DataFrame,
    labelled_rings: pl.DataFrame,
) -> OperatingPoints:
    """`operating_points` for a run: `users` the scores artifact (`user_id, score`),
    `model_scores` (`user_id, model_score`: out-of-fold for labelled users), `labelled_rings`
    from `scoring.suspected.labelled_ring_scores` (the out-of-fold ring part)."""
    frame = (
        users.select("user_id", "score")
        .join(labels.select("user_id", "label"), on="user_id", how="left")
        .join(model_scores.select("user_id", "model_score"), on="user_id", how="left")
        .join(members.select("user_id", "ring_id"), on="user_id", how="left")
        .join(labelled_rings.select("ring_id", "ring_score"), on="ring_id", how="left")
        .with_columns(blended_expr().alias("oof"))
    )
    return operating_points(
        frame["label"].fill_null(-1).cast(pl.Int8).to_numpy(),
        frame["oof"].cast(pl.Float64).fill_null(float("nan")).to_numpy(),
        frame["score"].cast(pl.Float64).to_numpy(),
    )


def calibration_curve(
    labels: npt.NDArray[np.int8], oof_scores: npt.NDArray[np.float64]
) -> pl.DataFrame:
    """`bin_lo, bin_hi, n, mean_score, fraud_rate` over the labelled users (empty bins left out)."""
    keep = labels >= 0
    frame = pl.DataFrame({"s": oof_scores[keep], "y": labels[keep].astype(np.float64)})
    width = 1.0 / CALIBRATION_BINS
    return (
        frame.with_columns(
            (pl.col("s").clip(0.0, 1.0) / width).floor().clip(0, CALIBRATION_BINS - 1).alias("b")
        )
        .group_by("b")
        .agg(
            pl.len().alias("n"),
            pl.col("s").mean().alias("mean_score"),
            pl.col("y").mean().alias("fraud_rate"),
        )
        .sort("b")
        .select(
            (pl.col("b") * width).round(2).alias("bin_lo"),
            ((pl.col("b") + 1) * width).round(2).alias("bin_hi"),
            pl.col("n").cast(pl.Int64),
            pl.col("mean_score").round(4),
            pl.col("fraud_rate").round(4),
        )
    )


def at_threshold(points: OperatingPoints, threshold: float) -> dict[str, float | None]:
    """The table's row nearest `threshold` (for the manifest and the summary; NaN → None)."""
    i = int(np.argmin(np.abs(points.table["threshold"].to_numpy() - threshold)))
    row = points.table.row(i, named=True)
    return {k: None if v is None or v != v else float(v) for k, v in row.items()}


# ---- plot -------------------------------------------------------------------------------------
_W, _H, _PAD = 360, 300, 48


def _polyline(xs: list[float], ys: list[float], x_max: float, y_max: float, ox: float) -> str:
    pts = [
        f"{ox + _PAD + x / x_max * (_W - 1.5 * _PAD):.1f},"
        f"{_H - _PAD - y / y_max * (_H - 1.7 * _PAD):.1f}"
        for x, y in zip(xs, ys, strict=True)
        if np.isfinite(x) and np.isfinite(y)
    ]
    return " ".join(pts)


def _axes(ox: float, title: str, xlabel: str, ylabel: str, x_max: float, y_max: float) -> str:
    x0, y0, x1, y1 = ox + _PAD, _H - _PAD, ox + _W - _PAD / 2, 0.7 * _PAD
    return (
        f'<text x="{ox + _W / 2:.0f}" y="20" text-anchor="middle" font-weight="bold">{title}</text>'
        f'<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>'
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>'
        f'<text x="{(x0 + x1) / 2:.0f}" y="{_H - 12}" text-anchor="middle">{xlabel}</text>'
        f'<text x="{ox + 12}" y="{(y0 + y1) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 {ox + 12} {(y0 + y1) / 2:.0f})">{ylabel}</text>'
        f'<text x="{x0}" y="{y0 + 14}" text-anchor="middle">0</text>'
        f'<text x="{x1}" y="{y0 + 14}" text-anchor="middle">{x_max:,.4g}</text>'
        f'<text x="{x0 - 4}" y="{y1 + 4}" text-anchor="end">{y_max:,.4g}</text>'
    )


def operating_svg(points: OperatingPoints, bands: Bands) -> str:
    """Two panels: fraud caught vs good users affected per 10k (the decision and review
    thresholds marked), and the calibration curve against the diagonal."""
    table = points.table
    good = table["good_affected_per_10k"].to_list()
    caught = table["fraud_caught_per_10k"].to_list()
    finite_good = [g for g in good if np.isfinite(g)]
    finite_caught = [c for c in caught if np.isfinite(c)]
    x_max = max(finite_good, default=1.0) or 1.0
    y_max = max(finite_caught, default=1.0) or 1.0
    marks = []
    for threshold, colour in ((bands.review, "#d4a017"), (bands.decline, "#c0392b")):
        row = at_threshold(points, threshold)
        gx, cy = row["good_affected_per_10k"], row["fraud_caught_per_10k"]
        if gx is not None and cy is not None:
            xy = _polyline([gx], [cy], x_max, y_max, 0).split(",")
            marks.append(
                f'<circle cx="{xy[0]}" cy="{xy[1]}" r="4" fill="{colour}"/>'
                f'<text x="{float(xy[0]) + 6:.1f}" y="{float(xy[1]) + 4:.1f}" fill="{colour}">'
                f"≥ {threshold:g}</text>"
            )
    calib = points.calibration
    ox = _W
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * _W}" height="{_H}" '
        'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        _axes(0, "Operating points", "good users affected / 10k", "fraud caught / 10k",
              x_max, y_max),
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" '
        f'points="{_polyline(good, caught, x_max, y_max, 0)}"/>',
        *marks,
        _axes(ox, "Calibration (labelled, out-of-fold)", "mean score", "fraud rate", 1.0, 1.0),
        f'<polyline fill="none" stroke="#999" stroke-dasharray="4 3" '
        f'points="{_polyline([0.0, 1.0], [0.0, 1.0], 1.0, 1.0, ox)}"/>',
        f'<polyline fill="none" stroke="#2ca02c" stroke-width="2" points="'
        f'{_polyline(calib["mean_score"].to_list(), calib["fraud_rate"].to_list(), 1.0, 1.0, ox)}'
        '"/>',
        f'<text x="{_PAD + 4}" y="{_H - _PAD - 8}">'
        f"prevalence among unlabelled ≈ {points.prevalence:.2%} "
        f"({points.n_fraud:,} fraud / {points.n_good:,} good labels)</text>",
        "</svg>",
    ]  # fmt: skip
    return "".join(parts)
