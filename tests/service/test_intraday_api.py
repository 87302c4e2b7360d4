"""POST /v1/score with the intraday store: today's accounts link to each other, form emerging
rings, are scored by the run's model, and leave the store once a snapshot has them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from graphfraud.config import IntradaySettings, Settings
from graphfraud.rings.adopt import adopt_emerging, read_emerging
from graphfraud.rings.features import Rings
from graphfraud.scoring.emerging import emerging_memberships
from graphfraud.scoring.intraday import open_intraday_store
from graphfraud.scoring.intraday.local_server import LocalRedis
from graphfraud.service import create_app
from tests.conftest import REDIS_TEST_PASSWORD
from tests.online_run import OnlineRun

from .factories import headers, make_settings

T0 = datetime(2031, 5, 1, 9, 0, tzinfo=UTC)


def _settings(tmp_path: Path, run: OnlineRun, **intraday: Any) -> Settings:
    base = make_settings(tmp_path, run.run_dir.parent)
    return base.model_copy(
        update={
            "model": run.settings.model,
            "intraday": IntradaySettings(**intraday),
        }
    )


@pytest.fixture
def app(tmp_path: Path, online_run: OnlineRun) -> FastAPI:
    return create_app(_settings(tmp_path, online_run), online_run.run_dir)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(60), "snapshot did not load"
        yield c


def _post(client: TestClient, body: dict[str, Any], role: str = "scorer") -> dict[str, Any]:
    answer = client.post("/v1/score", json=body, headers=headers(role))
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _ring_account(i: int, **extra: Any) -> dict[str, Any]:
    """Accounts of one actor signing up minutes apart: numbered look-alike emails on a name no
    snapshot user has, one handset."""
    return {
        "user_id": f"new-ring-{i}",
        "email": f"zorvexquint{i:02d}@gmail.com",
        "device_ids": ["handset-zq-7781"],
        "created_at": (T0 + timedelta(minutes=3 * i)).isoformat(),
        **extra,
    }


def _metric(client: TestClient, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_the_run_model_scores_new_accounts_online(client: TestClient) -> None:
    got = _post(client, _ring_account(1))
    assert got["model_part"] == "gbm"
    assert got["model_score"] is not None
    assert got["degraded"] == []
    assert got["recorded"] is True
    assert got["ring_id"] is None  # alone so far


def test_accounts_signing_up_today_link_and_form_an_emerging_ring(client: TestClient) -> None:
    first = _post(client, _ring_account(1))
    second = _post(client, _ring_account(2))
    assert second["match_counts"].get("device") == 1
    assert second["match_counts"].get("email_similar") == 1
    assert second["emerging"] is True
    assert second["ring_id"].startswith("em-")
    assert "EMERGING_RING" in second["reasons"]
    third = _post(client, _ring_account(3))
    assert third["ring_id"] == second["ring_id"]
    assert third["ring_size"] == 3
    # the ring and the links it rests on raise the score of each new member above the lone one
    assert third["score"] > first["score"]


def test_analysts_see_todays_accounts_in_the_evidence_and_scorers_do_not(
    client: TestClient,
) -> None:
    _post(client, _ring_account(1))
    scorer = _post(client, _ring_account(2))
    assert scorer["matches"] is None
    analyst = _post(client, _ring_account(3), role="analyst")
    today = [m for m in analyst["matches"] if m["today"]]
    assert {m["user_id"] for m in today} == {"new-ring-1", "new-ring-2"}
    assert all(m["user_score"] is None for m in today)
    assert all("zorvexquint" not in m["matched_value"] for m in today)  # masked for an analyst


def test_todays_accounts_link_on_one_name_in_another_order(client: TestClient) -> None:
    """`zorvex.quintal` then `quintal_zorvex` (no edit distance makes them alike): the second
    links to the first, today's account, as the batch's reordered-name rule will tonight, with
    the name key's crowd (two) as support."""
    created = T0.isoformat()
    _post(
        client,
        {"user_id": "new-name-1", "email": "zorvex.quintal@gmail.com", "created_at": created},
    )
    second = _post(
        client,
        {"user_id": "new-name-2", "email": "quintal_zorvex@gmail.com", "created_at": created},
        role="analyst",
    )
    assert second["match_counts"].get("email_similar") == 1
    (match,) = [m for m in second["matches"] if m["kind"] == "email_similar"]
    assert match["user_id"] == "new-name-1"
    assert match["today"] is True
    assert match["support"] == 2


def test_a_what_if_is_not_recorded(client: TestClient) -> None:
    what_if = _post(client, _ring_account(1, record=False))
    assert what_if["recorded"] is False
    later = _post(client, _ring_account(2))
    assert later["match_counts"] == {}


def test_recording_is_idempotent_by_user_id(client: TestClient) -> None:
    before = _metric(client, "graphfraud_intraday_accounts")
    _post(client, _ring_account(1))
    _post(client, _ring_account(1))
    assert _metric(client, "graphfraud_intraday_accounts") == before + 1
    again = _post(client, _ring_account(2))
    assert again["match_counts"].get("device") == 1  # one account, not two copies


def test_scores_fall_below_the_neutral_score_as_well_as_above(
    client: TestClient, online_run: OnlineRun
) -> None:
    """The noisy-or this replaced could only raise a score above neutral."""
    neutral = client.get("/v1/admin/snapshot", headers=headers("admin")).json()["snapshot"][
        "neutral_score"
    ]
    scores = []
    for row in online_run.withheld.head(60).iter_rows(named=True):
        body = {"user_id": row["user_id"], "created_at": row["_t"].isoformat()}
        body |= {k: row[k] for k in ("email", "phone", "upi") if row.get(k)}
        scores.append(_post(client, body)["score"])
    assert min(scores) < neutral < max(scores)


