"""Blocking: oracle tests against exhaustive pair enumeration on small inputs."""

from __future__ import annotations

import itertools
import random

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from graphfraud.linking.blocking import (
    deletion_variants,
    handle_candidate_pairs,
    handle_reordered_pairs,
    number_candidate_pairs,
    pair_key_expr,
    pairs_within_blocks,
    shared_value_groups,
    sorted_neighbourhood,
    unpack_pair_keys,
)
from graphfraud.linking.keys import handle_stem_expr, local_stem_expr, name_key, with_name_key
from graphfraud.linking.lookalike import reordered


def _uids(n: int) -> pl.Series:
    return pl.Series("uid", range(n), dtype=pl.UInt32)


@given(st.lists(st.sampled_from("abcde"), min_size=0, max_size=40), st.integers(2, 6))
@settings(max_examples=60, deadline=None)
def test_pairs_within_blocks_matches_brute_force(keys: list[str], max_block: int) -> None:
    frame = pl.DataFrame({"uid": _uids(len(keys)), "key": keys})
    got = {tuple(r) for r in pairs_within_blocks(frame, max_block).iter_rows()}
    sizes = {k: keys.count(k) for k in set(keys)}
    want = {
        (i, j)
        for i, j in itertools.combinations(range(len(keys)), 2)
        if keys[i] == keys[j] and sizes[keys[i]] <= max_block
    }
    assert got == want


def test_shared_value_groups_counts_distinct_users_and_skips_hubs() -> None:
    holders = pl.DataFrame(
        {
            "uid": pl.Series([0, 0, 1, 2, 3, 4, 5, 6], dtype=pl.UInt32),
            "value": ["d1", "d1", "d1", "d1", "hub", "hub", "hub", None],
        }
    )
    pairs, support = shared_value_groups(holders, max_share=2)
    hubs = support.filter(pl.col("support") > 2)
    # d1 is held by 3 distinct users (uid 0 twice) > max_share 2: a hub, like "hub".
    assert pairs.is_empty()
    assert set(hubs["value"]) == {"d1", "hub"}
    pairs, support = shared_value_groups(holders, max_share=3)
    hubs = support.filter(pl.col("support") > 3)
    assert sorted(pairs.select("a", "b").iter_rows()) == [
        (0, 1),
        (0, 2),
        (1, 2),
        (3, 4),
        (3, 5),
        (4, 5),
    ]
    assert set(pairs["support"]) == {3}
    assert hubs.is_empty()


def test_deletion_variants_are_the_value_and_its_one_deletions() -> None:
    frame = pl.DataFrame({"uid": _uids(1), "s": ["abc"]})
    assert set(deletion_variants(frame, "s")["key"]) == {"abc", "bc", "ac", "ab"}


def test_deletion_variants_carry_the_other_columns() -> None:
    frame = pl.DataFrame({"uid": _uids(3), "s": ["ab", None, "é"], "d": [7, 8, 9]})
    got = sorted(deletion_variants(frame, "s").iter_rows())
    assert got == [(0, 7, "a"), (0, 7, "ab"), (0, 7, "b"), (2, 9, ""), (2, 9, "é")]


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)), max_size=20))
def test_pair_keys_pack_an_unordered_pair_into_one_u64(pairs: list[tuple[int, int]]) -> None:
    frame = pl.DataFrame(pairs, schema={"a": pl.UInt32, "b": pl.UInt32}, orient="row")
    keys = frame.select(pair_key_expr()).to_series()
    assert keys.dtype == pl.UInt64
    assert list(unpack_pair_keys(keys).iter_rows()) == [(min(p), max(p)) for p in pairs]


def test_sorted_neighbourhood_pairs_only_within_window_and_group() -> None:
    frame = pl.DataFrame(
        {"uid": _uids(5), "g": ["x", "x", "x", "y", "y"], "v": ["a", "b", "c", "a", "b"]}
    )
    got = {tuple(r) for r in sorted_neighbourhood(frame, pl.col("v"), "g", 2).iter_rows()}
    assert got == {(0, 1), (1, 2), (3, 4)}


def test_phone_pairs_cross_a_hundred_boundary() -> None:
    phones = pl.DataFrame(
        {"uid": _uids(4), "number": [919876543298, 919876543302, 919876543298 + 500, 919876543298]}
    )
    got = number_candidate_pairs(phones, max_gap=20, max_block=100)
    assert sorted(got.select("a", "b").iter_rows()) == [(0, 1), (1, 3)]  # 0 and 3 share a number
    assert set(got["gap"]) == {4}


def _one_deletion_apart(x: str, y: str) -> bool:
    def variants(s: str) -> set[str]:
        return {s} | {s[:i] + s[i + 1 :] for i in range(len(s))}

    return bool(variants(x) & variants(y))


