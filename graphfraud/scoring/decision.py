"""Score → band (`allow` / `review` / `decline`, names from settings): one definition for the
batch's `band` column, the snapshot lookup and `POST /v1/score`.

Bands are half-open intervals: below `review_threshold` the first band, from it up to (not
including) `decision_threshold` the second, from `decision_threshold` up the third. A NaN score
(never served, but never trusted either) falls in the highest band: nothing fails open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.config import DecisionSettings


@dataclass(frozen=True)
class Bands:
    """Two thresholds and three names, lowest risk first."""

    review: float
    decline: float
    names: tuple[str, str, str]

    @classmethod
    def of(cls, settings: DecisionSettings) -> Bands:
        return cls(settings.review_threshold, settings.decision_threshold, settings.bands)

    def index(self, scores: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Band index (0, 1, 2) of each score."""
        values = np.asarray(scores, dtype=np.float64)
        out = np.searchsorted(np.array([self.review, self.decline]), values, side="right")
        return np.where(np.isnan(values), 2, out).astype(np.int64)

    def of_score(self, score: float) -> str:
        """The band of one score (the online paths)."""
        return self.names[int(self.index([score])[0])]

    def column(self, scores: pl.Series) -> pl.Series:
        """The band of every score, as a string column (the batch)."""
        idx = self.index(scores.cast(pl.Float64).fill_null(float("nan")).to_numpy())
        return pl.Series("band", np.asarray(self.names, dtype=object)[idx], dtype=pl.String)

    def public(self) -> dict[str, object]:
        """What the manifest and the admin view record."""
        return {
            "review_threshold": self.review,
            "decision_threshold": self.decline,
            "bands": list(self.names),
        }
