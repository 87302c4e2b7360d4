"""Ring lineage benchmark: how long `rings.lineage.assign_ring_ids` takes to match a night's rings
to the previous run's, at the size of a real population.

    .venv/bin/python benchmarks/bench_lineage.py                     # 1M users
    .venv/bin/python benchmarks/bench_lineage.py --users 100000      # smoke size

Workload: `--ring-share` of the users in rings of 2–12 members (seeded). Night 2 moves
`--churn` of the ring members to another ring or out of rings, merges `--merges` of the rings
into another one, splits `--splits` of them in two (60 / 40) and forms three-member rings of new
users, three per split. Night 1 issues every
id (all born); night 2 is the timed one: matching, fresh salted ids, events and the carried-forward
id set. Prints the workload, then one line per number.
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl

from graphfraud.rings.features import Rings
from graphfraud.rings.lineage import RingLedger, assign_ring_ids


def _rings(members: pl.DataFrame) -> Rings:
    rings = members.group_by("ring_id").agg(pl.len().cast(pl.Int32).alias("size"))
    return Rings(members=members, rings=rings.with_columns(grew_from=pl.lit(None, pl.String)))


def night1(n_users: int, share: float, rng: np.random.Generator) -> pl.DataFrame:
    n = int(n_users * share)
    sizes = rng.integers(2, 13, size=n // 2 + 1)  # enough rings to hold n members
    ring = np.repeat(np.arange(sizes.size), sizes)[:n]
    users = rng.choice(n_users, size=n, replace=False)
    return pl.DataFrame(
        {
            "user_id": [f"u{u:08d}" for u in users],
            "ring_id": [f"t{r}" for r in ring],
        }
    )


def night2(
    members: pl.DataFrame, churn: float, merge_share: float, split_share: float, seed: int
) -> pl.DataFrame:
    rng = np.random.default_rng(seed + 1)
    ring = members["ring_id"].str.slice(1).cast(pl.Int64).to_numpy().copy()
    n_rings = int(ring.max()) + 1
    merges, splits = int(n_rings * merge_share), int(n_rings * split_share)
    moved = rng.random(ring.size) < churn
    ring[moved] = np.where(
        rng.random(int(moved.sum())) < 0.5, rng.integers(0, n_rings, int(moved.sum())), -1
    )
    pairs = rng.choice(n_rings, size=(merges, 2), replace=False)
    remap = np.arange(n_rings)
    remap[pairs[:, 1]] = pairs[:, 0]
    ring = np.where(ring >= 0, remap[np.maximum(ring, 0)], -1)
    halves = rng.choice(np.setdiff1d(np.arange(n_rings), pairs.ravel()), size=splits, replace=False)
    in_split = np.isin(ring, halves) & (rng.random(ring.size) < 0.4)
    ring[in_split] += n_rings
    frame = members.with_columns(ring_id=pl.Series(ring)).filter(pl.col("ring_id") >= 0)
    # strangers forming new rings of three
    fresh = 3 * splits
    strangers = pl.DataFrame(
        {
            "user_id": [f"n{i:08d}" for i in range(fresh)],
            "ring_id": np.arange(fresh) // 3 + 3 * n_rings,
        }
    )
    both = pl.concat([frame, strangers])
    sized = both.filter(pl.len().over("ring_id") >= 2)
    return sized.with_columns(pl.concat_str(pl.lit("t"), pl.col("ring_id")).alias("ring_id"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--ring-share", type=float, default=0.1)
    parser.add_argument("--churn", type=float, default=0.02)
    parser.add_argument("--merges", type=float, default=0.01, help="share of rings merged")
    parser.add_argument("--splits", type=float, default=0.01, help="share of rings split")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    first = night1(args.users, args.ring_share, rng)
    t0 = time.perf_counter()
    one = assign_ring_ids(_rings(first), None, run_id="n1", at=datetime(2026, 1, 1, tzinfo=UTC))
    t_first = time.perf_counter() - t0
    ledger = RingLedger("n1", one.rings.members, one.issued, one.history)
    second = night2(first, args.churn, args.merges, args.splits, args.seed)
    print(
        f"workload: {args.users:,} users; night 1 {first.height:,} ring members in "
        f"{one.rings.rings.height:,} rings; night 2 {second.height:,} members in "
        f"{second['ring_id'].n_unique():,} rings ({args.churn:.0%} churn, "
        f"{args.merges:.0%} of rings merged, {args.splits:.0%} split, seed {args.seed})"
    )
    t0 = time.perf_counter()
    two = assign_ring_ids(_rings(second), ledger, run_id="n2", at=datetime(2026, 1, 2, tzinfo=UTC))
    t_second = time.perf_counter() - t0
    print(f"night 1 (every ring born): {t_first:.2f} s")
    print(f"night 2 (matched against night 1): {t_second:.2f} s")
    print("night 2 events: " + ", ".join(f"{k} {v:,}" for k, v in two.stats.items()))
    kept = two.rings.rings.height - two.stats["born"] - two.stats["split_from"]
    print(f"night 2 rings keeping an id: {kept:,} of {two.rings.rings.height:,}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
