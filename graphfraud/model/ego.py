"""One node's model inputs from its neighbours' precomputed state: the online twin of
`aggregate.py`.

The batch builds every node's inputs with sparse products over the whole graph
(`GraphInputs.matrix`). An account the batch has not seen needs the same row, from its own
features and the links it would get, without the graph: 1-hop aggregates need the neighbours'
`x`; the 2-hop mean needs their 1-hop means; the structure column needs their neighbour counts;
2-hop label rates need their 1-hop label means. `NodeState` holds exactly those per node
(computed by the batch from the same `GraphInputs`, saved with the run), and `ego_row` applies
`aggregate.py`'s formulas to one node. `tests/model/test_ego.py` holds them equal: for a node of
a batch graph, `ego_row` over its neighbours returns its batch row.

A new account's neighbours keep the state the batch gave them (the batch including the account
would shift each neighbour's own means by one link): "the batch's row given the same
neighbourhood", which is what the online scorer promises.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.errors import ArtifactError
from graphfraud.model.aggregate import (
    AGGREGATE_COLUMNS,
    F32,
    LABEL_COLUMNS,
    RING_LABEL_COLUMNS,
    aggregable_columns,
    neighbour_std,
)
from graphfraud.model.base import UNKNOWN_LABEL
from graphfraud.model.inputs import GraphInputs

F64 = npt.NDArray[np.float64]
STATE_FILE = "node_state.npy"  # float32 [n, 2c + len(SCALARS)], rows in the run's user_id order
STATE_META_FILE = "node_state.json"
STATE_FORMAT = 1
# Per-node scalars after the x and m1 blocks, in this order.
SCALARS = ("log_count", "weighted_degree", "known", "fraud", "w_known", "w_fraud", "ring")


@dataclass(frozen=True)
class StateMeta:
    """What a saved `NodeState` was computed over (checked against the model that reads it)."""

    feature_names: tuple[str, ...]  # every column of x, in order
    aggregated: tuple[str, ...]  # the aggregable ones (x / m1 blocks)
    relation_names: tuple[str, ...]
    col_mean: tuple[float, ...]  # per aggregated column: what a missing value becomes
    ring_labels: bool  # the graph had a ring index (label aggregates over ring-mates)
    users: int
    ids_digest: str  # `ids_digest(user_ids)` of the node order: rows must be the snapshot's

    def public(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "feature_names": list(self.feature_names),
            "aggregated": list(self.aggregated),
            "relation_names": list(self.relation_names),
            "col_mean": list(self.col_mean),
            "ring_labels": self.ring_labels,
            "users": self.users,
            "ids_digest": self.ids_digest,
        }


@dataclass(frozen=True)
class NodeState:
    """Per node: filled x (aggregable columns), its 1-hop mean, and the scalars in SCALARS.

    `matrix` may be a read-only memory map (a 1M-user run is ~0.5 GB: the service maps it and
    reads only the rows a request touches)."""

    meta: StateMeta
    matrix: F32

    @property
    def width(self) -> int:
        return len(self.meta.aggregated)

    def x(self, rows: npt.NDArray[np.int64]) -> F32:
        return np.asarray(self.matrix[rows, : self.width])

    def m1(self, rows: npt.NDArray[np.int64]) -> F32:
        return np.asarray(self.matrix[rows, self.width : 2 * self.width])

    def scalar(self, name: str, rows: npt.NDArray[np.int64]) -> F32:
        return np.asarray(self.matrix[rows, 2 * self.width + SCALARS.index(name)])

    def ring_totals(self) -> tuple[F64, F64]:
        """(known, fraud) label counts per ring index (the ring-mates' evidence)."""
        ring = np.asarray(self.matrix[:, 2 * self.width + SCALARS.index("ring")]).astype(np.int64)
        known = np.asarray(self.matrix[:, 2 * self.width + SCALARS.index("known")], np.float64)
        fraud = np.asarray(self.matrix[:, 2 * self.width + SCALARS.index("fraud")], np.float64)
        inside = ring >= 0
        size = int(ring.max()) + 1 if inside.any() else 0
        return (
            np.bincount(ring[inside], weights=known[inside], minlength=size).astype(np.float64),
            np.bincount(ring[inside], weights=fraud[inside], minlength=size).astype(np.float64),
        )


def node_state(inputs: GraphInputs) -> NodeState:
    """The state every node of `inputs` offers its neighbours (the batch side), written into
    one float32 matrix a few columns at a time, as `aggregate.feature_aggregates` is."""
    data, adj = inputs.data, inputs.adjacency
    cols = aggregable_columns(data.feature_names)
    c = len(cols)
    matrix = np.empty((data.num_nodes, 2 * c + len(SCALARS)), dtype=np.float32)
    col_mean = np.empty(c, dtype=np.float64)
    for lo in range(0, c, AGGREGATE_COLUMNS):
        hi = min(lo + AGGREGATE_COLUMNS, c)
        raw = data.x[:, cols[lo:hi]].astype(np.float64)
        col_mean[lo:hi] = _column_means(raw)
        x = np.where(np.isnan(raw), col_mean[None, lo:hi], raw)
        matrix[:, lo:hi] = x
        matrix[:, c + lo : c + hi] = adj.mean @ x
    known = (data.labels != UNKNOWN_LABEL).astype(np.float64)
    fraud = (data.labels == 1).astype(np.float64)
    ring = (
        data.ring_index.astype(np.float64)
        if data.ring_index is not None
        else np.full(data.num_nodes, -1.0)
    )
    scalars = (
        np.log1p(adj.count.astype(np.float64)),
        np.asarray(adj.weighted.sum(axis=1)).ravel(),
        known,
        fraud,
        adj.mean @ known,
        adj.mean @ fraud,
        ring,
    )
    for j, column in enumerate(scalars):
        matrix[:, 2 * c + j] = column
    meta = StateMeta(
        feature_names=data.feature_names,
        aggregated=tuple(data.feature_names[i] for i in cols),
        relation_names=data.relation_names,
        col_mean=tuple(float(v) for v in col_mean),
        ring_labels=data.ring_index is not None,
        users=data.num_nodes,
        ids_digest=ids_digest(data.user_ids.tolist()),
    )
    return NodeState(meta, matrix)


def ids_digest(user_ids: Sequence[str]) -> str:
    """A digest of a node order (who is row i), to check two artifacts agree on it."""
    h = hashlib.sha256()
    for start in range(0, len(user_ids), 65_536):
        h.update("\x1f".join(map(str, user_ids[start : start + 65_536])).encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def _column_means(x: F64) -> F64:
    """`aggregate.fill_missing`'s column means (0 for an all-missing column)."""
    present = ~np.isnan(x)
    counts = present.sum(axis=0)
    sums = np.where(present, x, 0.0).sum(axis=0)
    means: F64 = np.divide(sums, counts, out=np.zeros(x.shape[1]), where=counts > 0)
    return means


def save_state(state: NodeState, directory: Path) -> None:
    """`node_state.npy` (plain float32, never pickled) + its JSON meta, each written beside
    and renamed into place: a crash leaves the old pair or a pair `load_state` refuses."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STATE_FILE}.tmp"
    with tmp.open("wb") as fh:
        np.save(fh, np.ascontiguousarray(state.matrix), allow_pickle=False)
    os.replace(tmp, directory / STATE_FILE)
    text = json.dumps(state.meta.public(), sort_keys=True) + "\n"
    tmp_meta = directory / f".{STATE_META_FILE}.tmp"
    tmp_meta.write_text(text, encoding="utf-8")
    os.replace(tmp_meta, directory / STATE_META_FILE)


def load_state(directory: Path, *, mmap: bool = True) -> NodeState:
    """Inverse of `save_state` (memory-mapped by default); ArtifactError when it is unreadable."""
    try:
        raw = json.loads((directory / STATE_META_FILE).read_text(encoding="utf-8"))
        if raw.get("format") != STATE_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {STATE_FORMAT}")
        meta = StateMeta(
            feature_names=tuple(raw["feature_names"]),
            aggregated=tuple(raw["aggregated"]),
            relation_names=tuple(raw["relation_names"]),
            col_mean=tuple(float(v) for v in raw["col_mean"]),
            ring_labels=bool(raw["ring_labels"]),
            users=int(raw["users"]),
            ids_digest=str(raw["ids_digest"]),
        )
        matrix = np.load(
            directory / STATE_FILE, mmap_mode="r" if mmap else None, allow_pickle=False
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{directory.name}: node state is unreadable ({type(exc).__name__}: {exc})",
            hint="rerun the score stage (`graphfraud run --from score`)",
        ) from exc
    width = 2 * len(meta.aggregated) + len(SCALARS)
    if matrix.dtype != np.float32 or matrix.shape != (meta.users, width):
        raise ArtifactError(
            f"{directory.name}: node state is {matrix.dtype} {matrix.shape}, its meta says "
            f"float32 ({meta.users}, {width})",
            hint="rerun the score stage",
        )
    return NodeState(meta, matrix)


@dataclass(frozen=True)
class Neighbourhood:
    """One node's neighbours, each with its state and the node's summed link weight to it per
    relation (`weights[j, r]`; a pair linked by email and device has two non-zero entries)."""

    x: F32  # [k, c] filled x
    m1: F32  # [k, c]
    log_count: F32  # [k]
    weighted_degree: F32  # [k] the neighbour's own weighted degree
    known: F32  # [k]
    fraud: F32  # [k]
    w_known: F32  # [k]
    w_fraud: F32  # [k]
    weights: F32  # [k, R]

    @classmethod
    def of_rows(cls, state: NodeState, rows: npt.NDArray[np.int64], weights: F32) -> Neighbourhood:
        """Neighbours that are nodes of `state` (rows of the batch's graph)."""
        return cls(
            x=state.x(rows),
            m1=state.m1(rows),
            log_count=state.scalar("log_count", rows),
            weighted_degree=state.scalar("weighted_degree", rows),
            known=state.scalar("known", rows),
            fraud=state.scalar("fraud", rows),
            w_known=state.scalar("w_known", rows),
            w_fraud=state.scalar("w_fraud", rows),
            weights=weights.astype(np.float32),
        )

    @classmethod
    def concat(cls, parts: list[Neighbourhood], width: int, relations: int) -> Neighbourhood:
        if not parts:
            empty = np.zeros(0, dtype=np.float32)
            return cls(
                np.zeros((0, width), np.float32),
                np.zeros((0, width), np.float32),
                empty, empty, empty, empty, empty, empty,
                np.zeros((0, relations), np.float32),
            )  # fmt: skip
        return cls(
            *(
                np.concatenate([getattr(p, name) for p in parts])
                for name in cls.__dataclass_fields__
            )
        )


@dataclass(frozen=True)
class Ego:
    """The node itself: its raw x row, its label (unknown for a new account) and, when in a
    ring, the ring-mates' label counts (its own label excluded)."""

    x: F32  # [f] raw x (NaN where missing), in `StateMeta.feature_names` order
    known: float = 0.0
    fraud: float = 0.0
    ring_known: float = 0.0
    ring_fraud: float = 0.0


def one_hop(meta: StateMeta, ego: Ego, nb: Neighbourhood) -> dict[str, Any]:
    """The node's own scalars as a neighbour will later see them (`SCALARS` order and its
    1-hop mean of x): what an online account stores for the accounts that link to it next."""
    w = nb.weights.astype(np.float64).sum(axis=1)
    deg = float(w.sum())
    a = w / deg if deg > 0 else np.zeros_like(w)
    return {
        "x": _filled(meta, ego.x),
        "m1": a @ nb.x.astype(np.float64),
        "log_count": float(np.log1p(len(w))),
        "weighted_degree": deg,
        "w_known": float(a @ nb.known),
        "w_fraud": float(a @ nb.fraud),
    }


def _filled(meta: StateMeta, x: F32) -> F64:
    cols = np.array([meta.feature_names.index(c) for c in meta.aggregated], dtype=np.int64)
    raw = x[cols].astype(np.float64)
    return np.where(np.isnan(raw), np.asarray(meta.col_mean), raw)


def ego_row(
    meta: StateMeta,
    ego: Ego,
    nb: Neighbourhood,
    *,
    label_features: bool = True,
    per_relation: bool = False,
) -> tuple[F32, tuple[str, ...]]:
    """`GraphInputs.matrix(label_features, per_relation)` for one node, and its column names."""
    names = list(meta.feature_names)
    blocks: list[F64] = [ego.x.astype(np.float64)]
    agg = list(meta.aggregated)
    rel = meta.relation_names
    w_rel = nb.weights.astype(np.float64)
    w = w_rel.sum(axis=1)
    deg = float(w.sum())
    a = w / deg if deg > 0 else np.zeros_like(w)
    x = nb.x.astype(np.float64)
    m1 = a @ x
    std1 = neighbour_std(a @ (x * x), m1)
    m2 = a @ nb.m1.astype(np.float64)
    for block, tag in ((m1, "nb_mean"), (std1, "nb_std"), (m2, "nb2_mean")):
        blocks.append(block)
        names += [f"{tag}:{c}" for c in agg]
    count = float(len(w))
    blocks.append(
        np.array([np.log1p(count), np.log1p(deg), float(a @ nb.log_count), deg / max(count, 1.0)])
    )
    names += ["deg:log_count", "deg:log_weighted", "deg:nb_log_count", "deg:mean_weight"]
    rel_deg = w_rel.sum(axis=0)
    a_rel = np.divide(w_rel, rel_deg[None, :], out=np.zeros_like(w_rel), where=rel_deg > 0)
    if len(rel) > 1:
        blocks.append(np.log1p(rel_deg))
        names += [f"deg:{r}" for r in rel]
        if per_relation:
            for r, name in enumerate(rel):
                blocks.append(a_rel[:, r] @ x)
                names += [f"nb_mean[{name}]:{c}" for c in agg]
    if label_features:
        lab, lab_names = _label_row(meta, ego, nb, a, a_rel, w)
        blocks.append(lab)
        names += lab_names
    row = np.concatenate(blocks).astype(np.float32)
    return row, tuple(names)


def _label_row(
    meta: StateMeta, ego: Ego, nb: Neighbourhood, a: F64, a_rel: F64, w: F64
) -> tuple[F64, list[str]]:
    """`aggregate.label_aggregates` for one node (its own label never enters its row)."""
    known = nb.known.astype(np.float64)
    fraud = nb.fraud.astype(np.float64)
    n_known, n_fraud = float(known.sum()), float(fraud.sum())
    w_known, w_fraud = float(a @ known), float(a @ fraud)
    # 2-hop minus the walks i→j→i, which carry the node's own label: Σ_j a_ij · a_ji.
    back = np.divide(w, nb.weighted_degree, out=np.zeros_like(w), where=nb.weighted_degree > 0)
    returns = float(a @ back)
    w2_known = max(float(a @ nb.w_known) - returns * ego.known, 0.0)
    w2_fraud = max(float(a @ nb.w_fraud) - returns * ego.fraud, 0.0)
    cols = [
        np.log1p(n_known),
        np.log1p(n_fraud),
        _rate(n_fraud, n_known),
        _rate(w_fraud, w_known),
        _rate(w2_fraud, w2_known),
        w_known,
    ]
    names = list(LABEL_COLUMNS)
    if len(meta.relation_names) > 1:
        for r, rel in enumerate(meta.relation_names):
            cols.append(_rate(float(a_rel[:, r] @ fraud), float(a_rel[:, r] @ known)))
            names.append(f"lab:w_fraud_rate[{rel}]")
    if meta.ring_labels:
        cols += [
            np.log1p(ego.ring_known),
            np.log1p(ego.ring_fraud),
            _rate(ego.ring_fraud, ego.ring_known),
        ]
        names += list(RING_LABEL_COLUMNS)
    return np.array(cols, dtype=np.float64), names


def _rate(num: float, den: float) -> float:
    return num / den if den > 1e-9 else float("nan")


def check_names(expected: tuple[str, ...], got: tuple[str, ...]) -> None:
    """The model's input columns and the ego row's must be the same, in the same order."""
    if expected != got:
        first = next(
            (i for i, (e, g) in enumerate(zip(expected, got, strict=False)) if e != g),
            min(len(expected), len(got)),
        )
        raise ArtifactError(
            f"online inputs differ from the model's at column {first} "
            f"({len(got)} vs {len(expected)} columns)",
            hint="the run's node state and its model come from different feature sets: rerun "
            "the score stage",
        )
