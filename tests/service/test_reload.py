"""Snapshot swap: atomic under concurrent requests, path rules, CURRENT pointer, failed loads."""

from __future__ import annotations

import gc
import threading
import weakref
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from graphfraud.config import Settings
from graphfraud.service import create_app

from .factories import headers, write_run

# a1's score in r1 and r2 (score_shift=0.01): every answer must be exactly one of these pairs.
EXPECTED = {"r1": 0.95, "r2": 0.96}


def test_swap_under_concurrent_requests_never_fails_or_mixes(client: TestClient) -> None:
    stop = threading.Event()
    seen: list[tuple[int, str, float]] = []
    errors: list[str] = []

    def hammer() -> None:
        h = headers("scorer")
        while not stop.is_set():
            r = client.get("/v1/users/a1/score", headers=h)
            if r.status_code != 200:
                errors.append(r.text)
                continue
            doc = r.json()
            seen.append((r.status_code, doc["snapshot"], doc["score"]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for run in ("r2", "r1", "r2"):
            r = client.post(
                "/v1/admin/reload", json={"run": run, "wait": True}, headers=headers("admin")
            )
            assert r.status_code == 200
            assert r.json()["snapshot"]["run_id"] == run
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    assert {snap for _, snap, _ in seen} == {"r1", "r2"}
    assert all(EXPECTED[snap] == score for _, snap, score in seen)  # never a half-swapped view
    assert client.get("/v1/users/a1/score", headers=headers("scorer")).json()["snapshot"] == "r2"


def test_a_swap_freezes_the_long_lived_heap_and_frees_the_snapshot_it_replaced(
    client: TestClient,
) -> None:
    holder = client.app.state.holder  # type: ignore[attr-defined]
    replaced = weakref.ref(holder.current)
    r = client.post("/v1/admin/reload", json={"run": "r2", "wait": True}, headers=headers("admin"))
    assert r.status_code == 200
    assert replaced() is None  # unfrozen and collected at the swap, not kept for ever
    # a full collection now walks what came after the swap, not the app and its snapshot
    assert gc.get_freeze_count() > 10 * len(gc.get_objects())
    assert client.get("/v1/users/a1/score", headers=headers("scorer")).json()["score"] == 0.96


def test_background_reload_returns_202_then_swaps(client: TestClient) -> None:
    r = client.post("/v1/admin/reload", json={"run": "r2"}, headers=headers("admin"))
    assert r.status_code == 202
    assert r.json() == {"status": "loading", "run": "r2", "snapshot": None}
    holder = client.app.state.holder  # type: ignore[attr-defined]
    for _ in range(200):
        if holder.current.snapshot.info.run_id == "r2" and holder.status().loading is None:
            break
        threading.Event().wait(0.02)
    assert client.get("/readyz").json()["snapshot"]["run_id"] == "r2"
    status = client.get("/v1/admin/snapshot", headers=headers("admin")).json()
    assert status["snapshot"]["run_id"] == "r2"
    assert status["loading"] is None


@pytest.mark.parametrize(
    "run", ["../r1", "/etc", "r1/../../x", "..", ".", "~root", "nope", "r1\x00", "a" * 300]
)
def test_reload_refuses_paths_outside_the_runs_root(client: TestClient, run: str) -> None:
    r = client.post("/v1/admin/reload", json={"run": run, "wait": True}, headers=headers("admin"))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request"
    assert client.get("/v1/users/a1/score", headers=headers("scorer")).json()["snapshot"] == "r1"


def test_reload_refuses_symlink_escape(client: TestClient, runs_root: Path, tmp_path: Path) -> None:
    outside = write_run(tmp_path / "outside")
    link = runs_root / "sneaky"
    if not link.exists():
        link.symlink_to(outside, target_is_directory=True)
    r = client.post(
        "/v1/admin/reload", json={"run": "sneaky", "wait": True}, headers=headers("admin")
    )
    assert r.status_code == 422
    assert "inside the runs root" in r.json()["detail"]


def test_broken_run_keeps_the_old_snapshot(client: TestClient, runs_root: Path) -> None:
    broken = runs_root / "broken"
    broken.mkdir(exist_ok=True)
    r = client.post(
        "/v1/admin/reload", json={"run": "broken", "wait": True}, headers=headers("admin")
    )
    assert r.status_code == 422
    assert "cannot be loaded" in r.json()["detail"]
    assert client.get("/readyz").json()["snapshot"]["run_id"] == "r1"
    status = client.get("/v1/admin/snapshot", headers=headers("admin")).json()
    assert "not finished" in status["last_error"]  # no manifest: refused before any file


def test_current_pointer_is_followed_and_rollback_works(settings: Settings, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_run(root / "day1")
    write_run(root / "day2", score_shift=0.01)
    (root / "CURRENT").write_text("day1\n")
    settings.service.runs_root = root
    app = create_app(settings)  # no run dir: CURRENT decides
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(20)
        assert c.get("/readyz").json()["snapshot"]["run_id"] == "day1"
        (root / "CURRENT").write_text("day2")
        assert app.state.holder.poll_once() is True
        assert c.get("/v1/users/a1/score", headers=headers("scorer")).json()["snapshot"] == "day2"
        assert app.state.holder.poll_once() is False  # unchanged pointer: no reload
        r = c.post("/v1/admin/reload", json={"run": "day1", "wait": True}, headers=headers("admin"))
        assert r.status_code == 200  # rollback = point at the previous run
        (root / "CURRENT").write_text("day1")
        r = c.post("/v1/admin/reload", json={"wait": True}, headers=headers("admin"))
        assert r.status_code == 200
        assert r.json()["run"] == "day1"
        (root / "CURRENT").write_text("../elsewhere")
        with pytest.raises(Exception, match="invalid run"):
            app.state.holder.poll_once()


def test_second_reload_while_loading_is_409(client: TestClient) -> None:
    holder = client.app.state.holder  # type: ignore[attr-defined]
    assert holder._reload_lock.acquire()  # simulate a load in progress
    try:
        r = client.post("/v1/admin/reload", json={"run": "r2"}, headers=headers("admin"))
        assert r.status_code == 409
        assert r.json()["error"] == "conflict"
    finally:
        holder._reload_lock.release()
