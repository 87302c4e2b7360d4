"""Linking benchmark: blocking recall and speed-up against an exhaustive all-pairs comparison.

Workload: a synthetic population (default 20,000 users, seed 1), canonical email local parts.
Exhaustive = every pair of users on the same canonical domain scored with rapidfuzz `cdist`
(normalised Levenshtein, score_cutoff = threshold) — the cheapest way to compare all pairs, since
the similarity is defined within a domain. Blocked = graphfraud's candidate passes + `cpdist`.
Reports recall of the pairs at or above the threshold, and both wall times.

    .venv/bin/python benchmarks/bench_linking.py [--users 20000] [--seed 1] [--threshold 0.8]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl
from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from graphfraud.config import IngestSettings, LinkSettings
from graphfraud.ingest.validate import ingest
from graphfraud.linking.blocking import email_candidate_pairs
from graphfraud.linking.compare import string_similarity
from graphfraud.linking.keys import email_stem_expr
from graphfraud.linking.link import user_index
from graphfraud.synthetic import generate_population


def exhaustive_pairs(emails: pl.DataFrame, threshold: float) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for (_domain,), block in emails.group_by("email_domain"):
        if block.height < 2:
            continue
        uids = block["uid"].to_numpy()
        locals_ = block["email_local"].to_list()
        for start in range(0, len(locals_), 2000):
            chunk = locals_[start : start + 2000]
            m = process.cdist(
                chunk,
                locals_,
                scorer=Levenshtein.normalized_similarity,
                dtype=np.float32,
                score_cutoff=threshold,
                workers=-1,
            )
            i, j = np.nonzero(m >= threshold)
            ia, jb = uids[i + start], uids[j]
            keep = ia < jb
            found.update(zip(ia[keep].tolist(), jb[keep].tolist(), strict=True))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=LinkSettings().email_similarity)
    args = parser.parse_args()
    pop = generate_population(args.users, args.seed)
    users = ingest(pop.users, None, IngestSettings(), users_file="users", devices_file=None).users
    emails = (
        user_index(users)
        .select("uid", "email_local", "email_domain")
        .drop_nulls()
        .with_columns(email_stem_expr().alias("stem"))
    )
    settings = LinkSettings()
    print(
        f"workload: {args.users:,} synthetic users (seed {args.seed}), {emails.height:,} with an email, "
        f"{emails['email_domain'].n_unique():,} domains, threshold {args.threshold}"
    )

    t0 = time.perf_counter()
    truth = exhaustive_pairs(emails, args.threshold)
    t_exh = time.perf_counter() - t0
    n_cells = int((emails.group_by("email_domain").len()["len"].cast(pl.Int64) ** 2).sum())

    t0 = time.perf_counter()
    cands = email_candidate_pairs(emails, window=settings.window, max_block=settings.max_block)
    side = emails.select("uid", "email_local")
    joined = cands.join(side.rename({"uid": "a", "email_local": "la"}), on="a").join(
        side.rename({"uid": "b", "email_local": "lb"}), on="b"
    )
    sim = string_similarity(joined["la"], joined["lb"])
    kept = joined.filter(pl.Series(sim >= args.threshold))
    t_blk = time.perf_counter() - t0
    got = set(zip(kept["a"].to_list(), kept["b"].to_list(), strict=True))

    recall = len(got & truth) / len(truth) if truth else float("nan")
    print(
        f"exhaustive: {n_cells:,} cells scored in {t_exh:.2f}s → {len(truth):,} pairs ≥ {args.threshold}"
    )
    print(
        f"blocked:    {cands.height:,} candidate pairs in {t_blk:.3f}s → {len(got):,} pairs ≥ {args.threshold}"
    )
    print(f"recall {recall:.4f}   speed-up {t_exh / t_blk:.1f}x   extra pairs {len(got - truth)}")


if __name__ == "__main__":
    main()
