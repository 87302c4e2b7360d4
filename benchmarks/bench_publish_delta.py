"""Delta publish vs full publish of the next night, on the local Bolt server (ArcadeDB).

    PYTHONPATH=. .venv/bin/python benchmarks/bench_publish_delta.py --users 100000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_publish_delta.py --users 2000   # smoke size

Workload: one synthetic population; day 1 = all but the day-2 sign-ups; day 2 = 2 % new users,
1 % of users with a new phone, 0.1 % erased (`graphfraud.synthetic.nights`). Both nights go
through the batch (GBM only, same registry). Day 2 is published two ways:

- `same-model night`: what an incremental night scoring with the promoted model writes. Day 2's
  links and rings come from the batch; users whose ring and links did not change keep day 1's
  score and reasons, rings whose members did not change keep day 1's row, and the model version
  is day 1's (the batch retrains each night, which moves every score; an incremental night does
  not). This is the night the ≤ 10 % target is about.
- `retrained night` (`--retrained`): day 2 exactly as the batch wrote it, every score moved.

Day 1 is published in full into an empty graph, then day 2 as a delta, then day 2 again as a
forced full publish (`--full`: MERGE everything, then sweep; what every night cost before —
re-MERGEing an element costs about what creating it does, `bench_graph.py`). Prints the
workload, each publish with what it sent, the delta/full ratio, and whether the full publish
after the delta found anything to add or sweep (it must not). Timings include reading, hashing
and diffing both runs' tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
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
    LINKS_FILE,
    MANIFEST_FILE,
    MEMBERS_FILE,
    RING_SCORES_FILE,
    RINGS_FILE,
    SCORES_FILE,
)

PASSWORD = "bench-delta-pw"
BATCH = 5000


def make_nights(n_users: int, seed: int, root: Path, shares: tuple[float, float, float]) -> Any:
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
    for day, users, devices in (
        ("day1", split.day1_users, split.day1_devices),
        ("day2", split.day2_users, split.day2_devices),
    ):
        users.write_parquet(root / f"{day}-users.parquet")
        devices.write_parquet(root / f"{day}-devices.parquet")
        t0 = time.perf_counter()
        runs[day] = run_pipeline(
            root / f"{day}-users.parquet",
            root / f"{day}-devices.parquet",
            root / "runs" / day,
            settings,
            previous=runs.get("day1"),
        ).run_dir
        print(f"batch {day}: {time.perf_counter() - t0:.1f}s")
    return runs


def _incident(links: pl.DataFrame) -> pl.DataFrame:
    """user_id, hash of every link row touching the user (order-free)."""
    rows = links.with_columns(_h=links.hash_rows(7))
    both = pl.concat(
        [rows.select(user_id="user_a", _h="_h"), rows.select(user_id="user_b", _h="_h")]
    )
    return both.group_by("user_id").agg(links_h=pl.col("_h").sort().hash(3))


def same_model_night(day1: Path, day2: Path, out: Path) -> Path:
    """Day 2 as an incremental night would publish it (see the module docstring)."""
    shutil.copytree(day2, out)
    m1 = json.loads((day1 / MANIFEST_FILE).read_text())
    members1, members2 = pl.read_parquet(day1 / MEMBERS_FILE), pl.read_parquet(day2 / MEMBERS_FILE)
    sets1 = members1.group_by("ring_id").agg(m=pl.col("user_id").sort())
    sets2 = members2.group_by("ring_id").agg(m=pl.col("user_id").sort())
    same_rings = sets2.join(sets1, on=["ring_id", "m"], how="semi").select("ring_id")

    rings1, rings2 = pl.read_parquet(day1 / RINGS_FILE), pl.read_parquet(day2 / RINGS_FILE)
    kept = rings1.join(same_rings, on="ring_id", how="semi")
    rings = pl.concat([kept, rings2.join(same_rings, on="ring_id", how="anti")]).sort("ring_id")
    rings.write_parquet(out / RINGS_FILE)
    rs1, rs2 = pl.read_parquet(day1 / RING_SCORES_FILE), pl.read_parquet(day2 / RING_SCORES_FILE)
    ring_scores = pl.concat(
        [
            rs1.join(same_rings, on="ring_id", how="semi"),
            rs2.join(same_rings, on="ring_id", how="anti"),
        ]
    )
    ring_scores.write_parquet(out / RING_SCORES_FILE)

    inc1 = _incident(pl.read_parquet(day1 / LINKS_FILE))
    inc2 = _incident(pl.read_parquet(day2 / LINKS_FILE))
    s1, s2 = pl.read_parquet(day1 / SCORES_FILE), pl.read_parquet(day2 / SCORES_FILE)
    ring2 = members2.select("user_id", "ring_id")
    ring1 = members1.select("user_id", "ring_id")
    untouched = (
        s2.select("user_id")
        .join(ring2, on="user_id", how="left")
        .join(ring1.rename({"ring_id": "ring_1"}), on="user_id", how="left")
        .filter(pl.col("ring_id").eq_missing(pl.col("ring_1")))
        .filter(
            pl.col("ring_id").is_null() | pl.col("ring_id").is_in(same_rings["ring_id"].implode())
        )
        .join(inc2, on="user_id", how="left")
        .join(inc1.rename({"links_h": "links_1"}), on="user_id", how="left")
        .filter(pl.col("links_h").eq_missing(pl.col("links_1")))
        .join(s1.select("user_id"), on="user_id", how="semi")
        .select("user_id")
    )
    scores = pl.concat(
        [
            s1.join(untouched, on="user_id", how="semi"),
            s2.join(untouched, on="user_id", how="anti").with_columns(
                model_version=pl.lit(m1.get("model_version"), s2.schema["model_version"])
            ),
        ]
    ).sort("user_id")
    scores.write_parquet(out / SCORES_FILE)
    manifest = json.loads((out / MANIFEST_FILE).read_text())
    manifest["run_id"] += "-same-model"
    manifest["model_version"] = m1.get("model_version")
    (out / MANIFEST_FILE).write_text(json.dumps(manifest))
    print(
        f"same-model night: {untouched.height:,} of {scores.height:,} users and "
        f"{same_rings.height:,} of {rings.height:,} rings unchanged since day 1"
    )
    return out


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
    parser.add_argument("--retrained", action="store_true", help="also the retrained night")
    parser.add_argument("--phases", action="store_true", help="log each phase's time")
    args = parser.parse_args()
    if args.phases:
        logging.basicConfig(format="    %(message)s")
        logging.getLogger("graphfraud.graph.neo4j").setLevel(logging.INFO)

    with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
        root = Path(tmp)
        runs = make_nights(args.users, args.seed, root, (args.new, args.changed, args.deleted))
        nights = {"same-model night": same_model_night(runs["day1"], runs["day2"], root / "d2s")}
        if args.retrained:
            nights["retrained night"] = runs["day2"]
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
                    full = store.publish(str(run), full=True)
                    print(_line(f"{name}: day 2, FULL publish (--full) over the same graph", full))
                    # The full publish re-MERGEs every element and sweeps whatever day 2 lacks: had
                    # the delta left a stale or missing element, it would delete or create it here.
                    converged = (full.deleted_nodes, full.deleted_relationships) == (0, 0) and (
                        _counts(driver, db) == before
                    )
                    print(
                        f"{name}: delta / full = {delta.seconds / full.seconds:.1%} of the time, "
                        f"{delta.rows / full.rows:.1%} of the rows; the full publish after the "
                        f"delta found nothing to add or sweep: {converged}"
                    )

        finally:
            stop_server(root / "arcadedb")


if __name__ == "__main__":
    main()
