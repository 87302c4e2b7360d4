"""Comparisons: how similar two candidate values are, vectorised with rapidfuzz.

`process.cpdist` scores element-wise over candidate pairs in C (both cores), never a Python loop
per pair; integer lower bounds on the distance (length, character buckets) first drop the pairs
that cannot reach the threshold, most of them. Example pairs for the email rule (normalised
Levenshtein on canonical local parts): `john.doe1` ~ `john.doe2` → 0.89, `priya.verma01` ~
`priya.verma12` → 0.85, `rahul` ~ `rohan` → 0.4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

# Characters are counted into 16 buckets (code point mod 16), one byte per bucket, eight buckets
# per 64-bit word; counts are capped at 31 so that a word's eight bytes sum to at most 248 and one
# multiplication adds them up without overflowing into the next byte.
_BUCKETS = 16
_BUCKET_CAP = 31
_BYTE_ONES = np.uint64(0x0101010101010101)


def string_similarity(
    left: list[str], right: list[str], score_cutoff: float | None = None
) -> npt.NDArray[np.float32]:
    """Normalised Levenshtein similarity (0..1) of two equally long string lists, element-wise;
    with a cutoff, pairs below it score 0 (and are cheaper to score)."""
    return process.cpdist(
        left,
        right,
        scorer=Levenshtein.normalized_similarity,
        dtype=np.float32,
        score_cutoff=score_cutoff,
        workers=-1,
    )


def similarity_matrix(
    left: list[str], right: list[str], score_cutoff: float | None = None, *, workers: int = -1
) -> npt.NDArray[np.float32]:
    """`string_similarity` for every pair of `left` x `right`, shape [len(left), len(right)]:
    the one definition the batch blocks, the online scorer and the benchmarks share."""
    return process.cdist(
        left,
        right,
        scorer=Levenshtein.normalized_similarity,
        dtype=np.float32,
        score_cutoff=score_cutoff,
        workers=workers,
    )


Gap = TypeVar("Gap", float, pl.Expr)


def gap_similarity(gap: Gap, max_gap: int) -> Gap:
    """1.0 for adjacent numbers, falling linearly to ~0.5 at `max_gap` (sequential SIMs): one
    formula for one gap (the online scorer) and for a column (`number_gap_similarity`)."""
    return 1.0 - 0.5 * (gap - 1.0) / max(max_gap - 1, 1)


def number_gap_similarity(gap: pl.Expr, max_gap: int) -> pl.Expr:
    """`gap_similarity` over a column, as Float32."""
    return gap_similarity(gap.cast(pl.Float32), max_gap).cast(pl.Float32)


def window_support(
    group: npt.NDArray[np.int64],
    number: npt.NDArray[np.int64],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    query_group: npt.NDArray[np.int64],
) -> npt.NDArray[np.int32]:
    """How many (group, number) points fall in [lo, hi] of their group, for each query.

    This is the `support` of a sequential match: two accounts 3 apart mean little among thousands
    of accounts with numbers in that range, a lot when they are alone there.
    """
    shift = np.int64(1) << np.int64(40)
    keys = np.sort(group * shift + np.clip(number, 0, shift - 1))
    left = np.searchsorted(keys, query_group * shift + np.clip(lo, 0, shift - 1), side="left")
    right = np.searchsorted(keys, query_group * shift + np.clip(hi, 0, shift - 1), side="right")
    return (right - left).astype(np.int32)


def max_distances(max_len: int, threshold: float) -> npt.NDArray[np.int64]:
    """For each length `n` of the longer text (0..max_len), the largest Levenshtein distance that
    still reaches `threshold` (similarity = 1 - distance / n); -1 where none can.

    Exact for that float test (floor, then one step either way), so comparing an integer lower
    bound on the distance with it drops only pairs that cannot reach the threshold: at 0.8,
    `priya.verma01` (13 characters) allows 2 edits.
    """
    length = np.arange(max_len + 1)
    longest = np.maximum(length, 1)

    def reaches(distance: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        return np.asarray(1.0 - distance / longest >= threshold)

    distance = np.minimum(np.floor((1.0 - threshold) * longest).astype(np.int64), length)
    distance = np.where(reaches(distance + 1) & (distance < length), distance + 1, distance)
    return np.where(reaches(distance), distance, distance - 1)


@dataclass(frozen=True)
class TextProfiles:
    """Per text: its length in characters and its characters counted into buckets (capped),
    as two u64 words of byte-wide counts, plus the sum of those counts."""

    lengths: npt.NDArray[np.int64]
    low: npt.NDArray[np.uint64]  # buckets 0-7
    high: npt.NDArray[np.uint64]  # buckets 8-15
    totals: npt.NDArray[np.int64]


def text_profiles(texts: pl.Series) -> TextProfiles:
    """Profiles of non-null texts, in their order."""
    lengths = texts.str.len_chars().cast(pl.Int64).to_numpy()
    codes = np.frombuffer("".join(texts.to_list()).encode("utf-32-le"), dtype=np.uint32)
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
    counts = np.bincount(rows * _BUCKETS + codes % _BUCKETS, minlength=len(texts) * _BUCKETS)
    capped = np.minimum(counts, _BUCKET_CAP).astype(np.uint8).reshape(len(texts), _BUCKETS)
    words = capped.view(np.uint64)  # (n, 2)
    return TextProfiles(
        lengths=lengths,
        low=np.ascontiguousarray(words[:, 0]),
        high=np.ascontiguousarray(words[:, 1]),
        totals=capped.sum(axis=1, dtype=np.int64),
    )


def _common_counts(x: npt.NDArray[np.uint64], y: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    """Sum over a word's eight buckets of min(x, y): bytewise minimum, then one multiplication
    gathers the byte sum in the top byte."""
    low = np.minimum(x.view(np.uint8), y.view(np.uint8)).view(np.uint64)
    return (low * _BYTE_ONES >> np.uint64(56)).astype(np.int64)


def could_reach(
    p: TextProfiles,
    ia: npt.NDArray[np.int64],
    ib: npt.NDArray[np.int64],
    limits: npt.NDArray[np.int64],
) -> npt.NDArray[np.bool_]:
    """True where texts `ia[k]`, `ib[k]` may be within `limits[longer length]` edits.

    Two lower bounds on the Levenshtein distance d, both integer tests:
    - length: d ≥ Δ = |len a - len b|;
    - bag: d ≥ (L1 + Δ) / 2, L1 = Σ |a_c - b_c| over bucket counts (the larger side of the
      multiset difference of the characters, which one edit shrinks by at most one; coarse
      buckets and capped counts only make L1 smaller). `rahul` ~ `rohan`: Δ = 0, L1 = 4 (u, l
      against o, n), so d ≥ 2 > 1 edit allowed at 0.8 for five characters.
    """
    la, lb = p.lengths[ia], p.lengths[ib]
    gap = np.abs(la - lb)
    limit = limits[np.maximum(la, lb)]
    common = _common_counts(p.low[ia], p.low[ib]) + _common_counts(p.high[ia], p.high[ib])
    l1 = p.totals[ia] + p.totals[ib] - 2 * common
    return np.asarray((gap <= limit) & (l1 + gap <= 2 * limit))


def block_similar_pairs(
    frame: pl.DataFrame,
    *,
    key: str,
    text: str,
    min_size: int,
    max_size: int,
    threshold: float,
    focus: npt.NDArray[np.bool_] | None = None,
) -> pl.DataFrame:
    """Similar pairs inside the blocks too big to enumerate as pairs, scored all-against-all.

    For blocks of `min_size < n ≤ max_size` rows (the namesake crowds of common names), rapidfuzz
    `cdist` with a score cutoff compares every pair in C at ~100 M pairs/s and only the pairs at or
    above `threshold` come back: cheaper than materialising n²/2 candidate rows. A Python loop
    runs over these blocks, not over pairs (there are few: names are Zipf-distributed).
    Returns `a, b, similarity` with `a < b`. With `focus` (a mask over uids), only the focused
    rows of a block are compared with the whole block (the same scores, focused × all).
    """
    sizes = (
        frame.group_by(key).len().filter((pl.col("len") > min_size) & (pl.col("len") <= max_size))
    )
    rows = frame.select("uid", key, text).join(sizes.select(key), on=key, how="semi")
    if focus is not None:
        rows = (
            rows.with_columns(pl.Series("_focus", focus[rows["uid"].to_numpy()]))
            .filter(pl.col("_focus").any().over(key))
            .drop("_focus")
        )
    parts: list[pl.DataFrame] = []
    for _, block in rows.group_by(key):
        uids = block["uid"].to_numpy()
        texts = block[text].to_list()
        if focus is None:
            m = similarity_matrix(texts, texts, score_cutoff=threshold)
            i, j = np.nonzero(np.triu(m >= threshold, k=1))
            ua, ub = uids[i], uids[j]
        else:
            mine = np.flatnonzero(focus[uids])
            m = similarity_matrix([texts[k] for k in mine], texts, score_cutoff=threshold)
            i, j = np.nonzero(m >= threshold)
            ua, ub = uids[mine[i]], uids[j]
            keep = (ua != ub) & ~(focus[ub] & (ub < ua))  # each focused pair once
            i, j, ua, ub = i[keep], j[keep], ua[keep], ub[keep]
        if i.size:
            parts.append(
                pl.DataFrame(
                    {
                        "a": np.minimum(ua, ub).astype(np.uint32),
                        "b": np.maximum(ua, ub).astype(np.uint32),
                        "similarity": m[i, j],
                    }
                )
            )
    if not parts:
        return pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32, "similarity": pl.Float32})
    return pl.concat(parts)


def score_candidates(
    candidates: pl.DataFrame, texts: pl.DataFrame, threshold: float, chunk: int = 1 << 21
) -> pl.DataFrame:
    """`a, b, similarity ≥ threshold` for candidate pairs, `chunk` at a time so that the string
    lists handed to rapidfuzz stay bounded.

    `texts`: `uid, text` (one row per uid). Texts are looked up by position in numpy rather than
    joined on, and rapidfuzz gets lists built from one object array of the texts: references to
    the same few thousand strings, where polars `to_list` would make two new ones per pair.
    """
    texts = texts.drop_nulls()
    uid = texts["uid"].cast(pl.Int64).to_numpy()
    strings = texts["text"].to_numpy()
    profiles = text_profiles(texts["text"])
    limits = max_distances(int(profiles.lengths.max(initial=0)), threshold)
    top = max(uid.max(initial=-1), candidates["a"].max() or 0, candidates["b"].max() or 0)
    position = np.full(int(top) + 1, -1, dtype=np.int64)
    position[uid] = np.arange(len(uid))
    a_parts, b_parts, sim_parts = [np.empty(0, np.int64)], [np.empty(0, np.int64)], []
    for start in range(0, candidates.height, chunk):
        pairs = candidates.slice(start, chunk)
        ia, ib = _reachable(
            position[pairs["a"].to_numpy()], position[pairs["b"].to_numpy()], profiles, limits
        )
        sim = string_similarity(strings[ia].tolist(), strings[ib].tolist(), score_cutoff=threshold)
        hit = sim >= threshold
        a_parts.append(uid[ia[hit]])
        b_parts.append(uid[ib[hit]])
        sim_parts.append(sim[hit])
    return pl.DataFrame(
        {
            "a": pl.Series(np.concatenate(a_parts), dtype=pl.UInt32),
            "b": pl.Series(np.concatenate(b_parts), dtype=pl.UInt32),
            "similarity": pl.Series(np.concatenate([np.empty(0, np.float32), *sim_parts])),
        }
    )


def _reachable(
    ia: npt.NDArray[np.int64],
    ib: npt.NDArray[np.int64],
    profiles: TextProfiles,
    limits: npt.NDArray[np.int64],
    step: int = 1 << 15,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The text positions `ia, ib` (-1: no text) of the pairs that `could_reach` the threshold.

    Tested `step` pairs at a time: small steps keep numpy's temporaries in reused, cache-sized
    memory; on large arrays, fresh pages cost more than the arithmetic.
    """
    keep_a, keep_b = [ia[:0]], [ib[:0]]
    for start in range(0, len(ia), step):
        xa, xb = ia[start : start + step], ib[start : start + step]
        # a missing text (-1) reads the last profile; the pair is dropped all the same
        keep = (xa >= 0) & (xb >= 0) & could_reach(profiles, xa, xb, limits)
        keep_a.append(xa[keep])
        keep_b.append(xb[keep])
    return np.concatenate(keep_a), np.concatenate(keep_b)
