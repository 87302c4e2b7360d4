"""Communities vs suspected rings: which communities look like one actor's accounts.

Every user in a community keeps its `ring_id`; a community is a **suspected ring** when its ring
score reaches a cut calibrated on the labelled communities, not a fixed member count (a family
sharing a tablet is a community of three, a device farm is a suspected ring of three):

1. Each community with a labelled member gets an *out-of-fold ring score*: `ring_scores` over
   its labelled members' out-of-fold model scores (folds keep a ring's labelled members
   together, so none of the ring's own labels moved them), and a target: does it hold a
   confirmed fraud.
2. An isotonic fit of target on score (one point per community) gives monotone blocks; each
   block's fraud rate is Beta-smoothed towards the overall rate (`PSEUDO` pseudo-communities),
   so a lone fraud ring at the top is not a certainty. Smoothing pulls a small block further
   than a large one, so the smoothed rates are made monotone again (weighted by each block's
   communities): a single fraud community above 28 mostly fraud ones is one more of them, not
   a block at 0.46 that stops every score below from being suspected.
3. The cut is the lowest score from which the smoothed rate — linear between the blocks'
   median scores — stays at or above `rings.suspect_probability`; with fewer than `MIN_EACH`
   labelled communities of each kind it is `rings.suspect_fallback_score` (`how: fallback`),
   and when no block reaches the probability no community is suspected (`how: none`).

`is_suspected` applies the cut; the batch (rings and scores), the snapshot and the online
scorer's emerging rings all call it. Known bias: labels oversample fraud rings (a ring of 8 is
more likely to carry a label than a household of 3), so the estimated chance is the chance
among *labelled* communities, an upper bound on the population's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl
from sklearn.isotonic import IsotonicRegression

from graphfraud.scoring.scores import ring_scores

MIN_EACH = 3  # labelled communities with and without fraud needed to calibrate
PSEUDO = 2.0  # Beta prior strength, in communities


@dataclass(frozen=True)
class RingCut:
    """The suspected-ring rule of one run (recorded in the manifest, read by the service)."""

    cut: float  # ring_score >= cut → suspected (inf: none)
    probability: float  # the setting the cut was chosen for
    how: str  # calibrated | fallback | none
    labelled_communities: int = 0
    with_fraud: int = 0
    out_of_fold: bool = True  # were the labelled members' scores out-of-fold (or label-free)
    curve: list[dict[str, float]] = field(default_factory=list)  # block: lo, hi, n, rate

    def public(self) -> dict[str, Any]:
        return {
            "cut": None if math.isinf(self.cut) else round(self.cut, 6),
            "probability": self.probability,
            "how": self.how,
            "labelled_communities": self.labelled_communities,
            "with_fraud": self.with_fraud,
            "out_of_fold": self.out_of_fold,
            "curve": self.curve,
        }

    @classmethod
    def from_manifest(cls, record: object, fallback: float) -> RingCut:
        """The rule a run recorded; a run without one (older) uses `fallback` as the cut."""
        if not isinstance(record, dict):
            return cls(fallback, float("nan"), "fallback")
        cut = record.get("cut")
        return cls(
            float("inf") if cut is None else float(cut),
            float(record.get("probability", float("nan"))),
            str(record.get("how", "calibrated")),
        )


def is_suspected(ring_score: float | None, cut: float) -> bool:
    """One community (the online paths): a score at or above the cut; no score, no suspicion."""
    return ring_score is not None and ring_score == ring_score and ring_score >= cut


def suspected_expr(cut: float, column: str = "ring_score") -> pl.Expr:
    """`is_suspected` over a ring-score column (the batch)."""
    return (pl.col(column).fill_nan(None) >= cut).fill_null(False).alias("suspected_ring")


def labelled_ring_scores(
    members: pl.DataFrame, model_scores: pl.DataFrame, labels: pl.DataFrame
) -> pl.DataFrame:
    """`ring_id, ring_score, has_fraud` for each community with a labelled member: the ring score
    over its labelled members' (out-of-fold) model scores."""
    labelled = members.join(
        labels.filter(pl.col("label").is_not_null()).select("user_id", "label"), on="user_id"
    )
    if labelled.is_empty():
        return pl.DataFrame(
            schema={"ring_id": pl.String, "ring_score": pl.Float32, "has_fraud": pl.Boolean}
        )
    fraud = labelled.group_by("ring_id").agg((pl.col("label") == 1).any().alias("has_fraud"))
    scored = ring_scores(labelled.select("user_id", "ring_id"), model_scores)
    return scored.join(fraud, on="ring_id").sort("ring_id")


def _crossing(
    mids: npt.NDArray[np.float64], rates: npt.NDArray[np.float64], probability: float
) -> float | None:
    """The lowest score from which the rate, linear between the blocks' median scores and flat
    beyond the end blocks, stays at or above `probability` (None: it never gets there). A wide
    block holding a few communities does not pull the cut down to its lowest member."""
    reach = rates >= probability
    if not reach[-1]:
        return None
    below = np.flatnonzero(~reach)
    if not below.size:
        return float(mids[0])
    i = int(below[-1])  # the last block under the bar; block i + 1 reaches it
    x0, x1, r0, r1 = mids[i], mids[i + 1], rates[i], rates[i + 1]
    return float(x0 + (x1 - x0) * (probability - r0) / (r1 - r0))


def calibrate_cut(
    labelled: pl.DataFrame,
    probability: float,
    fallback: float,
    *,
    out_of_fold: bool = True,
) -> RingCut:
    """The ring-score cut from `labelled_ring_scores` (see the module docstring)."""
    frame = labelled.drop_nulls("ring_score").filter(pl.col("ring_score").is_not_nan())
    x = frame["ring_score"].cast(pl.Float64).to_numpy()
    y = frame["has_fraud"].cast(pl.Float64).to_numpy()
    n, k = len(y), int(y.sum())
    if min(k, n - k) < MIN_EACH:
        return RingCut(fallback, probability, "fallback", n, k, out_of_fold)
    iso = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(x, y)
    fitted = iso.predict(x)
    base = k / n
    blocks = (
        pl.DataFrame({"x": x, "y": y, "f": fitted})
        .group_by("f")
        .agg(
            pl.col("x").min().alias("lo"),
            pl.col("x").max().alias("hi"),
            pl.col("x").median().alias("mid"),
            pl.len().alias("n"),
            pl.col("y").sum().alias("k"),
        )
        .sort("lo")
        .with_columns(((pl.col("k") + PSEUDO * base) / (pl.col("n") + PSEUDO)).alias("rate"))
    )
    monotone = IsotonicRegression(increasing=True).fit_transform(
        np.arange(blocks.height),
        blocks["rate"].to_numpy(),
        sample_weight=(blocks["n"] + PSEUDO).cast(pl.Float64).to_numpy(),
    )
    blocks = blocks.with_columns(pl.Series("rate", monotone))
    curve = [
        {
            "lo": round(r["lo"], 6),
            "mid": round(r["mid"], 6),
            "hi": round(r["hi"], 6),
            "n": r["n"],
            "rate": round(r["rate"], 4),
        }
        for r in blocks.iter_rows(named=True)
    ]
    cut = _crossing(blocks["mid"].to_numpy(), blocks["rate"].to_numpy(), probability)
    if cut is None:
        return RingCut(float("inf"), probability, "none", n, k, out_of_fold, curve)
    return RingCut(cut, probability, "calibrated", n, k, out_of_fold, curve)
