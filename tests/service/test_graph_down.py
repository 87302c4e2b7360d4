"""The graph database is down: analyst routes answer 503 with a message, scores keep flowing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphfraud.config import GraphSettings, Settings
from graphfraud.graph.factory import open_graph_store
from graphfraud.service import create_app

from .factories import headers


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
        r = c.get("/v1/rings/ring-a", headers=headers("analyst"))
        assert r.status_code == 503
        assert "no graph store" in r.json()["detail"]
        assert c.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200
