"""Population stability index (PSI): how far tonight's distribution of a column moved from the
previous run's. The one definition the run report, its warnings and the retrain policy use.

    PSI = Σ_i (c_i − r_i) · ln(c_i / r_i)

over bins i, where r_i and c_i are the reference (previous run) and current shares of rows in
bin i, each floored at `EPSILON` so an empty bin costs a finite amount instead of infinity.
The bins are fixed by the reference: the edges are its `BINS`-quantiles (values it holds,
deduplicated, so a binary feature has two bins, not ten), intervals are closed on the right
(`(e_{i-1}, e_i]`), the outer ones open-ended, and null / NaN values form one more bin of their
own (a feed that starts sending nulls is drift). Identical distributions give 0; PSI is not
symmetric in its arguments and has no upper bound. Rule of thumb: < 0.1 noise, 0.1–0.25 a
shift, > 0.25 a different population.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

BINS = 10
EPSILON = 1e-4


@dataclass(frozen=True)
class Bins:
    """Fixed bin edges taken from a reference sample (see the module docstring)."""

    edges: tuple[float, ...]

    @classmethod
    def of(cls, reference: npt.ArrayLike, bins: int = BINS) -> Bins:
        values = _finite(reference)
        if values.size == 0:
            return cls(())
        # Edges are values the reference holds (no interpolation between a binary feature's
        # 0 and 1), so ties never straddle an edge.
        inner = np.quantile(values, np.arange(1, bins) / bins, method="inverted_cdf")
        return cls(tuple(float(e) for e in np.unique(inner)))

    def counts(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Rows per bin: `len(edges) + 1` value bins, then the null bin."""
        raw = np.asarray(values, dtype=np.float64)
        finite = raw[np.isfinite(raw)]
        idx = np.searchsorted(np.asarray(self.edges, dtype=np.float64), finite, side="left")
        out = np.bincount(idx, minlength=len(self.edges) + 1).astype(np.int64)
        return np.append(out, np.int64(raw.size - finite.size))


def shares(counts: npt.NDArray[np.int64], epsilon: float = EPSILON) -> npt.NDArray[np.float64]:
    """Each bin's share of the rows, floored at `epsilon`."""
    total = int(counts.sum())
    if total == 0:
        return np.full(counts.shape, np.nan)
    return np.maximum(counts / total, epsilon)


def psi_of_counts(
    reference: npt.NDArray[np.int64],
    current: npt.NDArray[np.int64],
    epsilon: float = EPSILON,
) -> float:
    """PSI of two histograms over the same bins; NaN when either is empty."""
    r, c = shares(reference, epsilon), shares(current, epsilon)
    if np.isnan(r).any() or np.isnan(c).any():
        return math.nan
    return float(np.sum((c - r) * np.log(c / r)))


def psi(
    reference: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    bins: int = BINS,
    epsilon: float = EPSILON,
) -> float:
    """PSI of `current` against `reference` on the reference's quantile bins."""
    fixed = Bins.of(reference, bins)
    return psi_of_counts(fixed.counts(reference), fixed.counts(current), epsilon)


def column_psi(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    columns: Iterable[str] | None = None,
    *,
    bins: int = BINS,
    epsilon: float = EPSILON,
) -> dict[str, float]:
    """PSI per numeric column both frames hold (default: all of them), in `current`'s order.

    A column only one side has is skipped: a new or dropped feature is a feature-set change,
    which the model stage reports on its own (the promoted model cannot score it)."""
    names = list(columns) if columns is not None else current.columns
    out: dict[str, float] = {}
    for name in names:
        if name not in reference.columns or name not in current.columns:
            continue
        if not (reference.schema[name].is_numeric() and current.schema[name].is_numeric()):
            continue
        out[name] = psi(
            _numpy(reference.get_column(name)),
            _numpy(current.get_column(name)),
            bins=bins,
            epsilon=epsilon,
        )
    return out


def _numpy(column: pl.Series) -> npt.NDArray[np.float64]:
    return column.cast(pl.Float64).fill_null(np.nan).to_numpy()


def _finite(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    raw = np.asarray(values, dtype=np.float64)
    return raw[np.isfinite(raw)]
