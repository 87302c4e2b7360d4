"""The workbench routes over a real batch run (150-member device-farm ring): the graph with
identifiers as nodes, per-kind caps that say what they cut, show more, neighbours, verdicts by
role, audited, and the awkward cases (unknown ids, bad keys, graph or verdict store down)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphfraud.config import GraphSettings, ServiceSettings, Settings, VerdictSettings
from graphfraud.graph.factory import open_graph_store
from graphfraud.service import create_app
from graphfraud.verdicts.store import SqliteVerdictStore, Subject

from .test_graph_down import closed_port
from .workbench_run import FARM, FARM_DEVICE, farm_id

KEYS = {"analyst": "a-key", "investigator": "i-key", "admin": "ad-key", "scorer": "s-key"}


def h(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def _settings(tmp: Path, **extra: object) -> Settings:
    return Settings(
        service=ServiceSettings(
            api_keys=[f"{k}:{r}" for r, k in KEYS.items()],
            audit_log=tmp / "audit" / "audit.log",
            access_log=False,
        ),
        **extra,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wb-api")


@pytest.fixture(scope="module")
def client(workbench_run: Path, tmp: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_settings(tmp), workbench_run)) as c:
        assert c.app.state.holder.wait_ready(60)  # type: ignore[attr-defined]
        yield c


def test_ring_graph_has_identifier_hubs_and_capped_look_alikes(client: TestClient) -> None:
    g = client.get(f"/v1/users/{farm_id(5)}/graph", headers=h("analyst")).json()
    assert (g["focus"], g["ring"]["size"], g["drawn_members"], g["more_members"]) == (
        farm_id(5),
        FARM,
        FARM,
        0,
    )
    kinds = Counter((n["type"], n.get("kind")) for n in g["nodes"])
    assert kinds[("user", None)] == FARM
    assert (kinds[("identifier", "device")], kinds[("identifier", "ip")]) == (1, 1)
    device = next(n for n in g["nodes"] if n.get("kind") == "device")
    assert (device["holders"], device["held_here"]) == (150, 150)
    assert "used by 150 accounts" in device["evidence"]
    assert device["id"].startswith("i:device:")
    assert FARM_DEVICE not in device["id"]
    spokes = [e for e in g["edges"] if e["target"] == device["id"]]
    assert len(spokes) == 150
    assert {e["relation"] for e in spokes} == {"holds"}
    links = Counter(e["kind"] for e in g["edges"] if e["relation"] == "link")
    assert links["device"] == links["ip"] == 0  # exact ties are the hub nodes themselves
    assert links["phone_similar"] == 300  # capped per kind ...
    assert "phone_similar" in g["ring"]["cut_kinds"]  # ... and the view says so
    assert any(line.startswith("phone_similar: only the strongest 300") for line in g["cut"])
    node_ids = {n["id"] for n in g["nodes"]}
    assert all(e["source"] in node_ids for e in g["edges"])
    assert all(e["target"] in node_ids for e in g["edges"])
    look = next(e for e in g["edges"] if e["kind"] == "phone_similar")
    assert look["source"].startswith("i:phone:")
    assert look["target"].startswith("i:phone:")
    assert look["value_a"].startswith("+91******")
    assert look["similarity"] > 0  # masked
    assert "share a device" in " ".join(g["ring"]["features_text"])
    assert [m["score"] for m in g["members"]] == sorted(
        (m["score"] for m in g["members"]), reverse=True
    )
    body = json.dumps(g)
    assert "+9198450" not in body
    assert "priyak" not in body  # no raw PII for an analyst
    assert any((n.get("email") or "").startswith("p***") for n in g["nodes"])  # masked, present


def test_investigator_sees_values_and_show_more_draws_more(client: TestClient) -> None:
    g = client.get(f"/v1/users/{farm_id(5)}/graph?members=20", headers=h("investigator")).json()
    assert (g["drawn_members"], g["more_members"], len(g["members"])) == (20, 130, 150)
    assert sum(n["type"] == "user" for n in g["nodes"]) == 20
    assert "+9198450" in json.dumps(g)  # unmasked for the investigator
    ring = client.get(f"/v1/rings/{g['ring']['ring_id']}/graph?members=40", headers=h("analyst"))
    assert ring.status_code == 200
    assert ring.json()["drawn_members"] == 40
    assert ring.json()["focus"] is None
    assert (
        client.get(f"/v1/users/{farm_id(5)}/graph?members=0", headers=h("analyst")).status_code
        == 422
    )


def test_user_in_no_ring_and_expand_show_direct_neighbours(client: TestClient) -> None:
    g = client.get("/v1/users/h0150/graph", headers=h("analyst")).json()
    assert g["ring"] is None
    assert [n["user_id"] for n in g["nodes"]] == ["h0150"]  # linked to no one
    linked = client.get("/v1/users/h0034/graph", headers=h("analyst")).json()
    assert linked["ring"] is None
    assert linked["nodes"][0]["user_id"] == "h0034"
    assert sum(n["type"] == "user" for n in linked["nodes"]) >= 2
    assert [e["kind"] for e in linked["edges"] if e["relation"] == "link"] == ["email_similar"]
    near = client.get(f"/v1/users/{farm_id(0)}/graph?scope=neighbours", headers=h("analyst"))
    body = near.json()
    assert body["ring"] is None
    assert body["cut"] == ["only the strongest 200 of this user's links are shown"]
    assert client.get("/v1/users/x/graph?scope=bogus", headers=h("analyst")).status_code == 422


@pytest.mark.parametrize("path", ["/v1/users/nobody/graph", "/v1/rings/R-nope/graph"])
def test_unknown_ids_are_404_with_a_message(client: TestClient, path: str) -> None:
    r = client.get(path, headers=h("analyst"))
    assert r.status_code == 404
    assert r.json()["detail"]


@pytest.mark.parametrize(
    ("key", "status"), [(None, 401), ("wrong-key", 401), (KEYS["scorer"], 403)]
)
def test_bad_or_weak_keys_cannot_read_the_graph(
    client: TestClient, key: str | None, status: int
) -> None:
    r = client.get(f"/v1/users/{farm_id(0)}/graph", headers={"X-API-Key": key} if key else {})
    assert r.status_code == status
    assert r.json()["error"]


def test_verdicts_investigator_only_audited_and_listed(client: TestClient, tmp: Path) -> None:
    body = {"subject": "user", "subject_id": farm_id(7), "outcome": "legit", "note": "KYC ok"}
    for role in ("analyst", "admin", "scorer"):
        r = client.post("/v1/verdicts", json=body, headers=h(role))
        assert r.status_code == 403, role
        assert "write verdict" in r.json()["detail"]
    ok = client.post("/v1/verdicts", json=body, headers=h("investigator"))
    assert ok.status_code == 201, ok.text
    assert (ok.json()["outcome"], ok.json()["members"], ok.json()["role"]) == (
        "legit",
        1,
        "investigator",
    )
    g = client.get(f"/v1/users/{farm_id(7)}/graph", headers=h("analyst")).json()
    ring = client.post(
        "/v1/verdicts",
        json={"subject": "ring", "subject_id": g["ring"]["ring_id"], "outcome": "confirmed_fraud"},
        headers=h("investigator"),
    )
    assert ring.status_code == 201
    assert ring.json()["members"] == FARM  # every member of the snapshot's ring
    listed = client.get(f"/v1/verdicts?subject=user&id={farm_id(7)}", headers=h("analyst")).json()
    assert [v["note"] for v in listed["verdicts"]] == ["KYC ok"]
    store = SqliteVerdictStore(tmp / "audit" / "verdicts.sqlite3")  # one file beside the audit log
    assert store.of(Subject.RING, g["ring"]["ring_id"])[0].members[0] == farm_id(0)
    audit = [json.loads(x) for x in (tmp / "audit" / "audit.log").read_text().splitlines()]
    writes = [a for a in audit if a["action"] == "record_verdict"]
    assert [a["outcome"] for a in writes] == ["denied", "denied", "denied", "ok", "ok"]
    assert writes[3]["ids"] == {"user": farm_id(7), "outcome": "legit"}


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "user", "subject_id": "nobody", "outcome": "legit"},
        {"subject": "ring", "subject_id": "R-nope", "outcome": "legit"},
    ],
)
def test_verdict_on_an_unknown_subject_is_404(client: TestClient, body: dict[str, str]) -> None:
    assert client.post("/v1/verdicts", json=body, headers=h("investigator")).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"subject": "user", "subject_id": "f0001", "outcome": "fraud"},
        {"subject": "team", "subject_id": "f0001", "outcome": "legit"},
        {"subject": "user", "subject_id": "f0001", "outcome": "legit", "note": "x" * 3000},
        {"subject": "user", "subject_id": "", "outcome": "legit"},
    ],
)
def test_bad_verdicts_are_422(client: TestClient, body: dict[str, str]) -> None:
    assert client.post("/v1/verdicts", json=body, headers=h("investigator")).status_code == 422


def test_graph_down_keeps_scores_and_verdict_store_down_is_503(
    workbench_run: Path, tmp_path: Path
) -> None:
    graph = GraphSettings(uri=f"bolt://127.0.0.1:{closed_port()}", password="x" * 10)  # type: ignore[arg-type]
    graph.connect_timeout_s, graph.retry_time_s = 1.0, 0.0
    (tmp_path / "dir.sqlite3").mkdir()  # a directory where the verdict file should be
    settings = _settings(tmp_path, verdicts=VerdictSettings(path=tmp_path / "dir.sqlite3"))
    app = create_app(settings, workbench_run, graph_store=open_graph_store(graph))
    with TestClient(app) as c:
        assert c.app.state.holder.wait_ready(60)  # type: ignore[attr-defined]
        r = c.get(f"/v1/users/{farm_id(0)}/graph", headers=h("analyst"))
        assert (r.status_code, r.json()["error"]) == (503, "graph_unavailable")
        assert c.get(f"/v1/users/{farm_id(0)}/score", headers=h("scorer")).status_code == 200
        v = c.post(
            "/v1/verdicts",
            json={"subject": "user", "subject_id": farm_id(0), "outcome": "legit"},
            headers=h("investigator"),
        )
        assert (v.status_code, v.json()["error"]) == (503, "verdicts_unavailable")


def test_docs_work_offline(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text
    assert "https://" not in page.text
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200
    csp = page.headers["content-security-policy"]
    assert "https:" not in csp


def test_whoami_names_role_and_permissions(client: TestClient) -> None:
    me = client.get("/v1/whoami", headers=h("investigator")).json()
    assert me["role"] == "investigator"
    assert "write_verdict" in me["permissions"]
    assert "write_verdict" not in client.get("/v1/whoami", headers=h("admin")).json()["permissions"]
