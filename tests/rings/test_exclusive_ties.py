"""Communities joined through exclusive ties: a crew's chain of handsets, home connections and
reordered handles comes out as one ring, while a household, a namesake crowd and an office's SIM
run tied to it by one exclusive tie stay apart, and so do two small honest groups tied by one
private link; the reach is capped; incremental equals full."""

from __future__ import annotations

import itertools

import polars as pl

from graphfraud.config import RingSettings
from graphfraud.linking.weights import link_weight
from graphfraud.rings.detect import PreviousRings, find_rings
from tests.rings.rows import link_row

OFF = RingSettings(exclusive_tie_weight=1.1)


def _shared(kind: str, value: str, holders: list[str], w: float | None = None) -> list[dict]:
    n = len(holders)
    weight = link_weight(kind, 1.0, n) if w is None else w
    return [
        link_row(a, b, kind, weight, value, value, n) for a, b in itertools.combinations(holders, 2)
    ]


def _chain(prefix: str, n: int) -> tuple[list[str], list[dict[str, object]]]:
    """n accounts, each tied to the one before by a tie of its own: a handset the two alone
    used, a home connection the two alone used, or one name's parts reordered as their handles."""
    members = [f"{prefix}{i:02d}" for i in range(n)]
    rows: list[dict[str, object]] = []
    for i in range(1, n):
        a, b = members[i - 1], members[i]
        if i % 3 == 0:
            rows += _shared("device", f"{prefix}-handset{i}", [a, b])
        elif i % 3 == 1:
            rows += _shared("ip", f"{prefix}-home{i}", [a, b])
        else:
            handles = f"{prefix}.verma{i}@x", f"verma.{prefix}{i}@y"
            rows.append(link_row(a, b, "email_similar", 0.34, *handles, 2))
    return members, rows


def _groups(members: pl.DataFrame) -> set[frozenset[str]]:
    return {frozenset(g) for g in members.group_by("ring_id").agg("user_id")["user_id"].to_list()}


def test_a_chain_of_exclusive_ties_comes_out_as_one_ring() -> None:
    chain, rows = _chain("c", 14)
    links = pl.DataFrame(rows)
    assert _groups(find_rings(links, RingSettings()).members) == {frozenset(chain)}
    # without the merge, CPM cuts the chain into pairs and triples
    assert len(_groups(find_rings(links, OFF).members)) > 3


def test_a_household_tied_to_the_chain_by_a_borrowed_phone_is_not_glued() -> None:
    chain, rows = _chain("c", 12)
    household = ["h0", "h1", "h2", "h3"]
    rows += _shared("device", "family-tablet", household)
    rows += _shared("ip", "home", household)
    rows += _shared("device", "h0-phone", ["h0", "c05"])  # a member signed in on h0's phone
    groups = _groups(find_rings(pl.DataFrame(rows), RingSettings()).members)
    assert frozenset(household) in groups
    assert not any(set(household) & g and set(chain) & g for g in groups)
    assert max(len(g & set(chain)) for g in groups) >= 11


def test_a_namesake_crowd_stays_behind_when_its_member_joins_the_chain() -> None:
    """A member whose own handle is a popular name's look-alike sits in Leiden's namesake crowd;
    it joins the chain alone, the namesakes stay a community of their own."""
    chain, rows = _chain("c", 10)
    crowd = ["n0", "n1", "n2", "n3", "n4", "c04"]
    rows += [
        link_row(a, b, "email_similar", link_weight("email_similar", 0.8, 6), f"{a}@m", f"{b}@m", 6)
        for a, b in itertools.combinations(crowd, 2)
    ]
    groups = _groups(find_rings(pl.DataFrame(rows), RingSettings()).members)
    assert frozenset(chain) in groups
    assert frozenset(crowd[:-1]) in groups


def test_an_office_sim_run_next_to_the_chain_is_not_glued() -> None:
    chain, rows = _chain("c", 9)
    office = [f"o{i:02d}" for i in range(10)]
    rows += [
        link_row(a, b, "phone_similar", link_weight("phone_similar", 0.9, 10), a, b, 10)
        for a, b in itertools.combinations(office, 2)
    ]
    rows += _shared("device", "o00-phone", ["o00", "c03"])
    groups = _groups(find_rings(pl.DataFrame(rows), RingSettings()).members)
    assert frozenset(chain) in groups or frozenset(chain) - {"c03"} in groups
    assert not any(set(office) & g and set(chain) & g for g in groups)


def test_two_honest_pairs_tied_by_one_private_link_stay_two_communities() -> None:
    """Two couples, each on a handset and a home connection of its own, tied by one home
    connection the two alone used (a visit): a join of four users, under the minimum a chain of
    private ties must reach, so they stay two; a lone account on a third couple's connection
    likewise stays out of that couple's community."""
    rows: list[dict[str, object]] = []
    for couple in (["p0", "p1"], ["q0", "q1"], ["r0", "r1"]):
        rows += _shared("device", f"{couple[0]}-handset", couple)
        rows += _shared("ip", f"{couple[0]}-home", couple)
    rows += _shared("ip", "p-visit", ["p1", "q0"])
    rows += _shared("ip", "r-visit", ["r1", "s0"])
    links = pl.DataFrame(rows)
    couples = {frozenset({"p0", "p1"}), frozenset({"q0", "q1"}), frozenset({"r0", "r1"})}
    assert _groups(find_rings(links, RingSettings()).members) == couples
    # without the minimum, one private link is taken for a piece of a chain and joins them
    assert _groups(find_rings(links, RingSettings(exclusive_min_size=2)).members) == {
        frozenset({"p0", "p1", "q0", "q1"}),
        frozenset({"r0", "r1", "s0"}),
    }


def test_a_chain_longer_than_the_cap_is_left_to_leiden() -> None:
    _, rows = _chain("c", 14)
    links = pl.DataFrame(rows)
    capped = find_rings(links, RingSettings(exclusive_max_size=10)).members
    assert _groups(capped) == _groups(find_rings(links, OFF).members)


def test_the_merge_is_deterministic_and_incremental_equals_full() -> None:
    chain, rows = _chain("c", 12)
    other, more = _chain("d", 7)
    day1 = pl.DataFrame(rows + more)
    before = find_rings(day1, RingSettings())
    # night two: the chain grows by one account, the other crew is untouched
    grown = rows + more + _shared("device", "c-handset-new", ["c11", "c12"])
    day2 = pl.DataFrame(grown)
    full = find_rings(day2, RingSettings())
    night = find_rings(
        day2,
        RingSettings(),
        previous=PreviousRings(links=day1, communities=before.communities),
    )
    assert night.members.equals(full.members)
    assert _groups(full.members) == {frozenset([*chain, "c12"]), frozenset(other)}
    shuffled = find_rings(pl.DataFrame(list(reversed(grown))), RingSettings())
    assert shuffled.members.equals(full.members)
