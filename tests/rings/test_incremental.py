"""Leiden per resolution component: a component's communities depend on nothing outside it, so
an incremental night that recomputes only the touched components gets the full run's rings."""

from __future__ import annotations

import random

import polars as pl

from graphfraud.config import RingSettings
from graphfraud.rings.detect import incremental_communities, leiden_communities


def _pairs(edges: list[tuple[str, str, float]]) -> pl.DataFrame:
    rows = [(min(a, b), max(a, b), w) for a, b, w in edges if a != b]
    return (
        pl.DataFrame(rows, schema=["user_a", "user_b", "strength"], orient="row")
        .with_columns(pl.col("strength").cast(pl.Float32))
        .unique(["user_a", "user_b"], keep="first")
        .sort("user_a", "user_b")
    )


def _random_graph(rng: random.Random, prefix: str, n: int, m: int) -> list[tuple[str, str, float]]:
    nodes = [f"{prefix}{i:04d}" for i in range(n)]
    return [(*rng.sample(nodes, 2), rng.choice([0.15, 0.3, 0.6, 0.9])) for _ in range(m)]


def test_a_components_communities_do_not_depend_on_the_rest_of_the_graph() -> None:
    rng = random.Random(3)
    settings = RingSettings()
    left = _random_graph(rng, "a", 300, 420)
    right = _random_graph(rng, "b", 300, 420)
    alone = leiden_communities(_pairs(left), settings)
    together = leiden_communities(_pairs(left + right), settings)
    assert (
        together.join(alone, on="user_id")
        .filter(pl.col("community") != pl.col("community_right"))
        .is_empty()
    )
    # communities are named by their smallest member, and Leiden did split something
    assert (together["community"] <= together["user_id"]).all()
    assert together["community"].n_unique() > 20


def test_incremental_communities_equal_a_full_run() -> None:
    rng = random.Random(11)
    settings = RingSettings()
    day1 = _random_graph(rng, "u", 2_000, 2_300)
    # day 2: some pairs gone, some new, some re-weighed; most components untouched
    day2 = [e for e in day1 if rng.random() > 0.01]
    day2 += _random_graph(rng, "u", 2_000, 20)
    day2 = [(a, b, 0.45) if rng.random() < 0.005 else (a, b, w) for a, b, w in day2]
    before, after = _pairs(day1), _pairs(day2)
    full = leiden_communities(after, settings)
    kept, stats = incremental_communities(
        after, before, leiden_communities(before, settings), settings
    )
    assert kept.sort("user_id").equals(full.sort("user_id"))
    assert 0 < stats["components_recomputed"] < stats["components"]
    assert stats["users_recomputed"] < full.height


def test_a_lone_pair_is_what_leiden_makes_of_it() -> None:
    """Two-user components skip igraph: together exactly when Leiden would put them together."""
    import igraph as ig

    settings = RingSettings()
    for strength in (0.1, 0.15, 0.199, 0.201, 0.25, 0.5, 0.9):
        pair = _pairs([("x", "y", strength)])
        ours = leiden_communities(pair, settings)
        graph = ig.Graph(n=2, edges=[(0, 1)])
        theirs = graph.community_leiden(
            objective_function="CPM",
            weights=[float(pair["strength"][0])],
            resolution=settings.resolution,
            n_iterations=settings.iterations,
        ).membership
        assert (ours["community"].n_unique() == 1) == (theirs[0] == theirs[1]), strength


