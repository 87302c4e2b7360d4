"""The ranking gate: a candidate near chance never scores a night or gets promoted, and a GNN
that cannot rank its validation stops early."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from graphfraud.config import ModelSettings
from graphfraud.model.base import GraphData
from graphfraud.model.gate import auc_lower_bound, hanley_mcneil_se, ranking_gate
from graphfraud.model.gnn import GNNModel
from graphfraud.model.gnn.training import HOPELESS_STEPS
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.stage import PRIOR_VERSION, score_users

GBM = ModelSettings(folds=3, seed=1, device="cpu", candidates=["gbm"])
FAST = {"gbm": {"max_iter": 40}}


def _prior(n: int) -> np.ndarray:
    return np.linspace(0, 1, n, dtype=np.float32)


def _shuffled(data: GraphData, seed: int = 0) -> GraphData:
    labels = data.labels.copy()
    rows = np.flatnonzero(labels >= 0)
    labels[rows] = np.random.default_rng(seed).permutation(labels[rows])
    return replace(data, labels=labels)


def test_the_standard_error_matches_the_spread_of_simulated_aucs() -> None:
    rng = np.random.default_rng(0)
    n_pos, n_neg = 50, 600
    aucs = []
    for _ in range(400):
        s = np.concatenate([rng.normal(0.8, 1, n_pos), rng.normal(0, 1, n_neg)])
        y = np.r_[np.ones(n_pos), np.zeros(n_neg)]
        aucs.append(roc_auc_score(y, s))
    se = hanley_mcneil_se(float(np.mean(aucs)), n_pos, n_neg)
    assert 0.75 < se / float(np.std(aucs)) < 1.3


def test_the_quiet_night_of_the_issue_is_near_chance_and_a_normal_one_is_not() -> None:
    assert auc_lower_bound(0.585, 50, 950) <= 0.55  # the GBM the issue saw promoted
    assert auc_lower_bound(0.95, 400, 10_000) > 0.9
    assert auc_lower_bound(0.9, 0, 10) == -np.inf


def test_the_gate_on_scores() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(1000) < 0.05).astype(np.int8)
    assert ranking_gate(y, y + rng.normal(0, 0.5, 1000), 0.05).passed
    gate = ranking_gate(y, rng.random(1000), 0.05)
    assert not gate.passed
    assert "near chance" in gate.reason


def test_labels_that_carry_no_signal_are_refused_and_the_prior_scores(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    noise = _shuffled(data)
    registry = ModelRegistry(tmp_path)
    out = score_users(noise, GBM, registry, lambda: _prior(data.num_nodes), model_params=FAST)
    assert (out.kind, out.version) == ("prior", PRIOR_VERSION)
    assert out.promotion is None  # nothing to promote
    assert out.metrics["gate"]["passed"] is False
    assert "near chance" in out.metrics["fallback"]
    assert out.metrics["gbm.roc_auc"] < 0.65  # the candidate's own metrics stay on record
    np.testing.assert_array_equal(out.scores, _prior(data.num_nodes))
    assert registry.promoted() is None
    assert [c.kind for c in registry.list()] == ["gbm"]  # saved for a human, not promoted


def test_a_handful_of_random_fraud_labels_is_refused(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    """A quiet night: six fraud labels on users picked at random, the rest legit."""
    data, _ = planted
    rng = np.random.default_rng(3)
    labels = np.where(data.labels >= 0, 0, -1).astype(np.int8)
    labels[rng.choice(np.flatnonzero(labels == 0), 6, replace=False)] = 1
    out = score_users(
        replace(data, labels=labels), GBM, ModelRegistry(tmp_path),
        lambda: _prior(data.num_nodes), model_params=FAST,
    )  # fmt: skip
    assert out.kind == "prior"
    assert out.metrics["gate"]["passed"] is False


def test_real_labels_pass_and_are_promoted_as_before(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    out = score_users(data, GBM, ModelRegistry(tmp_path), lambda: _prior(data.num_nodes),
                      model_params=FAST)  # fmt: skip
    assert out.kind == "gbm"
    assert out.metrics["gate"]["passed"] is True
    assert out.metrics["gate"]["lower"] > 0.55
    assert out.promotion is not None
    assert out.promotion.promote


def test_a_gate_refusal_falls_back_to_the_promoted_model_first(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    registry = ModelRegistry(tmp_path)
    good = score_users(data, GBM, registry, lambda: _prior(data.num_nodes), model_params=FAST)
    registry.promote(good.version)
    out = score_users(_shuffled(data), GBM, registry, lambda: _prior(data.num_nodes),
                      model_params=FAST)  # fmt: skip
    assert (out.kind, out.version) == ("promoted", good.version)
    assert registry.promoted().version == good.version  # type: ignore[union-attr]


@pytest.mark.parametrize("shuffle", [True, False])
def test_a_gnn_that_cannot_rank_its_validation_stops_early(
    planted: tuple[GraphData, np.ndarray], shuffle: bool
) -> None:
    data, _ = planted
    train = _shuffled(data, seed=5) if shuffle else data
    budget = {"max_epochs": 400, "patience": 60} if shuffle else {"max_epochs": 36, "patience": 36}
    model = GNNModel(device="cpu", hidden=8, lr=0.01, **budget)
    model.fit(train, train.labelled, seed=2)
    if shuffle:
        assert model.epochs_run <= HOPELESS_STEPS
    else:
        assert model.epochs_run > HOPELESS_STEPS  # a learning network is not cut short


def test_a_gated_pick_that_still_beats_the_prior_scores_unpromoted(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    """Near chance out-of-fold (here: a bar no model reaches) is never promoted; with no
    promoted model it scores the night only when it ranks the labels better than the prior."""
    data, _ = planted
    strict = GBM.model_copy(update={"gate_margin": 0.49})
    flat = score_users(data, strict, ModelRegistry(tmp_path / "a"),
                       lambda: np.zeros(data.num_nodes, np.float32), model_params=FAST)  # fmt: skip
    assert flat.kind == "gbm"
    assert flat.promotion is None
    assert flat.metrics["gate"]["passed"] is False
    assert "not promoted, but scores" in flat.metrics["fallback"]
    oracle = np.clip(data.labels, 0, 1).astype(np.float32)  # a prior that knows every label
    out = score_users(data, strict, ModelRegistry(tmp_path / "b"), lambda: oracle,
                      model_params=FAST)  # fmt: skip
    assert out.kind == "prior"
    assert "label-free prior's" in out.metrics["fallback"]
