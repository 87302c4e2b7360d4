"""Scale benchmark: the whole batch end to end at growing sizes, time and peak memory per stage,
a fitted growth exponent per stage, and the projection to the company's size.

Workload: for each of `--users` (default 1,000,000; several sizes give a growth curve), that many
synthetic users (about 1.7 device sightings each, seed `--seed`), written as Parquet, then
`graphfraud run` in a fresh subprocess (so peak RSS is the batch's own, not the generator's).
Prints per size the wall time and the process's peak RSS after each stage (a high-water mark);
with two sizes or more, per stage the exponent `k` of a least-squares fit `seconds ∝ users^k`
(k ≤ 1.1: linear within noise; more: super-linear) and the same for peak RSS, and both projected
to `--project` users (default 25M) on this machine's cores.

    .venv/bin/python benchmarks/bench_scale.py --users 100000
    .venv/bin/python benchmarks/bench_scale.py --users 250000 500000 1000000 2000000 --models gbm
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import machine, out_dir

from graphfraud.synthetic import generate_population, write_population

# The batch's stages in the order they run (the manifest keeps them by name).
STAGE_ORDER = ("ingest", "link", "rings", "features", "model", "scores", "report")


def in_order(stages: dict[str, Any]) -> list[str]:
    known = [s for s in STAGE_ORDER if s in stages]
    return known + sorted(set(stages) - set(known))


def generate(users: int, seed: int, data: Path) -> tuple[dict[str, Path], int]:
    pop = generate_population(users, seed)
    return write_population(pop, data, fmt="parquet"), pop.devices.height


def run_size(users: int, seed: int, models: list[str] | None, keep: bool) -> dict[str, Any]:
    """One size: generate, run the batch in a fresh process, return its manifest and wall."""
    root = out_dir(f"scale-{users}")
    t0 = time.perf_counter()
    # generated in a child process: at 4M users the generator's memory would stay with this one
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        paths, n_dev = pool.apply(generate, (users, seed, root / "data"))
    print(
        f"\nworkload: {users:,} users, {n_dev:,} device sightings (seed {seed}); "
        f"generated in {time.perf_counter() - t0:.1f}s; machine: {machine()}",
        flush=True,
    )
    shutil.rmtree(root / "run", ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "graphfraud",
        "run",
        "--users",
        str(paths["users"]),
        "--devices",
        str(paths["devices"]),
        "--out",
        str(root / "run"),
        "--registry",
        str(root / "models"),
        "--quiet",
    ]
    if models:
        command += ["--models", ",".join(models)]
    t0 = time.perf_counter()
    subprocess.run(command, check=True)
    wall = time.perf_counter() - t0
    manifest = json.loads((root / "run" / "manifest.json").read_text())
    print_size(manifest, wall)
    if not keep:
        shutil.rmtree(root / "data", ignore_errors=True)
    return {"users": users, "wall": wall, "stages": manifest["stages"]}


def print_size(manifest: dict[str, Any], wall: float) -> None:
    print(f"{'stage':10s} {'seconds':>9s} {'peak RSS MB':>12s}")
    for name in in_order(manifest["stages"]):
        stage = manifest["stages"][name]
        print(f"{name:10s} {stage['seconds']:>9.1f} {stage['peak_rss_mb']:>12.0f}")
    peak = max(s["peak_rss_mb"] for s in manifest["stages"].values())
    print(f"{'total':10s} {wall:>9.1f} {peak:>12.0f}   (wall incl. interpreter start and imports)")
    model = manifest["model"]
    trained = ", ".join(
        f"{k.split('.')[0]} {v:.1f}s" for k, v in model["metrics"].items() if k.endswith(".seconds")
    )
    print(f"model: picked {model['kind']} ({model['version']}); out-of-fold training: {trained}")
    links = manifest["stages"]["link"]
    rings = manifest["stages"]["rings"].get("rings", 0)
    print(f"links: {links.get('links', 0):,}; rings: {rings:,}", flush=True)


def exponent(users: list[int], values: list[float]) -> float:
    """k of the least-squares line log(value) = k·log(users) + c."""
    return float(np.polyfit(np.log(users), np.log(np.maximum(values, 1e-3)), 1)[0])


def project(users: list[int], values: list[float], target: int) -> float:
    """The fitted power law at `target` users, anchored at the largest measured size (the
    small sizes carry fixed costs that the fit's constant would otherwise drag along)."""
    return float(values[-1] * (target / users[-1]) ** exponent(users, values))


def print_curve(results: list[dict[str, Any]], target: int) -> None:
    users = [r["users"] for r in results]
    stages = in_order(results[-1]["stages"])
    print(f"\ngrowth curve ({len(users)} sizes: {', '.join(f'{u:,}' for u in users)})")
    header = "".join(f"{u // 1000:>9,}k" for u in users)
    print(f"{'seconds':10s}{header} {'k':>6s} {f'@{target / 1e6:g}M':>10s}")
    for name in [*stages, "wall"]:
        secs = [
            r["wall"] if name == "wall" else r["stages"].get(name, {}).get("seconds", math.nan)
            for r in results
        ]
        row = "".join(f"{s:>10.1f}" for s in secs)
        print(
            f"{name:10s}{row} {exponent(users, secs):>6.2f} {project(users, secs, target):>10,.0f}"
        )
    print(f"{'peak MB':10s}{header} {'k':>6s} {f'@{target / 1e6:g}M':>10s}")
    for name in stages:
        mem = [r["stages"][name]["peak_rss_mb"] for r in results]
        row = "".join(f"{m:>10,.0f}" for m in mem)
        print(f"{name:10s}{row} {exponent(users, mem):>6.2f} {project(users, mem, target):>10,.0f}")
    print(
        "(seconds on this machine's cores; k > 1.1 is super-linear. Peak MB is a high-water mark "
        "per stage, so a stage's row never falls below the one before it.)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[1_000_000])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--models", nargs="+", default=None, help="model candidates (gbm, gnn…)")
    parser.add_argument("--project", type=int, default=25_000_000, help="users to project to")
    parser.add_argument("--keep-data", action="store_true", help="keep each size's input files")
    args = parser.parse_args()
    results = [run_size(n, args.seed, args.models, args.keep_data) for n in sorted(args.users)]
    if len(results) >= 2:
        print_curve(results, args.project)
    Path(out_dir("scale") / "growth.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
