"""The model stage never crashes on a valid night: sparse labels, empty relations, null columns.

Property tests draw small populations the way quiet nights look — a few labels (or none), labels
bunched in one ring, relations without a single edge, all-null / constant / one-value feature
columns — and require a finite score in [0, 1] for every user, with the path taken and every
failed candidate recorded.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphfraud.config import ModelSettings
from graphfraud.model.base import GraphData
from graphfraud.model.dataset import RELATIONS, build_graph_data
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.stage import PRIOR_VERSION, score_users
from graphfraud.model.train import train_and_score

ALL = ModelSettings(folds=3, seed=1, device="cpu", candidates=["gbm", "gnn", "gnn_stack"])
TINY = {
    "gbm": {"max_iter": 20},
    "gnn": {"hidden": 8, "max_epochs": 8, "patience": 4, "lr": 0.02},
}


def _prior(n: int) -> np.ndarray:
    return np.full(n, 0.01, dtype=np.float32)


@st.composite
def quiet_nights(draw: st.DrawFn) -> GraphData:
    n = draw(st.integers(30, 140))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = [f"u{i:04d}" for i in range(n)]
    truth = rng.random(n) < draw(st.floats(0.0, 0.3))
    # rings: a few groups of users, fraud concentrated in them
    n_rings = draw(st.integers(0, 4))
    ring = np.full(n, -1)
    if n_rings:
        members = rng.choice(n, size=min(n, n_rings * 5), replace=False)
        ring[members] = np.arange(len(members)) % n_rings
        truth[members[: len(members) // 2]] = True
    # labels: few, maybe all the fraud ones inside one ring
    n_fraud_lab = draw(st.integers(0, 10))
    n_legit_lab = draw(st.integers(0, 50))
    fraud_pool = np.flatnonzero(truth)
    if draw(st.booleans()) and n_rings:
        fraud_pool = np.flatnonzero(truth & (ring == 0))
    legit_pool = np.flatnonzero(~truth)
    labels: list[int | None] = [None] * n
    for i in rng.permutation(fraud_pool)[:n_fraud_lab]:
        labels[i] = 1
    for i in rng.permutation(legit_pool)[:n_legit_lab]:
        labels[i] = 0
    # links over a subset of the relations only (the others have no edge at all)
    kinds = draw(st.lists(st.sampled_from(RELATIONS), max_size=3, unique=True))
    rows = []
    for _ in range(draw(st.integers(0, 3 * n)) if kinds else 0):
        a, b = rng.choice(n, size=2, replace=False)
        rows.append((ids[a], ids[b], kinds[int(rng.integers(len(kinds)))], float(rng.random())))
    links = pl.DataFrame(
        rows,
        schema={"user_a": pl.String, "user_b": pl.String, "kind": pl.String, "weight": pl.Float64},
        orient="row",
    )
    # features: informative, all-null, constant and one-value columns
    cols: dict[str, object] = {"user_id": ids}
    cols["signal"] = (rng.normal(size=n) + truth).astype(np.float32)
    for i in range(draw(st.integers(0, 2))):
        cols[f"null{i}"] = pl.Series([None] * n, dtype=pl.Float32)
    for i in range(draw(st.integers(0, 2))):
        cols[f"const{i}"] = np.full(n, 3.0, dtype=np.float32)
    for i in range(draw(st.integers(0, 2))):
        one = np.full(n, np.nan, dtype=np.float32)
        one[int(rng.integers(n))] = 1.0
        cols[f"one{i}"] = one
    features = pl.DataFrame(cols)
    label_frame = pl.DataFrame({"user_id": ids, "label": pl.Series(labels, dtype=pl.Int8)})
    inside = np.flatnonzero(ring >= 0)
    members_frame = pl.DataFrame(
        {"user_id": [ids[i] for i in inside], "ring_id": [f"R{ring[i]}" for i in inside]},
        schema={"user_id": pl.String, "ring_id": pl.String},
    )
    return build_graph_data(features, links, label_frame, members_frame)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(quiet_nights())
def test_every_valid_night_gets_a_finite_score_for_every_user(data: GraphData) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        registry = ModelRegistry(Path(tmp))
        out = score_users(data, ALL, registry, lambda: _prior(data.num_nodes), model_params=TINY)
        assert out.scores.shape == (data.num_nodes,)
        assert out.scores.dtype == np.float32
        assert np.isfinite(out.scores).all()
        assert ((out.scores >= 0) & (out.scores <= 1)).all()
        failed = out.metrics.get("failed", {})
        assert all(isinstance(why, str) and why for why in failed.values())
        if out.kind == "prior":
            assert out.version == PRIOR_VERSION
            assert out.metrics["fallback"]
        else:
            assert out.kind in ("gbm", "gnn", "gnn_stack")
            assert registry.show(out.version).kind == out.kind
            trained = {k.split(".")[0] for k in out.metrics if k.endswith(".auprc")}
            assert set(failed).isdisjoint(trained - {"selected"})


def test_a_failing_candidate_is_recorded_and_the_others_go_on(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    broken = {**TINY, "gnn": {**TINY["gnn"], "batch_size": 0}}  # fails inside fit
    out = score_users(
        data, ALL, ModelRegistry(tmp_path), lambda: _prior(data.num_nodes), model_params=broken
    )
    assert out.kind == "gbm"
    assert out.metrics["failed"]["gnn"].startswith("ZeroDivisionError")
    assert "gnn failed" in out.metrics["failed"]["gnn_stack"]
    assert "gnn.auprc" not in out.metrics
    assert out.metrics["gbm.auprc"] > 0.5


def test_when_every_candidate_fails_the_night_falls_back_and_says_why(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    gbm_only = ModelSettings(folds=3, seed=1, device="cpu", candidates=["gbm"])
    out = score_users(
        data,
        gbm_only,
        ModelRegistry(tmp_path),
        lambda: _prior(data.num_nodes),
        model_params={"gbm": {"max_iter": 0}},  # scikit-learn refuses it at fit time
    )
    assert out.kind == "prior"
    assert "no candidate model trained" in out.metrics["fallback"]
    assert "gbm" in out.metrics["failed"]
    np.testing.assert_array_equal(out.scores, _prior(data.num_nodes))


def test_fraud_labels_all_in_one_ring_still_train(planted: tuple[GraphData, np.ndarray]) -> None:
    """Ring-grouped folds put the only labelled ring in one fold, whose training part then has
    no fraud label: the folds fall back to plain stratified ones instead of failing."""
    data, truth = planted
    ring = np.full(data.num_nodes, -1, dtype=np.int64)
    fraud = np.flatnonzero(truth == 1)
    ring[fraud[:12]] = 0
    labels = np.where(data.labelled & (truth == 0), 0, -1).astype(np.int8)
    labels[fraud[:12]] = 1
    quiet = replace(data, labels=labels, ring_index=ring)
    gbm_only = ModelSettings(folds=3, seed=1, candidates=["gbm"])
    result = train_and_score(quiet, gbm_only, model_params=TINY)
    assert result.metrics["folds_grouped"] == 0.0
    assert np.isfinite(result.scores).all()


def test_a_promoted_model_for_other_features_falls_back_to_the_prior(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    registry = ModelRegistry(tmp_path)
    first = train_and_score(
        data,
        ModelSettings(folds=2, seed=1, candidates=["gbm"]),
        registry=registry,
        model_params=TINY,
    )
    registry.promote(first.model_version)
    few = np.full(data.num_nodes, -1, dtype=np.int8)
    few[np.flatnonzero(data.labels == 1)[:2]] = 1
    other = replace(data, x=data.x[:, :2], feature_names=data.feature_names[:2], labels=few)
    out = score_users(other, ALL, registry, lambda: _prior(other.num_nodes))
    assert out.kind == "prior"
    assert "cannot score" in out.metrics["fallback"]


@pytest.mark.parametrize("n_fraud", [0, 4])
def test_too_few_labels_and_no_promoted_model_is_the_prior(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path, n_fraud: int
) -> None:
    data, _ = planted
    labels = np.where(data.labels == 0, 0, -1).astype(np.int8)
    labels[np.flatnonzero(data.labels == 1)[:n_fraud]] = 1
    few = replace(data, labels=labels)
    out = score_users(few, ALL, ModelRegistry(tmp_path), lambda: _prior(few.num_nodes))
    assert (out.kind, out.version) == ("prior", PRIOR_VERSION)
    assert f"only {n_fraud} fraud" in out.metrics["fallback"]
