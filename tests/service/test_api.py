"""Every endpoint through the app factory: roles, masking, audit, errors, ops."""

from __future__ import annotations

import base64
import hashlib
import re
from collections import Counter
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from graphfraud.config import DecisionSettings, Settings
from graphfraud.scoring.decision import Bands
from graphfraud.service import create_app

from .factories import HONEST, KEYS, RING_A, RING_B, UNICODE_USER, headers

ROLES = ("scorer", "analyst", "investigator", "admin")
ANALYST_URLS = (
    "/v1/users/a1/ring",
    "/v1/rings/ring-a",
    "/v1/rings/ring-a/history",
    "/v1/links/explain?a=a1&b=a4",
)


def audit_records(settings: Settings) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in settings.service.audit_log.read_bytes().splitlines()]


# ---- hot path ---------------------------------------------------------------------------------
def test_score_known_unknown_unicode(client: TestClient) -> None:
    r = client.get("/v1/users/a1/score", headers=headers("scorer"))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc | {"scored_at": None} == {
        "user_id": "a1",
        "known": True,
        "score": 0.95,
        "band": "decline",
        "ring_id": "ring-a",
        "suspected_ring": True,
        "ring_score": 0.87,
        "reasons": ["RING_LABELLED_FRAUD", "SHARED_DEVICE", "LOOKALIKE_EMAIL"],
        "model_version": "gbm-test-1",
        "scored_at": None,
        "snapshot": "r1",
    }
    r = client.get("/v1/users/never-seen/score", headers=headers("scorer"))
    assert r.status_code == 200
    assert r.json()["known"] is False
    assert r.json()["reasons"] == ["UNKNOWN_USER"]
    assert r.json()["suspected_ring"] is False
    neutral = r.json()["score"]
    assert r.json()["band"] == Bands.of(DecisionSettings()).of_score(neutral)
    r = client.get(f"/v1/users/{UNICODE_USER}/score", headers=headers("scorer"))
    assert r.status_code == 200
    assert r.json()["known"] is True
    assert r.json()["user_id"] == UNICODE_USER


def test_the_service_serves_its_own_operating_point(settings: Settings, runs_root: Path) -> None:
    """The band comes from the service's decision settings (one function, `scoring.decision`);
    a ring is suspected as the batch judged it, a community (h1-h2, ring-b) is not."""
    decision = DecisionSettings(
        review_threshold=0.55, decision_threshold=0.9, bands=("pass", "check", "block")
    )
    app = create_app(settings.model_copy(update={"decision": decision}), runs_root / "r1")
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(20)
        got = {u: c.get(f"/v1/users/{u}/score", headers=headers("scorer")).json()
               for u in ("a1", "a4", "b1", "h1")}  # fmt: skip
    assert [got[u]["band"] for u in ("a1", "a4", "b1", "h1")] == ["block", "check", "check", "pass"]
    assert [got[u]["suspected_ring"] for u in ("a1", "b1", "h1")] == [True, False, False]
    assert got["b1"]["ring_id"] == "ring-b"  # still its community


@pytest.mark.parametrize(
    "user_id", ["..", "..%2F..%2Fetc%2Fpasswd", "%2e%2e", "a%00b", "'; DROP", "x" * 256]
)
def test_score_odd_ids_are_never_5xx(client: TestClient, user_id: str) -> None:
    r = client.get(f"/v1/users/{user_id}/score", headers=headers("scorer"))
    assert r.status_code < 500, r.text
    assert r.json()["error" if r.status_code >= 400 else "user_id"], r.text
    if r.status_code == 200:
        assert r.json()["known"] is False


def test_score_too_long_id_is_422(client: TestClient) -> None:
    r = client.get("/v1/users/" + "x" * 257 + "/score", headers=headers("scorer"))
    assert r.status_code == 422
    assert "user_id" in r.json()["detail"]


