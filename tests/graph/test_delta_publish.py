"""Delta publish on the real Bolt server, two real nights of the batch: day 1 published in full,
then day 2 as a delta must leave exactly the graph a full publish of day 2 makes (and the one
the embedded store answers from); a crash mid-delta converges on rerun; erased users vanish."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from graphfraud.errors import GraphStoreUnavailable, NotFound
from graphfraud.graph.base import PublishReport
from graphfraud.graph.bulk import write_import_csvs
from graphfraud.graph.cypher import Query
from graphfraud.graph.delta import diff_phases, graph_phases, row_hashes
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.graph.neo4j import Neo4jGraphStore
from graphfraud.graph.server import BoltServer
from graphfraud.graph.tables import load_tables
from graphfraud.schema import RINGS_FILE
from tests.conftest import BOLT_TEST_PASSWORD
from tests.graph.graphdump import dump_graph, publish_state, tables_dump, tagged
from tests.graph.importcsv import load_into, read_export

pytestmark = [pytest.mark.slow, pytest.mark.bolt]

BATCH = 40  # the crashing store's batches: several per phase even on a small night


@dataclass(frozen=True)
class TwoNights:
    day1: Path
    day2: Path
    new: tuple[str, ...]
    changed: tuple[str, ...]
    deleted: tuple[str, ...]


@pytest.fixture(scope="module")
def nights(tmp_path_factory: pytest.TempPathFactory) -> TwoNights:
    """Day 1 and day 2 of the batch on an 800-user population (day 2: 3 % new users, 2 % with
    a changed identifier, 1 % erased), the same settings and registry both nights."""
    from graphfraud.config import load_settings
    from graphfraud.pipeline import run_pipeline
    from graphfraud.synthetic import LabelPolicy, generate_population
    from graphfraud.synthetic.nights import two_nights

    root = tmp_path_factory.mktemp("nights")
    labels = LabelPolicy(labelled_rings=1.0, member_rate=0.5, honest_rate=0.2)
    population = generate_population(800, 11, fraud_share=0.1, labels=labels)
    split = two_nights(population, 1, new_share=0.03, changed_share=0.02, deleted_share=0.01)
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
        runs[day] = run_pipeline(
            root / f"{day}-users.parquet",
            root / f"{day}-devices.parquet",
            root / "runs" / day,
            settings,
            previous=runs.get("day1"),
        ).run_dir
    return TwoNights(
        runs["day1"], runs["day2"], tuple(split.new), tuple(split.changed), tuple(split.deleted)
    )


def _store(driver: Any, database: str) -> Neo4jGraphStore:
    return Neo4jGraphStore(driver, database, batch_size=1000)


@pytest.fixture(scope="module")
def full_day2(
    nights: TwoNights, bolt_driver: Any, new_bolt_database: Callable[[str], str]
) -> tuple[list[str], list[str]]:
    """The canonical dump of day 2 published in full into an empty graph."""
    db = new_bolt_database("full_day2")
    report = _store(bolt_driver, db).publish(str(nights.day2))
    assert (report.mode, report.reason) == ("full", "the graph holds no published run")
    return dump_graph(bolt_driver, db)


def _day1_graph(driver: Any, new_db: Callable[[str], str], nights: TwoNights, hint: str) -> str:
    db = new_db(hint)
    assert _store(driver, db).publish(str(nights.day1)).mode == "full"
    return db


@dataclass(frozen=True)
class Published:
    database: str
    report: PublishReport
    store: Neo4jGraphStore


@pytest.fixture(scope="module")
def delta_day2(
    nights: TwoNights, bolt_driver: Any, new_bolt_database: Callable[[str], str]
) -> Published:
    """Day 1 published in full, then day 2 as a delta, into one graph."""
    db = _day1_graph(bolt_driver, new_bolt_database, nights, "delta")
    store = _store(bolt_driver, db)
    return Published(db, store.publish(str(nights.day2)), store)


def test_day2_delta_equals_day2_full(
    nights: TwoNights,
    full_day2: tuple[list[str], list[str]],
    delta_day2: Published,
    bolt_driver: Any,
) -> None:
    db, report = delta_day2.database, delta_day2.report
    day1_run = load_tables(nights.day1).run_id
    assert (report.mode, report.base_run_id) == ("delta", day1_run)
    assert report.reason == f"delta from run {day1_run}"
    assert dump_graph(bolt_driver, db) == full_day2
    assert full_day2 == tables_dump(load_tables(nights.day2))  # what the embedded store serves

    # the delta wrote exactly what it counted, and less than the whole graph
    assert tagged(bolt_driver, db, report.run_id) == (
        report.upserted_nodes,
        report.upserted_relationships,
    )
    assert report.deleted_nodes >= len(nights.deleted)
    assert report.deleted_relationships > 0
    assert report.rows < report.nodes + report.relationships
    state = publish_state(bolt_driver, db)
    assert state is not None
    assert (state["status"], state["run_id"], state["mode"], state["base_run_id"]) == (
        "complete",
        report.run_id,
        "delta",
        day1_run,
    )
    assert state["upserted_nodes"] == report.upserted_nodes

    # erased users are gone, with every identifier nobody else holds
    records, _, _ = bolt_driver.execute_query(
        "UNWIND $ids AS id MATCH (u:User {id: id}) RETURN count(u) AS n",
        ids=list(nights.deleted),
        database_=db,
    )
    assert records[0]["n"] == 0


def test_a_bulk_import_of_day1_then_day2_as_a_delta_over_bolt(
    nights: TwoNights,
    bolt_driver: Any,
    new_bolt_database: Callable[[str], str],
    full_day2: tuple[list[str], list[str]],
    tmp_path: Path,
) -> None:
    """Day 1 arrives by `neo4j-admin` import files (created here over Bolt, as the importer
    would), then day 2 is published as a delta from it: the graph equals a full day 2."""
    export = write_import_csvs(nights.day1, tmp_path / "import")
    db = new_bolt_database("bulk")
    load_into(bolt_driver, db, read_export(tmp_path / "import"))
    assert dump_graph(bolt_driver, db) == tables_dump(load_tables(nights.day1))
    state = publish_state(bolt_driver, db)
    assert state is not None
    assert (state["status"], state["run_id"], state["mode"]) == (
        "complete",
        export.run_id,
        "import",
    )
    report = _store(bolt_driver, db).publish(str(nights.day2))
    assert (report.mode, report.base_run_id) == ("delta", export.run_id)
    assert report.reason == f"delta from run {export.run_id}"
    assert dump_graph(bolt_driver, db) == full_day2


def test_delta_answers_like_the_embedded_store(nights: TwoNights, delta_day2: Published) -> None:
    bolt = delta_day2.store
    embedded = EmbeddedGraphStore(nights.day1)
    assert embedded.publish(str(nights.day2)).run_id == delta_day2.report.run_id
    for user in nights.deleted:
        with pytest.raises(NotFound):
            embedded.ring_of(user)
        with pytest.raises(NotFound):
            bolt.ring_of(user)
    for user in nights.new[:20] + nights.changed[:20]:
        assert bolt.ring_of(user) == embedded.ring_of(user)
    for ring_id in pl.read_parquet(nights.day2 / RINGS_FILE)["ring_id"].to_list()[:30]:
        assert bolt.ring(ring_id) == embedded.ring(ring_id)


def test_republish_sends_nothing_and_full_rewrites_only_tags(
    nights: TwoNights,
    full_day2: tuple[list[str], list[str]],
    delta_day2: Published,
    bolt_driver: Any,
) -> None:
    """Runs after the two above (same graph): an unchanged run is an empty delta; a forced full
    publish rewrites every element (all tagged again) and leaves the same graph."""
    db, store = delta_day2.database, delta_day2.store
    again = store.publish(str(nights.day2))
    assert (again.mode, again.rows, again.upserted_nodes, again.deleted_nodes) == ("delta", 0, 0, 0)
    assert dump_graph(bolt_driver, db) == full_day2
    forced = store.publish(str(nights.day2), full=True)
    assert (forced.mode, forced.reason) == ("full", "a full publish was asked for")
    assert forced.rows == forced.nodes + forced.relationships
    assert dump_graph(bolt_driver, db) == full_day2
    assert tagged(bolt_driver, db, forced.run_id) == (forced.nodes, forced.relationships)


class _CrashingStore(Neo4jGraphStore):
    """A real store whose connection "dies" after `batches` data batches have landed."""

    def __init__(self, driver: Any, database: str, batches: int) -> None:
        super().__init__(driver, database, batch_size=BATCH)
        self.left = batches

    def _write(self, session: Any, query: Query, **params: Any) -> list[dict[str, Any]]:
        if "rows" in params:
            if self.left == 0:
                raise GraphStoreUnavailable(f"injected failure before {query.name}")
            self.left -= 1
        return super()._write(session, query, **params)


def _upsert_batches(nights: TwoNights) -> int:
    a, b = graph_phases(load_tables(nights.day1)), graph_phases(load_tables(nights.day2))
    delta = diff_phases(
        a, b, {p.name: row_hashes(p.rows) for p in a}, {p.name: row_hashes(p.rows) for p in b}
    )
    return sum(-(-d.upserts.height // BATCH) for d in delta.phases)


@pytest.mark.parametrize("when", ["upserts", "deletes"])
def test_crash_mid_delta_then_rerun_converges(
    when: str,
    nights: TwoNights,
    full_day2: tuple[list[str], list[str]],
    bolt_server: BoltServer,
    bolt_driver: Any,
    new_bolt_database: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """A failure after some batches (mid-upserts, or mid-deletes) leaves the marker on day 1;
    rerunning (the store, or the `publish` verb) replays the whole delta and converges."""
    db = _day1_graph(bolt_driver, new_bolt_database, nights, f"crash_{when}")
    day1_run = load_tables(nights.day1).run_id
    upserts = _upsert_batches(nights)
    assert upserts > 4
    crash_after = 3 if when == "upserts" else upserts + 1  # one delete batch has landed
    with pytest.raises(GraphStoreUnavailable, match="injected"):
        _CrashingStore(bolt_driver, db, crash_after).publish(str(nights.day2))
    state = publish_state(bolt_driver, db)
    assert state is not None
    assert (state["status"], state["run_id"], state["target_run_id"], state["mode"]) == (
        "publishing",
        day1_run,  # the marker still names the run the graph held
        load_tables(nights.day2).run_id,
        "delta",
    )
    assert dump_graph(bolt_driver, db) != full_day2  # truly half-way

    if when == "upserts":
        rerun = _store(bolt_driver, db).publish(str(nights.day2))
        assert (rerun.mode, rerun.base_run_id) == ("delta", day1_run)  # the whole delta, replayed
    else:
        _publish_verb(nights, bolt_server, db, tmp_path)
    assert dump_graph(bolt_driver, db) == full_day2


def _publish_verb(nights: TwoNights, server: BoltServer, db: str, tmp_path: Path) -> None:
    """`graphfraud publish` says it sent a delta, and the run's manifest records it."""
    run = tmp_path / "day2"
    shutil.copytree(nights.day2, run)  # same run and `previous`, its own manifest
    env = {
        **os.environ,
        "GRAPHFRAUD_GRAPH__URI": server.uri,
        "GRAPHFRAUD_GRAPH__USER": "root",
        "GRAPHFRAUD_GRAPH__PASSWORD": BOLT_TEST_PASSWORD,
        "GRAPHFRAUD_GRAPH__DATABASE": db,
    }
    code = "from graphfraud.cli import main; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "publish", "--run", str(run), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    day1_run = load_tables(nights.day1).run_id
    assert f"(delta: delta from run {day1_run})" in proc.stdout
    assert BOLT_TEST_PASSWORD not in proc.stdout + proc.stderr
    manifest = json.loads((run / "manifest.json").read_text())
    record = manifest["stages"]["publish"]
    assert (record["mode"], record["base_run_id"]) == ("delta", day1_run)
    assert record["upserted_nodes"] > 0
    assert record["deleted_nodes"] >= len(nights.deleted)
    assert manifest["status"] == "complete"
