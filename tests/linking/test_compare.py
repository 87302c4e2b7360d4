"""Comparisons: the pre-filter bounds and the bulk scorer against rapidfuzz pair by pair."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from rapidfuzz.distance import Levenshtein

from graphfraud.linking.compare import (
    could_reach,
    max_distances,
    score_candidates,
    text_profiles,
)

# Letters that share a bucket (a, q, 1 and Devanagari), runs past the count cap, and plenty of
# near-duplicates: the cases where a wrong bound would drop a true match.
_ALPHABET = "aq1bcxyz.oé\u0905\u0915"
_texts = st.lists(st.text(_ALPHABET, min_size=0, max_size=45), min_size=2, max_size=30)


@given(st.integers(0, 300), st.floats(0.0, 1.0))
@settings(max_examples=200, deadline=None)
def test_max_distances_is_the_largest_distance_that_reaches_the_threshold(
    max_len: int, threshold: float
) -> None:
    limits = max_distances(max_len, threshold)
    for n in range(max_len + 1):
        longest = max(n, 1)
        reaching = [d for d in range(n + 1) if 1.0 - d / longest >= threshold]
        assert limits[n] == (max(reaching) if reaching else -1)


@given(_texts, st.sampled_from([0.5, 0.7, 0.8, 0.9, 1.0]))
@settings(max_examples=150, deadline=None)
def test_could_reach_never_drops_a_pair_that_reaches(texts: list[str], threshold: float) -> None:
    texts = texts + [t[:-1] + "a" for t in texts if t]  # one substitution away
    profiles = text_profiles(pl.Series(texts, dtype=pl.Utf8))
    limits = max_distances(max(len(t) for t in texts), threshold)
    every = np.indices((len(texts), len(texts))).reshape(2, -1)
    ia, ib = every[0].astype(np.int64), every[1].astype(np.int64)
    keep = could_reach(profiles, ia, ib, limits)
    for i, j, kept in zip(ia, ib, keep, strict=True):
        if Levenshtein.normalized_similarity(texts[i], texts[j]) >= threshold:
            assert kept, (texts[i], texts[j])


def test_could_reach_drops_pairs_with_the_same_length_but_other_letters() -> None:
    """`rahul` ~ `rohan` (3 edits) is out of reach at 0.8 (1 edit) by its letters alone."""
    profiles = text_profiles(pl.Series(["rahul", "rohan", "rahul1"]))
    limits = max_distances(6, 0.8)
    keep = could_reach(profiles, np.array([0, 0]), np.array([1, 2]), limits)
    assert keep.tolist() == [False, True]


def test_score_candidates_matches_rapidfuzz_pair_by_pair() -> None:
    rng = random.Random(5)
    words = ["priya.verma", "rahul", "amit_p", "sneha.iyer", "zed"]
    texts = [f"{rng.choice(words)}{rng.randint(0, 120)}" for _ in range(300)]
    uids = rng.sample(range(1000), len(texts))  # sparse, unsorted uids
    frame = pl.DataFrame({"uid": pl.Series(uids, dtype=pl.UInt32), "text": texts})
    pairs = {tuple(sorted(rng.sample([*uids, 5000], 2))) for _ in range(4000)}  # 5000: no text
    candidates = pl.DataFrame(sorted(pairs), schema={"a": pl.UInt32, "b": pl.UInt32}, orient="row")
    text_of = dict(zip(uids, texts, strict=True))
    # the same cutoff as the scorer: rapidfuzz's cutoff arithmetic turns an exact 0.8 (one edit
    # in five characters, `zed82` ~ `zed22`) into 0
    want = {
        (a, b): Levenshtein.normalized_similarity(text_of[a], text_of[b], score_cutoff=0.8)
        for a, b in pairs
        if a in text_of and b in text_of
    }
    want = {k: v for k, v in want.items() if v >= 0.8}
    got = score_candidates(candidates, frame, 0.8, chunk=1000)
    assert got.schema == pl.Schema({"a": pl.UInt32, "b": pl.UInt32, "similarity": pl.Float32})
    assert {(a, b) for a, b in got.select("a", "b").iter_rows()} == set(want)
    for a, b, sim in got.iter_rows():
        assert abs(sim - want[(a, b)]) < 1e-6
    assert score_candidates(candidates.clear(), frame, 0.8).is_empty()
