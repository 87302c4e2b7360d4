"""Turn business-keyed frames (features, links, labels) into the model's `GraphData`.

Node order = the order of `features.user_id`; that array is the id map back to business ids.
Every link kind of the run's identifier registry gets its own relation, in registry order,
whether or not this run has such links — so feature names (and saved models) stay stable from run
to run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.errors import ArtifactError, InputDataError
from graphfraud.identifiers import BUILTIN
from graphfraud.model.base import LABEL_DERIVED_PREFIX, UNKNOWN_LABEL, GraphData
from graphfraud.schema import USER_ID

RELATIONS: tuple[str, ...] = BUILTIN.link_kinds
# What the model and the user features read of a link: never its values or evidence text.
GRAPH_LINK_COLUMNS = ("user_a", "user_b", "kind", "weight")


def build_graph_data(
    features: pl.DataFrame,
    links: pl.DataFrame,
    labels: pl.DataFrame,
    members: pl.DataFrame | None = None,
    relations: tuple[str, ...] = RELATIONS,
) -> GraphData:
    """Assemble `GraphData` from the per-user feature frame, the links, the labels and rings.

    `features`: `user_id` + numeric columns (nulls become NaN); label-derived `lbl_` columns are
    left out (see `LABEL_DERIVED_PREFIX`). `links`: LINKS_SCHEMA columns `user_a, user_b, kind,
    weight` (one row per pair and kind; duplicates keep the max weight). `labels`: `user_id,
    label` (1, 0 or null); users without a row are unknown. `members`: `user_id, ring_id`
    (optional) becomes `ring_index`. `relations`: the run's link kinds
    (`IdentifierRegistry.link_kinds`); a link of another kind is an error.
    """
    _require(features, (USER_ID,), "features")
    _require(links, GRAPH_LINK_COLUMNS, "links")
    _require(labels, (USER_ID, "label"), "labels")
    if features[USER_ID].null_count():
        raise ArtifactError("features: user_id has nulls")
    if features[USER_ID].n_unique() != features.height:
        raise ArtifactError("features: user_id is not unique")
    feature_cols = [
        c for c in features.columns if c != USER_ID and not c.startswith(LABEL_DERIVED_PREFIX)
    ]
    bad = [c for c in feature_cols if not features.schema[c].is_numeric()]
    if bad:
        raise ArtifactError(f"features: non-numeric columns {bad}", hint="encode them as floats")
    user_ids = features[USER_ID].cast(pl.String).to_numpy().astype(object)
    n = len(user_ids)
    x = (
        features.select(pl.col(feature_cols).cast(pl.Float32)).to_numpy().astype(np.float32)
        if feature_cols
        else np.zeros((n, 0), dtype=np.float32)
    )
    index = pl.DataFrame(
        {USER_ID: features[USER_ID].cast(pl.String), "_node": np.arange(n, dtype=np.int64)}
    )
    edge_index, edge_type, edge_weight = _edges(links, index, relations)
    node_labels = _labels(labels, index, n)
    return GraphData(
        user_ids=user_ids,
        x=np.ascontiguousarray(x),
        feature_names=tuple(feature_cols),
        edge_index=edge_index,
        edge_type=edge_type,
        edge_weight=edge_weight,
        relation_names=relations,
        labels=node_labels,
        ring_index=None if members is None else _ring_index(members, index),
    )


def _ring_index(members: pl.DataFrame, index: pl.DataFrame) -> npt.NDArray[np.int64]:
    """Dense ring number per node, -1 outside every ring."""
    _require(members, (USER_ID, "ring_id"), "ring members")
    ring = members.select(
        pl.col(USER_ID).cast(pl.String),
        pl.col("ring_id").rank("dense").cast(pl.Int64).sub(1).alias("_ring"),
    )
    if ring[USER_ID].n_unique() != ring.height:
        raise ArtifactError("ring members: a user is in more than one ring")
    joined = index.join(ring, on=USER_ID, how="left", maintain_order="left")
    return joined["_ring"].fill_null(-1).to_numpy().astype(np.int64)


def _require(frame: pl.DataFrame, columns: tuple[str, ...], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArtifactError(f"{what}: missing columns {missing}")


def _edges(
    links: pl.DataFrame, index: pl.DataFrame, relations: tuple[str, ...]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    kinds = pl.DataFrame({"kind": list(relations), "_rel": np.arange(len(relations))})
    frame = links.select(
        pl.col("user_a").cast(pl.String),
        pl.col("user_b").cast(pl.String),
        pl.col("kind").cast(pl.String),
        pl.col("weight").cast(pl.Float32),
    )
    unknown_kinds = frame.join(kinds, on="kind", how="anti")["kind"].unique().to_list()
    if unknown_kinds:
        raise ArtifactError(f"links: unknown link kinds {sorted(map(str, unknown_kinds))}")
    a = index.rename({USER_ID: "user_a", "_node": "_a"})
    b = index.rename({USER_ID: "user_b", "_node": "_b"})
    joined = frame.join(a, on="user_a", how="left").join(b, on="user_b", how="left")
    orphans = joined.filter(pl.col("_a").is_null() | pl.col("_b").is_null())
    if orphans.height:
        first = orphans.row(0, named=True)
        raise ArtifactError(
            f"links: {orphans.height} links name users missing from the feature frame "
            f"(first: {first['user_a']!r} - {first['user_b']!r})"
        )
    if joined.filter(pl.col("_a") == pl.col("_b")).height:
        raise ArtifactError("links: a user is linked to itself")
    bad_w = joined.filter(
        pl.col("weight").is_null() | pl.col("weight").is_nan() | (pl.col("weight") < 0)
    )
    if bad_w.height:
        raise ArtifactError(f"links: {bad_w.height} links have a missing or negative weight")
    joined = joined.join(kinds, on="kind")
    # Undirected: one canonical row per (pair, kind), then both directions.
    canon = (
        joined.select(
            pl.min_horizontal("_a", "_b").alias("s"),
            pl.max_horizontal("_a", "_b").alias("t"),
            "_rel",
            "weight",
        )
        .group_by("s", "t", "_rel")
        .agg(pl.col("weight").max())
        .sort("_rel", "s", "t")
    )
    s = canon["s"].to_numpy().astype(np.int64)
    t = canon["t"].to_numpy().astype(np.int64)
    rel = canon["_rel"].to_numpy().astype(np.int64)
    w = canon["weight"].to_numpy().astype(np.float32)
    edge_index = np.stack([np.concatenate([s, t]), np.concatenate([t, s])])
    return edge_index, np.concatenate([rel, rel]), np.concatenate([w, w])


def _labels(labels: pl.DataFrame, index: pl.DataFrame, n: int) -> npt.NDArray[np.int8]:
    frame = labels.select(pl.col(USER_ID).cast(pl.String), pl.col("label").cast(pl.Int64))
    if frame[USER_ID].n_unique() != frame.height:
        raise ArtifactError("labels: user_id is not unique")
    bad = frame.filter(pl.col("label").is_not_null() & ~pl.col("label").is_in([0, 1]))
    if bad.height:
        raise ArtifactError(f"labels: values other than 0, 1 or null (e.g. {bad['label'][0]})")
    joined = frame.join(index, on=USER_ID, how="left")
    orphans = joined.filter(pl.col("_node").is_null())
    if orphans.height:
        raise ArtifactError(
            f"labels: {orphans.height} users missing from the feature frame "
            f"(first: {orphans[USER_ID][0]!r})"
        )
    out = np.full(n, UNKNOWN_LABEL, dtype=np.int8)
    known = joined.filter(pl.col("label").is_not_null())
    out[known["_node"].to_numpy()] = known["label"].to_numpy().astype(np.int8)
    return out


def graph_data_from_tolokers(
    npz_path: Path | str, split: int
) -> tuple[GraphData, npt.NDArray[np.bool_], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Tolokers (Platonov et al. 2023) as `GraphData` plus one official split's masks.

    All labels are kept in the returned data; the caller hides val/test labels before fitting
    (`aggregate.with_visible_labels`). Edges are stored once in the file and symmetrised here.
    """
    path = Path(npz_path)
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputDataError(f"cannot read Tolokers npz: {exc}", file=str(path)) from exc
    with raw:
        x = raw["node_features"].astype(np.float32)
        y = raw["node_labels"].astype(np.int8)
        edges = raw["edges"].astype(np.int64)
        masks = [raw[k] for k in ("train_masks", "val_masks", "test_masks")]
    if not 0 <= split < masks[0].shape[0]:
        raise InputDataError(f"split must be in 0..{masks[0].shape[0] - 1}, got {split}")
    edge_index = np.concatenate([edges.T, edges.T[::-1]], axis=1)
    m = edge_index.shape[1]
    data = GraphData(
        user_ids=np.array([f"t{i}" for i in range(len(y))], dtype=object),
        x=x,
        feature_names=tuple(f"f{i}" for i in range(x.shape[1])),
        edge_index=edge_index,
        edge_type=np.zeros(m, dtype=np.int64),
        edge_weight=np.ones(m, dtype=np.float32),
        relation_names=("coworker",),
        labels=y,
    )
    train, val, test = (mk[split].astype(bool) for mk in masks)
    return data, train, val, test


