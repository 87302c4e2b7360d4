"""Ring detection: weak bridges are cut, components are an oracle, ids are stable, a look-alike
of a shared mailbox counts once, groups behind one dedicated IP are one ring, and a tie closing
no triangle (camouflage) does not pull a member out of its ring, and a ring and an office's
consecutive SIMs are not glued."""

from __future__ import annotations

import itertools

import networkx as nx
import polars as pl
import pytest

from graphfraud.config import RingSettings
from graphfraud.linking.weights import link_weight
from graphfraud.rings.detect import (
    balance_lookalikes,
    detect_rings,
    merge_on_dedicated_ips,
    pair_strengths,
    ring_id_for,
)
from tests.rings.rows import link_row


def _links(edges: list[tuple[str, str, float]]) -> pl.DataFrame:
    return pl.DataFrame([link_row(a, b, "device", w) for a, b, w in edges])


def _shared(kind: str, value: str, holders: list[str], support: int | None = None) -> list[dict]:
    """Exact links between every two holders of one value, weighted as the link stage does."""
    n = support or len(holders)
    w = link_weight(kind, 1.0, n)
    return [link_row(a, b, kind, w, value, value, n) for a, b in itertools.combinations(holders, 2)]


def _groups(members: pl.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g) for g in members.group_by("ring_id").agg("user_id")["user_id"].to_list()}


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
    strengths = pair_strengths(_links(edges))
    links = _links(strengths.select("user_a", "user_b", "strength").rows())
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


def test_lookalike_weight_is_scaled_by_the_holders_of_both_values() -> None:
    rows = [
        *_shared("email", "x@m", ["x1", "x2", "x3", "x4"]),
        *_shared("email", "y@m", ["y1", "y2"]),
        link_row("n1", "x1", "email_similar", 0.8, "n@m", "x@m"),  # 1 vs 4 holders
        link_row("x1", "y1", "email_similar", 0.8, "x@m", "y@m"),  # 4 vs 2
        link_row("n1", "n2", "email_similar", 0.8, "n@m", "o@m"),  # 1 vs 1
        link_row("n1", "x1", "device", 0.8, "d", "d"),  # not a look-alike
    ]
    out = balance_lookalikes(pl.DataFrame(rows))
    got = {(r["user_a"], r["user_b"], r["kind"]): r["weight"] for r in out.iter_rows(named=True)}
    assert got[("n1", "x1", "email_similar")] == pytest.approx(0.2)
    assert got[("x1", "y1", "email_similar")] == pytest.approx(0.4)
    assert got[("n1", "n2", "email_similar")] == pytest.approx(0.8)
    assert got[("n1", "x1", "device")] == pytest.approx(0.8)
    assert out.height == len(rows)


def test_a_lone_namesake_of_a_shared_mailbox_stays_out_of_its_ring() -> None:
    holders = [f"x{i}" for i in range(6)]
    namesake = [link_row("n0", h, "email_similar", 0.6, "rohit95@m", "rohit80@m") for h in holders]
    links = pl.DataFrame(_shared("email", "rohit80@m", holders) + namesake)
    assert _groups(detect_rings(links, RingSettings())) == {frozenset(holders)}


def test_two_mailboxes_shared_alike_that_look_alike_are_one_ring() -> None:
    a, b = [f"a{i}" for i in range(4)], [f"b{i}" for i in range(4)]
    cross = [link_row(x, y, "email_similar", 0.45, "akshay1@m", "akshay2@m") for x in a for y in b]
    links = pl.DataFrame(
        _shared("email", "akshay1@m", a) + _shared("email", "akshay2@m", b) + cross
    )
    assert _groups(detect_rings(links, RingSettings())) == {frozenset(a + b)}


def _farm(ip_users: list[str], support: int | None = None) -> tuple[list[list[str]], pl.DataFrame]:
    """Three handset groups of five (one device each) and one IP used by `ip_users`."""
    groups = [[f"g{g}u{i}" for i in range(5)] for g in range(3)]
    rows = [r for g, users in enumerate(groups) for r in _shared("device", f"dev{g}", users)]
    rows += _shared("ip", "10.0.0.1", ip_users, support)
    return groups, pl.DataFrame(rows)


def test_handset_groups_behind_one_dedicated_ip_are_one_ring() -> None:
    everyone = [f"g{g}u{i}" for g in range(3) for i in range(5)]
    groups, links = _farm(everyone)
    assert _groups(detect_rings(links, RingSettings())) == {frozenset(everyone)}
    apart = detect_rings(links, RingSettings(dedicated_ip_share=1.1))
    assert _groups(apart) == {frozenset(g) for g in groups}


def test_an_ip_shared_with_many_outsiders_joins_nothing() -> None:
    everyone = [f"g{g}u{i}" for g in range(3) for i in range(5)]
    groups, links = _farm(everyone, support=40)  # 25 more users of the café IP, in no ring
    assert _groups(detect_rings(links, RingSettings())) == {frozenset(g) for g in groups}


