"""The graph database is down: analyst routes answer 503 with a message, scores keep flowing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphfraud.config import GraphSettings, Settings
from graphfraud.graph.factory import open_graph_store
from graphfraud.graph.server import BoltServer, free_port, start_server, stop_server
from graphfraud.service import create_app
from graphfraud.service.context import GRAPH_DOWN_BACKOFF_S

from .factories import headers, make_settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # released on close: nothing listens there


@pytest.fixture
def down_client(settings: Settings, runs_root: Path) -> TestClient:
    graph = GraphSettings(uri=f"bolt://127.0.0.1:{closed_port()}", password="x" * 10)  # type: ignore[arg-type]
    for name, value in (("connect_timeout_s", 1.0), ("retry_time_s", 0.0)):
        if name in GraphSettings.model_fields:
            setattr(graph, name, value)
    store = open_graph_store(graph)  # the real Neo4jGraphStore, pointed at a closed port
    return TestClient(create_app(settings, runs_root / "r1", graph_store=store))


def test_analyst_routes_503_while_hot_path_serves(down_client: TestClient) -> None:
    with down_client as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        r = c.get("/v1/users/a1/ring", headers=headers("analyst"))
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["error"] == "graph_unavailable"
        assert body["detail"]
        assert body["hint"]
        assert r.headers["retry-after"] == "5"
        # fail fast for a moment afterwards, still 503 with a message
        r = c.get("/v1/rings/ring-a", headers=headers("analyst"))
        assert r.status_code == 503
        assert r.json()["error"] == "graph_unavailable"
        for _ in range(20):
            assert c.get("/v1/users/a1/score", headers=headers("scorer")).json()["score"] == 0.95
        ok = c.post("/v1/score", json={"device_ids": ["dev-ring-a"]}, headers=headers("scorer"))
        assert ok.status_code == 200
        assert ok.json()["ring_id"] == "ring-a"
        assert c.get("/readyz").status_code == 200
        assert "graphfraud_graph_unavailable_total 2.0" in c.get("/metrics").text


def test_no_graph_store_is_503_not_500(settings: Settings, runs_root: Path) -> None:
    settings.graph.uri = "http://not-bolt"  # factory refuses: scores-only replica
    with TestClient(create_app(settings, runs_root / "r1")) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        for url in ("/v1/rings/ring-a", "/v1/rings/ring-a/history"):
            r = c.get(url, headers=headers("analyst"))
            assert r.status_code == 503
            assert "no graph store" in r.json()["detail"]
        assert c.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200


# ---- the real local Bolt server, stopped and started under a serving app ----------------------
PASSWORD = "graph-down-test-pw"
BUDGET_S = 1.0  # the analyst routes' time budget in these tests
SLACK_S = 1.0  # thread hand-off and a loaded CI machine


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory, runs_root: Path) -> Iterator[BoltServer]:
    """A server of this module's own (the session one must not be stopped), with r1 published."""
    root = tmp_path_factory.mktemp("graphdown")
    server = start_server(root, PASSWORD, bolt_port=free_port(), http_port=free_port(), heap="256m")
    try:
        store = open_graph_store(_graph_settings(server))
        store.publish(str(runs_root / "r1"))
        store.close()
        yield server
    finally:
        stop_server(root)


def _graph_settings(server: BoltServer) -> GraphSettings:
    # the driver's production default: 15 s of retries on an unreachable server
    return GraphSettings.model_validate(
        {"uri": server.uri, "user": "root", "password": PASSWORD, "database": server.database}
    )


def _timed(c: TestClient, url: str, role: str = "analyst") -> tuple[int, float, dict[str, str]]:
    started = time.monotonic()
    r = c.get(url, headers=headers(role))
    return r.status_code, time.monotonic() - started, r.json()


@pytest.mark.bolt
@pytest.mark.parametrize("store", ["opened_by_the_app", "given_with_long_retries"])
def test_stopped_graph_server_is_503_within_the_budget_and_recovers(
    own_server: BoltServer, tmp_path: Path, runs_root: Path, store: str
) -> None:
    """The first analyst request after the server stops answers 503 within the budget (it took
    the driver's 16 s of retries), later ones at once, scores throughout; then it recovers.
    `given_with_long_retries`: the budget holds when the driver retries for longer (5 s here,
    15 s by default) because the store was not opened by the app."""
    settings = make_settings(tmp_path, runs_root, graph_timeout_s=BUDGET_S)
    settings.graph = _graph_settings(own_server)  # the app opens its own store, as in production
    given = (
        open_graph_store(settings.graph.model_copy(update={"retry_time_s": 5.0}))
        if store == "given_with_long_retries"
        else None
    )
    with TestClient(create_app(settings, runs_root / "r1", graph_store=given)) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        assert _timed(c, "/v1/rings/ring-a")[0] == 200
        stop_server(own_server.root)
        try:
            status, seconds, body = _timed(c, "/v1/users/a1/ring")
            assert status == 503, body
            assert body["error"] == "graph_unavailable"
            assert body["hint"]
            assert seconds < BUDGET_S + SLACK_S, f"first request after the stop took {seconds:.1f}s"
            for url in ("/v1/rings/ring-a", "/v1/links/explain?a=a1&b=a2", "/v1/users/a2/ring"):
                status, seconds, body = _timed(c, url)
                assert status == 503, body
                assert seconds < 0.5, f"{url} took {seconds:.2f}s while the server was down"
            for _ in range(20):  # scores never wait for the graph
                status, seconds, _ = _timed(c, "/v1/users/a1/score", role="scorer")
                assert status == 200
                assert seconds < 0.5
            time.sleep(GRAPH_DOWN_BACKOFF_S + 0.1)  # the next probe, still down: still in budget
            status, seconds, _ = _timed(c, "/v1/rings/ring-a")
            assert status == 503
            assert seconds < BUDGET_S + SLACK_S
        finally:
            start_server(own_server.root, PASSWORD)  # same ports, from the state file
        deadline = time.monotonic() + 30
        while _timed(c, "/v1/rings/ring-a")[0] != 200:  # steady traffic: back once the server is
            assert time.monotonic() < deadline, "analyst routes did not recover"
            time.sleep(0.2)
        assert _timed(c, "/v1/users/a1/ring")[0] == 200
    if given is not None:
        given.close()
