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
    """Fixed bin edges taken from a reference sample (see the module docstring).

    Counting sorts the values once and bisects the few edges into them: at 1M rows that is
    several times faster than bisecting a million values into the edges."""

    edges: tuple[float, ...]

    @classmethod
    def of(cls, reference: npt.ArrayLike, bins: int = BINS) -> Bins:
        return cls.of_sorted(_sorted_finite(reference)[0], bins)

    @classmethod
    def of_sorted(cls, values: npt.NDArray[np.float64], bins: int = BINS) -> Bins:
        """Edges from the reference's finite values, sorted: its `q = 1/bins, …` quantiles as
        the inverted CDF (the smallest value with at least a share q of the values at or below
        it), values the reference holds, so a binary feature's ties never straddle an edge."""
        n = values.size
        if n == 0:
            return cls(())
        at = np.ceil(n * np.arange(1, bins) / bins).astype(np.int64) - 1
        return cls(tuple(float(e) for e in np.unique(values[np.clip(at, 0, n - 1)])))

    def counts(self, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Rows per bin: `len(edges) + 1` value bins, then the null bin."""
        return self.counts_sorted(*_sorted_finite(values))

    def counts_sorted(self, values: npt.NDArray[np.float64], nulls: int) -> npt.NDArray[np.int64]:
        at_or_below = np.searchsorted(values, np.asarray(self.edges, dtype=np.float64), "right")
        bounds = np.concatenate(([0], at_or_below, [values.size])).astype(np.int64)
        return np.append(np.diff(bounds), np.int64(nulls))


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
    ref, ref_nulls = _sorted_finite(reference)
    fixed = Bins.of_sorted(ref, bins)
    return psi_of_counts(fixed.counts_sorted(ref, ref_nulls), fixed.counts(current), epsilon)


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


def _sorted_finite(values: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], int]:
    """The finite values, sorted, and how many were null / NaN / infinite."""
    raw = np.asarray(values, dtype=np.float64)
    finite = raw[np.isfinite(raw)]
    return np.sort(finite), int(raw.size - finite.size)
