"""Ring lineage on hand-made partitions: which ring keeps which id, the night's events with their
counts, fresh ids that never repeat an issued one, and a plain-Python oracle of the rule."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from graphfraud.rings.detect import ring_id_for
from graphfraud.rings.features import Rings
from graphfraud.rings.lineage import (
    MIN_PART,
    Lineage,
    RingLedger,
    assign_ring_ids,
    read_ledger,
)
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    MANIFEST_FILE,
    MEMBERS_FILE,
    RING_EVENTS_SCHEMA,
    RING_IDS_SCHEMA,
    RingEvent,
    polars_schema,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
Groups = list[list[str]]


def _found(groups: Groups, grew_from: list[str | None] | None = None) -> Rings:
    """What the detector hands over: provisional ids (deliberately unlike any final id)."""
    members = pl.DataFrame(
        [{"user_id": u, "ring_id": f"tmp{i}"} for i, g in enumerate(groups) for u in g],
        schema={"user_id": pl.String, "ring_id": pl.String},
    )
    rings = pl.DataFrame(
        {
            "ring_id": [f"tmp{i}" for i in range(len(groups))],
            "size": [len(g) for g in groups],
            "grew_from": grew_from or [None] * len(groups),
        },
        schema={"ring_id": pl.String, "size": pl.Int32, "grew_from": pl.String},
    )
    return Rings(members=members, rings=rings)


def _night(groups: Groups, before: Lineage | None, n: int, **kw: list[str | None]) -> Lineage:
    ledger = (
        None
        if before is None
        else RingLedger(f"n{n - 1}", before.rings.members, before.issued, before.history)
    )
    return assign_ring_ids(
        _found(groups, kw.get("grew_from")), ledger, run_id=f"n{n}", at=T0 + timedelta(days=n)
    )


def _id_of(lineage: Lineage, user: str) -> str:
    ids = lineage.rings.members.filter(pl.col("user_id") == user)["ring_id"]
    assert ids.len() == 1
    return str(ids[0])


def _events(lineage: Lineage) -> set[tuple[str, str, str | None, int, int, int | None]]:
    rows = lineage.events.select(
        "ring_id", "event", "other_ring_id", "size_before", "size_after", "shared"
    ).rows()
    return set(rows)


def _ring(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


A, B, C, D = _ring("a", 4), _ring("b", 3), _ring("c", 6), _ring("d", 2)


@pytest.fixture
def day1() -> Lineage:
    return _night([A, B, C, D], None, 1)


def test_a_first_night_issues_every_ring_its_anchor_id_and_a_born_event(day1: Lineage) -> None:
    ids = {_id_of(day1, g[0]) for g in (A, B, C, D)}
    assert ids == {ring_id_for("a0"), ring_id_for("b0"), ring_id_for("c0"), ring_id_for("d0")}
    assert _events(day1) == {
        (ring_id_for("a0"), "born", None, 0, 4, None),
        (ring_id_for("b0"), "born", None, 0, 3, None),
        (ring_id_for("c0"), "born", None, 0, 6, None),
        (ring_id_for("d0"), "born", None, 0, 2, None),
    }
    assert dict(day1.events.schema) == polars_schema(RING_EVENTS_SCHEMA)
    assert dict(day1.issued.schema) == polars_schema(RING_IDS_SCHEMA)
    assert day1.issued["born_run_id"].to_list() == ["n1"] * 4
    assert day1.issued["retired_run_id"].null_count() == 4
    assert set(day1.rings.rings["ring_id"]) == ids
    assert day1.stats == {
        "born": 4,
        "grew": 0,
        "shrank": 0,
        "merged_into": 0,
        "split_from": 0,
        "dissolved": 0,
    }


def test_unchanged_rings_keep_their_ids_without_events(day1: Lineage) -> None:
    again = _night([A, B, C, D], day1, 2)
    assert again.rings.members.equals(day1.rings.members)
    assert again.events.is_empty()
    assert again.issued.equals(day1.issued)


def test_merge_split_dissolve_grow_and_birth_in_one_night(day1: Lineage) -> None:
    a, b, c, d = (_id_of(day1, g[0]) for g in (A, B, C, D))
    # A and B merge (A is bigger: it keeps its id), C splits 4 / 2, D's members leave every
    # ring, and three strangers form a ring.
    day2 = _night([A + B + ["x"], C[:4], C[4:], ["s1", "s2", "s3"]], day1, 2)
    assert _id_of(day2, "b0") == a
    assert _id_of(day2, "c0") == c
    split, born = _id_of(day2, "c4"), _id_of(day2, "s1")
    assert _events(day2) == {
        (a, "grew", None, 4, 8, 4),
        (b, "merged_into", a, 3, 0, 3),
        (c, "shrank", None, 6, 4, 4),
        (split, "split_from", c, 0, 2, 2),
        (d, "dissolved", None, 2, 0, None),
        (born, "born", None, 0, 3, None),
    }
    assert set(day2.events["run_id"]) == {"n2"}
    retired = dict(day2.issued.select("ring_id", "retired_run_id").iter_rows())
    assert (retired[b], retired[d], retired[a], retired[split]) == ("n2", "n2", None, None)
    assert day2.history.height == day1.events.height + day2.events.height
    assert day2.stats == {
        "born": 1,
        "grew": 1,
        "shrank": 1,
        "merged_into": 1,
        "split_from": 1,
        "dissolved": 1,
    }


def test_a_ring_holding_all_of_an_old_ring_keeps_its_id_however_much_it_grew() -> None:
    small = _night([["m0", "m1"]], None, 1)
    big = _night([["m0", "m1", *_ring("new", 20)]], small, 2)
    assert _id_of(big, "new0") == _id_of(small, "m0")
    assert _events(big) == {(_id_of(small, "m0"), "grew", None, 2, 22, 2)}


def test_swapped_members_at_the_same_size_is_grew_with_the_kept_count(day1: Lineage) -> None:
    swapped = _night([["a0", "a1", "a2", "z9"], B, C, D], day1, 2)
    assert _events(swapped) == {(_id_of(day1, "a0"), "grew", None, 4, 4, 3)}


def test_exactly_half_is_not_most_so_an_even_split_retires_the_id(day1: Lineage) -> None:
    c = _id_of(day1, "c0")
    halves = _night([A, B, C[:3], C[3:], D], day1, 2)
    left, right = _id_of(halves, "c0"), _id_of(halves, "c3")
    assert c not in {left, right}
    assert _events(halves) == {
        (c, "dissolved", None, 6, 0, None),
        (left, "split_from", c, 0, 3, 3),
        (right, "split_from", c, 0, 3, 3),
    }


def test_a_new_ring_with_a_single_member_of_an_old_one_is_born_not_split(day1: Lineage) -> None:
    assert MIN_PART == 2
    night = _night([A, B, C[:5], [C[5], "n1", "n2"], D], day1, 2)
    fresh = _id_of(night, "n1")
    assert (fresh, "born", None, 0, 3, None) in _events(night)


def test_a_merge_of_equal_shares_keeps_the_smaller_id() -> None:
    first = _night([["p0", "p1"], ["q0", "q1"]], None, 1)
    p, q = _id_of(first, "p0"), _id_of(first, "q0")
    merged = _night([["p0", "p1", "q0", "q1"]], first, 2)
    keeper, gone = min(p, q), max(p, q)
    assert _id_of(merged, "p0") == keeper
    assert _events(merged) == {
        (keeper, "grew", None, 2, 4, 2),
        (gone, "merged_into", keeper, 2, 0, 2),
    }


def test_a_born_ring_names_the_emerging_ring_it_grew_from(day1: Lineage) -> None:
    night = _night([A, B, C, D, ["e1", "e2"]], day1, 2, grew_from=[None, None, None, None, "em-7"])
    fresh = _id_of(night, "e1")
    assert _events(night) == {(fresh, "born", "em-7", 0, 2, None)}
    grew = dict(night.rings.rings.select("ring_id", "grew_from").iter_rows())
    assert grew[fresh] == "em-7"


def test_a_retired_id_is_never_issued_again(day1: Lineage) -> None:
    d = _id_of(day1, "d0")
    gone = _night([A, B, C], day1, 2)
    assert (d, "dissolved", None, 2, 0, None) in _events(gone)
    # The same members come back: their anchor's id is retired, so the ring gets a salted one.
    back = _night([A, B, C, D], gone, 3)
    again = _id_of(back, "d0")
    assert again == ring_id_for("d0", 1)
    assert again != d
    assert _events(back) == {(again, "born", None, 0, 2, None)}
    # and retired stays retired, issued by the night it was issued
    issued = dict(back.issued.select("ring_id", "born_run_id").iter_rows())
    assert (issued[d], issued[again]) == ("n1", "n3")
    assert back.issued.filter(pl.col("ring_id") == d)["retired_run_id"].to_list() == ["n2"]
    assert back.issued["ring_id"].is_unique().all()
    assert back.history["run_id"].to_list().count("n1") == 4


def test_same_inputs_same_ids_whatever_the_row_order(day1: Lineage) -> None:
    groups = [A + B, C[:4], C[4:], ["s1", "s2"]]
    one = _night(groups, day1, 2)
    shuffled = [list(reversed(g)) for g in reversed(groups)]
    two = _night(shuffled, day1, 2)
    assert one.rings.members.equals(two.rings.members)
    assert one.events.equals(two.events)
    assert one.issued.equals(two.issued)


def _reference(
    prev: dict[str, set[str]], cur: list[set[str]]
) -> tuple[dict[int, str], dict[str, tuple[str, str | None]]]:
    """The rule, in plain Python: tonight's ring index → the old id it keeps (absent: a fresh
    id), and each retired old id → (event, other_ring_id)."""
    heirs: dict[int, str] = {}
    for i, ring in enumerate(cur):
        cands = [(len(ring & m), pid) for pid, m in prev.items() if 2 * len(ring & m) > len(m)]
        if cands:
            heirs[i] = min(cands, key=lambda c: (-c[0], c[1]))[1]
    retired: dict[str, tuple[str, str | None]] = {}
    for pid, m in prev.items():
        if pid in heirs.values():
            continue
        into = [heirs[i] for i, ring in enumerate(cur) if 2 * len(ring & m) > len(m)]
        retired[pid] = ("merged_into", into[0]) if into else ("dissolved", None)
    return heirs, retired


@pytest.mark.parametrize("seed", range(6))
def test_ids_and_retirements_match_a_plain_python_oracle(seed: int) -> None:
    rng = random.Random(seed)
    users = [f"u{i:03d}" for i in range(120)]

    def partition() -> Groups:
        pool = rng.sample(users, rng.randint(60, 110))
        groups, i = [], 0
        while i < len(pool) - 1:
            size = rng.randint(2, 9)
            groups.append(pool[i : i + size])
            i += size
        return [g for g in groups if len(g) >= 2]

    before = _night(partition(), None, 1)
    groups = partition()
    after = _night(groups, before, 2)
    prev = {
        rid: set(us)
        for rid, us in before.rings.members.group_by("ring_id").agg("user_id").iter_rows()
    }
    heirs, retired = _reference(prev, [set(g) for g in groups])
    for i, g in enumerate(groups):
        got = _id_of(after, g[0])
        if i in heirs:
            assert got == heirs[i]
        else:
            assert got not in set(before.issued["ring_id"])
    events = {
        r: (e, o) for r, e, o in after.events.select("ring_id", "event", "other_ring_id").rows()
    }
    for pid, want in retired.items():
        assert events[pid] == want
    assert after.rings.members["ring_id"].n_unique() == len(groups)
    assert after.issued["ring_id"].is_unique().all()


def test_a_run_from_before_lineage_counts_its_rings_as_issued(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    run.ensure()
    run.write_json(MANIFEST_FILE, {"run_id": "old-run", "status": "complete"})
    run.write(MEMBERS_FILE, pl.DataFrame({"user_id": ["a", "b"], "ring_id": ["R-old", "R-old"]}))
    ledger = read_ledger(run)
    assert ledger.issued.rows() == [("R-old", "old-run", None)]
    assert ledger.history.is_empty()
    night = assign_ring_ids(_found([["a", "b", "c"]]), ledger, run_id="new", at=T0)
    assert night.rings.members["ring_id"].unique().to_list() == ["R-old"]
    assert _events(night) == {("R-old", "grew", None, 2, 3, 2)}


def test_an_empty_night_retires_every_ring(day1: Lineage) -> None:
    empty = _night([], day1, 2)
    assert empty.rings.members.is_empty()
    assert set(empty.events["event"]) == {RingEvent.DISSOLVED}
    assert empty.issued["retired_run_id"].to_list() == ["n2"] * 4
