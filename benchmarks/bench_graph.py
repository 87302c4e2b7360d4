"""Graph store benchmark: publish throughput (vs a raw UNWIND … MERGE load of the same rows) and
analyst ring-query latency for the embedded and the Bolt store.

    .venv/bin/python benchmarks/bench_graph.py --users 100000          # pipeline + local ArcadeDB
    .venv/bin/python benchmarks/bench_graph.py --run runs/today         # an existing run directory
    .venv/bin/python benchmarks/bench_graph.py --users 2000 --queries 200  # smoke size

Without --graph-uri it starts the local ArcadeDB Bolt server (graphfraud.graph.server) in a
temporary folder and stops it at the end. Prints the workload, then one line per number.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl

from graphfraud.config import load_settings
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.graph.neo4j import Neo4jGraphStore, publish_phases
from graphfraud.graph.server import create_database, free_port, start_server, stop_server
from graphfraud.graph.tables import load_tables
from graphfraud.identifiers import BUILTIN
from graphfraud.schema import USERS_FILE

PASSWORD = "bench-graph-pw"
BATCH = 5000

# The baseline: the same rows, plain MERGE batches, no run tags' sweep, no publish state.


def raw_queries() -> dict[str, str]:
    queries = {
        "upsert_users": "UNWIND $rows AS r MERGE (n:User {id: r.key}) SET n += r.props",
        "upsert_rings": "UNWIND $rows AS r MERGE (n:Ring {id: r.key}) SET n += r.props",
        "upsert_ring_events": "UNWIND $rows AS r MERGE (n:RingEvent {id: r.key}) SET n += r.props",
        "upsert_ring_event_of": "UNWIND $rows AS r MATCH (g:Ring {id: r.ring_id}) "
        "MATCH (e:RingEvent {id: r.event_id}) MERGE (g)-[:HAD_EVENT]->(e)",
        "upsert_memberships": "UNWIND $rows AS r MATCH (u:User {id: r.user_id}) "
        "MATCH (g:Ring {id: r.ring_id}) MERGE (u)-[:MEMBER_OF]->(g)",
        "upsert_links": "UNWIND $rows AS r MATCH (a:User {id: r.user_a}) "
        "MATCH (b:User {id: r.user_b}) MERGE (a)-[l:LINKED {kind: r.props.kind}]->(b) "
        "SET l += r.props",
    }
    for spec in BUILTIN.kinds:
        label, rel = spec.graph_label, spec.holds_type
        queries[f"upsert_{spec.name}_identifiers"] = (
            f"UNWIND $rows AS r MERGE (:{label} {{value: r.value}})"
        )
        queries[f"link_{spec.name}_identifiers"] = (
            f"UNWIND $rows AS r MATCH (u:User {{id: r.user_id}}) "
            f"MATCH (i:{label} {{value: r.value}}) MERGE (u)-[:{rel}]->(i)"
        )
    return queries


def raw_load(driver: Any, database: str, run: Path) -> tuple[int, float]:
    """Load the publish's rows with the plain queries above (constraints first, like publish)."""
    from graphfraud.graph import cypher

    tables = load_tables(run)
    phases = publish_phases(tables)
    queries = raw_queries()
    started = time.perf_counter()
    rows = 0
    with driver.session(database=database) as session:
        for q in cypher.schema_queries(tables.registry):
            session.execute_write(lambda tx, text=q.text: tx.run(text).consume())
        for query, frame in phases:
            text = queries[query.name]
            for offset in range(0, frame.height, BATCH):
                batch = frame.slice(offset, BATCH).to_dicts()
                session.execute_write(lambda tx, t=text, b=batch: tx.run(t, rows=b).consume())
                rows += len(batch)
    return rows, time.perf_counter() - started


def latency(call: Callable[[str], object], ids: list[str]) -> tuple[float, float, float]:
    """p50, p99, mean in ms over `ids` (after 50 warm-up calls)."""
    for user in ids[:50]:
        call(user)
    samples = []
    for user in ids:
        t0 = time.perf_counter()
        call(user)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, round(0.99 * len(samples)) - 1)]
    return statistics.median(samples), p99, statistics.fmean(samples)


