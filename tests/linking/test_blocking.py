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
    email_candidate_pairs,
    pairs_within_blocks,
    phone_candidate_pairs,
    shared_value_groups,
    sorted_neighbourhood,
)
from graphfraud.linking.keys import email_stem_expr


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
    got = phone_candidate_pairs(phones, max_gap=20, max_block=100)
    assert sorted(got.select("a", "b").iter_rows()) == [(0, 1), (1, 3)]  # 0 and 3 share a number
    assert set(got["gap"]) == {4}


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
            "email_local": locals_,
            "email_domain": ["gmail.com"] * len(locals_),
        }
    ).with_columns(email_stem_expr().alias("stem"))
    cands = {tuple(r) for r in email_candidate_pairs(frame, window=8, max_block=5000).iter_rows()}
    truth = {
        (i, j)
        for i, j in itertools.combinations(range(len(locals_)), 2)
        if Levenshtein.normalized_similarity(locals_[i], locals_[j]) >= 0.8
    }
    assert truth, "the sample must contain similar pairs"
    assert len(truth & cands) / len(truth) >= 0.99
    assert len(cands) < len(locals_) ** 2 / 2 / 5  # and it did not compare (nearly) all pairs