def test_leiden_never_puts_groups_tied_only_by_weak_pairs_in_one_community() -> None:
    """Why Leiden may run per resolution component: on the whole graph at once, with every seed,
    igraph's own Leiden never makes a community that spans two of them."""
    import igraph as ig

    from graphfraud.rings.detect import resolution_components

    settings = RingSettings()
    for seed in range(6):
        rng = random.Random(seed)
        pairs = _pairs(_random_graph(rng, "u", 400, 700))
        components = resolution_components(pairs, settings.resolution)
        assert components["component"].n_unique() < components.height / 4  # weak ties chain it
        ids = components["user_id"].to_list()
        index = {u: i for i, u in enumerate(ids)}
        graph = ig.Graph(
            n=len(ids),
            edges=[(index[a], index[b]) for a, b in pairs.select("user_a", "user_b").rows()],
        )
        random.seed(seed)
        membership = graph.community_leiden(
            objective_function="CPM",
            weights=pairs["strength"].cast(pl.Float64).to_list(),
            resolution=settings.resolution,
            n_iterations=settings.iterations,
        ).membership
        spans = (
            components.with_columns(pl.Series("c", membership))
            .group_by("c")
            .agg(pl.col("component").n_unique())
        )
        assert (spans["component"] == 1).all()
        whole = pl.DataFrame({"c": membership})["c"].n_unique()
        assert whole < len(ids)  # it did join users


def test_a_user_left_with_only_weak_pairs_out_of_its_component_is_alone_incrementally() -> None:
    settings = RingSettings()
    before = _pairs([("a", "b", 0.9), ("b", "c", 0.9), ("c", "x", 0.6), ("x", "y", 0.9)])
    # x loses its strong tie to y; its only pair left, to the untouched ring, is weak
    after = _pairs([("a", "b", 0.9), ("b", "c", 0.9), ("c", "x", 0.15), ("y", "z", 0.9)])
    full = leiden_communities(after, settings)
    kept, _ = incremental_communities(after, before, leiden_communities(before, settings), settings)
    assert kept.sort("user_id").equals(full.sort("user_id"))
    assert full.filter(pl.col("user_id") == "x")["community"].to_list() == ["x"]


def test_a_reweighed_weak_pair_between_components_recomputes_nothing() -> None:
    """A namesake crowd that grew re-weighs its weak pairs; between two components they never
    reach Leiden, so no component is recomputed, while a weak pair inside a component is."""
    settings = RingSettings()
    ring = [("a", "b", 0.9), ("b", "c", 0.9), ("a", "c", 0.15)]
    other = [("x", "y", 0.9), ("y", "z", 0.9)]
    before = _pairs([*ring, *other, ("c", "x", 0.15), ("d", "z", 0.12)])
    communities = leiden_communities(before, settings)
    across = _pairs([*ring, *other, ("c", "x", 0.12), ("d", "z", 0.11)])
    kept, stats = incremental_communities(across, before, communities, settings)
    assert stats["components_recomputed"] == 0
    assert kept.sort("user_id").equals(leiden_communities(across, settings).sort("user_id"))
    inside = _pairs([*ring[:2], ("a", "c", 0.19), *other, ("c", "x", 0.15), ("d", "z", 0.12)])
    kept, stats = incremental_communities(inside, before, communities, settings)
    assert stats["components_recomputed"] == 1
    assert stats["users_recomputed"] == 3
    assert kept.sort("user_id").equals(leiden_communities(inside, settings).sort("user_id"))


def test_incremental_communities_equal_a_full_run_whatever_changed() -> None:
    """Random nights: pairs gone, new, re-weighed across the resolution and below it, users new
    to the pairs and users gone from them; the kept and recomputed parts are a full run."""
    settings = RingSettings()
    for seed in range(12):
        rng = random.Random(seed)
        day1 = _random_graph(rng, "u", 600, 700)
        day2 = [e for e in day1 if rng.random() > 0.03]
        day2 += _random_graph(rng, "u", 700, 25)  # u0600..u0699 are new users
        day2 = [
            (a, b, rng.choice([0.11, 0.15, 0.19, 0.25, 0.6])) if rng.random() < 0.05 else (a, b, w)
            for a, b, w in day2
        ]
        before, after = _pairs(day1), _pairs(day2)
        kept, stats = incremental_communities(
            after, before, leiden_communities(before, settings), settings
        )
        assert kept.sort("user_id").equals(leiden_communities(after, settings).sort("user_id"))
        assert stats["components_recomputed"] < stats["components"]
