"""Publishing to a real Bolt server: idempotent, sweeps what a newer run dropped, converges after a
SIGKILL mid-publish, and fails with clear errors on bad credentials or a dead server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from graphfraud.config import GraphSettings
from graphfraud.errors import GraphStoreAuthError, GraphStoreUnavailable, NotFound
from graphfraud.graph import open_graph_store
from graphfraud.graph.neo4j import Neo4jGraphStore
from graphfraud.graph.server import BoltServer, free_port
from tests.graph.factories import (
    NEW_USER,
    R1,
    R2,
    Q,
    write_bulk_run,
    write_ring_history,
    write_run,
)
from tests.graph.graphdump import dump_graph, publish_state

pytestmark = pytest.mark.bolt

PASSWORD = "graphfraud-test-pw"  # same as tests/conftest.py


def _settings(uri: str, password: str = PASSWORD, **extra: Any) -> GraphSettings:
    return GraphSettings.model_validate(
        {"uri": uri, "user": "root", "password": password, "retry_time_s": 1.0, **extra}
    )


def _store(driver: Any, database: str, batch_size: int = 5000) -> Neo4jGraphStore:
    return Neo4jGraphStore(driver, database, batch_size=batch_size)


def test_publish_twice_is_identical(
    bolt_driver: Any, new_bolt_database: Callable[[str], str], tmp_path: Path
) -> None:
    run = write_run(tmp_path / "r1")
    db = new_bolt_database("twice")
    store = _store(bolt_driver, db, batch_size=3)  # many batches per phase
    store.publish(str(run))
    first = dump_graph(bolt_driver, db)
    store.publish(str(run))
    assert dump_graph(bolt_driver, db) == first
    nodes, rels = first
    assert (len(nodes), len(rels)) == (34, 44)
    state = publish_state(bolt_driver, db)
    assert state is not None
    assert (state["run_id"], state["status"], state["nodes"]) == ("run-1", "complete", 34)
    assert store.published() == state


def test_a_graph_of_the_older_form_converges_on_the_next_publish(
    bolt_driver: Any, new_bolt_database: Callable[[str], str], tmp_path: Path
) -> None:
    """A graph published by an older version held a ring_score on every MEMBER_OF (and, here,
    stale LINKED properties); the next publish (full: the digest no longer matches) replaces
    each element whole, so nothing of the old form stays."""
    run = write_run(tmp_path / "r1")
    db, clean = new_bolt_database("older_form"), new_bolt_database("older_clean")
    _store(bolt_driver, clean).publish(str(run))
    _store(bolt_driver, db).publish(str(run))
    bolt_driver.execute_query(
        "MATCH ()-[l:LINKED]->() SET l.support = 99, l.weight = 0.5, l.evidence = 'old' "
        "WITH count(*) AS n MATCH ()-[m:MEMBER_OF]->() SET m.ring_score = 0.5",
        database_=db,
    )
    bolt_driver.execute_query(
        "MATCH (m:GraphFraudMeta {id: 'publish'}) SET m.digest = 'an older digest'", database_=db
    )
    report = _store(bolt_driver, db).publish(str(run))
    assert report.mode == "full"
    assert dump_graph(bolt_driver, db) == dump_graph(bolt_driver, clean)


def test_ring_events_converge_and_only_live_rings_point_at_theirs(
    bolt_driver: Any, new_bolt_database: Callable[[str], str], tmp_path: Path
) -> None:
    """Ring events are nodes keyed by run and ring; a newer run's history holds the older ones,
    so they stay, while the event edge of a ring that dissolved goes with its (:Ring)."""
    old = write_ring_history(write_run(tmp_path / "r1"))
    new = write_ring_history(write_run(tmp_path / "r2", run_id="run-2", newer=True), newer=True)
    over, clean = new_bolt_database("events_over"), new_bolt_database("events_clean")
    _store(bolt_driver, over, 2).publish(str(old))
    _store(bolt_driver, over, 2).publish(str(new))
    _store(bolt_driver, clean).publish(str(new))
    assert dump_graph(bolt_driver, over) == dump_graph(bolt_driver, clean)
    records, _, _ = bolt_driver.execute_query(
        "MATCH (e:RingEvent) OPTIONAL MATCH (g:Ring)-[:HAD_EVENT]->(e) "
        "RETURN e.id AS id, e.event_run_id AS night, e.run_id AS tag, g.id AS ring",
        database_=over,
    )
    rows = {r["id"]: (r["night"], r["tag"], r["ring"]) for r in records}
    assert len(rows) == 8
    # The tag is the run that last wrote an event: a delta publish leaves unchanged ones alone.
    assert {tag for _, tag, _ in rows.values()} <= {"run-1", "run-2"}
    assert rows[f"run-0/{R1}"][::2] == ("run-0", R1)
    assert rows[f"run-1/{R2}"][::2] == ("run-1", None)  # R2 dissolved: no ring, no edge


def test_newer_run_equals_clean_publish_of_it(
    bolt_driver: Any, new_bolt_database: Callable[[str], str], tmp_path: Path
) -> None:
    """Publishing run-2 over run-1 leaves exactly the graph a fresh publish of run-2 makes:
    stale rings, memberships, links, identifier edges and properties are gone."""
    old, new = write_run(tmp_path / "r1"), write_run(tmp_path / "r2", run_id="run-2", newer=True)
    over, clean = new_bolt_database("over"), new_bolt_database("clean")
    _store(bolt_driver, over, 4).publish(str(old))
    assert _store(bolt_driver, over, 4).publish(str(new)).mode == "delta"
    assert _store(bolt_driver, clean).publish(str(new)).mode == "full"
    assert dump_graph(bolt_driver, over) == dump_graph(bolt_driver, clean)
    records, _, _ = bolt_driver.execute_query(
        "MATCH (u:User {id: $id}) RETURN u.ring_id AS ring, u.score AS score",
        id="d2",
        database_=over,
    )
    assert records[0]["ring"] is None  # the property itself is removed, not left stale
    records, _, _ = bolt_driver.execute_query(
        "MATCH (g:Ring {id: $id}) RETURN count(g) AS n", id=R2, database_=over
    )
    assert records[0]["n"] == 0


def _publish_cli(
    run: Path, server: BoltServer, database: str, batch: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "GRAPHFRAUD_GRAPH__URI": server.uri,
        "GRAPHFRAUD_GRAPH__USER": "root",
        "GRAPHFRAUD_GRAPH__PASSWORD": PASSWORD,
        "GRAPHFRAUD_GRAPH__DATABASE": database,
        "GRAPHFRAUD_GRAPH__BATCH_SIZE": str(batch),
    }
    code = "from graphfraud.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "publish", "--run", str(run), "--quiet"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _count_tagged(driver: Any, database: str, run_id: str) -> int:
    records, _, _ = driver.execute_query(
        "MATCH ()-[r]->() WHERE r.run_id = $run RETURN count(r) AS n",
        run=run_id,
        database_=database,
    )
    return int(records[0]["n"])


def test_sigkill_mid_publish_then_rerun_converges(
    bolt_server: BoltServer,
    bolt_driver: Any,
    new_bolt_database: Callable[[str], str],
    tmp_path: Path,
) -> None:
    old = write_bulk_run(tmp_path / "a", 600, seed=1, run_id="bulk-a", ring_share=0.3)
    new = write_bulk_run(tmp_path / "b", 700, seed=2, run_id="bulk-b", ring_size=4)
    crashed, clean = new_bolt_database("crashed"), new_bolt_database("clean")
    _store(bolt_driver, crashed).publish(str(old))

    proc = _publish_cli(new, bolt_server, crashed, batch=40)
    deadline = time.monotonic() + 60
    # kill once relationships of the new run are being written (nodes done, rels half-way)
    while _count_tagged(bolt_driver, crashed, "bulk-b") < 200:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else b""
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = publish_state(bolt_driver, crashed)
    assert state is not None
    assert (state["status"], state["target_run_id"], state["run_id"]) == (
        "publishing",
        "bulk-b",
        "bulk-a",
    )
    assert dump_graph(bolt_driver, crashed) != dump_graph(bolt_driver, clean)  # truly half-way

    # the graph still holds bulk-a, whose directory matches its digest: the rerun is the delta
    # bulk-a → bulk-b, replayed over whatever the killed full publish had written
    assert _store(bolt_driver, crashed, batch_size=97).publish(str(new)).mode == "delta"
    _store(bolt_driver, clean).publish(str(new))
    assert dump_graph(bolt_driver, crashed) == dump_graph(bolt_driver, clean)
    state = publish_state(bolt_driver, crashed)
    assert state is not None
    assert (state["status"], state["run_id"]) == ("complete", "bulk-b")


def test_wrong_password_is_a_clear_auth_error(bolt_server: BoltServer, tmp_path: Path) -> None:
    store = open_graph_store(_settings(bolt_server.uri, password="not-the-password"), None)
    try:
        with pytest.raises(GraphStoreAuthError, match="rejected the credentials") as info:
            store.ring_of(Q)
        assert "not-the-password" not in str(info.value)
        with pytest.raises(GraphStoreAuthError):
            store.publish(str(write_run(tmp_path / "r")))
        assert store.ping() is False
    finally:
        store.close()


def test_server_down_is_unavailable(tmp_path: Path) -> None:
    store = open_graph_store(_settings(f"bolt://127.0.0.1:{free_port()}", connect_timeout_s=1.0))
    try:
        assert store.ping() is False
        with pytest.raises(GraphStoreUnavailable, match="user_ring"):
            store.ring_of(Q)
        with pytest.raises(GraphStoreUnavailable, match="constraint_user_id"):
            store.publish(str(write_run(tmp_path / "r")))
    finally:
        store.close()


def test_missing_database_is_a_store_error(bolt_server: BoltServer) -> None:
    store = open_graph_store(_settings(bolt_server.uri, database="no_such_db"))
    try:
        with pytest.raises(Exception, match="ring") as info:
            store.ring("x")
        assert not isinstance(info.value, NotFound)
    finally:
        store.close()


def test_values_round_trip_exactly(
    bolt_driver: Any, new_bolt_database: Callable[[str], str], tmp_path: Path
) -> None:
    db = new_bolt_database("values")
    _store(bolt_driver, db).publish(str(write_run(tmp_path / "r", newer=True)))
    records, _, _ = bolt_driver.execute_query(
        "MATCH (u:User {id: $id}) RETURN properties(u) AS p", id=NEW_USER, database_=db
    )
    props = records[0]["p"]
    assert props["email"] == "ring\"mail'@example.com"
    assert props["reasons"] == ["shared_identifier", 'ring "member"']
    assert props["run_id"] == "run-1"
    assert props["model_version"] == "gbm-1"
    records, _, _ = bolt_driver.execute_query(
        "MATCH (u:User) WHERE u.reasons IS NULL RETURN count(u) AS n", database_=db
    )
    assert records[0]["n"] > 0  # an empty reasons list is stored as absent
