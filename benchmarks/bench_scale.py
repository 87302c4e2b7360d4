"""Scale benchmark: the whole batch end to end, time and peak memory per stage.

Workload: `--users` synthetic users (default 1,000,000; about 1.7 device sightings each), written
as Parquet, then `graphfraud run` in a fresh subprocess (so peak RSS is the batch's own). Prints
per-stage wall time and the process's peak RSS after each stage (a high-water mark).

    .venv/bin/python benchmarks/bench_scale.py --users 100000
    .venv/bin/python benchmarks/bench_scale.py --users 1000000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from _common import machine, out_dir

from graphfraud.synthetic import generate_population, write_population


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    root = out_dir(f"scale-{args.users}")
    t0 = time.perf_counter()
    pop = generate_population(args.users, args.seed)
    paths = write_population(pop, root / "data", fmt="parquet")
    n_dev = pop.devices.height
    del pop
    print(
        f"workload: {args.users:,} users, {n_dev:,} device sightings (seed {args.seed}); "
        f"generated in {time.perf_counter() - t0:.1f}s; machine: {machine()}"
    )
    t0 = time.perf_counter()
    subprocess.run(
        [
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
        ],
        check=True,
    )
    wall = time.perf_counter() - t0
    manifest = json.loads((root / "run" / "manifest.json").read_text())
    print(f"\n{'stage':10s} {'seconds':>9s} {'peak RSS MB':>12s}")
    for name, stage in manifest["stages"].items():
        print(f"{name:10s} {stage['seconds']:>9.1f} {stage['peak_rss_mb']:>12.0f}")
    peak = max(s["peak_rss_mb"] for s in manifest["stages"].values())
    print(f"{'total':10s} {wall:>9.1f} {peak:>12.0f}   (wall incl. interpreter start and imports)")
    model = manifest["model"]
    trained = ", ".join(
        f"{k.split('.')[0]} {v:.1f}s" for k, v in model["metrics"].items() if k.endswith(".seconds")
    )
    print(f"model: picked {model['kind']} ({model['version']}); out-of-fold training: {trained}")
    links = manifest["stages"]["link"]
    print(
        f"links: {links.get('links', 0):,}; rings: {manifest['stages']['rings'].get('rings', 0):,}"
    )


if __name__ == "__main__":
    main()
