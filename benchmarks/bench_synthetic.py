"""Synthetic population: generation speed, memory, and how hard the population is.

Workload: `--users` users (default 1,000,000), `--seed` (default 1), default fraud share.
Prints wall time of `generate_population`, peak RSS, then "hardness" numbers on the result:
how many honest users share identifiers innocently, and how many ring members share nothing
exact with another member of their ring (the ceiling on what exact linking alone can find).

    .venv/bin/python benchmarks/bench_synthetic.py --users 200000
"""

from __future__ import annotations

import argparse
import resource
import time

import polars as pl

from graphfraud.synthetic import generate_population, summarize


def _mailbox(col: str) -> pl.Expr:
    e = pl.col(col).str.strip_chars().str.to_lowercase()
    local, domain = e.str.extract(r"^([^@+]*)", 1), e.str.extract(r"@(.*)$", 1)
    gmail = domain.is_in(["gmail.com", "googlemail.com"])
    local = pl.when(gmail).then(local.str.replace_all(".", "", literal=True)).otherwise(local)
    return pl.concat_str(
        [local, pl.lit("@"), pl.when(gmail).then(pl.lit("gmail.com")).otherwise(domain)]
    )


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"workload: generate_population({args.users:,}, seed={args.seed}), fraud_share 0.04")
    t0 = time.perf_counter()
    pop = generate_population(args.users, args.seed)
    took = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = summarize(pop)
    print(
        f"generate: {took:.1f}s  peak RSS {rss:,.0f} MiB  "
        f"devices {s['devices']:,} ({s['devices'] / s['users']:.2f}/user)"
    )
    print(
        f"rings: {s['rings']:,} ({s['ring_size_min']}-{s['ring_size_max']}), "
        f"by kind {s['rings_by_kind']}"
    )
    print(f"labels: {s['labels']}")

    u = pop.users.join(pop.truth, on="user_id").with_columns(
        box=_mailbox("email"),
        num=pl.col("phone").str.replace_all(r"\D", "").str.slice(-10).cast(pl.Int64),
    )
    honest = u.filter(pl.col("is_fraud") == 0)
    shared_box = honest.drop_nulls("box").group_by("box").len().filter(pl.col("len") > 1)
    shared_phone = honest.drop_nulls("num").group_by("num").len().filter(pl.col("len") > 1)
    near = honest.drop_nulls("num").sort("num").with_columns(gap=pl.col("num").diff())
    print(
        f"honest: {shared_box['len'].sum():,} users on a mailbox another honest account also uses; "
        f"{shared_phone['len'].sum():,} on a shared phone; "
        f"{near.filter((pl.col('gap') > 0) & (pl.col('gap') <= 5)).height:,} phone pairs 1-5 apart"
    )
    d = pop.devices.join(pop.truth, on="user_id")
    per_dev = d.group_by("device_id").agg(
        pl.col("user_id").n_unique().alias("n"), pl.col("is_fraud").max().alias("f")
    )
    per_ip = d.group_by("ip").agg(
        pl.col("user_id").n_unique().alias("n"), pl.col("is_fraud").max().alias("f")
    )
    print(
        f"devices used by 2+ accounts: {per_dev.filter(pl.col('n') > 1).height:,} "
        f"({per_dev.filter((pl.col('n') > 1) & (pl.col('f') == 0)).height:,} purely honest); "
        f"largest {per_dev['n'].max():,}. "
        f"IPs used by 2+: {per_ip.filter(pl.col('n') > 1).height:,}; "
        f"largest {per_ip['n'].max():,}"
    )
    # ring members with no exact shared identifier (mailbox, phone, device, non-hub IP) in-ring
    m = u.drop_nulls("ring_id").select("user_id", "ring_id", "box", "num")
    keys = [
        m.select("user_id", "ring_id", pl.col("box").alias("k")),
        m.select("user_id", "ring_id", pl.col("num").cast(pl.String).alias("k")),
        d.drop_nulls("ring_id").select("user_id", "ring_id", pl.col("device_id").alias("k")),
        d.drop_nulls("ring_id")
        .join(per_ip.filter(pl.col("n") <= 50).select("ip"), on="ip")
        .select("user_id", "ring_id", pl.col("ip").alias("k")),
    ]
    k = pl.concat(keys).drop_nulls("k").unique()
    linked = (
        k.group_by("ring_id", "k")
        .agg(pl.col("user_id"), pl.len())
        .filter(pl.col("len") > 1)
        .explode("user_id")
        .select("user_id")
        .unique()
    )
    n_members = m.height
    print(
        f"ring members sharing an exact identifier with a ring mate: {linked.height:,} / "
        f"{n_members:,} ({linked.height / n_members:.1%}); the rest need fuzzy evidence "
        "(sequences, typos) or nothing links them"
    )


if __name__ == "__main__":
    main()
