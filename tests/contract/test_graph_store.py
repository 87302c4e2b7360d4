"""One GraphStore contract, run over every backend: the embedded store (run directory) and the
Neo4j store against the real local Bolt server (ArcadeDB)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from graphfraud.errors import NotFound
from graphfraud.graph.base import GraphStore, RingEventView, RingView
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.graph.neo4j import Neo4jGraphStore
from tests.graph.factories import (
    CHAIN,
    LONELY,
    LONG,
    NEW_USER,
    R0,
    R1,
    R2,
    R3,
    T0,
    C,
    D,
    Q,
    U,
    write_big_ring_run,
    write_ring_history,
    write_run,
)

BACKENDS = ["embedded", pytest.param("neo4j", marks=pytest.mark.bolt)]
StoreMaker = Callable[..., GraphStore]


@pytest.fixture(scope="module", params=BACKENDS)
def make_store(request: pytest.FixtureRequest) -> StoreMaker:
    """A function building an empty store of this backend (fresh database for Neo4j)."""
    if request.param == "embedded":

        def embedded(run_dir: Path, **bounds: Any) -> GraphStore:
            return EmbeddedGraphStore(run_dir, **bounds)

        return embedded
    driver = request.getfixturevalue("bolt_driver")
    new_db = request.getfixturevalue("new_bolt_database")

    def neo4j(run_dir: Path, **bounds: Any) -> GraphStore:
        return Neo4jGraphStore(driver, new_db("contract"), batch_size=7, **bounds)

    return neo4j


@pytest.fixture(scope="module")
def run1(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("run1"))


@pytest.fixture(scope="module")
def store(make_store: StoreMaker, run1: Path) -> Iterator[GraphStore]:
    s = make_store(run1)
    report = s.publish(str(run1))
    assert (report.run_id, report.nodes, report.relationships) == ("run-1", 34, 44)
    yield s
    s.close()


def test_is_a_graph_store(store: GraphStore) -> None:
    assert isinstance(store, GraphStore)
    assert store.ping() is True


def test_ring_of_member_returns_whole_ring_with_evidence(store: GraphStore) -> None:
    view = store.ring_of(U)
    assert isinstance(view, RingView)
    assert (view.ring_id, view.size, view.model_version, view.truncated) == (R1, 4, "gbm-1", False)
    assert view.ring_score == pytest.approx(0.85)
    assert [m.user_id for m in view.members] == [Q, U, LONG, C]  # riskiest first, then id
    alice = view.members[0]
    assert alice.email == "ring\"mail'@example.com"
    assert (alice.phone, alice.label) == ("+911234500001", 1)
    assert alice.created_at == "2026-01-02T00:00:00.000007+00:00"
    assert view.features["top_link_kinds"] == "email,device"
    assert view.features["n_links"] == 5
    assert view.features["suspected_ring"] is True  # a (:Ring) property, a boolean
    assert "creation_burst" not in view.features  # null features are absent, not None
    # links inside the ring only (the bridge to dave's ring is not one), strongest first
    assert [x.kind for x in view.links] == ["email", "device", "phone", "phone_similar", "ip"]
    assert [x.weight for x in view.links] == pytest.approx([0.9, 0.8, 0.7, 0.4, 0.3])
    similar = view.links[3]
    assert (similar.user_a, similar.user_b) == (Q, C)
    assert (similar.value_a, similar.value_b) == ("+911234500001", "+911234500002")
    assert similar.evidence == "share phone_similar '+911234500001'"


def test_ring_by_ugly_id_equals_ring_of(store: GraphStore) -> None:
    assert store.ring(R1) == store.ring_of(LONG)
    two = store.ring(R2)
    assert {m.user_id for m in two.members} == {D, "d2"}
    assert two.features["suspected_ring"] is False  # a community, not a suspected ring
    assert [x.kind for x in two.links] == ["device"]


@pytest.mark.parametrize("user", [LONELY, CHAIN[0]])
def test_user_outside_rings_has_no_ring(store: GraphStore, user: str) -> None:
    assert store.ring_of(user) is None


@pytest.mark.parametrize(
    "bad", ["nobody", "", "x' OR 1=1 //", "'}) MATCH (n) DETACH DELETE n //", "é" * 5000]
)
def test_unknown_ids_raise_not_found(store: GraphStore, bad: str) -> None:
    with pytest.raises(NotFound):
        store.ring_of(bad)
    with pytest.raises(NotFound):
        store.ring(bad)
    with pytest.raises(NotFound):
        store.explain_link(bad, Q)
    with pytest.raises(NotFound):
        store.explain_link(Q, bad)
    with pytest.raises(NotFound):
        store.ring_history(bad)
    assert store.ring(R1).size == 4  # the graph is intact


def test_explain_direct_link_lists_every_kind(store: GraphStore) -> None:
    exp = store.explain_link(U, Q)
    assert exp.path == (U, Q)
    assert exp.connected
    assert [e.kind for e in exp.hops[0]] == ["device", "email"]
    assert {(e.user_a, e.user_b) for e in exp.hops[0]} == {(Q, U)}


def test_explain_multi_hop_with_evidence_per_hop(store: GraphStore) -> None:
    exp = store.explain_link(Q, "d2")
    assert exp.path == (Q, C, LONG, D, "d2")
    assert [[e.kind for e in hop] for hop in exp.hops] == [
        ["phone_similar"],
        ["ip"],
        ["email_similar"],
        ["device"],
    ]


def test_explain_respects_hop_bound(store: GraphStore) -> None:
    assert store.explain_link(CHAIN[0], CHAIN[-1]).path == CHAIN  # default bound 4
    assert store.explain_link(CHAIN[0], CHAIN[-1], max_hops=99).path == CHAIN  # clamped to 4
    capped = store.explain_link(CHAIN[0], CHAIN[-1], max_hops=3)
    assert (capped.path, capped.hops, capped.connected) == ((), (), False)
    assert store.explain_link(CHAIN[0], CHAIN[1], max_hops=0).path == CHAIN[:2]  # at least 1


def test_explain_unconnected_and_same_user(store: GraphStore) -> None:
    assert store.explain_link(LONELY, Q).path == ()
    same = store.explain_link(Q, Q)
    assert same.path == (Q,)
    assert not same.connected


def test_truncated_ring_keeps_riskiest_members(
    make_store: StoreMaker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run = write_big_ring_run(tmp_path_factory.mktemp("big"), 12)
    store = make_store(run, max_members=5, max_links=4)
    store.publish(str(run))
    view = store.ring("big")
    assert view.truncated
    assert view.size == 12
    assert [m.user_id for m in view.members] == ["m0000", "m0001", "m0002", "m0003", "m0004"]
    # capped per kind: the 4 strongest hub-device links AND the 4 strongest look-alikes survive
    assert [x.kind for x in view.links] == ["device"] * 4 + ["email_similar"] * 4
    assert [x.weight for x in view.links] == sorted((x.weight for x in view.links), reverse=True)
    assert view.cut_kinds == ("device", "email_similar")
    small = make_store(run, max_members=50, max_links=11)
    small.publish(str(run))
    whole = small.ring("big")
    assert (whole.truncated, whole.cut_kinds, len(whole.links)) == (False, (), 21)
    store.close()
    small.close()


def test_neighbours_of_a_user_strongest_first(store: GraphStore) -> None:
    near = store.neighbours(C)
    assert near.user.user_id == C
    assert [x.kind for x in near.links] == ["phone", "phone_similar", "ip"]
    assert [x.weight for x in near.links] == pytest.approx([0.7, 0.4, 0.3])
    assert [m.user_id for m in near.neighbours] == [Q, U, LONG]  # riskiest first
    assert not near.truncated
    capped = store.neighbours(C, limit=1)
    assert ([x.kind for x in capped.links], capped.truncated) == (["phone"], True)
    assert [m.user_id for m in capped.neighbours] == [U]
    alone = store.neighbours(LONELY)
    assert (alone.links, alone.neighbours, alone.truncated) == ((), (), False)
    with pytest.raises(NotFound):
        store.neighbours("nobody")


def test_holdings_count_every_holder(store: GraphStore) -> None:
    held = store.holdings([Q, U, "nobody"])
    got = {(h.user_id, h.kind, h.value, h.holders) for h in held}
    assert (Q, "email", "ring\"mail'@example.com", 2) in got
    assert (U, "device", "dev-1'\\", 2) in got
    assert (Q, "phone", "+911234500001", 1) in got
    assert (U, "phone", "+911234500002", 2) in got  # carol holds it too, outside the ask
    assert (U, "ip", "10.0.0.1", 2) in got
    assert len(got) == len(held) == 8  # one row per distinct (user, kind, value)
    assert [(h.kind, h.value, h.user_id) for h in held] == sorted(
        (h.kind, h.value, h.user_id) for h in held
    )
    assert store.holdings([]) == ()


def test_newer_run_replaces_rings_scores_and_links(
    make_store: StoreMaker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = write_run(tmp_path_factory.mktemp("n1"))
    second = write_run(tmp_path_factory.mktemp("n2"), run_id="run-2", newer=True)
    store = make_store(first)
    store.publish(str(first))
    report = store.publish(str(second))
    assert report.run_id == "run-2"
    view = store.ring_of(NEW_USER)
    assert view is not None
    assert view.ring_id == R1
    assert {m.user_id for m in view.members} == {Q, U, C, NEW_USER}
    assert next(m for m in view.members if m.user_id == Q).score == pytest.approx(0.97)
    assert "ip" not in {x.kind for x in view.links}
    assert store.ring_of(D) is None
    assert store.ring_of(LONG) is None
    with pytest.raises(NotFound):
        store.ring(R2)
    assert {m.user_id for m in store.ring(R3).members} == {"e1", "e2"}
    assert store.explain_link(LONG, D).path == ()  # the bridge link is gone
    store.close()


def test_a_run_from_before_lineage_serves_its_rings_with_an_empty_history(
    store: GraphStore,
) -> None:
    history = store.ring_history(R1)
    assert (history.ring_id, history.live, history.events, history.truncated) == (
        R1,
        True,
        (),
        False,
    )


def _kinds(store: GraphStore, ring_id: str) -> list[tuple[str, str, str]]:
    return [(e.run_id, e.ring_id, e.event) for e in store.ring_history(ring_id).events]


def test_ring_history_survives_newer_runs_and_keeps_retired_rings(
    make_store: StoreMaker, tmp_path_factory: pytest.TempPathFactory
) -> None:
    first = write_ring_history(write_run(tmp_path_factory.mktemp("h1")))
    second = write_ring_history(
        write_run(tmp_path_factory.mktemp("h2"), run_id="run-2", newer=True), newer=True
    )
    store = make_store(first)
    report = store.publish(str(first))
    # five event nodes; an event edge from each live ring (R1, R2) to its own events
    assert (report.nodes, report.relationships) == (34 + 5, 44 + 3)
    assert _kinds(store, R1) == [
        ("run-0", R1, "born"),
        ("run-1", R1, "grew"),
        ("run-1", R0, "merged_into"),  # names R1: in R1's history, after R1's own
    ]
    merged = store.ring_history(R0)
    assert merged.live is False
    assert merged.events[-1] == RingEventView(
        run_id="run-1",
        at=T0.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00"),
        ring_id=R0,
        event="merged_into",
        other_ring_id=R1,
        size_before=2,
        size_after=0,
        shared=2,
    )
    assert store.ring_history(R2).events[0].shared is None

    store.publish(str(second))
    assert _kinds(store, R1)[-1] == ("run-2", R1, "grew")
    assert len(store.ring_history(R1).events) == 4
    gone = store.ring_history(R2)  # dissolved tonight: no ring, its history stays
    assert gone.live is False
    assert [e.event for e in gone.events] == ["born", "dissolved"]
    with pytest.raises(NotFound):
        store.ring(R2)
    assert _kinds(store, R0) == [("run-0", R0, "born"), ("run-1", R0, "merged_into")]
    assert store.ring_history(R3).live is True
    store.close()