# ---- auth ----------------------------------------------------------------------------------------
def test_missing_and_wrong_key_are_401_with_message(client: TestClient) -> None:
    r = client.get("/v1/users/a1/score")
    assert r.status_code == 401
    assert r.json()["error"] == "unauthenticated"
    assert "X-API-Key" in r.json()["detail"]
    assert "APIKey" in r.headers["www-authenticate"]
    r = client.get("/v1/users/a1/score", headers={"X-API-Key": "nope"})
    assert r.status_code == 401
    assert r.json()["detail"] == "unknown API key"
    r = client.get("/v1/users/a1/score", headers={"X-API-Key": KEYS["admin"].upper()})
    assert r.status_code == 401


@pytest.mark.parametrize("role", ROLES)
def test_role_matrix(client: TestClient, role: str) -> None:
    h = headers(role)
    assert client.get("/v1/users/a1/score", headers=h).status_code == 200
    assert client.post("/v1/score", json={"email": "x@example.org"}, headers=h).status_code == 200
    for url in ANALYST_URLS:
        assert client.get(url, headers=h).status_code == (403 if role == "scorer" else 200), url
    admin_status = client.get("/v1/admin/snapshot", headers=h).status_code
    assert admin_status == (200 if role == "admin" else 403)
    reload_status = client.post(
        "/v1/admin/reload", json={"run": "r1", "wait": True}, headers=h
    ).status_code
    assert reload_status == (200 if role == "admin" else 403)


def test_forbidden_body_names_the_role(client: TestClient) -> None:
    r = client.get("/v1/rings/ring-a", headers=headers("scorer"))
    assert r.status_code == 403
    assert r.json()["error"] == "forbidden"
    assert "scorer" in r.json()["detail"]


# ---- analyst views, masking, audit ------------------------------------------------------------
def test_analyst_sees_masked_pii_investigator_does_not(client: TestClient) -> None:
    masked = client.get("/v1/users/a1/ring", headers=headers("analyst")).json()
    clear = client.get("/v1/users/a1/ring", headers=headers("investigator")).json()
    assert masked["ring"]["masked"] is True
    assert clear["ring"]["masked"] is False
    m1 = next(m for m in masked["ring"]["members"] if m["user_id"] == "a1")
    c1 = next(m for m in clear["ring"]["members"] if m["user_id"] == "a1")
    assert c1["email"] == "johndoe1@gmail.com"
    assert m1["email"] == "j***1@gmail.com"
    assert c1["phone"] == "+919876543210"
    assert m1["phone"] == "+91******3210"
    text = orjson.dumps(masked).decode()
    assert "johndoe" not in text
    assert "9876543210" not in text
    assert "dev-ring-a" in text  # device ids are evidence, shown as they are
    email_link = next(lk for lk in masked["ring"]["links"] if lk["kind"] == "email_similar")
    assert "***" in email_link["value_a"]
    assert "***" in email_link["evidence"]


def test_ring_detail_explain_and_not_found(client: TestClient) -> None:
    ring = client.get("/v1/rings/ring-b", headers=headers("analyst")).json()
    assert ring["size"] == 3
    assert {m["user_id"] for m in ring["members"]} == {"b1", "b2", "b3"}
    assert ring["ring_score"] == 0.6  # float32 noise rounded away
    exp = client.get(
        "/v1/links/explain", params={"a": "a1", "b": "a4"}, headers=headers("analyst")
    ).json()
    assert exp["connected"] is True
    assert exp["path"][0] == "a1"
    assert exp["path"][-1] == "a4"
    assert exp["hops"]
    assert all(hop for hop in exp["hops"])
    none = client.get(
        "/v1/links/explain", params={"a": "a1", "b": "h5"}, headers=headers("analyst")
    ).json()
    assert none["connected"] is False
    assert none["path"] == []
    solo = client.get("/v1/users/h5/ring", headers=headers("analyst")).json()
    assert solo == {"user_id": "h5", "ring": None}
    for url in ("/v1/users/ghost/ring", "/v1/rings/ring-zzz", "/v1/links/explain?a=a1&b=ghost"):
        r = client.get(url, headers=headers("analyst"))
        assert r.status_code == 404, url
        assert r.json()["error"] == "not_found", url
    r = client.get("/v1/links/explain?a=a1", headers=headers("analyst"))
    assert r.status_code == 422
    assert "b" in r.json()["detail"]