def make_run(n_users: int, root: Path) -> Path:
    from graphfraud.pipeline import run_pipeline
    from graphfraud.synthetic import generate_population, write_population

    t0 = time.perf_counter()
    files = write_population(generate_population(n_users, 7), root / "in", fmt="parquet")
    settings = load_settings()
    settings.model.registry = root / "models"
    settings.graph.uri = ""
    run = run_pipeline(files["users"], files.get("devices"), root / "run", settings).run_dir
    print(f"pipeline for {n_users:,} synthetic users: {time.perf_counter() - t0:.1f}s")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run directory")
    parser.add_argument("--users", type=int, default=100_000, help="synthetic users if no --run")
    parser.add_argument("--queries", type=int, default=1000, help="random users for ring_of")
    parser.add_argument("--heap", default="2g", help="JVM heap of the local server")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-graph-") as tmp:
        root = Path(tmp)
        run = args.run or make_run(args.users, root)
        tables = load_tables(run)
        phases = publish_phases(tables)
        print(
            f"workload: run {tables.run_id}: {tables.users.height:,} users, "
            f"{sum(f.height for f in tables.identifiers.values()):,} identifiers, "
            f"{tables.rings.height:,} rings, {tables.links.height:,} links → "
            f"{tables.node_count:,} nodes, {tables.relationship_count:,} relationships, "
            f"{sum(f.height for _, f in phases):,} rows; batches of {BATCH}"
        )
        server = start_server(
            root / "arcadedb",
            PASSWORD,
            bolt_port=free_port(),
            http_port=free_port(),
            heap=args.heap,
        )
        print(f"server: ArcadeDB Bolt ({server.uri}, -Xmx{args.heap}), one writer")
        try:
            from neo4j import GraphDatabase

            with GraphDatabase.driver(server.uri, auth=("root", PASSWORD)) as driver:
                # Two rounds in fresh databases, raw then publish: the JVM's JIT warms during
                # round 1, so round 2 is the fair comparison.
                for round_ in (1, 2):
                    raw_db = create_database(server, PASSWORD, f"bench_raw{round_}")
                    pub_db = create_database(server, PASSWORD, f"bench_publish{round_}")
                    rows, raw_s = raw_load(driver, raw_db, run)
                    raw_rate = rows / raw_s
                    store = Neo4jGraphStore(driver, pub_db, batch_size=BATCH)
                    report = store.publish(str(run))
                    rate = report.rows / report.seconds
                    print(
                        f"round {round_}: raw UNWIND…MERGE {rows:,} rows in {raw_s:.1f}s = "
                        f"{raw_rate:,.0f} rows/s; publish {report.rows:,} rows in "
                        f"{report.seconds:.1f}s = {rate:,.0f} rows/s; "
                        f"publish/raw {rate / raw_rate:.2f}"
                    )
                again = store.publish(str(run))
                print(
                    f"publish (same run again, idempotent): {again.seconds:.1f}s = "
                    f"{again.rows / again.seconds:,.0f} rows/s"
                )
                users = pl.read_parquet(run / USERS_FILE, columns=["user_id"])["user_id"].to_list()
                rng = random.Random(11)
                ids = [rng.choice(users) for _ in range(args.queries)]
                embedded = EmbeddedGraphStore(run)
                t0 = time.perf_counter()
                embedded.ring_of(ids[0])
                print(f"embedded index build (first query): {time.perf_counter() - t0:.2f}s")
                for name, s in (("embedded", embedded), ("bolt", store)):
                    p50, p99, mean = latency(s.ring_of, ids)
                    print(
                        f"ring_of latency {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
                        f"mean {mean:.2f} ms over {len(ids)} random users"
                    )
                in_ring = tables.members["user_id"].to_list()
                pairs = [rng.sample(in_ring, 2) for _ in range(min(200, args.queries))]
                for name, s in (("embedded", embedded), ("bolt", store)):
                    p50, p99, mean = latency(lambda p, s=s: s.explain_link(*p), pairs)  # type: ignore[arg-type,misc]
                    print(
                        f"explain_link latency {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms, "
                        f"mean {mean:.2f} ms over {len(pairs)} random ring-member pairs"
                    )
        finally:
            stop_server(root / "arcadedb")


if __name__ == "__main__":
    main()
