"""The local Bolt server's lifecycle through the CLI (start/status/stop), and a server restart
in the middle of a publish: a clear error, then a rerun converges to a clean publish."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from graphfraud.cli import app
from graphfraud.config import GraphSettings
from graphfraud.errors import ConfigError, GraphStoreError
from graphfraud.graph import cypher, open_graph_store
from graphfraud.graph.server import (
    BoltServer,
    bolt_answers,
    check_password,
    create_database,
    free_port,
    read_state,
    server_command,
    server_status,
    start_server,
    stop_server,
)
from tests.conftest import BOLT_TEST_PASSWORD
from tests.graph.factories import write_bulk_run
from tests.graph.graphdump import dump_graph, publish_state

PASSWORD = "restart-test-pw"


@pytest.mark.parametrize("password", ["", "short", "7chars!"])
def test_short_password_is_refused_before_java_starts(password: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 8 characters"):
        check_password(password)
    result = CliRunner().invoke(
        app,
        ["graphdb", "start", "--dir", str(tmp_path)],
        env={"GRAPHFRAUD_GRAPH__PASSWORD": password},
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert read_state(tmp_path) is None  # nothing was launched


def test_password_is_not_on_the_command_line(tmp_path: Path) -> None:
    cmd = server_command(tmp_path, free_port(), free_port(), "graphfraud", "256m")
    assert not any("rootPassword" in arg for arg in cmd)


@pytest.mark.bolt
def test_running_server_hides_its_password_from_other_users(bolt_server: BoltServer) -> None:
    """/proc/<pid>/cmdline is world-readable; the password goes in through the environment
    (/proc/<pid>/environ is readable by the owner only) and the server still accepts it."""
    cmdline = Path(f"/proc/{bolt_server.pid}/cmdline").read_bytes()
    assert b"ArcadeDBServer" in cmdline  # it is the server's process
    assert BOLT_TEST_PASSWORD.encode() not in cmdline
    assert oct(Path(f"/proc/{bolt_server.pid}/environ").stat().st_mode & 0o777) == "0o400"
    assert bolt_answers(bolt_server.uri, BOLT_TEST_PASSWORD, bolt_server.database)
    assert not bolt_answers(bolt_server.uri, BOLT_TEST_PASSWORD + "x", bolt_server.database)
    log = (Path(bolt_server.root) / "server.log").read_text(errors="replace")
    assert BOLT_TEST_PASSWORD not in log


def test_status_and_stop_without_a_server(tmp_path: Path) -> None:
    runner = CliRunner()
    assert (
        "no graph server running"
        in runner.invoke(app, ["graphdb", "status", "--dir", str(tmp_path)]).output
    )
    assert (
        "no graph server running"
        in runner.invoke(app, ["graphdb", "stop", "--dir", str(tmp_path)]).output
    )


def _settings(uri: str, database: str) -> GraphSettings:
    return GraphSettings.model_validate(
        {
            "uri": uri,
            "user": "root",
            "password": PASSWORD,
            "database": database,
            "retry_time_s": 0.5,
            "connect_timeout_s": 1.0,
            "batch_size": 25,
        }
    )


@pytest.mark.bolt
def test_cli_lifecycle_and_restart_mid_publish(tmp_path: Path) -> None:
    root = tmp_path / "srv"
    env = {"GRAPHFRAUD_GRAPH__PASSWORD": PASSWORD}
    runner = CliRunner()
    ports = ["--bolt-port", str(free_port()), "--http-port", str(free_port())]
    started = runner.invoke(app, ["graphdb", "start", "--dir", str(root), *ports], env=env)
    assert started.exit_code == 0, started.output
    try:
        server = server_status(root)
        assert server is not None
        assert server.uri in started.output
        status = runner.invoke(app, ["graphdb", "status", "--dir", str(root)], env=env)
        assert "graph server running" in status.output
        assert "nothing published yet" in status.output
        again = runner.invoke(app, ["graphdb", "start", "--dir", str(root)], env=env)
        assert isinstance(again.exception, ConfigError)  # one server per directory

        run = write_bulk_run(tmp_path / "run", 400, seed=3, run_id="bulk-r")
        create_database(server, PASSWORD, "restarted")
        create_database(server, PASSWORD, "clean")
        store = open_graph_store(_settings(server.uri, "restarted"))
        failure: list[BaseException] = []

        def publish() -> None:
            try:
                store.publish(str(run))
            except BaseException as exc:
                failure.append(exc)

        worker = threading.Thread(target=publish)
        worker.start()
        _wait_for_tagged_nodes(store, 150)
        stop_server(root)  # the server goes away under the writer
        worker.join(60)
        assert not worker.is_alive()
        store.close()
        assert len(failure) == 1
        assert isinstance(failure[0], GraphStoreError), repr(failure[0])
        # ArcadeDB answers the in-flight write with UnknownError, or (while its security module
        # shuts down) with Unauthorized; either way the error names the statement, not values.
        assert any(
            f"{q.name})" in str(failure[0]) or f"{q.name} " in str(failure[0])
            for q in cypher.all_queries()
        )

        restarted = start_server(root, PASSWORD)  # same ports, from the state file
        assert restarted.bolt_port == server.bolt_port
        for database in ("restarted", "clean"):
            store = open_graph_store(_settings(restarted.uri, database))
            store.publish(str(run))
            store.close()
        from neo4j import GraphDatabase

        with GraphDatabase.driver(restarted.uri, auth=("root", PASSWORD)) as driver:
            assert dump_graph(driver, "restarted") == dump_graph(driver, "clean")
            state = publish_state(driver, "restarted")
            assert state is not None
            assert state["status"] == "complete"
        status = runner.invoke(app, ["graphdb", "status", "--dir", str(root)], env=env)
        assert "published run" not in status.output or "bulk-r" in status.output
    finally:
        stopped = runner.invoke(app, ["graphdb", "stop", "--dir", str(root)], env=env)
        assert stopped.exit_code == 0
    assert server_status(root) is None


def _wait_for_tagged_nodes(store: Any, n: int) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records, _, _ = store._driver.execute_query(
            "MATCH (u:User) WHERE u.run_id = 'bulk-r' RETURN count(u) AS n",
            database_="restarted",
        )
        if records[0]["n"] >= n:
            return
        time.sleep(0.01)
    raise AssertionError("publish made no progress")
