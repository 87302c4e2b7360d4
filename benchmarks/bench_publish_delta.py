"""Delta publish vs full publish of the next night, on the local Bolt server (ArcadeDB).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_publish_delta.py --users 100000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_publish_delta.py --users 2000   # smoke size

Workload: one synthetic population; day 1 = all but the day-2 sign-ups; day 2 = 2 % new users,
1 % of users with a new phone, 0.1 % erased (`graphfraud.synthetic.nights`). Day 1 is a full
batch (GBM, trains and promotes); day 2 is what the product runs on an ordinary night, an
incremental night on day 1 scored by the promoted model (`--previous day1 --retrain never`):
its real output, every score it moved included. `--retrained` also publishes a day 2 that
retrains (every score moves).

On one local Bolt server (ArcadeDB), per day-2 night, into a fresh database:

1. day 1, full publish into an empty graph (also warms the JVM);
2. day 2, DELTA publish over day 1 — what a night costs now;
3. day 2, full publish (`--full`) over that graph: it must find nothing to add or sweep
   (convergence check; MERGEs of unchanged elements only);
4. day 1, full publish over it (back to day 1);
5. day 2, full publish over day 1's graph — what a night cost before the delta publish: the
   ratio's denominator.

Prints the workload, each publish with what it sent, and delta / full. Timings include reading,
hashing and diffing both runs' tables.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

from graphfraud.config import load_settings
from graphfraud.graph.base import PublishReport
from graphfraud.graph.neo4j import Neo4jGraphStore
from graphfraud.graph.server import create_database, free_port, start_server, stop_server
from graphfraud.graph.tables import load_tables
from graphfraud.schema import (
    SCORES_FILE,
)

PASSWORD = "bench-delta-pw"
BATCH = 5000


def make_nights(
    n_users: int, seed: int, root: Path, shares: tuple[float, float, float], retrained: bool
) -> Any:
    from graphfraud.pipeline import run_pipeline
    from graphfraud.synthetic import generate_population
    from graphfraud.synthetic.nights import two_nights

    t0 = time.perf_counter()
    split = two_nights(
        generate_population(n_users, seed),
        seed,
        new_share=shares[0],
        changed_share=shares[1],
        deleted_share=shares[2],
    )
    print(
        f"population: {n_users:,} users (seed {seed}); day 2: {len(split.new):,} new, "
        f"{len(split.changed):,} with a changed identifier, {len(split.deleted):,} erased "
        f"({time.perf_counter() - t0:.1f}s)"
    )
    settings = load_settings()
    settings.model.registry = root / "models"
    settings.model.candidates = ["gbm"]
    settings.graph.uri = ""
    runs: dict[str, Path] = {}
    nights = [
        ("day1", "always", split.day1_users, split.day1_devices),
        ("day2", "never", split.day2_users, split.day2_devices),
    ]
    if retrained:
        nights.append(("day2-retrained", "always", split.day2_users, split.day2_devices))
    for name, retrain, users, devices in nights:
        day = name.split("-")[0]
        users.write_parquet(root / f"{day}-users.parquet")
        devices.write_parquet(root / f"{day}-devices.parquet")
        settings.model.retrain = retrain
        t0 = time.perf_counter()
        runs[name] = run_pipeline(
            root / f"{day}-users.parquet",
            root / f"{day}-devices.parquet",
            root / "runs" / name,
            settings,
            previous=runs.get("day1"),
        ).run_dir
        print(f"batch {name} (retrain {retrain}): {time.perf_counter() - t0:.1f}s")
    _changed_scores(runs["day1"], runs["day2"])
    return runs


def _changed_scores(day1: Path, day2: Path) -> None:
    """How many of the users both nights hold did the incremental night re-score."""
    a = pl.read_parquet(day1 / SCORES_FILE, columns=["user_id", "score"])
    b = pl.read_parquet(day2 / SCORES_FILE, columns=["user_id", "score"])
    both = a.join(b, on="user_id", suffix="_2")
    delta = (pl.col("score") - pl.col("score_2")).abs()
    moved = both.select((delta > bar).sum().alias(str(bar)) for bar in (0.0, 1e-3, 1e-2)).row(0)
    print(
        f"incremental night: {moved[0]:,} of {both.height:,} users' scores moved since day 1 "
        f"({moved[1]:,} by more than 0.001, {moved[2]:,} by more than 0.01): a user's model "
        "inputs hold its neighbours' features two hops out, so drift anywhere near it moves it"
    )


def _line(label: str, report: PublishReport) -> str:
    return (
        f"{label}: {report.seconds:.1f}s, {report.mode} ({report.reason}); sent {report.rows:,} "
        f"rows: upserted {report.upserted_nodes:,} nodes + {report.upserted_relationships:,} "
        f"relationships, deleted {report.deleted_nodes:,} nodes + "
        f"{report.deleted_relationships:,} relationships"
    )


def _counts(driver: Any, db: str) -> tuple[int, int]:
    n, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS n", database_=db)
    r, _, _ = driver.execute_query("MATCH ()-[r]->() RETURN count(r) AS n", database_=db)
    return int(n[0]["n"]), int(r[0]["n"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--new", type=float, default=0.02)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--deleted", type=float, default=0.001)
    parser.add_argument("--heap", default="2g", help="JVM heap of the local server")
    parser.add_argument(
        "--retrained", action="store_true", help="also a day 2 that retrains (every score moves)"
    )
    parser.add_argument("--phases", action="store_true", help="log each phase's time")
    args = parser.parse_args()
    if args.phases:
        logging.basicConfig(format="    %(message)s")
        logging.getLogger("graphfraud.graph.neo4j").setLevel(logging.INFO)

    with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
        root = Path(tmp)
        shares = (args.new, args.changed, args.deleted)
        runs = make_nights(args.users, args.seed, root, shares, args.retrained)
        nights = {"incremental night": runs["day2"]}
        if args.retrained:
            nights["retrained night"] = runs["day2-retrained"]
        for name, run in [("day 1", runs["day1"]), *nights.items()]:
            t = load_tables(run)
            print(
                f"{name}: {t.users.height:,} users, {t.rings.height:,} rings, "
                f"{t.links.height:,} links → {t.node_count:,} nodes + "
                f"{t.relationship_count:,} relationships"
            )
        server = start_server(
            root / "arcadedb",
            PASSWORD,
            bolt_port=free_port(),
            http_port=free_port(),
            heap=args.heap,
        )
        print(f"server: ArcadeDB Bolt ({server.uri}, -Xmx{args.heap}), batches of {BATCH}")
        try:
            from neo4j import GraphDatabase

            with GraphDatabase.driver(server.uri, auth=("root", PASSWORD)) as driver:
                for i, (name, run) in enumerate(nights.items()):
                    db = create_database(server, PASSWORD, f"night{i}")
                    store = Neo4jGraphStore(driver, db, batch_size=BATCH)
                    day1 = store.publish(str(runs["day1"]))  # also warms the JVM's JIT
                    print(_line(f"{name}: day 1, full publish into an empty graph", day1))
                    delta = store.publish(str(run))
                    print(_line(f"{name}: day 2, DELTA publish over day 1", delta))
                    before = _counts(driver, db)
                    again = store.publish(str(run), full=True)
                    print(_line(f"{name}: day 2, full publish over the delta's graph", again))
                    # The full publish re-MERGEs every element and sweeps whatever day 2 lacks: had
                    # the delta left a stale or missing element, it would delete or create it here.
                    converged = (again.deleted_nodes, again.deleted_relationships) == (0, 0) and (
                        _counts(driver, db) == before
                    )
                    back = store.publish(str(runs["day1"]), full=True)
                    print(_line(f"{name}: day 1, full publish over day 2 (back)", back))
                    full = store.publish(str(run), full=True)
                    print(_line(f"{name}: day 2, FULL publish over day 1", full))
                    print(
                        f"{name}: delta / full = {delta.seconds / full.seconds:.1%} of the time "
                        f"({delta.seconds / day1.seconds:.1%} of the first publish), "
                        f"{delta.rows / full.rows:.1%} of the rows; the full publish after the "
                        f"delta found nothing to add or sweep: {converged}"
                    )

        finally:
            stop_server(root / "arcadedb")


if __name__ == "__main__":
    main()