def test_ring_history_live_retired_audited_and_not_found(
    client: TestClient, settings: Settings
) -> None:
    r = client.get("/v1/rings/ring-a/history", headers=headers("analyst"))
    assert r.status_code == 200
    doc = r.json()
    assert (doc["ring_id"], doc["live"], doc["truncated"]) == ("ring-a", True, False)
    assert [(e["run_id"], e["ring_id"], e["event"]) for e in doc["events"]] == [
        ("r0", "ring-a", "born"),
        ("r1", "ring-a", "grew"),
        ("r1", "ring-old", "merged_into"),
    ]
    assert doc["events"][2] == {
        "run_id": "r1",
        "at": "2026-01-02T03:04:05.000000+00:00",
        "ring_id": "ring-old",
        "event": "merged_into",
        "other_ring_id": "ring-a",
        "size_before": 2,
        "size_after": 0,
        "shared": 2,
    }
    retired = client.get("/v1/rings/ring-old/history", headers=headers("investigator")).json()
    assert retired["live"] is False
    assert [e["event"] for e in retired["events"]] == ["born", "merged_into"]
    assert client.get("/v1/rings/ring-old", headers=headers("analyst")).status_code == 404
    r = client.get("/v1/rings/ring-zzz/history", headers=headers("analyst"))
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    assert "ring" in r.json()["detail"]
    assert client.get("/v1/rings/ring-a/history", headers=headers("scorer")).status_code == 403
    assert client.get("/v1/rings/ring-a/history").status_code == 401
    records = [r for r in audit_records(settings) if r["action"] == "read_ring_history"]
    assert [(r["role"], r["outcome"], r["status"], r["ids"]) for r in records] == [
        ("analyst", "ok", 200, {"ring_id": "ring-a"}),
        ("investigator", "ok", 200, {"ring_id": "ring-old"}),
        ("analyst", "not_found", 404, {"ring_id": "ring-zzz"}),
        ("scorer", "denied", 403, {"ring_id": "ring-a"}),
        (None, "unauthenticated", 401, {"ring_id": "ring-a"}),
    ]
    assert records[0]["route"] == "/v1/rings/{ring_id}/history"


def test_audit_log_records_reads_denials_and_admin_actions(
    client: TestClient, settings: Settings
) -> None:
    client.get("/v1/users/a2/ring", headers=headers("analyst"))
    client.get("/v1/rings/ring-zzz", headers=headers("investigator"))
    client.get("/v1/rings/ring-a", headers=headers("scorer"))
    client.get("/v1/rings/ring-a")
    client.post("/v1/admin/reload", json={"run": "r2", "wait": True}, headers=headers("admin"))
    client.get("/v1/users/a1/score", headers=headers("scorer"))  # hot path: not audited
    records = audit_records(settings)
    summary = [(r["action"], r["role"], r["outcome"], r["status"], r["ids"]) for r in records]
    assert summary == [
        ("read_user_ring", "analyst", "ok", 200, {"user_id": "a2"}),
        ("read_ring", "investigator", "not_found", 404, {"ring_id": "ring-zzz"}),
        ("read_ring", "scorer", "denied", 403, {"ring_id": "ring-a"}),
        ("read_ring", None, "unauthenticated", 401, {"ring_id": "ring-a"}),
        ("reload", "admin", "ok", 200, {"run": "r2"}),
    ]
    raw = settings.service.audit_log.read_text()
    assert all(key not in raw for key in KEYS.values())  # fingerprints only, never keys
    assert all(len(str(r["key_id"])) == 12 for r in records if r["key_id"])
    assert records[0]["route"] == "/v1/users/{user_id}/ring"


def test_audit_log_is_appended_across_app_restarts(settings: Settings, runs_root: Path) -> None:
    for _ in range(2):
        with TestClient(create_app(settings, runs_root / "r1")) as c:
            c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
            assert c.get("/v1/rings/ring-a", headers=headers("analyst")).status_code == 200
    assert len(audit_records(settings)) == 2


