"""Bulk-import export benchmark: how long `write_import_csvs` takes to write a run's whole graph
as `neo4j-admin database import` CSVs, how big the files are, and peak memory.

    PYTHONPATH=.:benchmarks .venv/bin/python benchmarks/bench_bulk_csv.py --users 100000
    PYTHONPATH=.:benchmarks .venv/bin/python benchmarks/bench_bulk_csv.py --run runs/today

Prints the workload, then one line per number. (The import itself needs a Neo4j server and is
not timed here.)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import machine, peak_rss_mb
from bench_graph import make_run

from graphfraud.graph.bulk import write_import_csvs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run directory")
    parser.add_argument("--users", type=int, default=100_000, help="synthetic users if no --run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bulk-") as tmp:
        root = Path(tmp)
        run = args.run if args.run is not None else make_run(args.users, root)
        t0 = time.perf_counter()
        export = write_import_csvs(run, root / "import")
        seconds = time.perf_counter() - t0
        files = [p for p in (root / "import").rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        rows = sum(f.rows for f in export.files)
        print(f"machine: {machine()}")
        print(
            f"workload: run {export.run_id}: {export.nodes:,} nodes + {export.relationships:,} "
            f"relationships (+ the meta node) in {len(export.files)} import sources"
        )
        print(f"write_import_csvs: {seconds:.1f}s ({rows / seconds:,.0f} rows/s)")
        print(f"files: {len(files)}, {size / 2**20:.1f} MiB")
        print(f"array delimiter {export.array_delimiter!r}, multiline fields {export.multiline}")
        print(f"peak RSS: {peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
