"""Vectorised neighbour aggregates: the GADBench-style inputs shared by the GBM and the GNN.

All aggregation is sparse-matrix products (scipy CSR), so 1M nodes / 6M directed edges cost a few
seconds. Two families:

* **feature aggregates** (`x` only, label-derived columns excluded): weighted 1-hop mean, 1-hop
  std, 2-hop mean, per-relation 1-hop means, degrees;
* **label aggregates** (`label_features`): how many neighbours (and ring-mates, when
  `data.ring_index` is set) are known fraud / known legit, computed from `data.labels` with the
  node's *own* label removed, also on 2-hop paths (paths that return to the node itself are
  subtracted). Callers hide the labels a model must not see by
  setting them to -1 (see `with_visible_labels`), so out-of-fold scores stay honest.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from graphfraud.model.base import LABEL_DERIVED_PREFIX, UNKNOWN_LABEL, GraphData

F32 = npt.NDArray[np.float32]
# The label aggregates' columns (and, with a ring index, the ring-mates' ones), in order: the
# batch's `label_aggregates` and one node's `ego._label_row` name them alike.
LABEL_COLUMNS = (
    "lab:log_known", "lab:log_fraud", "lab:fraud_rate", "lab:w_fraud_rate", "lab:w2_fraud_rate",
    "lab:w_known_share",
)  # fmt: skip
RING_LABEL_COLUMNS = ("lab:ring_log_known", "lab:ring_log_fraud", "lab:ring_fraud_rate")


@dataclass(frozen=True)
class Adjacency:
    """Sparse views of the graph (built once per graph by `GraphInputs`, shared by its folds)."""

    weighted: sp.csr_matrix  # [n, n] sum of edge weights over relations, no self-loops
    mean: sp.csr_matrix  # row-normalised `weighted` (isolated rows stay zero)
    mean_sq_diag: npt.NDArray[np.float64]  # diag(mean @ mean): 2-hop paths back to the node
    count: npt.NDArray[np.float32]  # unweighted neighbour count (distinct neighbours)
    per_relation: tuple[sp.csr_matrix, ...]  # row-normalised weighted adjacency per relation
    per_relation_degree: npt.NDArray[np.float32]  # [n, R] weighted degree per relation

    @functools.cached_property
    def binary(self) -> sp.csr_matrix:
        """`weighted` with every link weighing 1 (neighbour counts)."""
        out = self.weighted.copy()
        out.data = np.ones_like(out.data)
        return out

    @functools.cached_property
    def linked_relations(self) -> list[int]:
        """The relations with at least one link (the others' means are all zero)."""
        return [r for r, a in enumerate(self.per_relation) if a.nnz]

    @functools.cached_property
    def interleaved(self) -> sp.csr_matrix:
        """The linked relations' `per_relation` matrices as one, row `i·R + k` being row i of
        `linked_relations[k]`: every relation's neighbour mean from one sparse product (the
        GNN's layers, `model/gnn/plans.py`). Built once per graph; plans slice it."""
        parts = [self.per_relation[r] for r in self.linked_relations]
        n = self.weighted.shape[0]
        if not parts:
            return sp.csr_matrix((0, n))
        stacked = sp.vstack(parts, format="csr")
        order = (np.arange(len(parts))[None, :] * n + np.arange(n)[:, None]).ravel()
        out: sp.csr_matrix = stacked[order]
        return out


def build_adjacency(data: GraphData) -> Adjacency:
    """Sparse adjacency views of `data` (edges already contain both directions)."""
    n = data.num_nodes
    src, dst = data.edge_index
    w = data.edge_weight.astype(np.float64)
    keep = src != dst  # a self-loop would feed a node its own label
    src, dst, w, et = src[keep], dst[keep], w[keep], data.edge_type[keep]
    weighted = sp.csr_matrix((w, (src, dst)), shape=(n, n))
    weighted.sum_duplicates()
    count = np.diff(weighted.indptr).astype(np.float32)
    mean = _row_normalise(weighted)
    mean_sq_diag = np.asarray(mean.multiply(mean.T).sum(axis=1)).ravel()
    per_rel: list[sp.csr_matrix] = []
    rel_deg = np.zeros((n, len(data.relation_names)), dtype=np.float32)
    for r in range(len(data.relation_names)):
        sel = et == r
        a = sp.csr_matrix((w[sel], (src[sel], dst[sel])), shape=(n, n))
        a.sum_duplicates()
        rel_deg[:, r] = np.asarray(a.sum(axis=1)).ravel()
        per_rel.append(_row_normalise(a))
    return Adjacency(weighted, mean, mean_sq_diag, count, tuple(per_rel), rel_deg)


def _row_normalise(a: sp.csr_matrix) -> sp.csr_matrix:
    deg = np.asarray(a.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return sp.csr_matrix(sp.diags(inv) @ a)


def aggregable_columns(feature_names: tuple[str, ...]) -> npt.NDArray[np.int64]:
    """Indices of columns that may be averaged over neighbours (not label-derived)."""
    return np.array(
        [i for i, name in enumerate(feature_names) if not name.startswith(LABEL_DERIVED_PREFIX)],
        dtype=np.int64,
    )


def fill_missing(x: F32) -> F32:
    """NaN → column mean (0 for an all-missing column); aggregation must not spread NaN."""
    if not np.isnan(x).any():
        return x
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing column: mean 0 below
        col_mean = np.nan_to_num(np.nanmean(x, axis=0), nan=0.0)
    return np.where(np.isnan(x), col_mean[None, :], x).astype(np.float32)


# Columns of `x` aggregated per sparse product: the float64 temporaries (x, x², three neighbour
# means) are n x this wide, not n x every feature (at 1M users and ~40 features, 1.6 GB).
AGGREGATE_COLUMNS = 8


def feature_aggregates(
    data: GraphData, adj: Adjacency, *, per_relation: bool = True
) -> tuple[F32, tuple[str, ...]]:
    """Label-free graph inputs: structure + neighbour means/std of `x`. Fold-independent.

    Written into one float32 matrix a few columns at a time (`AGGREGATE_COLUMNS`): a sparse
    product sums each output cell over the row's neighbours in the same order however many
    columns it multiplies, so the result is the one an all-columns product gives."""
    cols = aggregable_columns(data.feature_names)
    names = [data.feature_names[i] for i in cols]
    f, n_rel = len(cols), len(data.relation_names)
    rel_means = per_relation and n_rel > 1
    out_names = [f"{tag}:{c}" for tag in ("nb_mean", "nb_std", "nb2_mean") for c in names]
    out_names += ["deg:log_count", "deg:log_weighted", "deg:nb_log_count", "deg:mean_weight"]
    if n_rel > 1:
        out_names += [f"deg:{r}" for r in data.relation_names]
        if rel_means:
            out_names += [f"nb_mean[{rel}]:{c}" for rel in data.relation_names for c in names]
    out = np.empty((data.num_nodes, len(out_names)), dtype=np.float32)
    rel_at = 3 * f + 4 + n_rel
    for lo in range(0, f, AGGREGATE_COLUMNS):
        hi = min(lo + AGGREGATE_COLUMNS, f)
        x = fill_missing(data.x[:, cols[lo:hi]]).astype(np.float64)
        m1 = adj.mean @ x
        out[:, lo:hi] = m1
        out[:, f + lo : f + hi] = neighbour_std(adj.mean @ (x * x), m1)
        out[:, 2 * f + lo : 2 * f + hi] = adj.mean @ m1
        if rel_means:
            for r in range(n_rel):
                at = rel_at + r * f
                out[:, at + lo : at + hi] = adj.per_relation[r] @ x
    weighted_degree = np.asarray(adj.weighted.sum(axis=1)).ravel()
    out[:, 3 * f] = np.log1p(adj.count)
    out[:, 3 * f + 1] = np.log1p(weighted_degree)
    out[:, 3 * f + 2] = adj.mean @ np.log1p(adj.count)  # how connected the neighbours are
    out[:, 3 * f + 3] = weighted_degree / np.maximum(adj.count, 1.0)  # mean link weight
    if n_rel > 1:
        out[:, 3 * f + 4 : rel_at] = np.log1p(adj.per_relation_degree.astype(np.float64))
    return out, tuple(out_names)


# Below this share of the mean square, a variance is rounding: with one neighbour (or equal ones)
# E[x²] − E[x]² is a few ulps of E[x]², whose root is not small (a 2,000-hour span gives 2e-5).
VARIANCE_RTOL = 1e-12


def neighbour_std(
    mean_sq: npt.NDArray[np.float64], mean: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """√(E[x²] − E[x]²), exactly 0 where the difference is rounding. Batch and online rows
    share it: a rounding-level std is noise that the GNN's quantile encoding would blow up
    (a column mostly 0 maps 0 and 2e-5 to far-apart normal scores)."""
    var = mean_sq - mean * mean
    std: npt.NDArray[np.float64] = np.sqrt(
        np.where(var > VARIANCE_RTOL * np.abs(mean_sq), var, 0.0)
    )
    return std


def label_aggregates(data: GraphData, adj: Adjacency) -> tuple[F32, tuple[str, ...]]:
    """Leave-self-out label evidence around each node, from the labels visible in `data`.

    A node's own label never enters its own row: 1-hop uses no self-loops, 2-hop subtracts the
    paths i→j→i. The counts say how much evidence a rate rests on.
    """
    labels = data.labels
    known = (labels != UNKNOWN_LABEL).astype(np.float64)
    fraud = (labels == 1).astype(np.float64)
    n_known = adj.binary @ known
    n_fraud = adj.binary @ fraud
    w_known = adj.mean @ known
    w_fraud = adj.mean @ fraud
    # 2-hop, minus the walks that come straight back to the node (they carry its own label).
    w2_known = np.maximum(adj.mean @ w_known - adj.mean_sq_diag * known, 0.0)
    w2_fraud = np.maximum(adj.mean @ w_fraud - adj.mean_sq_diag * fraud, 0.0)
    cols = [
        np.log1p(n_known),
        np.log1p(n_fraud),
        _rate(n_fraud, n_known),
        _rate(w_fraud, w_known),
        _rate(w2_fraud, w2_known),
        w_known,
    ]
    names = list(LABEL_COLUMNS)
    if len(data.relation_names) > 1:
        for r, rel in enumerate(data.relation_names):
            k = adj.per_relation[r] @ known
            f = adj.per_relation[r] @ fraud
            cols.append(_rate(f, k))
            names.append(f"lab:w_fraud_rate[{rel}]")
    if data.ring_index is not None:
        r_known, r_fraud = _ring_mates(data.ring_index, known), _ring_mates(data.ring_index, fraud)
        cols += [np.log1p(r_known), np.log1p(r_fraud), _rate(r_fraud, r_known)]
        names += list(RING_LABEL_COLUMNS)
    return np.stack(cols, axis=1).astype(np.float32), tuple(names)


def _ring_mates(
    ring: npt.NDArray[np.int64], value: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """Sum of `value` over each node's ring-mates, itself excluded (0 outside rings)."""
    inside = ring >= 0
    totals = np.bincount(ring[inside], weights=value[inside], minlength=1)
    out = np.zeros_like(value)
    out[inside] = totals[ring[inside]] - value[inside]
    return out


def _rate(num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """num/den, NaN where nothing is known (trees route NaN; the GNN imputes it)."""
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 1e-9)


def with_visible_labels(data: GraphData, visible: npt.NDArray[np.bool_]) -> GraphData:
    """A copy of `data` whose labels outside `visible` are unknown (-1)."""
    labels = np.where(visible, data.labels, UNKNOWN_LABEL).astype(np.int8)
    return replace(data, labels=labels)


def stacked_columns(blocks: list[F32], cols: npt.NDArray[np.int64]) -> F32:
    """Columns `cols` of `np.hstack(blocks)`, in that order, without building the whole stack."""
    order = np.argsort(cols, kind="stable")
    ordered = cols[order]
    edges = np.cumsum([0] + [b.shape[1] for b in blocks])
    parts = [np.zeros((blocks[0].shape[0], 0), dtype=np.float32)]
    for b, lo, hi in zip(blocks, edges[:-1], edges[1:], strict=True):
        inside = ordered[(ordered >= lo) & (ordered < hi)]
        if len(inside):
            parts.append(b[:, inside - lo])
    out = np.hstack(parts).astype(np.float32, copy=False)
    return out[:, np.argsort(order)] if np.any(np.diff(order) < 0) else out
