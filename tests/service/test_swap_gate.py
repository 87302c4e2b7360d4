"""Every snapshot swap is gated: a run with too few users, null scores, no model version or an
unfinished status is refused with a message, and the old snapshot keeps answering — also
under load, with zero failed requests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from fastapi.testclient import TestClient

from graphfraud import schema
from graphfraud.config import Settings
from graphfraud.scoring.mapped import write_score_store
from graphfraud.service import create_app

from .factories import RING_A, headers, make_settings, write_run

GOOD_USERS = 16  # users in a factory run


def _rewrite_scores(run: Path, change: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
    # straight to Parquet (no cast to the contract schema: a broken batch wrote these files)
    change(pl.read_parquet(run / schema.SCORES_FILE)).write_parquet(run / schema.SCORES_FILE)
    write_score_store(run)


def _rewrite_manifest(run: Path, change: Callable[[dict[str, object]], None]) -> None:
    path = run / schema.MANIFEST_FILE
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def _bad_runs(root: Path) -> dict[str, str]:
    """name → a fragment of the reason it must be refused for."""
    _rewrite_scores(write_run(root / "empty"), lambda f: f.head(0))
    _rewrite_scores(write_run(root / "shrunk"), lambda f: f.head(7))  # 7 of 16 < 50 %
    _rewrite_scores(
        write_run(root / "null-score"),
        lambda f: f.with_columns(
            pl.when(pl.col("user_id") == "h3").then(None).otherwise(pl.col("score")).alias("score")
        ),
    )
    _rewrite_scores(
        write_run(root / "nan-score"),
        lambda f: f.with_columns(
            pl.when(pl.col("user_id") == "a2")
            .then(float("nan"))
            .otherwise(pl.col("score"))
            .alias("score")
        ),
    )
    no_version = write_run(root / "no-version")
    _rewrite_scores(
        no_version, lambda f: f.with_columns(pl.lit(None, pl.String).alias("model_version"))
    )
    _rewrite_manifest(no_version, lambda m: m.pop("model_version"))
    _rewrite_manifest(write_run(root / "no-status"), lambda m: m.pop("status"))
    return {
        "empty": "no scored users",
        "shrunk": "7 users",
        "null-score": "1 user(s) without a score",
        "nan-score": "1 user(s) without a score",
        "no-version": "model version",
    }


@pytest.fixture(scope="module")
def gate_root(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("gate")
    write_run(root / "good")
    write_run(root / "good-2", score_shift=0.01)
    _rewrite_scores(write_run(root / "smaller", score_shift=0.02), lambda f: f.head(10))
    return root, _bad_runs(root)


@pytest.fixture
def gate_settings(tmp_path: Path, gate_root: tuple[Path, dict[str, str]]) -> Settings:
    return make_settings(tmp_path, gate_root[0])


@pytest.fixture
def gated(gate_settings: Settings, gate_root: tuple[Path, dict[str, str]]) -> TestClient:
    c = TestClient(create_app(gate_settings, gate_root[0] / "good"))
    c.__enter__()
    assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
    return c


def _reload(c: TestClient, run: str, wait: bool = True) -> tuple[int, dict[str, object]]:
    r = c.post("/v1/admin/reload", json={"run": run, "wait": wait}, headers=headers("admin"))
    return r.status_code, r.json()


def _served(c: TestClient) -> str:
    return str(c.get("/v1/users/a1/score", headers=headers("scorer")).json()["snapshot"])


@pytest.mark.parametrize("run", ["empty", "shrunk", "null-score", "nan-score", "no-version"])
def test_bad_run_is_refused_and_the_old_snapshot_kept(
    gated: TestClient, gate_root: tuple[Path, dict[str, str]], run: str
) -> None:
    why = gate_root[1][run]
    try:
        status, body = _reload(gated, run)
        assert status == 409, body
        assert body["error"] == "snapshot_rejected"
        assert why in str(body["detail"]), body
        assert "good" in str(body["hint"])  # says what is still served
        assert _served(gated) == "good"
        assert gated.get("/readyz").json()["snapshot"]["run_id"] == "good"
        admin = gated.get("/v1/admin/snapshot", headers=headers("admin")).json()
        assert admin["snapshot"]["run_id"] == "good"
        assert admin["last_rejected"]["run"] == run
        assert any(why in reason for reason in admin["last_rejected"]["reasons"])
        assert admin["last_rejected"]["rejected_at"]
        assert why in admin["last_error"]
        metrics = gated.get("/metrics").text
        assert 'graphfraud_snapshot_reloads_total{outcome="rejected"} 1.0' in metrics
    finally:
        gated.__exit__(None, None, None)


def test_a_moderate_shrink_passes_and_the_ratio_is_a_setting(
    gate_settings: Settings, gate_root: tuple[Path, dict[str, str]]
) -> None:
    root = gate_root[0]
    with TestClient(create_app(gate_settings, root / "good")) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        assert _reload(c, "smaller")[0] == 200  # 10 of 16 users: 62 % ≥ 50 %
        assert _served(c) == "smaller"
    gate_settings.service.swap_min_user_ratio = 0.9
    with TestClient(create_app(gate_settings, root / "good")) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        status, body = _reload(c, "smaller")
        assert status == 409
        assert "90%" in str(body["detail"])
        assert _served(c) == "good"


def test_background_reload_and_first_load_are_gated(
    gate_settings: Settings, gate_root: tuple[Path, dict[str, str]]
) -> None:
    root = gate_root[0]
    with TestClient(create_app(gate_settings, root / "good")) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]
        status, _ = _reload(c, "empty", wait=False)
        assert status == 202
        for _ in range(200):
            admin = c.get("/v1/admin/snapshot", headers=headers("admin")).json()
            if admin["loading"] is None and admin["last_rejected"]:
                break
            threading.Event().wait(0.02)
        assert admin["last_rejected"]["run"] == "empty"
        assert _served(c) == "good"
    with TestClient(create_app(gate_settings, root / "empty")) as c:  # nothing served yet
        holder = c.app.state.holder  # type: ignore[attr-defined]
        for _ in range(200):
            if holder.status().loading is None and holder.status().last_rejected:
                break
            threading.Event().wait(0.02)
        ready = c.get("/readyz")
        assert ready.status_code == 503  # never ready on an empty run: every user would be 0.0
        assert "no scored users" in ready.json()["detail"]
        assert c.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 503


def test_current_pointer_to_a_bad_run_is_refused_once_not_reloaded_every_poll(
    gate_settings: Settings, gate_root: tuple[Path, dict[str, str]]
) -> None:
    root = gate_root[0]
    (root / "CURRENT").write_text("good")
    try:
        app = create_app(gate_settings)
        with TestClient(app) as c:
            holder = app.state.holder
            assert holder.wait_ready(20)
            (root / "CURRENT").write_text("null-score")
            with pytest.raises(Exception, match="without a score"):
                holder.poll_once()
            assert holder.poll_once() is False  # the same refused run is not loaded again
            assert holder.poll_once() is False
            metrics = c.get("/metrics").text
            assert 'graphfraud_snapshot_reloads_total{outcome="rejected"} 1.0' in metrics
            assert _served(c) == "good"
            (root / "CURRENT").write_text("good-2")
            assert holder.poll_once() is True
            assert _served(c) == "good-2"
    finally:
        (root / "CURRENT").unlink()


def test_rejected_swaps_under_load_fail_no_request(
    gate_settings: Settings, gate_root: tuple[Path, dict[str, str]]
) -> None:
    root, bad = gate_root
    errors: list[str] = []
    seen: set[tuple[str, float]] = set()
    answered = 0
    stop = threading.Event()
    lock = threading.Lock()
    with TestClient(create_app(gate_settings, root / "good")) as c:
        assert c.app.state.holder.wait_ready(20)  # type: ignore[attr-defined]

        def hammer(i: int) -> None:
            nonlocal answered
            h = headers("scorer")
            while not stop.is_set():
                if i % 2:
                    r = c.get(f"/v1/users/{RING_A[i % 4]}/score", headers=h)
                else:
                    r = c.post("/v1/score", json={"device_ids": ["dev-ring-a"]}, headers=h)
                with lock:
                    answered += 1
                    if r.status_code != 200:
                        errors.append(f"{r.status_code} {r.text}")
                    else:
                        doc = r.json()
                        seen.add((str(doc["snapshot"]), float(doc["score"])))

        def answers() -> int:
            with lock:
                return answered

        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        try:
            while answers() < 20:  # the load is on before the first swap is tried
                threading.Event().wait(0.01)
            before = answers()
            for run in [*bad, *bad]:
                status, body = _reload(c, run)
                assert status in (409, 422), (run, body)  # gate, or the loader (no status)
            during = answers() - before
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert during >= 2 * len(bad), during  # requests were answered while swaps were refused
        assert errors == []
        assert {snapshot for snapshot, _ in seen} == {"good"}  # the old one answered throughout
        metrics = c.get("/metrics").text
        assert f'graphfraud_snapshot_reloads_total{{outcome="rejected"}} {2 * len(bad)}.0' in (
            metrics
        )
