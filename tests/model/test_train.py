from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold

from graphfraud.config import ModelSettings
from graphfraud.errors import InputDataError
from graphfraud.model.base import GraphData
from graphfraud.model.gbm import GBMModel
from graphfraud.model.train import (
    out_of_fold,
    stratified_folds,
    stratified_group_folds,
    train_and_score,
)

FAST_GBM = {"max_iter": 60}


def test_stratified_folds_cover_labelled_only(planted: tuple[GraphData, np.ndarray]) -> None:
    data, _ = planted
    folds = stratified_folds(data.labels, 5, seed=1)
    assert ((folds >= 0) == data.labelled).all()
    for f in range(5):
        y = data.labels[folds == f]
        assert (y == 1).sum() >= 1
        assert (y == 0).sum() >= 1


def test_too_few_labels_is_a_clear_error(planted: tuple[GraphData, np.ndarray]) -> None:
    data, _ = planted
    labels = np.full(data.num_nodes, -1, dtype=np.int8)
    labels[:3] = [1, 0, 0]
    with pytest.raises(InputDataError, match="at least 2 fraud"):
        stratified_folds(labels, 5, seed=1)


def test_own_label_never_scores_itself(planted: tuple[GraphData, np.ndarray]) -> None:
    """Flip one labelled node's label (folds held fixed): its OOF score must not move."""
    data, _ = planted
    folds = stratified_folds(data.labels, 3, seed=3)
    node = int(np.flatnonzero(data.labelled)[7])
    flipped_labels = data.labels.copy()
    flipped_labels[node] = 1 - flipped_labels[node]
    flipped = replace(data, labels=flipped_labels)
    a, _, _ = out_of_fold(data, lambda: GBMModel(**FAST_GBM), folds, seed=0)
    b, _, _ = out_of_fold(flipped, lambda: GBMModel(**FAST_GBM), folds, seed=0)
    assert a[node] == b[node]
    # ...while the flip does reach other folds' scores (the test can fail).
    assert not np.array_equal(a, b)


def test_gbm_oof_is_deterministic_and_beats_chance(planted: tuple[GraphData, np.ndarray]) -> None:
    data, truth = planted
    settings = ModelSettings(folds=3, seed=5, candidates=["gbm"])
    r1 = train_and_score(data, settings, model_params={"gbm": FAST_GBM})
    r2 = train_and_score(data, settings, model_params={"gbm": FAST_GBM})
    np.testing.assert_array_equal(r1.scores, r2.scores)
    assert r1.scores.dtype == np.float32
    assert r1.scores.shape == (data.num_nodes,)
    assert r1.model_kind == "gbm"
    assert r1.metrics["gbm.roc_auc"] > 0.9
    unl = ~data.labelled  # never trained on: an honest floor
    assert roc_auc_score(truth[unl], r1.scores[unl]) > 0.9


def test_grouped_folds_keep_a_ring_in_one_fold(planted: tuple[GraphData, np.ndarray]) -> None:
    data, _ = planted
    groups = np.full(data.num_nodes, -1, dtype=np.int64)
    groups[: data.num_nodes // 2] = np.arange(data.num_nodes // 2) // 6  # rings of six
    folds = stratified_folds(data.labels, 3, seed=2, groups=groups)
    assert np.array_equal(folds >= 0, data.labelled)
    ringed = (groups >= 0) & data.labelled
    per_ring = {g: set(folds[ringed & (groups == g)]) for g in np.unique(groups[ringed])}
    assert all(len(fs) == 1 for fs in per_ring.values())
    assert len({f for fs in per_ring.values() for f in fs}) == 3  # rings spread over folds
    ungrouped = stratified_folds(data.labels, 3, seed=2)
    assert not all(
        len(set(ungrouped[ringed & (groups == g)])) == 1 for g in np.unique(groups[ringed])
    )  # without groups rings do get split, so the check above can fail


def test_a_gnn_that_cannot_add_to_the_gbm_stops_after_its_first_fold(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    """An ego feature that *is* the truth: the GBM ranks every fold perfectly, no GNN share of
    the blend can beat it, so the GNN (and the stack built from it) is skipped after fold 1."""
    data, truth = planted
    told = replace(
        data,
        x=np.column_stack([data.x, truth.astype(np.float32)]),
        feature_names=(*data.feature_names, "truth"),
    )
    settings = ModelSettings(folds=3, seed=3, candidates=["gbm", "gnn", "gnn_stack"], device="cpu")
    params = {"gbm": FAST_GBM, "gnn": {"hidden": 8, "max_epochs": 20, "patience": 5}}
    result = train_and_score(told, settings, model_params=params)
    assert result.model_kind == "gbm"
    assert set(result.skipped) == {"gnn", "gnn_stack"}
    assert "no GNN share of the blend beats the gbm" in result.skipped["gnn"]
    assert "gnn.auprc" not in result.metrics
    assert not result.failures


def test_a_gnn_that_adds_to_the_gbm_trains_every_fold() -> None:
    from graphfraud.model.train import CandidateRun, _must_add_to, _Skipped

    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.2).astype(np.int8)
    fold_ids = np.arange(300) % 3
    noisy = (0.5 * labels + rng.random((3, 300))).astype(np.float32)  # a fair GBM
    gbm = CandidateRun("gbm", noisy[0], None, 0.0, 0.0, 0.0, noisy)  # type: ignore[arg-type]
    check = _must_add_to(gbm, fold_ids, labels)
    assert check is not None
    check(0, labels.astype(np.float32) * 0.8 + 0.1)  # the GNN ranks fold 1 perfectly: go on
    with pytest.raises(_Skipped, match="no GNN share"):
        check(0, gbm.per_fold[0])  # the GBM's own scores add nothing
    with pytest.raises(_Skipped, match="at chance"):
        check(0, 1.0 - labels.astype(np.float32))  # ranks fold 1 upside down


@pytest.mark.parametrize("seed", range(12))
def test_grouped_folds_are_scikit_learns_stratified_group_kfold(seed: int) -> None:
    """The fast greedy pass assigns every row to the fold scikit-learn's does, ties included."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(50, 1500)), int(rng.integers(2, 6))
    y = (rng.random(n) < rng.uniform(0.05, 0.5)).astype(np.int8)
    y[:k], y[k : 2 * k] = 1, 0  # at least k of each class
    groups = rng.integers(0, int(rng.integers(k, n)), n)  # rings of several users, and singletons
    groups[: 2 * k] = np.arange(2 * k)
    expected = np.full(n, -1)
    splits = StratifiedGroupKFold(k, shuffle=True, random_state=seed).split(np.zeros(n), y, groups)
    for fold, (_, test) in enumerate(splits):
        expected[test] = fold
    np.testing.assert_array_equal(stratified_group_folds(y, groups, k, seed), expected)