def test_an_ip_used_by_one_member_of_each_group_joins_nothing() -> None:
    groups, links = _farm(["g0u0", "g1u0", "g2u0"])
    assert _groups(detect_rings(links, RingSettings())) == {frozenset(g) for g in groups}


def test_dedicated_ip_merge_keeps_users_and_ignores_singletons() -> None:
    membership = pl.DataFrame(
        {"user_id": ["a", "b", "c", "d", "e"], "community": [0, 0, 1, 1, 2]},
        schema_overrides={"community": pl.Int64},
    )
    links = pl.DataFrame(_shared("ip", "1.2.3.4", ["a", "b", "c", "d", "e"]))
    merged = merge_on_dedicated_ips(membership, links, RingSettings())
    assert merged["user_id"].to_list() == membership["user_id"].to_list()
    parts = merged.group_by("community").agg("user_id")["user_id"].to_list()
    assert {frozenset(p) for p in parts} == {frozenset("abcd"), frozenset("e")}


def _camouflaged(weak: float) -> pl.DataFrame:
    """A ring of 5 on near-sequential SIMs, r0 tied to two of them only (weakly), and r0 holding
    the phone number of h0, who lives in a household of 4 sharing a tablet."""
    rows = [
        link_row(f"r{i}", f"r{j}", "phone_similar", 0.9)
        for i in range(1, 5)
        for j in range(i + 1, 5)
    ]
    rows += [
        link_row("r0", "r1", "phone_similar", weak),
        link_row("r0", "r2", "phone_similar", weak),
    ]
    rows += _shared("device", "tablet", ["h0", "h1", "h2", "h3"])
    rows += [link_row("r0", "h0", "phone", 1.0, "+919800000001")]
    return pl.DataFrame(rows)


def test_a_camouflaged_ring_comes_out_whole() -> None:
    """r0's two ring ties outweigh the borrowed phone into the household; an honest tablet shared
    with ring members and a café computer used by 45 strangers join nothing either. (A computer
    shared by fewer than ~40 makes its users a community of their own: a device weighs
    0.9·sqrt(2/s) > resolution there, as a device farm's emulator must.)"""
    ring, household = frozenset(f"r{i}" for i in range(5)), frozenset(f"h{i}" for i in range(4))
    links = _camouflaged(0.5)
    rows = [*links.to_dicts(), *_shared("device", "family-tablet", ["r3", "r4", "h2"])]
    rows += _shared("device", "cafe-pc", ["r1", *(f"s{i}" for i in range(45))])
    assert _groups(detect_rings(pl.DataFrame(rows), RingSettings())) == {ring, household}


def test_an_office_crowd_is_not_glued_to_a_ring() -> None:
    """An office's consecutive SIMs (a crowd of 12 on one run) and a device-sharing ring, with a
    staffer's number one digit from a ring member's and a namesake email between two others."""
    office = [f"o{i:02d}" for i in range(12)]
    ring = [f"r{i}" for i in range(6)]
    rows = [
        link_row(a, b, "phone_similar", link_weight("phone_similar", 0.8, 3))
        for a, b in itertools.combinations(office, 2)
    ]
    rows += _shared("device", "handset", ring)
    rows += [link_row("o00", "r0", "phone_similar", link_weight("phone_similar", 1.0, 2))]
    rows += [link_row("o01", "r1", "email_similar", 0.5, "amit.shah1@x.in", "amit.shah2@x.in")]
    assert _groups(detect_rings(pl.DataFrame(rows), RingSettings())) == {
        frozenset(office),
        frozenset(ring),
    }


def test_pair_strengths_group_each_pairs_links_in_any_row_order() -> None:
    rows = [
        link_row("a", "b", "device", 0.5, "d1"),
        link_row("c", "d", "device", 0.9, "d2"),
        link_row("a", "b", "ip", 0.2, "i1"),
        link_row("a", "c", "ip", 0.3, "i2"),
        link_row("a", "b", "phone", 0.4, "p1"),
    ]
    shuffled = pl.DataFrame([rows[i] for i in (4, 1, 0, 3, 2)])
    for links in (pl.DataFrame(rows), shuffled):
        got = pair_strengths(links)
        assert got.select("user_a", "user_b").rows() == [("a", "b"), ("a", "c"), ("c", "d")]
        assert got["strength"].to_list() == pytest.approx([1 - 0.5 * 0.8 * 0.6, 0.3, 0.9], abs=1e-6)
    ring = [link_row("a", "b", "device", 0.9, "x"), link_row("b", "c", "device", 0.9, "y")]
    noise = [link_row("a", "c", "ip", 0.05, "z"), link_row("d", "e", "ip", 0.05, "w")]
    in_order = pl.DataFrame(sorted(ring + noise, key=lambda r: (r["user_a"], r["user_b"])))
    settings = RingSettings()
    assert (
        _groups(detect_rings(pl.DataFrame(noise + ring), settings))
        == _groups(detect_rings(in_order, settings))
        == {frozenset("abc")}
    )
