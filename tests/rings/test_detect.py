"""Ring detection: weak bridges are cut, components are an oracle, ids are stable."""

from __future__ import annotations

import networkx as nx
import polars as pl

from graphfraud.config import RingSettings
from graphfraud.rings.detect import detect_rings, pair_strengths, ring_id_for


def _links(edges: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {"user_a": min(a, b), "user_b": max(a, b), "kind": "device", "weight": w}
            for a, b, w in edges
        ]
    )


def _clique(prefix: str, n: int, w: float) -> list[tuple[str, str, float]]:
    return [(f"{prefix}{i}", f"{prefix}{j}", w) for i in range(n) for j in range(i + 1, n)]


def test_two_rings_joined_by_a_weak_bridge_stay_apart() -> None:
    edges = _clique("a", 5, 0.9) + _clique("b", 6, 0.9) + [("a0", "b0", 0.3)]
    members = detect_rings(_links(edges), RingSettings(min_weight=0.25, resolution=0.1))
    rings = members.group_by("ring_id").agg(pl.col("user_id").sort())
    groups = sorted(tuple(r) for r in rings["user_id"].to_list())
    assert groups == [tuple(f"a{i}" for i in range(5)), tuple(f"b{i}" for i in range(6))]


def test_links_below_min_weight_never_join_a_ring() -> None:
    members = detect_rings(
        _links([("x", "y", 0.1), ("y", "z", 0.1)]), RingSettings(min_weight=0.25)
    )
    assert members.is_empty()


def test_without_resolution_rings_are_the_strong_components() -> None:
    import random

    rng = random.Random(5)
    nodes = [f"u{i:03d}" for i in range(120)]
    edges = [(a, b, rng.choice([0.3, 0.9])) for a, b in (rng.sample(nodes, 2) for _ in range(150))]
    links = (
        pair_strengths(_links(edges))
        .rename({"strength": "weight"})
        .with_columns(pl.lit("device").alias("kind"))
    )
    members = detect_rings(links, RingSettings(min_weight=0.25, resolution=0.0, min_size=2))
    g = nx.Graph((a, b) for a, b, _ in edges)
    want = {frozenset(c) for c in nx.connected_components(g) if len(c) >= 2}
    got = {frozenset(r) for r in members.group_by("ring_id").agg("user_id")["user_id"].to_list()}
    assert got == want


def test_ring_ids_are_stable_and_deterministic() -> None:
    edges = _clique("a", 4, 0.9) + _clique("b", 3, 0.8)
    first = detect_rings(_links(edges), RingSettings())
    second = detect_rings(_links(list(reversed(edges))), RingSettings())
    assert first.equals(second)
    assert set(first["ring_id"]) == {ring_id_for("a0"), ring_id_for("b0")}
