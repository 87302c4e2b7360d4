"""Incremental night benchmark: day 2 as a full run against day 2 built on day 1.

Workload: a synthetic population (`generate_population`, seed `--seed`) with `--users` users on
day 1; day 2 adds 2 % new users, changes one identifier of 1 % of day 1's users (email, phone or
a new device sighting) and erases 0.1 % (`synthetic.nights.two_nights`). Inputs are Parquet.
Nights, each in a fresh process (so a peak RSS is that night's own), one registry:

1. day 1, full (trains and promotes the model: `--models`, default gbm + GNN + blend);
2. day 2, full, retraining — what a night costs today;
3. day 2, full, scored by the promoted model — the reference the incremental nights must equal;
4. day 2, incremental on the full snapshot (`--previous day1`);
5. day 2, incremental on the delta (`--previous day1 --delta`).

Prints wall time and peak RSS per stage, the incremental nights' share of the full night's wall
time, and whether links, rings (member sets) and scores (max |Δ|) equal the reference's.

    .venv/bin/python benchmarks/bench_incremental.py --users 100000
    .venv/bin/python benchmarks/bench_incremental.py --users 1000000   # ~9 GB, many minutes
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from _common import machine, out_dir

STAGES = ("ingest", "link", "rings", "features", "model", "scores")


def _night(kwargs: dict[str, Any], models: list[str], registry: str, queue: Any) -> None:
    """One `run_pipeline` in this (fresh) process; puts its manifest and wall time. `retrain`
    is the retrain policy (default `always`)."""
    from graphfraud.config import load_settings
    from graphfraud.pipeline import run_pipeline

    settings = load_settings()
    settings.model.registry = Path(registry)
    settings.model.candidates = models
    settings.model.retrain = kwargs.pop("retrain", "always")
    t0 = time.perf_counter()
    result = run_pipeline(settings=settings, **kwargs)
    queue.put({"wall": time.perf_counter() - t0, "manifest": result.manifest})


def night(models: list[str], registry: Path, reuse: bool = False, **kwargs: Any) -> dict[str, Any]:
    """One night in a fresh process; with `reuse`, a night this benchmark already ran into the
    same directory (its `bench_night.json`) is read back instead of run again."""
    record = Path(kwargs["out"]) / "bench_night.json"
    if reuse and record.exists():
        kept: dict[str, Any] = json.loads(record.read_text())
        return kept
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_night, args=(kwargs, models, str(registry), queue))
    proc.start()
    got: dict[str, Any] = queue.get()
    proc.join()
    if proc.exitcode:
        raise SystemExit(f"night {kwargs['out']} failed (exit {proc.exitcode})")
    record.write_text(json.dumps(got, default=str))
    return got


def _partition(run: Path) -> set[frozenset[str]]:
    members = pl.read_parquet(run / "ring_members.parquet").group_by("ring_id").agg("user_id")
    return {frozenset(m) for m in members["user_id"].to_list()}


def compare(reference: Path, run: Path) -> str:
    order = ["user_a", "user_b", "kind"]
    links = (
        pl.read_parquet(run / "links.parquet")
        .sort(order)
        .equals(pl.read_parquet(reference / "links.parquet").sort(order))
    )
    rings = _partition(run) == _partition(reference)
    a = pl.read_parquet(reference / "scores.parquet").sort("user_id")
    b = pl.read_parquet(run / "scores.parquet").sort("user_id")
    same_users = a["user_id"].equals(b["user_id"])
    delta = float(np.abs(a["score"].to_numpy() - b["score"].to_numpy()).max()) if same_users else -1
    return f"links identical: {links}; rings identical: {rings}; scores max |Δ| {delta:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000, help="day 1's users")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--models", default="gbm,gnn,gnn_stack", help="model candidates")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="keep the day-1 and full day-2 nights of an earlier run of this benchmark (same "
        "--users, --seed, --models, output folder) and rerun only the incremental nights",
    )
    args = parser.parse_args()
    from graphfraud.synthetic import generate_population
    from graphfraud.synthetic.nights import two_nights

    root = out_dir(f"incremental-{args.users}")
    data = root / "data"
    data.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    kept = partial(night, reuse=args.reuse)
    nights = two_nights(generate_population(round(args.users / 0.98), args.seed), args.seed)
    for name in ("day1_users", "day1_devices", "day2_users", "day2_devices"):
        getattr(nights, name).write_parquet(data / f"{name}.parquet")
    for name in ("delta_users", "delta_devices"):
        getattr(nights, name).write_parquet(data / f"{name}.parquet")
    print(
        f"workload: day 1 {nights.day1_users.height:,} users, "
        f"{nights.day1_devices.height:,} sightings; day 2 {nights.day2_users.height:,} users: "
        f"{len(nights.new):,} new, {len(nights.changed):,} changed, {len(nights.deleted):,} "
        f"erased; delta {nights.delta_users.height:,} user rows, "
        f"{nights.delta_devices.height:,} sightings (seed {args.seed}; generated in "
        f"{time.perf_counter() - t0:.1f}s); models {args.models}; machine: {machine()}"
    )
    models = args.models.split(",")
    registry = root / "models"

    def files(kind: str) -> dict[str, Path]:
        return {
            "users": data / f"{kind}_users.parquet",
            "devices": data / f"{kind}_devices.parquet",
        }

    day1 = root / "day1"
    runs = {
        "day 1 full": kept(models, registry, **files("day1"), out=day1),
        "day 2 full, retrain": kept(models, registry, **files("day2"), out=root / "full"),
        "day 2 full, promoted": kept(
            models, registry, **files("day2"), out=root / "reference", retrain="never"
        ),
        "day 2 incremental, snapshot": night(
            models, registry, **files("day2"), out=root / "snapshot", previous=day1, retrain="never"
        ),
        "day 2 incremental, delta": night(
            models,
            registry,
            **files("delta"),
            out=root / "delta",
            previous=day1,
            delta=True,
            retrain="never",
        ),
    }
    width = max(len(n) for n in runs)
    print(f"\n{'night':<{width}}  " + "  ".join(f"{s:>14}" for s in STAGES) + "      wall")
    for name, got in runs.items():
        stages = got["manifest"]["stages"]
        cells = [
            f"{stages[s]['seconds']:6.1f}s {stages[s]['peak_rss_mb'] / 1024:4.1f}G" for s in STAGES
        ]
        print(
            f"{name:<{width}}  " + "  ".join(f"{c:>14}" for c in cells) + f"  {got['wall']:7.1f}s"
        )
    print("(per stage: wall seconds, the night's peak RSS so far)")
    full = runs["day 2 full, retrain"]["wall"]
    reference = runs["day 2 full, promoted"]["wall"]
    for name in ("day 2 incremental, snapshot", "day 2 incremental, delta"):
        wall = runs[name]["wall"]
        out = root / ("snapshot" if "snapshot" in name else "delta")
        print(
            f"\n{name}: {wall:.1f}s = {100 * wall / full:.1f} % of the full night "
            f"({100 * wall / reference:.1f} % of a full night without retraining); "
            + compare(root / "reference", out)
        )
        link = runs[name]["manifest"]["stages"]["link"]
        rings = runs[name]["manifest"]["stages"]["rings"]
        focus = {k: v for k, v in link.items() if k.endswith(("_focus_users", "_reused_pairs"))}
        print(
            f"  link: {json.dumps(focus)}; rings: {rings.get('components_recomputed')} of "
            f"{rings.get('components')} components recomputed "
            f"({rings.get('users_recomputed')} users)"
        )


if __name__ == "__main__":
    main()
