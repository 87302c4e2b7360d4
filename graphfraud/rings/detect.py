"""Rings: communities on the weighted user graph.

1. Pair strength = noisy-or of a pair's link weights (several independent signals add up). For
   the ring graph only, a look-alike between two identifiers is weighed once per identity, not once
   per account holding it (`balance_lookalikes`): a lone namesake of a 10-account mailbox is one
   resemblance, not ten.
2. Only pairs at least `min_weight` strong are kept: weak ties (a shared café IP, a common name)
   never join a ring, which is what stops camouflage links and hubs from gluing rings together.
3. Leiden (igraph, Constant Potts Model on the pair strengths) splits what is still glued by a few
   bridges: a set of users is one ring when its internal link density beats `resolution`.
4. Communities that together hold a dedicated IP — most of its users are theirs, and each uses it
   for a good share of its members — are one ring (`merge_on_dedicated_ips`). An IP's pairwise
   weight is too weak for step 3 ever to join groups on it (a device farm's phones, one group per
   handset, all behind the farm's own datacenter IPs), yet an IP used by nobody else is the
   operation's own infrastructure.
5. Each ring gets a provisional id, a hash of its smallest member id. The rings stage then gives
   rings that persist from the previous run their old id (`rings.lineage`); on a first night the
   provisional ids are the ids.

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
from graphfraud.identifiers import BUILTIN, IP_KIND, IdentifierRegistry, Linkage
from graphfraud.linking.weights import combine_weights_expr
from graphfraud.rings.features import Rings, ring_features


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


def balance_lookalikes(links: pl.DataFrame, registry: IdentifierRegistry = BUILTIN) -> pl.DataFrame:
    """Links with each look-alike weight scaled by min(n_a, n_b) / max(n_a, n_b), where n is how
    many accounts hold that side's value (from the exact link's `support`, 1 when unshared).

    The accounts behind one mailbox are one identity, so the look-alike between two values is one
    comparison repeated over n_a·n_b pairs. Scaled, CPM joins the two groups only when the weight
    beats `resolution`·max/min: two mailboxes shared alike (a typo-domain ring's akshaykumar1@ and
    akshaykumar2@, 13 accounts each) keep full weight, while a lone namesake (rohitpatel95@) of a
    7-account mailbox (rohitpatel80@) must beat 7·resolution instead of being pulled in 7 times.
    """
    # fuzzy kind → the exact kind whose `support` says how many accounts hold a value
    exact_of = {
        r.kind: registry.exact_kind_of(r.kind) for r in registry.rules if r.match != Linkage.EXACT
    }
    fuzzy = links.filter(pl.col("kind").is_in(list(exact_of)))
    if fuzzy.is_empty():
        return links
    exact_to_fuzzy = {exact: kind for kind, exact in exact_of.items()}
    holders = (
        links.filter(pl.col("kind").is_in(list(exact_to_fuzzy)))
        .group_by("kind", "value_a")
        .agg(pl.col("support").max().alias("n"))
        .with_columns(pl.col("kind").replace_strict(exact_to_fuzzy, return_dtype=pl.Utf8))
    )
    n_a = pl.col("n_a").fill_null(1).clip(lower_bound=1)
    n_b = pl.col("n_b").fill_null(1).clip(lower_bound=1)
    balanced = (
        fuzzy.join(holders.rename({"n": "n_a"}), on=["kind", "value_a"], how="left")
        .join(
            holders.rename({"value_a": "value_b", "n": "n_b"}), on=["kind", "value_b"], how="left"
        )
        .with_columns(
            (pl.col("weight") * pl.min_horizontal(n_a, n_b) / pl.max_horizontal(n_a, n_b))
            .cast(links.schema["weight"])
            .alias("weight")
        )
        .select(links.columns)
    )
    return pl.concat([links.filter(~pl.col("kind").is_in(list(exact_of))), balanced])


def ring_id_for(anchor: str, salt: int = 0) -> str:
    """A ring id from the ring's smallest member id; `salt` > 0 gives another one when that id
    was issued before (`rings.lineage` never issues an id twice)."""
    text = anchor if salt == 0 else f"{anchor}\x00{salt}"
    return "R" + hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:12]


def leiden_communities(pairs: pl.DataFrame, settings: RingSettings) -> pl.DataFrame:
    """`user_id, community` for every user in `pairs` (`user_a, user_b, strength`)."""
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
    edges = (
        pairs.join(nodes.rename({"user_id": "user_a", "v": "va"}), on="user_a")
        .join(nodes.rename({"user_id": "user_b", "v": "vb"}), on="user_b")
        .sort("va", "vb")  # igraph's result depends on edge order
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
    return nodes.select("user_id", pl.Series("community", clusters.membership, dtype=pl.Int64))


def merge_on_dedicated_ips(
    membership: pl.DataFrame, links: pl.DataFrame, settings: RingSettings
) -> pl.DataFrame:
    """`membership` (`user_id, community`) with communities joined through dedicated IPs.

    A community *uses* an IP when at least two and `dedicated_ip_use` of its members do. An IP is
    *dedicated* when the communities using it hold `dedicated_ip_share` of all its users (the
    link's `support`, so users outside any community count against it): a café's IP, used by
    strangers, never is; a farm's datacenter IP, used only by its handset groups, is.
    """
    ip = links.filter(pl.col("kind") == IP_KIND)
    if ip.is_empty() or membership.is_empty():
        return membership
    users = pl.concat(
        [
            ip.select(pl.col("value_a").alias("ip"), "support", pl.col("user_a").alias("user_id")),
            ip.select(pl.col("value_a").alias("ip"), "support", pl.col("user_b").alias("user_id")),
        ]
    ).unique(["ip", "user_id"])
    sizes = membership.group_by("community").agg(pl.len().alias("size"))
    using = (
        users.join(membership, on="user_id")
        .group_by("ip", "community")
        .agg(pl.len().alias("users"), pl.col("support").max())
        .join(sizes, on="community")
        .filter(
            (pl.col("users") >= 2) & (pl.col("users") >= settings.dedicated_ip_use * pl.col("size"))
        )
        .filter(
            (pl.len().over("ip") >= 2)
            & (pl.col("users").sum().over("ip") >= settings.dedicated_ip_share * pl.col("support"))
        )
    )
    if using.is_empty():
        return membership
    edges = using.join(
        using.group_by("ip").agg(pl.col("community").min().alias("first")), on="ip"
    ).filter(pl.col("community") != pl.col("first"))
    n = int(membership["community"].max()) + 1  # type: ignore[arg-type]
    joined = ig.Graph(
        n=n,
        edges=np.column_stack([edges["community"].to_numpy(), edges["first"].to_numpy()]).tolist(),
    ).connected_components()
    merged = np.asarray(joined.membership, dtype=np.int64)
    return membership.with_columns(
        pl.Series("community", merged[membership["community"].to_numpy()], dtype=pl.Int64)
    )


def detect_rings(
    links: pl.DataFrame, settings: RingSettings, registry: IdentifierRegistry = BUILTIN
) -> pl.DataFrame:
    """Ring membership `user_id, ring_id` for users in a community of at least `min_size`."""
    links = links.select("user_a", "user_b", "kind", "value_a", "value_b", "support", "weight")
    pairs = (
        balance_lookalikes(links, registry)
        .group_by("user_a", "user_b")
        .agg(combine_weights_expr("weight").alias("strength"))
        .filter(pl.col("strength") >= settings.min_weight)
    )
    if pairs.is_empty():
        return pl.DataFrame(schema={"user_id": pl.Utf8, "ring_id": pl.Utf8})
    membership = merge_on_dedicated_ips(leiden_communities(pairs, settings), links, settings)
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


def build_rings(
    links: pl.DataFrame,
    users: pl.DataFrame,
    settings: RingSettings,
    registry: IdentifierRegistry = BUILTIN,
) -> Rings:
    """The rings stage: communities on the links, then each ring's features."""
    members = detect_rings(links, settings, registry)
    return Rings(members=members, rings=ring_features(members, users, links, registry))
