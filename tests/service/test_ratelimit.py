"""Failed authentication: a budget of unknown keys per client address, then 429 with
Retry-After (for a right key too), audited on analyst routes with the client's address."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from graphfraud.config import Settings
from graphfraud.service import create_app
from graphfraud.service.ratelimit import FailedAuthLimiter

from .factories import headers, make_settings

BUDGET = 5
WRONG = {"X-API-Key": "guess-0001"}


@pytest.fixture
def limited(tmp_path: Path, runs_root: Path) -> Settings:
    return make_settings(tmp_path, runs_root, auth_fail_budget=BUDGET, auth_fail_window_s=60.0)


def started(app: FastAPI, client: tuple[str, int]) -> TestClient:
    c = TestClient(app, client=client)
    c.__enter__()
    assert app.state.holder.wait_ready(20)
    return c


@pytest.fixture
def app(limited: Settings, runs_root: Path) -> FastAPI:
    return create_app(limited, runs_root / "r1")


def test_brute_force_is_cut_off_after_the_budget(app: FastAPI) -> None:
    attacker = started(app, ("198.51.100.66", 40000))
    bystander = TestClient(app, client=("192.0.2.10", 40001))
    try:
        statuses = [
            attacker.get("/v1/users/a1/score", headers={"X-API-Key": f"guess-{i}"}).status_code
            for i in range(200)
        ]
        assert statuses[:BUDGET] == [401] * BUDGET
        assert set(statuses[BUDGET:]) == {429}
        r = attacker.get("/v1/users/a1/score", headers=WRONG)
        assert r.json()["error"] == "too_many_attempts"
        assert r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        # a right key does not get through either: 200 would confirm the guess
        r = attacker.get("/v1/users/a1/score", headers=headers("scorer"))
        assert r.status_code == 429
        assert attacker.get("/v1/rings/ring-a", headers=headers("analyst")).status_code == 429
        # other clients are not affected, and nobody without a key is counted
        assert bystander.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200
        assert {bystander.get("/v1/users/a1/score").status_code for _ in range(50)} == {401}
        assert bystander.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200
        metrics = attacker.get("/metrics").text
        assert f'graphfraud_auth_failures_total{{kind="unknown_key"}} {BUDGET}.0' in metrics
        assert 'graphfraud_auth_failures_total{kind="rate_limited"} 198.0' in metrics
        assert "graphfraud_auth_lockouts_total 1.0" in metrics
    finally:
        attacker.__exit__(None, None, None)


def test_failed_attempts_on_analyst_routes_are_audited_with_the_client(
    app: FastAPI, limited: Settings
) -> None:
    c = started(app, ("203.0.113.77", 5000))
    try:
        for _ in range(BUDGET + 30):
            c.get("/v1/rings/ring-a", headers=WRONG)
        c.get("/v1/rings/ring-a")  # the locked-out client, without a key
    finally:
        c.__exit__(None, None, None)
    lines = limited.service.audit_log.read_bytes().splitlines()
    records = [orjson.loads(line) for line in lines]
    assert [(r["outcome"], r["status"]) for r in records] == [("unauthenticated", 401)] * BUDGET + [
        ("rate_limited", 429)  # once per lock-out, not once per refused request
    ]
    assert {r["client"] for r in records} == {"203.0.113.77"}
    assert all(r["key_id"] is None for r in records)
    assert b"guess-0001" not in b"".join(lines)


def test_budget_comes_back_when_the_window_ends(tmp_path: Path, runs_root: Path) -> None:
    settings = make_settings(tmp_path, runs_root, auth_fail_budget=2, auth_fail_window_s=2.0)
    with TestClient(create_app(settings, runs_root / "r1")) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        assert [c.get("/v1/users/a1/score", headers=WRONG).status_code for _ in range(3)] == [
            401,
            401,
            429,
        ]
        time.sleep(2.1)
        assert c.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200
        assert c.get("/v1/users/a1/score", headers=WRONG).status_code == 401


def test_limiter_window_lockout_and_bounded_memory() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(3, 10.0, max_clients=100, clock=lambda: now[0])
    assert limiter.refusal("a") is None
    assert [limiter.fail("a") for _ in range(3)] == [False, False, True]
    first, second = limiter.refusal("a"), limiter.refusal("a")
    assert first is not None
    assert second is not None
    assert (first.retry_after_s, first.first, second.first) == (10, True, False)
    now[0] = 9.2
    refusal = limiter.refusal("a")
    assert refusal is not None
    assert refusal.retry_after_s == 1  # rounded up, never 0
    now[0] = 10.0
    assert limiter.refusal("a") is None  # the lock-out ends with the window
    assert limiter.fail("a") is False  # and a new window starts with a fresh budget
    for i in range(1000):  # an address spray cannot grow the state without limit
        limiter.fail(f"10.0.{i // 256}.{i % 256}")
    assert limiter.tracked() <= 100
