"""The GNN online: a new account's layers read its neighbours' stored states (the batch's for
snapshot users, their record's for today's accounts), so it is scored by the run's GNN."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from graphfraud import schema
from graphfraud.model.gnn.state import load_gnn_states
from graphfraud.model.registry import ModelRegistry
from graphfraud.pipeline import stage_score
from graphfraud.rundir import RunDir
from graphfraud.scoring.account import (
    GNN_DTYPE,
    Scorer,
    _neighbourhood,
    score_account,
    unpack,
)
from graphfraud.scoring.intraday.memory import MemoryIntradayStore
from graphfraud.scoring.online import NewIdentity
from graphfraud.scoring.online_model import OnlineModel, load_online_model
from graphfraud.scoring.snapshot import load_snapshot
from graphfraud.scoring.store import ScoreStore
from graphfraud.scoring.today import AccountRequest, Link, intraday_query
from tests.online_run import OnlineRun
from tests.scoring.test_account import check_batch_users

# Half-precision neighbour states (`model/gnn/state.py`) move a node's logit by ~1e-3 at most
# here; through the ring blend a score moves by less.
GNN_SCORE_TOLERANCE = 2e-3


@pytest.fixture(scope="module")
def gnn_run(online_run: OnlineRun, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The online run's night rescored by a GNN (same links, rings and features)."""
    root = tmp_path_factory.mktemp("gnn")
    run = root / "run"
    shutil.copytree(online_run.run_dir, run)
    manifest = RunDir(run).manifest()
    manifest["status"] = "running"
    RunDir(run).write_json(schema.MANIFEST_FILE, manifest)
    settings = online_run.settings
    settings = settings.model_copy(
        update={
            "model": settings.model.model_copy(
                update={
                    "candidates": ["gnn"],
                    "registry": root / "models",
                    "params": {"gnn": {"hidden": 16, "max_epochs": 60, "patience": 15}},
                }
            )
        }
    )
    stage_score(RunDir(run), settings)
    return run


@pytest.fixture(scope="module")
def served(gnn_run: Path) -> tuple[ScoreStore, OnlineModel]:
    snapshot = load_snapshot(gnn_run)
    return snapshot, load_online_model(gnn_run, snapshot, ModelRegistry(gnn_run.parent / "models"))


@pytest.fixture(scope="module")
def batch(gnn_run: Path) -> dict[str, pl.DataFrame]:
    names = (
        schema.USERS_FILE, schema.DEVICES_FILE, schema.LINKS_FILE, schema.IDENTIFIERS_FILE,
        schema.MEMBERS_FILE, schema.RINGS_FILE, schema.FEATURES_FILE, schema.SCORES_FILE,
    )  # fmt: skip
    return {name: pl.read_parquet(gnn_run / name) for name in names}


def test_the_run_leaves_every_node_s_gnn_states_in_snapshot_order(
    gnn_run: Path, served: tuple[ScoreStore, OnlineModel]
) -> None:
    snapshot, model = served
    states = load_gnn_states(gnn_run / schema.ONLINE_DIR)
    assert model.part == "gnn"
    assert model.gnns
    assert not model.gbms
    assert states.version == model.version == snapshot.info.model_version
    assert states.matrix.shape[:3] == (len(snapshot), len(model.gnns), model.gnns[0].layers)
    assert np.isfinite(np.asarray(states.matrix[:100], dtype=np.float32)).all()


def test_online_gnn_scores_a_batch_user_as_the_batch_did(
    online_run: OnlineRun, served: tuple[ScoreStore, OnlineModel], batch: dict[str, pl.DataFrame]
) -> None:
    snapshot, model = served
    scorer = Scorer(snapshot, model, None, online_run.settings.link, online_run.settings.rings)
    assert check_batch_users(scorer, batch, 120, GNN_SCORE_TOLERANCE) >= 60


def _account(user_id: str, device: str, at: datetime) -> AccountRequest:
    return AccountRequest(
        user_id=user_id,
        identity=NewIdentity(values={"device": (device,)}, parts={}),
        raw={},
        created_at=at,
    )


def test_today_s_accounts_offer_their_gnn_states_to_later_ones(
    online_run: OnlineRun, served: tuple[ScoreStore, OnlineModel]
) -> None:
    """A recorded account stores its own states under the model's version; a later account
    linked to it reads them, and one recorded under another model is read by the GBM row only."""
    snapshot, model = served
    store = MemoryIntradayStore()
    scorer = Scorer(snapshot, model, store, online_run.settings.link, online_run.settings.rings)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    first = score_account(scorer, _account("new-1", "dev-shared-today", now))
    assert first.recorded
    assert first.model_part == "gnn"
    probe = _account("probe", "dev-shared-today", now)
    stored = store.lookup(intraday_query(probe, snapshot.registry, scorer.link)).accounts["new-1"]
    shape = model.gnn_states.matrix.shape[1:] if model.gnn_states is not None else ()
    own = unpack(stored.payload["g"], int(np.prod(shape)), GNN_DTYPE).reshape(shape)
    assert stored.payload["gv"] == model.version
    assert np.isfinite(own).all()

    second = score_account(scorer, _account("new-2", "dev-shared-today", now + timedelta(1)))
    assert [lk.user_id for lk in second.links] == ["new-1"]
    link = Link("device", "new-1", True, "dev-shared-today", "dev-shared-today", 1.0, 2, 0.9)
    near = _neighbourhood(model, scorer.snapshot, [link], {"new-1": stored})
    assert near.hidden is not None
    assert near.stateless is not None
    np.testing.assert_allclose(near.hidden[0], own, rtol=1e-3)
    assert not near.stateless[0]
    elsewhere = _neighbourhood(
        replace(model, version="another"), scorer.snapshot, [link], {"new-1": stored}
    )
    assert elsewhere.stateless is not None
    assert elsewhere.stateless[0]
