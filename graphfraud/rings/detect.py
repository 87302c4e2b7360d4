"""Rings: communities on the weighted user graph.

1. Pair strength = noisy-or of a pair's link weights (several independent signals add up).
2. Only pairs at least `min_weight` strong are kept: weak ties (a shared café IP, a common name)
   never join a ring, which is what stops camouflage links and hubs from gluing rings together.
3. Leiden (igraph, Constant Potts Model on the pair strengths) splits what is still glued by a few
   bridges: a set of users is one ring when its internal link density beats `resolution`.
4. Ring ids are stable: a hash of the ring's smallest member id, so re-running on the same input
   (or a grown one where the ring keeps its anchor) gives the same id.

Deterministic for a given input and seed: vertices are numbered in user_id order and igraph's RNG
is seeded.
"""

from __future__ import annotations

import hashlib
import random

import igraph as ig
import numpy as np
import polars as pl

from graphfraud.config import RingSettings
from graphfraud.linking.weights import combine_weights_expr


def pair_strengths(links: pl.DataFrame) -> pl.DataFrame:
    """One row per linked pair: `user_a, user_b, strength, kinds` (noisy-or of its links)."""
    return (
        links.group_by("user_a", "user_b")
        .agg(
            combine_weights_expr("weight").alias("strength"),
            pl.col("kind").sort().str.join(",").alias("kinds"),
        )
        .sort("user_a", "user_b")
    )


def ring_id_for(anchor: str) -> str:
    """Stable ring id from the ring's smallest member id."""
    return "R" + hashlib.sha1(anchor.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]


def detect_rings(links: pl.DataFrame, settings: RingSettings) -> pl.DataFrame:
    """Ring membership `user_id, ring_id` for users in a community of at least `min_size`."""
    pairs = pair_strengths(links).filter(pl.col("strength") >= settings.min_weight)
    if pairs.is_empty():
        return pl.DataFrame(schema={"user_id": pl.Utf8, "ring_id": pl.Utf8})
    nodes = (
        pl.concat(
            [
                pairs.select(pl.col("user_a").alias("user_id")),
                pairs.select(pl.col("user_b").alias("user_id")),
            ]
        )
        .unique()
        .sort("user_id")
        .with_row_index("v")
    )
    edges = pairs.join(nodes.rename({"user_id": "user_a", "v": "va"}), on="user_a").join(
        nodes.rename({"user_id": "user_b", "v": "vb"}), on="user_b"
    )
    graph = ig.Graph(
        n=nodes.height,
        edges=np.column_stack([edges["va"].to_numpy(), edges["vb"].to_numpy()]).tolist(),
        directed=False,
    )
    ig.set_random_number_generator(random.Random(settings.seed))
    try:
        clusters = graph.community_leiden(
            objective_function="CPM",
            weights=edges["strength"].to_list(),
            resolution=settings.resolution,
            n_iterations=settings.iterations,
        )
    finally:
        ig.set_random_number_generator(random)
    membership = nodes.with_columns(pl.Series("community", clusters.membership, dtype=pl.Int64))
    sized = membership.with_columns(
        pl.len().over("community").alias("size"),
        pl.col("user_id").min().over("community").alias("anchor"),
    ).filter(pl.col("size") >= settings.min_size)
    anchors = (
        sized.select("anchor")
        .unique()
        .with_columns(
            pl.col("anchor").map_elements(ring_id_for, return_dtype=pl.Utf8).alias("ring_id")
        )
    )
    return sized.join(anchors, on="anchor").select("user_id", "ring_id").sort("user_id")
