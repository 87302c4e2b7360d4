"""Engine benchmark: the partitioned stages (link, rings, features) on the local engine and
on Dask.

Workload: `--users` synthetic users, ingested once; then `build_links`, `build_rings` and
`user_features_on` (pair scoring, exact links, per-component Leiden, ring features, user
features) on the local engine (this process) and on a Dask cluster: a `LocalCluster` of
`--workers` single-threaded worker processes, or the scheduler at `--scheduler`. Prints wall
time per stage and engine, the cluster's start-up, and whether every artifact (links,
identifier support, look-alike pairs, communities, ring members, ring features, user features)
is identical. The model and scores run the same code on either engine, so identical features
give identical scores (`tests/engine/test_dask.py` checks it).

    .venv/bin/python benchmarks/bench_engine.py --users 100000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import polars as pl
from _common import machine, peak_rss_mb

from graphfraud.config import load_settings
from graphfraud.engine import SERIAL, Engine
from graphfraud.engine.dask import DaskEngine
from graphfraud.ingest.validate import ingest
from graphfraud.linking.link import build_links
from graphfraud.model.feature_parts import user_features_on
from graphfraud.rings.detect import build_rings, pair_strengths
from graphfraud.synthetic import generate_population


def _stages(
    engine: Engine, users: pl.DataFrame, devices: pl.DataFrame
) -> tuple[dict[str, float], dict[str, pl.DataFrame]]:
    settings = load_settings()
    t0 = time.perf_counter()
    links = build_links(users, devices, settings.link, engine=engine)
    t1 = time.perf_counter()
    rings = build_rings(links.links, users, settings.rings, engine=engine)
    t2 = time.perf_counter()
    features = user_features_on(
        engine, users, devices, links.links, links.support, pair_strengths(links.links),
        rings.members, rings.rings,
        max_share=settings.link.max_share, strong=settings.rings.min_weight,
    )  # fmt: skip
    t3 = time.perf_counter()
    artifacts = {
        "links": links.links,
        "identifiers": links.support.sort("kind", "value"),  # grouped: no fixed order
        "lookalikes": links.lookalikes,
        "communities": rings.communities,
        "ring_members": rings.members,
        "rings": rings.rings,
        "features": features,
    }
    return {"link": t1 - t0, "rings": t2 - t1, "features": t3 - t2}, artifacts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster worker processes")
    parser.add_argument("--scheduler", default=None, help="a running scheduler's address")
    args = parser.parse_args()
    t0 = time.perf_counter()
    pop = generate_population(args.users, args.seed)
    ingested = ingest(pop.users, pop.devices, load_settings().ingest)
    users, devices = ingested.users.sort("user_id"), ingested.devices
    print(
        f"workload: {users.height:,} users, {devices.height:,} device sightings "
        f"(seed {args.seed}); generated + ingested in {time.perf_counter() - t0:.1f}s; "
        f"machine: {machine()}"
    )
    local_times, local = _stages(SERIAL, users, devices)
    t0 = time.perf_counter()
    dask = DaskEngine.connect(args.scheduler, args.workers)
    start = time.perf_counter() - t0
    try:
        where = args.scheduler or f"LocalCluster, {args.workers} worker processes x 1 thread"
        print(f"dask: {where}, {dask.partitions} partitions; started in {start:.1f}s")
        dask_times, on_dask = _stages(dask, users, devices)
    finally:
        dask.close()
    print(f"links: {local['links'].height:,}; ring members: {local['ring_members'].height:,}")
    rows: list[tuple[str, Any, Any]] = [
        (stage, local_times[stage], dask_times[stage]) for stage in local_times
    ]
    rows.append(("total", sum(local_times.values()), sum(dask_times.values())))
    print(f"{'stage':<8}{'local s':>10}{'dask s':>10}")
    for stage, lt, dt in rows:
        print(f"{stage:<8}{lt:>10.2f}{dt:>10.2f}")
    same = {name: on_dask[name].equals(frame) for name, frame in local.items()}
    for name, equal in same.items():
        print(f"identical {name}: {equal} ({local[name].height:,} rows)")
    print(f"all identical: {all(same.values())}; driver peak RSS {peak_rss_mb():.0f} MB")
    if not all(same.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
