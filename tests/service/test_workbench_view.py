"""The workbench graph over the embedded store, on hand-made runs: a 600-member ring is listed up
to the store's bound and drawn riskiest first with "show more"; exact ties become one identifier
hub, look-alikes join identifiers, masking hides every value, ids carry none."""

from __future__ import annotations

import json
from pathlib import Path

from graphfraud.graph.base import MAX_RING_LINKS, MAX_RING_MEMBERS
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.service.masking import Masking
from graphfraud.service.workbench import DEFAULT_MEMBERS_DRAWN, neighbourhood_graph, ring_graph
from tests.graph.factories import LONELY, R1, C, Q, U, write_big_ring_run, write_run


def test_a_600_member_ring_is_capped_with_show_more(tmp_path: Path) -> None:
    store = EmbeddedGraphStore(write_big_ring_run(tmp_path / "big", 600))
    view = store.ring("big")
    shown = view.members[:DEFAULT_MEMBERS_DRAWN]
    g = ring_graph(
        view,
        store.holdings([m.user_id for m in shown]),
        Masking(True),
        drawn=DEFAULT_MEMBERS_DRAWN,
        max_links=MAX_RING_LINKS,
    )
    assert (g["drawn_members"], g["more_members"]) == (150, MAX_RING_MEMBERS - 150)
    assert len(g["members"]) == MAX_RING_MEMBERS
    assert sum(n["type"] == "user" for n in g["nodes"]) == 150
    assert any("600 members" in line for line in g["cut"])
    hubs = [n for n in g["nodes"] if n.get("kind") == "device"]
    assert [(h["holders"], h["held_here"]) for h in hubs] == [(600, 150)]
    assert "used by 600 accounts (150 drawn here)" in hubs[0]["evidence"]
    drawn = {m.user_id for m in shown}
    for e in g["edges"]:
        if e["relation"] == "link":
            assert {e["user_a"], e["user_b"]} <= drawn


def test_small_ring_ties_masked_and_no_value_in_ids(tmp_path: Path) -> None:
    store = EmbeddedGraphStore(write_run(tmp_path / "r"))
    view = store.ring(R1)
    g = ring_graph(
        view,
        store.holdings([m.user_id for m in view.members]),
        Masking(True),
        drawn=150,
        max_links=300,
    )
    by_kind = {
        n["kind"]: n for n in g["nodes"] if n["type"] == "identifier" and n["held_here"] >= 2
    }
    assert by_kind["email"]["value"] == "r***'@example.com"  # masked
    assert by_kind["device"]["holders"] == 2
    assert by_kind["phone"]["held_here"] == 2  # bob and carol share +911234500002
    ids = " ".join(n["id"] for n in g["nodes"])
    assert "example.com" not in ids
    assert "dev-1" not in ids
    assert "+911234500002" not in json.dumps(g)
    look = [e for e in g["edges"] if e["relation"] == "link" and e["kind"] == "phone_similar"]
    assert len(look) == 1
    assert look[0]["source"].startswith("i:phone:")  # identifier to identifier
    assert (look[0]["value_a"], look[0]["value_b"]) == ("+91******0001", "+91******0002")
    # exact links are not drawn twice: the shared email/device/phone node is the evidence
    assert not [
        e
        for e in g["edges"]
        if e["relation"] == "link" and e["kind"] in ("email", "device", "phone")
    ]
    assert {n["user_id"] for n in g["nodes"] if n["type"] == "user"} == {
        m.user_id for m in view.members
    }


def test_neighbourhood_of_a_user_in_no_ring(tmp_path: Path) -> None:
    store = EmbeddedGraphStore(write_run(tmp_path / "r"))
    near = store.neighbours(C)
    g = neighbourhood_graph(near, store.holdings([C, Q, U]), Masking(False))
    assert g["ring"] is None
    assert g["nodes"][0]["user_id"] == C
    assert {n["user_id"] for n in g["nodes"] if n["type"] == "user"} >= {C, Q, U}
    alone = neighbourhood_graph(store.neighbours(LONELY), (), Masking(True))
    assert [n["user_id"] for n in alone["nodes"]] == [LONELY]
    assert alone["edges"] == []