def test_accounts_in_a_newly_swapped_snapshot_leave_the_store(
    client: TestClient, app: FastAPI, online_run: OnlineRun
) -> None:
    known = app.state.holder.serving().snapshot.user_ids.text(0)
    _post(client, {"user_id": known, "email": "someone.else@example.org"})
    _post(client, _ring_account(1))
    assert _metric(client, "graphfraud_intraday_accounts") == 2
    app.state.holder.load(online_run.run_dir)  # the next night's snapshot (the same run here)
    app.state.ctx.intraday.wait(10)
    assert _metric(client, "graphfraud_intraday_accounts") == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_with_the_store_down_the_snapshot_alone_is_matched_and_it_says_so(
    tmp_path: Path, online_run: OnlineRun
) -> None:
    settings = _settings(
        tmp_path,
        online_run,
        backend="redis",
        url=f"redis://127.0.0.1:{_closed_port()}/0",
        timeout_s=0.05,
    )
    app = create_app(settings, online_run.run_dir)
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(60)
        got = _post(c, _ring_account(1))
        assert got["degraded"] == ["intraday"]
        assert got["recorded"] is False
        assert got["model_part"] == "gbm"
        assert c.get("/v1/users/u0000001/score", headers=headers("scorer")).status_code == 200
        assert _metric(c, "graphfraud_intraday_unavailable_total") >= 1


def test_analysts_read_an_emerging_ring_before_the_batch(client: TestClient) -> None:
    for i in (1, 2, 3):
        last = _post(client, _ring_account(i))
    ring_id = last["ring_id"]
    assert client.get(f"/v1/emerging-rings/{ring_id}", headers=headers("scorer")).status_code == 403
    got = client.get(f"/v1/emerging-rings/{ring_id}", headers=headers("analyst"))
    assert got.status_code == 200, got.text
    ring = got.json()
    assert [m["user_id"] for m in ring["members"]] == ["new-ring-1", "new-ring-2", "new-ring-3"]
    assert ring["size"] == 3
    assert ring["features"]["creation_burst"] == 1.0  # nine minutes apart
    assert ring["features"]["shared_device_ratio"] == 1.0
    assert {frozenset((lk["user_a"], lk["user_b"])) for lk in ring["links"]} >= {
        frozenset(("new-ring-2", "new-ring-1")),
        frozenset(("new-ring-3", "new-ring-2")),
    }
    assert 0.0 < ring["ring_score"] < 1.0
    email = ring["members"][0]["identifiers"]["email"][0]
    assert "zorvexquint" not in email  # masked for an analyst
    missing = client.get("/v1/emerging-rings/em-000000000000", headers=headers("analyst"))
    assert missing.status_code == 404


def test_the_shared_store_exports_its_emerging_rings_for_the_batch_to_adopt(
    tmp_path: Path, online_run: OnlineRun, redis_server: LocalRedis
) -> None:
    settings = _settings(
        tmp_path,
        online_run,
        backend="redis",
        url=redis_server.url,
        password=REDIS_TEST_PASSWORD,
        prefix=f"export-{tmp_path.name}",
        timeout_s=0.5,
    )
    app = create_app(settings, online_run.run_dir)
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(60)
        ring_ids = {_post(c, _ring_account(i))["ring_id"] for i in (1, 2, 3)}
    ring_id = next(r for r in ring_ids if r)
    store = open_intraday_store(settings.intraday)
    try:
        exported = emerging_memberships(store)
    finally:
        store.close()
    assert sorted(exported.rows()) == [(f"new-ring-{i}", ring_id) for i in (1, 2, 3)]

    # tonight's batch: a ring holding two of them records the emerging ring it grew from
    path = tmp_path / "emerging.parquet"
    exported.write_parquet(path)
    members = pl.DataFrame({"user_id": ["new-ring-1", "new-ring-2", "x"], "ring_id": ["R9"] * 3})
    rings = pl.DataFrame(
        {"ring_id": ["R9"], "grew_from": [None]}, schema_overrides={"grew_from": pl.String}
    )
    adopted = adopt_emerging(Rings(members, rings), read_emerging(path))
    assert adopted.rings["grew_from"].to_list() == [ring_id]


def test_honest_new_accounts_join_communities_not_suspected_rings(
    client: TestClient, online_run: OnlineRun
) -> None:
    """Today's sign-ups with their devices and IPs: honest ones sharing a household tablet or a
    café get a community (`ring_id`) far more often than a suspected ring; every answer carries
    the band of its score."""
    truth = online_run.truth.select(pl.col("user_id").cast(pl.String), "is_fraud")
    seen = online_run.devices.group_by("user_id").agg(pl.col("device_id"), pl.col("ip"))
    rows = online_run.withheld.join(truth, on="user_id").join(seen, on="user_id", how="left")
    in_community = suspected = honest = 0
    for row in rows.iter_rows(named=True):
        body = {"user_id": row["user_id"], "created_at": row["_t"].isoformat()}
        body |= {k: row[k] for k in ("email", "phone", "upi") if row.get(k)}
        body |= {"device_ids": row["device_id"] or [], "ips": [i for i in row["ip"] or [] if i]}
        got = _post(client, body)
        assert got["band"] == ("allow" if got["score"] < 0.2 else
                               "review" if got["score"] < 0.5 else "decline")  # fmt: skip
        assert not got["suspected_ring"] or got["ring_id"] is not None
        if row["is_fraud"] == 0:
            honest += 1
            in_community += got["ring_id"] is not None
            suspected += got["suspected_ring"]
    assert honest > 100
    assert in_community >= 0.1 * honest
    assert suspected <= in_community / 4