def random_graph_data(
    nodes: int, edges: int, *, features: int = 16, label_share: float = 0.2, seed: int = 0
) -> GraphData:
    """A seeded random multi-relation graph with a weak planted signal (benchmarks, GPU check).

    Fraud (5 %) shifts two features and prefers linking to other fraud over the `device`
    relation; `label_share` of the nodes are labelled.
    """
    rng = np.random.default_rng(seed)
    truth = (rng.random(nodes) < 0.05).astype(np.int8)
    x = rng.normal(size=(nodes, features)).astype(np.float32)
    x[:, :2] += 0.5 * truth[:, None]
    s = rng.integers(0, nodes, size=edges)
    t = rng.integers(0, nodes, size=edges)
    rel = rng.integers(0, len(RELATIONS), size=edges)
    fraud_idx = np.flatnonzero(truth)
    dense = rng.random(edges) < 0.1  # 10 % of edges re-drawn inside the fraud population
    s[dense] = fraud_idx[rng.integers(0, len(fraud_idx), size=int(dense.sum()))]
    t[dense] = fraud_idx[rng.integers(0, len(fraud_idx), size=int(dense.sum()))]
    rel[dense] = RELATIONS.index("device")
    keep = s != t
    s, t, rel = s[keep], t[keep], rel[keep]
    w = rng.uniform(0.05, 1.0, size=s.shape[0]).astype(np.float32)
    labels = np.where(rng.random(nodes) < label_share, truth, UNKNOWN_LABEL).astype(np.int8)
    return GraphData(
        user_ids=np.array([f"u{i}" for i in range(nodes)], dtype=object),
        x=x,
        feature_names=tuple(f"f{i}" for i in range(features)),
        edge_index=np.stack([np.concatenate([s, t]), np.concatenate([t, s])]),
        edge_type=np.concatenate([rel, rel]).astype(np.int64),
        edge_weight=np.concatenate([w, w]),
        relation_names=RELATIONS,
        labels=labels,
    )
