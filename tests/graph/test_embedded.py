"""No-server tests: run-directory validation, the Cypher module's conventions, the factory, and the
embedded BFS against networkx."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import networkx as nx
import polars as pl
import pytest

from graphfraud.config import GraphSettings
from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.graph import cypher, open_graph_store
from graphfraud.graph.base import MAX_EXPLAIN_HOPS, GraphStore, RingEventView
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.graph.tables import load_tables
from graphfraud.graph.views import ring_history
from graphfraud.schema import (
    LINKS_FILE,
    MANIFEST_FILE,
    MEMBERS_FILE,
    RING_HISTORY_FILE,
    USERS_FILE,
)
from tests.graph.factories import LONELY, Q, write_bulk_run, write_ring_history, write_run


def test_tables_counts_and_identifiers(tmp_path: Path) -> None:
    tables = load_tables(write_run(tmp_path))
    assert tables.run_id == "run-1"
    assert tables.users.height == 12
    assert tables.identifiers["device"]["value"].to_list() == sorted(
        ["dev-1'\\", "dev-L", "dev-c", "dev-d", "dev-e"]
    )
    # a device seen twice by one user is one edge; null IPs make no node or edge
    assert tables.holds["device"].height == 8
    assert tables.holds["ip"].height == 4
    assert (tables.node_count, tables.relationship_count) == (34, 44)


def test_a_ring_history_that_repeats_an_event_is_refused(tmp_path: Path) -> None:
    run = write_ring_history(write_run(tmp_path))
    history = pl.read_parquet(run / RING_HISTORY_FILE)
    pl.concat([history, history.head(1)]).write_parquet(run / RING_HISTORY_FILE)
    with pytest.raises(ArtifactError, match="repeats a"):
        load_tables(run)


def _event(run_id: str, at: str, ring_id: str) -> RingEventView:
    return RingEventView(run_id, at, ring_id, "grew", None, 2, 3, 2)


def test_a_ring_history_is_oldest_first_own_event_first_and_keeps_the_newest() -> None:
    events = [
        _event("n2", "2026-01-02", "R9"),
        _event("n2", "2026-01-02", "R1"),
        _event("n1", "2026-01-01", "R1"),
        _event("n3", "2026-01-03", "R1"),
    ]
    full = ring_history("R1", True, events)
    assert [(e.run_id, e.ring_id) for e in full.events] == [
        ("n1", "R1"),
        ("n2", "R1"),
        ("n2", "R9"),
        ("n3", "R1"),
    ]
    assert not full.truncated
    newest = ring_history("R1", True, events, limit=2)
    assert [(e.run_id, e.ring_id) for e in newest.events] == [("n2", "R9"), ("n3", "R1")]
    assert newest.truncated


def _rewrite(path: Path, frame: pl.DataFrame) -> None:
    frame.write_parquet(path)


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no_links", "links.parquet does not exist"),
        ("unknown_link_user", "names 1 user id"),
        ("unknown_ring", "ring id"),
        ("duplicate_link", "repeats a"),
        ("duplicate_user", "repeats user ids"),
        ("no_run_id", "has no run_id"),
        ("missing_column", "lacks column"),
    ],
)
def test_broken_run_dirs_are_refused_with_the_file_named(
    tmp_path: Path, breakage: str, message: str
) -> None:
    run = write_run(tmp_path)
    links = pl.read_parquet(run / LINKS_FILE)
    if breakage == "no_links":
        (run / LINKS_FILE).unlink()
    elif breakage == "unknown_link_user":
        _rewrite(run / LINKS_FILE, links.with_columns(pl.lit("ghost").alias("user_b")).head(1))
    elif breakage == "unknown_ring":
        members = pl.read_parquet(run / MEMBERS_FILE)
        _rewrite(run / MEMBERS_FILE, members.with_columns(ring_id=pl.lit("ghost-ring")))
    elif breakage == "duplicate_link":
        _rewrite(run / LINKS_FILE, pl.concat([links, links.head(1)]))
    elif breakage == "duplicate_user":
        users = pl.read_parquet(run / USERS_FILE)
        _rewrite(run / USERS_FILE, pl.concat([users, users.head(1)]))
    elif breakage == "no_run_id":
        (run / MANIFEST_FILE).write_text(json.dumps({"status": "complete", "model_version": "m"}))
    elif breakage == "missing_column":
        _rewrite(run / LINKS_FILE, links.drop("evidence"))
    with pytest.raises(ArtifactError, match=message):
        EmbeddedGraphStore(tmp_path).ring_of(Q)
    assert EmbeddedGraphStore(tmp_path).ping() is False


def test_factory_picks_the_backend(tmp_path: Path) -> None:
    run = write_run(tmp_path)
    store = open_graph_store(GraphSettings(), run)
    assert isinstance(store, EmbeddedGraphStore)
    assert isinstance(store, GraphStore)
    assert store.ring_of(LONELY) is None
    with pytest.raises(ConfigError, match="run directory"):
        open_graph_store(GraphSettings())
    with pytest.raises(ConfigError, match="bolt://"):
        open_graph_store(GraphSettings.model_validate({"uri": "http://localhost:7474"}))


def test_cypher_queries_are_named_uniquely_and_portable() -> None:
    queries = cypher.all_queries()
    names = [q.name for q in queries]
    assert len(names) == len(set(names))
    for q in queries:
        text = q.text.upper()
        assert "SHORTEST " not in text.replace("SHORTESTPATH", "")  # no GQL SHORTEST k
        assert "FULLTEXT" not in text
        assert "AWAITINDEXES" not in text
        # values only as $parameters: no quoted literals except the fixed status words
        literals = re.findall(r"'([^']*)'", q.text)
        assert set(literals) <= {"publishing", "complete"}, q.name
    writes = [q for q in queries if q.name.startswith(("upsert_", "link_"))]
    assert writes
    assert all(q.text.startswith("UNWIND $rows") for q in writes)
    assert sorted(cypher.SHORTEST_PATH) == list(range(1, MAX_EXPLAIN_HOPS + 1))


def test_embedded_bfs_matches_networkx(tmp_path: Path) -> None:
    run = write_bulk_run(tmp_path, 400, seed=5, ring_size=6, ring_share=0.6)
    # add random cross-ring links so there are multi-hop paths to find
    links = pl.read_parquet(run / LINKS_FILE)
    rng = random.Random(5)
    ids = pl.read_parquet(run / USERS_FILE)["user_id"].to_list()
    extra = {tuple(sorted(rng.sample(ids, 2))) for _ in range(150)}
    existing = set(zip(links["user_a"], links["user_b"], strict=True))
    extra_rows = [(a, b) for a, b in extra if (a, b) not in existing]
    more = pl.DataFrame(
        {"user_a": [a for a, _ in extra_rows], "user_b": [b for _, b in extra_rows]}
    ).with_columns([pl.lit(links[c][0]).cast(links.schema[c]).alias(c) for c in links.columns[2:]])
    pl.concat([links, more.select(links.columns)]).write_parquet(run / LINKS_FILE)
    all_links = pl.read_parquet(run / LINKS_FILE)
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    graph.add_edges_from(zip(all_links["user_a"], all_links["user_b"], strict=True))
    store = EmbeddedGraphStore(run)
    for _ in range(150):
        a, b = rng.sample(ids, 2)
        exp = store.explain_link(a, b)
        try:
            expected = nx.shortest_path_length(graph, a, b)
        except nx.NetworkXNoPath:
            expected = None
        if expected is None or expected > MAX_EXPLAIN_HOPS:
            assert exp.path == ()
            continue
        assert len(exp.path) - 1 == expected
        assert (exp.path[0], exp.path[-1]) == (a, b)
        for (x, y), hop in zip(zip(exp.path, exp.path[1:], strict=False), exp.hops, strict=True):
            assert graph.has_edge(x, y)
            assert hop
            assert all({e.user_a, e.user_b} == {x, y} for e in hop)
