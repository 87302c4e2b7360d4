"""One contract for every `ScoreStore` backend, on a real small run (tests/online_run.py, whose
score stage wrote the mapped store): the same answers as the run's Parquet, and the same as
each other, for users, rings, identifier holders, unknown keys, and the online scorer on
accounts the batch has not seen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import polars as pl
import pytest

from graphfraud import schema
from graphfraud.model.ego import load_state
from graphfraud.model.registry import ModelRegistry
from graphfraud.scoring.account import Scorer, score_account
from graphfraud.scoring.mapped import open_mapped_store
from graphfraud.scoring.online import canonical_identity, score_new_user
from graphfraud.scoring.online_model import load_online_model
from graphfraud.scoring.snapshot import SCORE_DECIMALS, load_snapshot
from graphfraud.scoring.store import ScoreStore, StoreBackend, open_score_store
from graphfraud.scoring.today import AccountRequest
from tests.online_run import OnlineRun

OPENERS: dict[str, Callable[[Path], ScoreStore]] = {
    StoreBackend.MEMORY: load_snapshot,
    StoreBackend.MAPPED: lambda run: open_mapped_store(run, verify=True),
}
ONLINE_ACCOUNTS = 40  # withheld sign-ups scored against every backend


@pytest.fixture(scope="module", params=sorted(OPENERS))
def store(request: pytest.FixtureRequest, online_run: OnlineRun) -> ScoreStore:
    return OPENERS[request.param](online_run.run_dir)


@pytest.fixture(scope="module")
def both(online_run: OnlineRun) -> dict[str, ScoreStore]:
    return {name: open_(online_run.run_dir) for name, open_ in OPENERS.items()}


@pytest.fixture(scope="module")
def scores(online_run: OnlineRun) -> pl.DataFrame:
    return pl.read_parquet(online_run.run_dir / schema.SCORES_FILE)


def test_every_user_reads_back_its_batch_score(store: ScoreStore, scores: pl.DataFrame) -> None:
    assert len(store) == scores.height == store.info.users
    for row in scores.iter_rows(named=True):
        record = store.user(row["user_id"])
        assert record is not None, row["user_id"]
        assert store.knows(row["user_id"])
        assert record.score == round(row["score"], SCORE_DECIMALS)
        assert record.ring_id == row["ring_id"]
        assert record.reasons == tuple(row["reasons"] or ())
        assert record.model_version == row["model_version"]
        assert record.suspected_ring == bool(row["suspected_ring"])
        doc = orjson.loads(store.score_json(row["user_id"])[0])
        assert (doc["known"], doc["score"], doc["ring_id"]) == (True, record.score, row["ring_id"])


def test_unknown_keys_answer_empty_not_errors(store: ScoreStore) -> None:
    assert store.user("nobody-at-all") is None
    assert not store.knows("nobody-at-all")
    assert not store.knows("")
    body, known = store.score_json("nobody-at-all")
    doc = orjson.loads(body)
    assert not known
    assert doc["reasons"] == ["UNKNOWN_USER"]
    assert doc["score"] == store.info.neutral_score
    assert store.ring("no-such-ring") is None
    assert store.ring_members("no-such-ring") == ()
    assert store.holders("email", "nobody@nowhere.invalid") == ()
    assert store.holders("not_a_kind", "x") == ()
    assert store.positions(["nobody-at-all"]).tolist() == [-1]


def test_rings_and_their_members_are_the_runs(store: ScoreStore, online_run: OnlineRun) -> None:
    members = pl.read_parquet(online_run.run_dir / schema.MEMBERS_FILE)
    rings = pl.read_parquet(online_run.run_dir / schema.RING_SCORES_FILE)
    scored = dict(
        pl.read_parquet(online_run.run_dir / schema.SCORES_FILE)
        .drop_nulls("ring_id")
        .group_by("ring_id")
        .agg(pl.len())
        .iter_rows()
    )
    assert scored, "the run has rings to compare"
    by_ring = members.group_by("ring_id").agg(pl.col("user_id").sort())
    want = {rid: tuple(ids) for rid, ids in by_ring.iter_rows() if rid in scored}
    for ring_id, ring_score, suspected in rings.select(
        "ring_id", "ring_score", "suspected_ring"
    ).iter_rows():
        ring = store.ring(ring_id)
        if ring_id not in scored:
            continue
        assert ring is not None
        assert ring.size == scored[ring_id] == len(store.ring_members(ring_id))
        assert store.ring_members(ring_id) == want[ring_id]
        assert ring.score == pytest.approx(ring_score, abs=1e-6)
        assert ring.suspected == bool(suspected)


def test_holders_of_identifiers_are_the_runs(store: ScoreStore, online_run: OnlineRun) -> None:
    users = pl.read_parquet(online_run.run_dir / schema.USERS_FILE)
    devices = pl.read_parquet(online_run.run_dir / schema.DEVICES_FILE)
    checked = 0
    for kind, frame, column in (
        ("email", users, "email"),
        ("phone", users, "phone"),
        ("device", devices, "device_id"),
        ("ip", devices, "ip"),
    ):
        held = (
            frame.select("user_id", pl.col(column).alias("v"))
            .drop_nulls()
            .unique()
            .group_by("v")
            .agg(pl.col("user_id").sort())
            .sort(pl.col("user_id").list.len(), "v", descending=[True, False])
            .head(30)
        )
        for value, ids in held.iter_rows():
            assert store.holders(kind, value) == tuple(ids), (kind, value)
            checked += 1
    assert checked > 60


def test_both_backends_agree(both: dict[str, ScoreStore], online_run: OnlineRun) -> None:
    memory, mapped = both[StoreBackend.MEMORY], both[StoreBackend.MAPPED]
    skip = {"loaded_at", "load_seconds"}
    assert {k: v for k, v in vars(memory.info).items() if k not in skip} == {
        k: v for k, v in vars(mapped.info).items() if k not in skip
    }
    assert memory.ids_digest() == mapped.ids_digest()
    assert memory.ids_digest() == load_state(online_run.run_dir / schema.ONLINE_DIR).meta.ids_digest
    ids = pl.read_parquet(online_run.run_dir / schema.SCORES_FILE)["user_id"].to_list()
    assert memory.positions(ids).tolist() == mapped.positions(ids).tolist() == list(range(len(ids)))
    sample = [*ids[::97], "nobody", ""]
    for uid in sample:
        assert memory.score_json(uid) == mapped.score_json(uid)
    codes_m, rings_m = memory.node_rings()
    codes_p, rings_p = mapped.node_rings()
    assert list(rings_m) == list(rings_p)
    assert codes_m.tolist() == codes_p.tolist()


def _requests(online_run: OnlineRun, registry_of: ScoreStore) -> list[AccountRequest]:
    devices = online_run.devices.group_by("user_id").agg("device_id", "ip")
    rows = online_run.withheld.head(ONLINE_ACCOUNTS).join(devices, on="user_id", how="left")
    out = []
    for row in rows.iter_rows(named=True):
        raw = {k: row[k] for k in ("email", "phone", "upi") if row.get(k)}
        raw |= {"device": row["device_id"] or [], "ip": row["ip"] or []}
        identity, _ = canonical_identity(raw, registry=registry_of.registry)
        out.append(AccountRequest(row["user_id"], identity, raw, row["_t"], record=False))
    return out


def test_online_scores_are_the_same_on_both_backends(
    both: dict[str, ScoreStore], online_run: OnlineRun
) -> None:
    settings = online_run.settings
    registry = ModelRegistry(settings.model.registry)
    got: dict[str, list[object]] = {}
    for name, store in both.items():
        model = load_online_model(online_run.run_dir, store, registry)
        scorer = Scorer(store, model, None, settings.link, settings.rings)
        requests = _requests(online_run, store)
        by_model = [score_account(scorer, r) for r in requests]
        by_links = [
            score_new_user(
                store, r.identity, settings.link, ring_min_weight=settings.rings.min_weight
            )
            for r in requests
        ]
        got[name] = [*by_model, *by_links]
    assert got[StoreBackend.MEMORY] == got[StoreBackend.MAPPED]
    linked = [v for v in got[StoreBackend.MAPPED][:ONLINE_ACCOUNTS] if v.links]  # type: ignore[attr-defined]
    assert len(linked) > ONLINE_ACCOUNTS // 4  # the comparison covers real matches


def test_the_setting_picks_the_backend(online_run: OnlineRun) -> None:
    assert type(open_score_store(online_run.run_dir, "memory")).__name__ == "InMemoryScoreStore"
    assert type(open_score_store(online_run.run_dir, "mapped")).__name__ == "MappedScoreStore"
