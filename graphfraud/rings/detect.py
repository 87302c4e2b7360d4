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
5. Communities are joined through exclusive ties (`merge_on_exclusive_ties`): a link of at least
   `exclusive_tie_weight` whose value the two accounts alone hold (a handset, a home connection,
   a handle no third account resembles). A crew hanging each account on an earlier one by a tie
   of its own leaves a chain that step 3 cuts into pairs (a chain of k is one CPM community only
   when each tie beats resolution·k/2); communities a crowd shares a value in (a household's
   tablet, an office's SIM run) take no part, a member of a namesake crowd joins alone, and
   a join under `exclusive_min_size` users (two households tied by one private link) or past
   `exclusive_max_size` is not made.
6. Each ring gets a provisional id, a hash of its smallest member id. The rings stage then gives
   rings that persist from the previous run their old id (`rings.lineage`); on a first night the
   provisional ids are the ids.

Deterministic for a given input and seed: Leiden runs on each *resolution component* alone (a
connected component of the pairs at least `resolution` strong, `resolution_components`), its
vertices numbered in user_id order and igraph's RNG seeded afresh, so an incremental night
(`PreviousRings`) recomputes only the components its changes touched and gets a full run's rings.
"""

from __future__ import annotations

import hashlib
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import igraph as ig
import numpy as np
import numpy.typing as npt
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from graphfraud.config import RingSettings
from graphfraud.engine import SERIAL, Engine, hash_partitions, map_frames
from graphfraud.identifiers import BUILTIN, IP_KIND, IdentifierRegistry, Linkage
from graphfraud.linking.weights import combine_weights_expr
from graphfraud.rings.features import Rings, identity_kinds, ring_feature_rows


def pair_strengths(links: pl.DataFrame) -> pl.DataFrame:
    """One row per linked pair: `user_a, user_b, strength` (noisy-or of its links), sorted so
    that sums over a user's pairs add up in the same order every run."""
    return _strengths(with_pair_ids(links.select("user_a", "user_b", "weight")))


def _strengths(links: pl.DataFrame) -> pl.DataFrame:
    """`user_a, user_b, strength` per pair of links carrying a `pid` (`with_pair_ids`), in pair
    order (pid order is pair order)."""
    return (
        links.group_by("pid", maintain_order=True)
        .agg(
            pl.col("user_a").first(),
            pl.col("user_b").first(),
            combine_weights_expr("weight").alias("strength"),
        )
        .drop("pid")
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


def _vertices(pairs: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(`user_id, v` in user_id order, `va, vb, strength` sorted) for the pairs' graph."""
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
        .select("va", "vb", "strength")
        .sort("va", "vb")  # igraph's result depends on edge order
    )
    return nodes, edges


def _component_of(n: int, va: npt.NDArray[Any], vb: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Per vertex, its connected component, numbered in order of each one's smallest vertex
    (igraph's numbering), straight from the edge arrays: no Python list of millions of
    edges, no igraph graph just to find the components."""
    adjacency = coo_matrix((np.ones(len(va), dtype=np.int8), (va, vb)), shape=(n, n))
    _, labels = connected_components(adjacency, directed=False)
    return np.asarray(labels, dtype=np.int64)


def _resolution_component_of(
    edges: pl.DataFrame, n: int, resolution: float
) -> npt.NDArray[np.int64]:
    """Per vertex of `_vertices`' `edges`, its resolution component (`resolution_components`)."""
    strong = edges.filter(pl.col("strength") >= resolution)
    return _component_of(n, strong["va"].to_numpy(), strong["vb"].to_numpy())


def resolution_components(pairs: pl.DataFrame, resolution: float) -> pl.DataFrame:
    """`user_id, component` (the component's smallest user_id) for every user in `pairs`: the
    components Leiden runs on, one at a time, joined by pairs at least `resolution` strong.

    CPM gains w(A, B) − resolution·|A|·|B| by putting groups A and B in one community, which is
    negative when every pair between them is weaker than `resolution`. Leiden starts from
    singletons and only makes moves that gain, so no community of its ever spans two such
    components: Leiden on each alone finds what it would find on their union, and the weak ties
    of the population's namesakes and café IPs (half the strong pairs at 1M users) stop chaining
    it into one giant component that every night's changes touch."""
    nodes, edges = _vertices(pairs)
    labels = _resolution_component_of(edges, nodes.height, resolution)
    return nodes.with_columns(pl.Series("c", labels)).select(
        "user_id", pl.col("user_id").min().over("c").alias("component")
    )


# A component with at least this many strong pairs is one Leiden task alone; smaller ones are
# batched into tasks of about this many pairs (most components are a handful of users).
LEIDEN_BATCH_EDGES = 20_000

# igraph draws from one process-wide RNG: one Leiden batch at a time per process.
_IGRAPH_RNG = threading.Lock()


@dataclass(frozen=True)
class ComponentBatch:
    """Connected components for one Leiden task, concatenated: per component its vertex and
    pair counts; pairs as component-local vertex numbers (user_id order), sorted."""

    sizes: npt.NDArray[np.int64]
    edge_counts: npt.NDArray[np.int64]
    a: npt.NDArray[np.int64]
    b: npt.NDArray[np.int64]
    weight: npt.NDArray[np.float64]


def leiden_batch(batch: ComponentBatch, settings: RingSettings) -> npt.NDArray[np.int64]:
    """Per vertex of the batch (components in order), the batch position of its community's
    first vertex. Each component is its own igraph graph with the RNG seeded afresh, so its
    communities depend on nothing else in the batch, nor on which process runs it."""
    out = np.empty(int(batch.sizes.sum()), dtype=np.int64)
    with _IGRAPH_RNG:
        rng = random.Random(settings.seed)
        ig.set_random_number_generator(rng)
        try:
            v0 = e0 = 0
            for size, m in zip(batch.sizes.tolist(), batch.edge_counts.tolist(), strict=True):
                rng.seed(settings.seed)
                graph = ig.Graph(n=size)
                # from the arrays in C: a list of a giant component's millions of edge tuples
                # costs seconds (same edges, same order, same communities)
                graph.add_edges(np.column_stack([batch.a[e0 : e0 + m], batch.b[e0 : e0 + m]]))
                clusters = graph.community_leiden(
                    objective_function="CPM",
                    weights=batch.weight[e0 : e0 + m].tolist(),
                    resolution=settings.resolution,
                    n_iterations=settings.iterations,
                )
                membership = np.asarray(clusters.membership, dtype=np.int64)
                # each community by its first vertex (its smallest user_id)
                first = np.full(membership.max() + 1, size, dtype=np.int64)
                np.minimum.at(first, membership, np.arange(size))
                out[v0 : v0 + size] = v0 + first[membership]
                v0, e0 = v0 + size, e0 + m
        finally:
            ig.set_random_number_generator(random)
    return out


def leiden_communities(
    pairs: pl.DataFrame,
    settings: RingSettings,
    engine: Engine = SERIAL,
    *,
    batch_edges: int = LEIDEN_BATCH_EDGES,
) -> pl.DataFrame:
    """`user_id, community` (the community's smallest user_id) for every user in `pairs`
    (`user_a, user_b, strength`).

    Leiden runs on each resolution component alone (`resolution_components`), on the pairs
    inside it, its vertices in user_id order and igraph's RNG seeded afresh: CPM's objective is a
    sum over components, and this way a component's communities depend on nothing outside it, so
    an incremental night can keep the untouched components' communities and recompute the rest
    to the same result a full run gets, and `engine` can run the components in parallel (small
    ones batched up to `batch_edges` pairs, large ones alone, largest first) with the same result
    whatever the batches and workers.
    """
    nodes, edges = _vertices(pairs)
    component = _resolution_component_of(edges, nodes.height, settings.resolution)
    # the weak pairs between components can never be inside a community
    edges = edges.filter(
        pl.Series(component[edges["va"].to_numpy()] == component[edges["vb"].to_numpy()])
    )
    # vertices grouped by component, user_id order inside (v is user_id order)
    order = np.lexsort((np.arange(len(component)), component))
    local = np.empty(len(component), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, component[order][1:] != component[order][:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    local[order] = np.arange(len(order)) - np.repeat(starts, sizes)
    va, vb = edges["va"].to_numpy(), edges["vb"].to_numpy()
    edge_comp = component[va]
    edge_order = np.lexsort((local[vb], local[va], edge_comp))
    la, lb = local[va][edge_order], local[vb][edge_order]
    weight = edges["strength"].to_numpy()[edge_order].astype(np.float64)
    edge_starts = np.searchsorted(edge_comp[edge_order], component[order][starts])
    edge_ends = np.r_[edge_starts[1:], len(edge_order)]
    label = np.empty(len(component), dtype=np.int64)
    batches: list[list[int]] = []  # component numbers (positions in `starts`) per task
    current: list[int] = []
    current_edges = 0
    for c, (start, size, e0, e1) in enumerate(
        zip(starts.tolist(), sizes.tolist(), edge_starts.tolist(), edge_ends.tolist(), strict=True)
    ):
        if size == 1:  # a user whose every pair is weaker than the resolution
            label[order[start]] = order[start]
        elif size == 2:  # most of the rest: one pair, together iff it beats the resolution
            vertices = order[start : start + size]
            label[vertices] = vertices[0] if weight[e0] > settings.resolution else vertices
        elif e1 - e0 >= batch_edges:
            batches.append([c])
        else:
            current.append(c)
            current_edges += e1 - e0
            if current_edges >= batch_edges:
                batches.append(current)
                current, current_edges = [], 0
    if current:
        batches.append(current)
    batches.sort(key=lambda cs: -int((edge_ends[cs] - edge_starts[cs]).sum()))
    work = [_component_batch(cs, edge_starts, edge_ends, sizes, la, lb, weight) for cs in batches]
    for cs, first in zip(batches, engine.map(leiden_batch, work, settings), strict=True):
        vertices = np.concatenate([order[starts[c] : starts[c] + sizes[c]] for c in cs])
        label[vertices] = vertices[first]
    user_ids = nodes["user_id"]
    return nodes.select("user_id", user_ids.gather(label).alias("community"))


def _component_batch(
    components: list[int],
    edge_starts: npt.NDArray[np.int64],
    edge_ends: npt.NDArray[np.int64],
    sizes: npt.NDArray[np.int64],
    la: npt.NDArray[np.int64],
    lb: npt.NDArray[np.int64],
    weight: npt.NDArray[np.float64],
) -> ComponentBatch:
    """The `ComponentBatch` of `components` (positions in the component arrays)."""
    spans = [slice(int(edge_starts[c]), int(edge_ends[c])) for c in components]
    return ComponentBatch(
        sizes=sizes[components].astype(np.int64),
        edge_counts=(edge_ends[components] - edge_starts[components]).astype(np.int64),
        a=np.concatenate([la[s] for s in spans]),
        b=np.concatenate([lb[s] for s in spans]),
        weight=np.concatenate([weight[s] for s in spans]),
    )


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
    merged = _component_of(n, edges["community"].to_numpy(), edges["first"].to_numpy())
    return membership.with_columns(
        pl.Series("community", merged[membership["community"].to_numpy()], dtype=pl.Int64)
    )


def merge_on_exclusive_ties(
    membership: pl.DataFrame,
    balanced: pl.DataFrame,
    pairs: pl.DataFrame,
    settings: RingSettings,
    registry: IdentifierRegistry = BUILTIN,
) -> pl.DataFrame:
    """`membership` (`user_id, community`) with communities joined through exclusive ties;
    `balanced`: the links with look-alikes balanced (`balanced_links`: `user_a, user_b, kind,
    support, weight`), `pairs`: the strong pairs Leiden ran on (`strong_pairs`).

    A link is *exclusive* when its value is held by the two accounts alone (`support` 2: a
    handset, a home connection, a handle no third account resembles) and a *crowd* link
    otherwise. A crew that hangs each account on an earlier one by a tie of its own leaves a
    chain or tree of exclusive ties, which CPM cuts into pairs and triples (a chain of k is one
    community only when each tie weighs more than resolution·k/2). Honest sharing is crowded: a
    household's tablet and home connection, an office's run of SIMs are held by three and more.

    So exclusive ties of at least `exclusive_tie_weight` join *units*: a community held without
    crowd links is one unit; a community a crowd shares a value or a number run in (a household,
    an office), or one with more strong pairs than members (dense: not a piece of a chain),
    takes no part; and where only look-alikes crowd a community (a popular name's
    namesakes) each member with an exclusive tie leaves it alone, the namesakes staying behind.
    Units joined into fewer than `exclusive_min_size` users stay as they were: one private
    link between two small honest groups (a couple on a friend's home connection, two namesakes'
    look-alike handles) is no chain, and a short chain of strong ties CPM keeps whole already.
    So do units joined into more than `exclusive_max_size` users.
    """
    if settings.exclusive_tie_weight > 1 or membership.is_empty():
        return membership
    resemblance = [r.kind for r in registry.rules if r.match == Linkage.LOOKALIKE]
    crowd = balanced.filter((pl.col("support") > 2) & (pl.col("weight") >= settings.min_weight))
    inside = _within_communities(crowd, membership).select(
        "community", (~pl.col("kind").is_in(resemblance)).alias("shared")
    )
    # a member tied strongly into a crowd by a shared value (a household's tablet, an office's
    # SIM run) holds its whole community back, wherever Leiden put it
    held = crowd.filter(
        ~pl.col("kind").is_in(resemblance) & (pl.col("weight") >= settings.exclusive_tie_weight)
    )
    anchored = membership.join(
        pl.concat([held["user_a"], held["user_b"]]).to_frame("user_id"), on="user_id", how="semi"
    ).select("community", pl.lit(True).alias("shared"))
    # a community with more strong pairs than members is held by its own density, not a chain:
    # CPM cut what joined it to the rest, and one tie must not undo that
    dense = (
        _within_communities(pairs, membership)
        .group_by("community")
        .agg(pl.len().alias("pairs"))
        .join(membership.group_by("community").agg(pl.len().alias("size")), on="community")
        .filter(pl.col("pairs") > pl.col("size"))
        .select("community", pl.lit(True).alias("dense"))
    )
    crowds = pl.concat([inside, anchored]).group_by("community").agg(pl.col("shared").any())
    community = membership["community"].to_numpy()
    n = int(community.max()) + 1
    # unit per user: its community (< n), itself (n + row) or none (-1)
    units = (
        membership.with_row_index("row")
        .join(crowds, on="community", how="left")
        .join(dense, on="community", how="left")
        .sort("row")
        .select(
            "user_id",
            pl.when(pl.col("shared").is_null() & pl.col("dense").is_null())
            .then(pl.col("community"))
            .when(~pl.col("shared"))
            .then(n + pl.col("row").cast(pl.Int64))
            .otherwise(-1)
            .alias("unit"),
        )
    )
    free = units.filter(pl.col("unit") >= 0)
    edges = (
        balanced.filter(
            (pl.col("support") <= 2) & (pl.col("weight") >= settings.exclusive_tie_weight)
        )
        .join(free.rename({"user_id": "user_a", "unit": "ua"}), on="user_a")
        .join(free.rename({"user_id": "user_b", "unit": "ub"}), on="user_b")
        .filter(pl.col("ua") != pl.col("ub"))
    )
    if edges.is_empty():
        return membership
    unit = units["unit"].to_numpy()
    m = n + len(unit)
    group = _component_of(m, edges["ua"].to_numpy(), edges["ub"].to_numpy())
    first = np.full(int(group.max()) + 1, m, dtype=np.int64)
    np.minimum.at(first, group, np.arange(m))  # a group is named by its smallest unit
    size = np.bincount(unit[unit >= 0], minlength=m)  # users per unit
    users = np.bincount(group, weights=size)
    units_in = np.bincount(group)
    merged = (
        (units_in[group] > 1)
        & (users[group] >= settings.exclusive_min_size)
        & (users[group] <= settings.exclusive_max_size)
    )
    label = np.where(merged, first[group], np.arange(m))
    new = np.where(unit >= 0, label[np.maximum(unit, 0)], community)
    # a member that left a look-alike crowd without joining anything keeps its community
    new = np.where((unit >= n) & ~merged[np.maximum(unit, 0)], community, new)
    return membership.with_columns(pl.Series("community", new, dtype=pl.Int64))


def _within_communities(pairs: pl.DataFrame, membership: pl.DataFrame) -> pl.DataFrame:
    """The rows of `pairs` (`user_a, user_b`, …) whose two users are in one community of
    `membership`, with that `community`."""
    return (
        pairs.join(membership.rename({"user_id": "user_a"}), on="user_a")
        .join(membership.rename({"user_id": "user_b", "community": "other"}), on="user_b")
        .filter(pl.col("community") == pl.col("other"))
        .drop("other")
    )


# The link columns the rings stage reads (pair strengths, look-alike balance, dedicated IPs,
# ring features): never the evidence text, which at 1M users is most of the file's memory.
RING_LINK_COLUMNS = ["user_a", "user_b", "kind", "value_a", "value_b", "support", "weight"]


@dataclass(frozen=True)
class PreviousRings:
    """The previous night's artifacts an incremental rings stage compares and reuses (its
    settings must be tonight's: the pipeline checks)."""

    links: pl.DataFrame  # its LINKS_FILE
    communities: pl.DataFrame  # its COMMUNITIES_FILE


@dataclass(frozen=True)
class Detected:
    members: pl.DataFrame  # user_id, ring_id
    communities: pl.DataFrame  # user_id, community: Leiden's, before the merges (steps 4-5)
    stats: dict[str, int] = field(default_factory=dict)


def strong_pairs(
    links: pl.DataFrame, settings: RingSettings, registry: IdentifierRegistry = BUILTIN
) -> pl.DataFrame:
    """`user_a, user_b, strength` of the pairs strong enough for a ring (look-alikes balanced)."""
    return strong_pairs_of(balanced_links(links, registry), settings)


def balanced_links(links: pl.DataFrame, registry: IdentifierRegistry = BUILTIN) -> pl.DataFrame:
    """The ring stage's view of the links: `RING_LINK_COLUMNS` with look-alikes balanced
    (`balance_lookalikes`) and a pair id (`with_pair_ids`)."""
    return balance_lookalikes(with_pair_ids(links.select(RING_LINK_COLUMNS)), registry)


def strong_pairs_of(balanced: pl.DataFrame, settings: RingSettings) -> pl.DataFrame:
    """`strong_pairs` from `balanced_links`."""
    return _strengths(balanced).filter(pl.col("strength") >= settings.min_weight)


def with_pair_ids(links: pl.DataFrame) -> pl.DataFrame:
    """`links` with `pid`, one u32 per user pair, to group by pair without hashing two string
    columns (at 1M users, 0.7 GB less). A links file is sorted by pair, so a pair's rows are
    adjacent; any other frame is first sorted so, stably (each pair's links keep their order,
    and their noisy-or sums the same terms in the same order)."""
    a, b = links["user_a"], links["user_b"]
    ordered = ((a > a.shift(1)) | ((a == a.shift(1)) & (b >= b.shift(1)))).fill_null(True).all()
    if not ordered:
        links = links.sort("user_a", "user_b", maintain_order=True)
        a, b = links["user_a"], links["user_b"]
    starts = ((a != a.shift(1)) | (b != b.shift(1))).fill_null(True)
    return links.with_columns(starts.cum_sum().cast(pl.UInt32).alias("pid"))


def incremental_communities(
    pairs: pl.DataFrame,
    before: pl.DataFrame,
    communities: pl.DataFrame,
    settings: RingSettings,
    engine: Engine = SERIAL,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """`leiden_communities(pairs)`, computed only on the components a change touched.

    `before` and `communities` are the previous night's strong pairs and communities. A pair
    *changed* when it appeared, vanished or changed strength. A changed pair touches its users
    when it is, or was, at least `resolution` strong (it can join or split components), or
    when it lies inside one of tonight's components (Leiden reads it there). A weak pair
    between two components never reaches Leiden: a namesake crowd that grew by one account
    re-weighs hundreds of such pairs, and recomputing their users would make every night
    global. A component without a touched user has the users and the pairs it had last night,
    so its communities are last night's (`leiden_communities` runs each component alone); a
    user new to the strong pairs has no community yet and is touched too."""
    key = ["user_a", "user_b", "strength"]
    changed = pl.concat(
        [
            pairs.select(key).join(before.select(key), on=key, how="anti"),
            before.select(key).join(pairs.select(key), on=key, how="anti"),
        ]
    )
    components = resolution_components(pairs, settings.resolution)
    ends = components.rename({"component": "ca"})
    matters = (
        changed.join(ends.rename({"user_id": "user_a"}), on="user_a", how="left")
        .join(ends.rename({"user_id": "user_b", "ca": "cb"}), on="user_b", how="left")
        .filter((pl.col("strength") >= settings.resolution) | (pl.col("ca") == pl.col("cb")))
    )
    touched = pl.concat(
        [
            matters["user_a"],
            matters["user_b"],
            components.join(communities, on="user_id", how="anti")["user_id"],
        ]
    ).to_frame("user_id")
    dirty = components.join(touched, on="user_id", how="semi").select("component").unique()
    redo = components.join(dirty, on="component", how="semi").select("user_id")
    kept = communities.join(
        components.join(dirty, on="component", how="anti").select("user_id"), on="user_id"
    )
    # both ends: a weak pair may join a recomputed component to a kept one
    fresh_pairs = pairs.join(redo.rename({"user_id": "user_a"}), on="user_a", how="semi").join(
        redo.rename({"user_id": "user_b"}), on="user_b", how="semi"
    )
    fresh = (
        leiden_communities(fresh_pairs, settings, engine)
        if fresh_pairs.height
        else pl.DataFrame(schema={"user_id": pl.Utf8, "community": pl.Utf8})
    )
    # a recomputed user whose every pair is weak and leads out of its component is alone
    alone = redo.join(fresh, on="user_id", how="anti").select(
        "user_id", pl.col("user_id").alias("community")
    )
    stats = {
        "components": int(components["component"].n_unique()),
        "components_recomputed": dirty.height,
        "users_recomputed": redo.height,
    }
    return pl.concat([kept.select(fresh.columns), fresh, alone]), stats


def anchor_ring_ids(membership: pl.DataFrame) -> pl.DataFrame:
    """`user_id, ring_id` from `user_id, community` (one community, one ring): the one place
    ring ids are made."""
    anchors = (
        membership.group_by("community")
        .agg(pl.col("user_id").min().alias("anchor"))
        .with_columns(
            pl.col("anchor").map_elements(ring_id_for, return_dtype=pl.Utf8).alias("ring_id")
        )
    )
    return membership.join(anchors, on="community").select("user_id", "ring_id").sort("user_id")


def detect_rings(
    links: pl.DataFrame, settings: RingSettings, registry: IdentifierRegistry = BUILTIN
) -> pl.DataFrame:
    """Ring membership `user_id, ring_id` for users in a community of at least `min_size`."""
    return find_rings(links, settings, registry).members


def find_rings(
    links: pl.DataFrame,
    settings: RingSettings,
    registry: IdentifierRegistry = BUILTIN,
    previous: PreviousRings | None = None,
    engine: Engine = SERIAL,
) -> Detected:
    """Ring membership `user_id, ring_id` for users in a community of at least `min_size`, and
    the communities behind it. With `previous`, Leiden reruns only on touched components; with
    `engine`, the components run on it. The result is the same."""
    balanced = balanced_links(links, registry)
    pairs = strong_pairs_of(balanced, settings)
    # what the exclusive-tie merge reads after Leiden, without the identifier values
    ties = balanced.select("user_a", "user_b", "kind", "support", "weight")
    del balanced
    stats: dict[str, int] = {}
    if pairs.is_empty():
        communities = pl.DataFrame(schema={"user_id": pl.Utf8, "community": pl.Utf8})
    elif previous is None:
        communities = leiden_communities(pairs, settings, engine)
    else:
        before = strong_pairs(previous.links, settings, registry)
        communities, stats = incremental_communities(
            pairs, before, previous.communities, settings, engine
        )
    if communities.is_empty():
        members = pl.DataFrame(schema={"user_id": pl.Utf8, "ring_id": pl.Utf8})
        return Detected(members=members, communities=communities, stats=stats)
    numbered = communities.with_columns(pl.col("community").rank("dense").cast(pl.Int64))
    membership = merge_on_exclusive_ties(
        merge_on_dedicated_ips(numbered, links, settings), ties, pairs, settings, registry
    )
    sized = membership.filter(pl.len().over("community") >= settings.min_size)
    members = anchor_ring_ids(sized)
    return Detected(members=members, communities=communities.sort("user_id"), stats=stats)


def build_rings(
    links: pl.DataFrame,
    users: pl.DataFrame,
    settings: RingSettings,
    registry: IdentifierRegistry = BUILTIN,
    previous: PreviousRings | None = None,
    engine: Engine = SERIAL,
) -> Rings:
    """The rings stage: communities on the links (with `previous`, only where the links
    changed; with `engine`, per component on it), then each ring's features."""
    found = find_rings(links, settings, registry, previous, engine)
    # Each ring's features read only its own members and the links between them.
    parts = hash_partitions(found.members, "ring_id", engine.partitions)
    return Rings(
        members=found.members,
        rings=map_frames(
            engine, ring_feature_rows, parts, users, links, identity_kinds(registry)
        ).sort("ring_id"),
        communities=found.communities,
        detection=found.stats,
    )
