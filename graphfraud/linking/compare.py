"""Comparisons: how similar two candidate values are, vectorised with rapidfuzz.

`process.cpdist` scores element-wise over candidate pairs in C (both cores), never a Python loop
per pair. Example pairs for the email rule (normalised Levenshtein on canonical local parts):
`john.doe1` ~ `john.doe2` → 0.89, `priya.verma01` ~ `priya.verma12` → 0.85, `rahul` ~ `rohan` → 0.6.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

_CHUNK = 2_000_000


def string_similarity(
    left: pl.Series, right: pl.Series, score_cutoff: float | None = None
) -> npt.NDArray[np.float32]:
    """Normalised Levenshtein similarity (0..1) of two equally long string columns; with a
    cutoff, pairs below it score 0 (and are cheaper to score)."""
    n = len(left)
    out = np.empty(n, dtype=np.float32)
    for start in range(0, n, _CHUNK):  # chunks bound the memory of the Python string lists
        stop = min(start + _CHUNK, n)
        out[start:stop] = process.cpdist(
            left[start:stop].to_list(),
            right[start:stop].to_list(),
            scorer=Levenshtein.normalized_similarity,
            dtype=np.float32,
            score_cutoff=score_cutoff,
            workers=-1,
        )
    return out


def number_gap_similarity(gap: pl.Expr, max_gap: int) -> pl.Expr:
    """1.0 for adjacent numbers, falling linearly to ~0.5 at `max_gap` (sequential SIMs)."""
    return (1.0 - 0.5 * (gap.cast(pl.Float32) - 1.0) / max(max_gap - 1, 1)).cast(pl.Float32)


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


def length_bound_expr(left: str, right: str, threshold: float) -> pl.Expr:
    """True where the two strings *could* reach `threshold`: the Levenshtein distance is at least
    the length difference, so similarity ≤ 1 - |Δlen| / max(len). A free filter before scoring."""
    la = pl.col(left).str.len_chars().cast(pl.Int64)  # unsigned would wrap on subtraction
    lb = pl.col(right).str.len_chars().cast(pl.Int64)
    longest = pl.max_horizontal(la, lb).clip(lower_bound=1)
    return (1.0 - (la - lb).abs() / longest) >= threshold


def score_pairs(pairs: pl.DataFrame, left: str, right: str, threshold: float) -> pl.DataFrame:
    """`pairs` with a `similarity` column, keeping rows at or above `threshold` (length-bound
    prefilter, then rapidfuzz in bulk)."""
    pairs = pairs.filter(length_bound_expr(left, right, threshold))
    if pairs.is_empty():
        return pairs.with_columns(pl.lit(0.0, dtype=pl.Float32).alias("similarity"))
    sim = string_similarity(pairs[left], pairs[right], score_cutoff=threshold)
    return pairs.with_columns(pl.Series("similarity", sim)).filter(
        pl.col("similarity") >= threshold
    )


def block_similar_pairs(
    frame: pl.DataFrame, *, key: str, text: str, min_size: int, max_size: int, threshold: float
) -> pl.DataFrame:
    """Similar pairs inside the blocks too big to enumerate as pairs, scored all-against-all.

    For blocks of `min_size < n ≤ max_size` rows (the namesake crowds of common names), rapidfuzz
    `cdist` with a score cutoff compares every pair in C at ~100 M pairs/s and only the pairs at or
    above `threshold` come back: cheaper than materialising n²/2 candidate rows. A Python loop
    runs over these blocks, not over pairs (there are few: names are Zipf-distributed).
    Returns `a, b, similarity` with `a < b`.
    """
    sizes = (
        frame.group_by(key).len().filter((pl.col("len") > min_size) & (pl.col("len") <= max_size))
    )
    rows = frame.select("uid", key, text).join(sizes.select(key), on=key, how="semi")
    parts: list[pl.DataFrame] = []
    for _, block in rows.group_by(key):
        uids = block["uid"].to_numpy()
        texts = block[text].to_list()
        m = process.cdist(
            texts,
            texts,
            scorer=Levenshtein.normalized_similarity,
            dtype=np.float32,
            score_cutoff=threshold,
            workers=-1,
        )
        i, j = np.nonzero(np.triu(m >= threshold, k=1))
        if i.size:
            ua, ub = uids[i], uids[j]
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
    candidates: pl.DataFrame, texts: pl.DataFrame, threshold: float, chunk: int = 5_000_000
) -> pl.DataFrame:
    """`a, b, similarity ≥ threshold` for candidate pairs, in chunks so memory stays bounded.

    `texts`: `uid, text`.
    """
    parts: list[pl.DataFrame] = []
    for start in range(0, candidates.height, chunk):
        joined = (
            candidates.slice(start, chunk)
            .join(texts.rename({"uid": "a", "text": "ta"}), on="a")
            .join(texts.rename({"uid": "b", "text": "tb"}), on="b")
        )
        parts.append(score_pairs(joined, "ta", "tb", threshold).select("a", "b", "similarity"))
    if not parts:
        return pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32, "similarity": pl.Float32})
    return pl.concat(parts)