@given(
    st.lists(
        st.tuples(st.text("abcé", min_size=2, max_size=6), st.sampled_from(["x.com", "y.com"])),
        min_size=2,
        max_size=25,
    ),
    st.integers(2, 6),
)
@settings(max_examples=80, deadline=None)
def test_email_candidates_hold_every_stem_pair_one_deletion_apart(
    rows: list[tuple[str, str]], max_block: int
) -> None:
    """Oracle for the stem passes on a small, crowded sample (window 2: the sorted neighbourhood
    adds little): identical stems in blocks of at most max_block users, and stems of 4+ letters
    one deletion apart, when their domain has at most max_block such stems (so no variant's block
    is too large) and their users make at most max_block²/2 pairs."""
    frame = pl.DataFrame(
        {
            "uid": _uids(len(rows)),
            "local": [local for local, _ in rows],
            "domain": [domain for _, domain in rows],
        }
    ).with_columns(handle_stem_expr().alias("stem"))
    got = handle_candidate_pairs(frame, window=2, max_block=max_block)
    pairs = list(got.iter_rows())
    assert pairs == sorted(set(pairs))
    assert all(a < b for a, b in pairs)
    stem = {i: s for i, s in enumerate(frame["stem"].to_list()) if s is not None}
    users = {s: list(stem.values()).count(s) for s in stem.values()}
    long_stems = {
        d: sum(1 for s in users if s.endswith("@" + d) and len(s) >= 5 + len(d))
        for d in ("x.com", "y.com")
    }
    for i, j in itertools.combinations(stem, 2):
        (li, di), (lj, dj) = stem[i].split("@"), stem[j].split("@")
        same = stem[i] == stem[j] and users[stem[i]] <= max_block
        near = (
            di == dj
            and min(len(li), len(lj)) >= 4
            and _one_deletion_apart(li, lj)
            and long_stems[di] <= max_block
            and users[stem[i]] * users[stem[j]] <= max_block * max_block // 2
        )
        if same or near:
            assert (i, j) in set(pairs), (stem[i], stem[j])


def _random_locals(rng: random.Random, n: int) -> list[str]:
    names = ["rahul", "priya", "amit", "sneha", "vikram", "anita", "rohan", "kavya"]
    last = ["sharma", "verma", "iyer", "nair", "gupta", "reddy"]
    out = []
    for _ in range(n):
        local = (
            f"{rng.choice(names)}{rng.choice(['.', '', '_'])}{rng.choice(last)}{rng.randint(1, 99)}"
        )
        if rng.random() < 0.3:  # a typo somewhere
            i = rng.randrange(len(local))
            local = local[:i] + rng.choice("aeioustr") + local[i + 1 :]
        out.append(local)
    return out


def test_email_blocking_recall_against_exhaustive_comparison() -> None:
    """On a crowded, typo-ridden sample, blocking keeps ≥ 99% of the pairs an all-pairs
    comparison finds at similarity ≥ 0.8."""
    rng = random.Random(3)
    locals_ = _random_locals(rng, 1500)
    frame = pl.DataFrame(
        {
            "uid": _uids(len(locals_)),
            "local": locals_,
            "domain": ["gmail.com"] * len(locals_),
        }
    ).with_columns(handle_stem_expr().alias("stem"))
    cands = {tuple(r) for r in handle_candidate_pairs(frame, window=8, max_block=5000).iter_rows()}
    truth = {
        (i, j)
        for i, j in itertools.combinations(range(len(locals_)), 2)
        if Levenshtein.normalized_similarity(locals_[i], locals_[j]) >= 0.8
    }
    assert truth, "the sample must contain similar pairs"
    assert len(truth & cands) / len(truth) >= 0.99
    assert len(cands) < len(locals_) ** 2 / 2 / 5  # and it did not compare (nearly) all pairs


_names = st.text(alphabet="abcdr._7", max_size=14)


@given(st.lists(_names, max_size=30))
@settings(max_examples=80, deadline=None)
def test_name_key_column_is_the_scalar_key(locals_: list[str]) -> None:
    frame = pl.DataFrame({"local": locals_}, schema={"local": pl.Utf8})
    assert with_name_key(frame)["name"].to_list() == [name_key(v) for v in locals_]


def test_name_key_is_shared_by_a_name_in_either_order_whatever_the_separator() -> None:
    keys = {name_key(v) for v in ("priya.verma", "verma_priya", "verma.priya07", "vermapriya")}
    assert keys == {"apriyaverm"}
    assert name_key("priya.sharma") != name_key("priya.verma")
    assert name_key("li.wu") is None  # too short to hold two name parts


def _handles(locals_: list[str]) -> pl.DataFrame:
    frame = pl.DataFrame({"uid": _uids(len(locals_)), "local": pl.Series(locals_, dtype=pl.Utf8)})
    return with_name_key(frame.with_columns(local_stem_expr().alias("local_stem")))


_reorderings = [
    "priya.verma",
    "vermapriya",
    "verma_priya07",
    "priyaverma07",
    "yavermapri",
    "apriyaverm",
]


@given(st.lists(st.sampled_from(_reorderings), max_size=12), st.integers(2, 8))
@settings(max_examples=80, deadline=None)
def test_reordered_pairs_match_brute_force(locals_: list[str], max_block: int) -> None:
    got = {
        tuple(r) for r in handle_reordered_pairs(_handles(locals_), max_block=max_block).iter_rows()
    }
    want = {
        (i, j)
        for i, j in itertools.combinations(range(len(locals_)), 2)
        if reordered(locals_[i], locals_[j]) and len(locals_) <= max_block
    }
    assert got == want


def test_reordered_pairs_are_name_swaps_with_the_same_digits() -> None:
    assert reordered("priya.verma", "vermapriya")
    assert reordered("vermapriya", "priya_verma")
    assert reordered("priya.verma07", "verma07priya")  # the digits kept, wherever they sit
    assert not reordered("priya.verma", "verma.priya07")  # a reordering and a number: two changes
    # a rotation by one letter (annabel ~ nnabela, priyaverma ~ apriyaverm) is no name swap
    assert not reordered("annabel", "nnabela")
    assert not reordered("priyaverma", "apriyaverm")
    assert not reordered("priya.verma", "priyaverma")  # the same stem is the stem pass's


def test_a_crowd_on_one_name_key_is_never_paired() -> None:
    # 3 x verma.priya among 120 priya.verma: the key's block is past max_block
    locals_ = ["priya.verma"] * 120 + ["verma.priya"] * 3 + ["sharma.amit", "amit_sharma"]
    got = {tuple(r) for r in handle_reordered_pairs(_handles(locals_), max_block=100).iter_rows()}
    assert got == {(123, 124)}
