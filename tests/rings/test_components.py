"""Leiden per resolution component, batched and in parallel: the partition of running each
component alone (a plain reference: networkx components of the pairs at least `resolution`
strong, one igraph graph each on every pair inside it, the RNG seeded afresh), whatever the
batch size and however many processes run the batches."""

from __future__ import annotations

import random
from collections.abc import Iterator

import igraph as ig
import networkx as nx
import polars as pl
import pytest

from graphfraud.config import RingSettings, load_settings
from graphfraud.engine import SERIAL, Engine, LocalEngine
from graphfraud.ingest.validate import ingest
from graphfraud.linking.link import build_links
from graphfraud.rings.detect import leiden_communities, strong_pairs
from graphfraud.synthetic import generate_population


def one_component_at_a_time(pairs: pl.DataFrame, settings: RingSettings) -> dict[str, str]:
    """user_id → its community's smallest user_id, one component at a time."""
    graph = nx.Graph()
    graph.add_weighted_edges_from(pairs.select("user_a", "user_b", "strength").iter_rows())
    strong = nx.Graph()
    strong.add_nodes_from(graph)
    strong.add_edges_from(
        (a, b) for a, b, w in graph.edges(data="weight") if w >= settings.resolution
    )
    community: dict[str, str] = {}
    for users in nx.connected_components(strong):
        names = sorted(users)
        local = {u: i for i, u in enumerate(names)}
        edges = sorted(
            (min(local[a], local[b]), max(local[a], local[b]), float(w))
            for a, b, w in graph.subgraph(users).edges(data="weight")
        )
        rng = random.Random(settings.seed)
        ig.set_random_number_generator(rng)
        try:
            if len(names) == 1:
                groups = [0]
            elif len(names) == 2:
                groups = [0, 0] if edges[0][2] > settings.resolution else [0, 1]
            else:
                groups = (
                    ig.Graph(n=len(names), edges=[(a, b) for a, b, _ in edges])
                    .community_leiden(
                        objective_function="CPM",
                        weights=[w for *_, w in edges],
                        resolution=settings.resolution,
                        n_iterations=settings.iterations,
                    )
                    .membership
                )
        finally:
            ig.set_random_number_generator(random)
        first: dict[int, str] = {}
        for name, group in zip(names, groups, strict=True):
            first.setdefault(group, name)
            community[name] = first[group]
    return community


@pytest.fixture(scope="module")
def pairs() -> pl.DataFrame:
    """The strong pairs of a seeded population (planted rings, namesakes, shared devices)."""
    population = generate_population(4_000, 13)
    settings = load_settings()
    ingested = ingest(population.users, population.devices, settings.ingest)
    links = build_links(ingested.users, ingested.devices, settings.link).links
    return strong_pairs(links, settings.rings)


@pytest.fixture(scope="module")
def two_processes() -> Iterator[Engine]:
    engine = LocalEngine(2)
    yield engine
    engine.close()


@pytest.mark.parametrize("batch_edges", [1, 40, 20_000, 10**9])
@pytest.mark.parametrize("parallel", [False, True])
def test_batched_leiden_is_the_one_component_at_a_time_partition(
    pairs: pl.DataFrame, batch_edges: int, parallel: bool, two_processes: Engine
) -> None:
    settings = RingSettings()
    engine = two_processes if parallel else SERIAL
    found = leiden_communities(pairs, settings, engine, batch_edges=batch_edges)
    expected = one_component_at_a_time(pairs, settings)
    assert dict(found.iter_rows()) == expected
    # the population has components of every kind: pairs, batched ones, and ones split by CPM
    sizes = found.group_by("community").len()["len"]
    assert sizes.max() > 5
    assert (sizes == 1).any()