def test_unwritable_audit_log_fails_closed(client: TestClient) -> None:
    client.app.state.ctx.audit.close()  # type: ignore[attr-defined]
    r = client.get("/v1/rings/ring-a", headers=headers("analyst"))
    assert r.status_code == 503
    assert r.json()["error"] == "audit_unavailable"
    assert client.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200


# ---- POST /v1/score ------------------------------------------------------------
def test_post_score_links_new_user_to_ring(client: TestClient) -> None:
    body = {
        "user_id": "new-1",
        "email": "John.Doe9@gmail.com",
        "phone": "+91 98765 43219",
        "device_ids": ["dev-ring-a"],
        "ips": ["10.0.0.7"],
    }
    r = client.post("/v1/score", json=body, headers=headers("analyst"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["known"] is False
    assert doc["ring_id"] == "ring-a"
    assert doc["score"] > 0.9
    assert doc["user_id"] == "new-1"
    assert doc["matches_total"] == len(doc["matches"]) > 0
    kinds = {m["kind"] for m in doc["matches"]}
    assert {"device", "email_similar", "phone_similar", "ip"} <= kinds
    assert doc["match_counts"] == dict(Counter(m["kind"] for m in doc["matches"]))
    for m in doc["matches"]:
        if m["kind"] in ("email_similar", "phone_similar"):
            assert "***" in m["matched_value"]  # other users' PII masked for the analyst
    weights = [m["weight"] for m in doc["matches"]]
    assert weights == sorted(weights, reverse=True)


def _strings(doc: object) -> set[str]:
    """Every key and string value anywhere in a JSON document."""
    if isinstance(doc, dict):
        return set(doc) | {s for v in doc.values() for s in _strings(v)}
    if isinstance(doc, list):
        return {s for v in doc for s in _strings(v)}
    return {doc} if isinstance(doc, str) else set()


SNAPSHOT_USERS = {*RING_A, *RING_B, *HONEST}


@pytest.mark.parametrize(
    "body",
    [
        {"email": "John.Doe1@gmail.com"},  # a1's own address: the reverse lookup the oracle gave
        {"phone": "+91 98765 43210"},  # a1's own phone
        {"email": "person37@example.org", "phone": "+1 415 555 1111"},  # an honest customer
        {"device_ids": ["dev-ring-a"], "ips": ["203.0.113.5"]},
    ],
)
def test_post_score_tells_a_scorer_no_customer_ids_or_values(
    client: TestClient, body: dict[str, object]
) -> None:
    """The scorer learns the risk of the account it asks about, not who else holds its
    identifiers: no matched ids, values or per-match scores; only counts per match kind."""
    r = client.post("/v1/score", json=body, headers=headers("scorer"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["matches"] is None
    assert doc["hubs"] is None
    assert doc["matches_total"] == sum(doc["match_counts"].values()) > 0
    assert set(doc["match_counts"]) <= {
        "email",
        "email_similar",
        "phone",
        "phone_similar",
        "device",
        "ip",
    }
    seen = _strings(doc)
    assert not seen & SNAPSHOT_USERS, seen & SNAPSHOT_USERS
    assert not {s for s in seen if "@" in s or "***" in s or s.startswith("+")}
    assert "user_score" not in seen
    assert {"score", "ring_id", "reasons"} <= set(doc)
    assert doc["reasons"][0] == "NEW_USER"
    analyst = client.post("/v1/score", json=body, headers=headers("analyst")).json()
    assert (doc["score"], doc["ring_id"], doc["reasons"]) == (
        analyst["score"],
        analyst["ring_id"],
        analyst["reasons"],
    )  # the same verdict; only the evidence differs


def test_post_score_evidence_is_audited_and_unmasked_only_for_investigators(
    client: TestClient, settings: Settings
) -> None:
    body = {"user_id": "new-7", "email": "John.Doe1@gmail.com"}
    client.post("/v1/score", json=body, headers=headers("scorer"))  # no evidence: not audited
    investigator = client.post("/v1/score", json=body, headers=headers("investigator")).json()
    exact = next(m for m in investigator["matches"] if m["kind"] == "email")
    assert exact["user_id"] == "a1"
    assert exact["matched_value"] == "johndoe1@gmail.com"
    analyst = client.post("/v1/score", json=body, headers=headers("analyst")).json()
    assert next(m for m in analyst["matches"] if m["kind"] == "email")["matched_value"] == (
        "j***1@gmail.com"
    )
    records = audit_records(settings)
    assert [(r["action"], r["role"], r["outcome"]) for r in records] == [
        ("score_new_account", "investigator", "ok"),
        ("score_new_account", "analyst", "ok"),
    ]
    assert records[0]["ids"] == {
        "user_id": "new-7",
        "matched": [m["user_id"] for m in investigator["matches"]],
    }
    assert "johndoe" not in settings.service.audit_log.read_text()  # ids, never the PII asked
    client.app.state.ctx.audit.close()  # type: ignore[attr-defined]
    assert client.post("/v1/score", json=body, headers=headers("analyst")).status_code == 503
    assert client.post("/v1/score", json=body, headers=headers("scorer")).status_code == 200


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "at least one"),
        ({"email": None, "device_ids": []}, "at least one"),
        ({"email": 5}, "email"),
        ({"email": "a@b.com", "extra": 1}, "extra"),
        ({"device_ids": ["d"] * 21}, "device_ids"),
        ({"email": "x" * 400}, "email"),
        ({"phone": "+1 415", "region": "india"}, "region"),
    ],
)
def test_post_score_bad_input_is_422_with_message(
    client: TestClient, body: dict[str, object], fragment: str
) -> None:
    r = client.post("/v1/score", json=body, headers=headers("scorer"))
    assert r.status_code == 422, r.text
    assert fragment in r.json()["detail"], r.text
    assert "x" * 50 not in r.text  # submitted values are not echoed


def test_post_score_bad_json_and_oversized_body(client: TestClient) -> None:
    h = {**headers("scorer"), "content-type": "application/json"}
    r = client.post("/v1/score", content=b'{"email": ', headers=h)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    r = client.post("/v1/score", content=b"\xff\xfe", headers=h)
    assert r.status_code == 422
    big = orjson.dumps({"email": "a@b.com", "ips": ["1.1.1.1"], "pad": "x" * 70_000})
    r = client.post("/v1/score", content=big, headers=h)
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"

    def chunks() -> object:  # no content-length: counted while streaming
        for _ in range(20):
            yield b" " * 5000

    r = client.post("/v1/score", content=chunks(), headers=h)  # type: ignore[arg-type]
    assert r.status_code == 413


def test_post_score_unparseable_identifiers_are_reported(client: TestClient) -> None:
    r = client.post(
        "/v1/score", json={"email": "not-an-email", "ips": ["300.1.1.1"]}, headers=headers("scorer")
    )
    assert r.status_code == 200
    assert set(r.json()["rejected"]) == {"email", "ips"}
    assert r.json()["match_counts"] == {}


# ---- ops ----------------------------------------------------------------------
def test_health_ready_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["ready"] is True
    assert ready["snapshot"]["run_id"] == "r1"
    client.get("/v1/users/nobody/score", headers=headers("scorer"))
    text = client.get("/metrics").text
    assert (
        'graphfraud_http_request_duration_seconds_count{method="GET",route="/v1/users/{user_id}/score"}'
        in text
    )
    assert "graphfraud_unknown_users_total 1.0" in text
    assert 'graphfraud_snapshot_info{model_version="gbm-test-1",run_id="r1"} 1.0' in text
    assert "graphfraud_snapshot_age_seconds" in text
    assert "nobody" not in text


def test_readyz_is_503_until_a_snapshot_is_loaded(settings: Settings, tmp_path: Path) -> None:
    settings.service.runs_root = tmp_path  # no CURRENT file: nothing to load
    with TestClient(create_app(settings)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503
        assert r.json()["ready"] is False
        r = c.get("/v1/users/a1/score", headers=headers("scorer"))
        assert r.status_code == 503
        assert r.json()["error"] == "not_ready"
        assert c.get("/healthz").status_code == 200


def test_unknown_route_and_method_are_json(client: TestClient) -> None:
    r = client.get("/v1/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"
    r = client.delete("/v1/users/a1/score")
    assert r.status_code == 405
    assert r.json()["error"] == "method_not_allowed"


def test_openapi_documents_security_and_examples(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"]["name"] == "X-API-Key"
    op = spec["paths"]["/v1/users/{user_id}/score"]["get"]
    assert op["security"] == [{"ApiKeyAuth": []}]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/ScoreResponse")
    assert {"401", "403", "503"} <= set(op["responses"])
    assert client.get("/docs").status_code == 200


def test_ui_is_served_without_external_resources(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
    page = client.get("/ui/")
    assert page.status_code == 200
    assert 'id="cy"' in page.text
    assert "app.js" in page.text
    js = client.get("/ui/app.js")
    assert js.status_code == 200
    for text in (page.text, js.text, client.get("/ui/style.css").text):
        assert "http://" not in text
        assert "https://" not in text
    # the graph library is a vendored copy with its licence and version, served from here
    assert 'src="vendor/cytoscape.min.js"' in page.text
    lib = client.get("/ui/vendor/cytoscape.min.js")
    assert lib.status_code == 200
    assert "cytoscape" in lib.text[:2000]
    assert "MIT" in client.get("/ui/vendor/cytoscape.LICENSE").text
    assert client.get("/ui/vendor/VERSIONS").text.startswith("cytoscape 3.")


# ---- security headers ---------------------------------------------------------------------------
PAGE_URLS = ("/ui/", "/ui/app.js", "/ui/style.css")
API_URLS = ("/v1/users/a1/score", "/v1/users/a1/ring", "/v1/nope", "/healthz", "/openapi.json")


def _csp(response: object) -> dict[str, str]:
    header = response.headers["content-security-policy"]  # type: ignore[attr-defined]
    return {d.split()[0]: d.strip() for d in header.split(";") if d.strip()}


@pytest.mark.parametrize("url", [*PAGE_URLS, *API_URLS, "/docs", "/"])
def test_every_response_carries_security_headers(client: TestClient, url: str) -> None:
    for key in (None, KEYS["analyst"]):  # successes and 401s alike
        r = client.get(url, headers={"X-API-Key": key} if key else {}, follow_redirects=False)
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["x-frame-options"] == "DENY", url
        assert r.headers["referrer-policy"] == "no-referrer", url
        csp = _csp(r)
        assert csp["frame-ancestors"] == "frame-ancestors 'none'", url
        assert len(r.headers.get_list("content-security-policy")) == 1, url  # one policy
        if url in API_URLS:
            assert csp["default-src"] == "default-src 'none'", url  # JSON never runs anything
            assert r.headers["cache-control"] == "no-store", url  # scores, PII: never cached


def test_ui_page_policy_allows_only_its_own_files(client: TestClient) -> None:
    page = client.get("/ui/")
    csp = _csp(page)
    assert csp["default-src"] == "default-src 'self'"
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert "unsafe-eval" not in page.headers["content-security-policy"]
    # ...and the page needs nothing else: no inline script, style or handler, every asset local
    html = page.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=|<style", html), "inline style"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets
    for asset in assets:
        assert "//" not in asset, asset
        assert not asset.startswith(("javascript:", "data:")), asset
        assert client.get(f"/ui/{asset}").status_code == 200, asset
    js = client.get("/ui/app.js").text
    for banned in ("eval(", "new Function", "innerHTML", "outerHTML", "insertAdjacentHTML"):
        assert banned not in js, banned
    # a `style` key would set a style attribute (cytoscape's "line-style" is a graph property)
    assert not re.search(r"""(?<![-\w])["']?style["']?\s*:""", js), "style attribute set from JS"
    assert 'setAttribute("style"' not in js


def test_docs_policy_names_the_inline_script_by_hash(client: TestClient) -> None:
    r = client.get("/docs")
    assert r.status_code == 200
    csp = _csp(r)
    inline = re.findall(r"<script>(.*?)</script>", r.text, re.S)
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp["script-src"]
    assert "'unsafe-inline'" not in csp["script-src"]
