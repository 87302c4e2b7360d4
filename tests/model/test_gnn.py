from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from graphfraud.config import ModelSettings
from graphfraud.model.base import GraphData
from graphfraud.model.gnn import GNNModel
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.train import train_and_score

SMALL = {"hidden": 16, "max_epochs": 80, "patience": 20, "lr": 0.01}


def test_gnn_is_seeded_deterministic_and_learns(planted: tuple[GraphData, np.ndarray]) -> None:
    data, truth = planted
    scores = []
    for _ in range(2):
        model = GNNModel(device="cpu", **SMALL)
        model.fit(data, data.labelled, seed=11)
        scores.append(model.predict(data))
    np.testing.assert_array_equal(scores[0], scores[1])
    unl = ~data.labelled  # never trained on
    assert roc_auc_score(truth[unl], scores[0][unl]) > 0.85


def test_gnn_save_load_roundtrip(planted: tuple[GraphData, np.ndarray], tmp_path: Path) -> None:
    data, _ = planted
    params = {**SMALL, "stack": True, "gbm": {"max_iter": 40}}
    model = GNNModel(device="cpu", **params)  # type: ignore[arg-type]
    model.fit(data, data.labelled, seed=3)
    model.save(tmp_path)
    loaded = GNNModel.load(tmp_path, params, device="cpu")
    np.testing.assert_allclose(loaded.predict(data), model.predict(data), rtol=1e-6)


def test_candidates_compete_and_registry_keeps_both(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    settings = ModelSettings(folds=2, seed=2, candidates=["gbm", "gnn"], device="cpu")
    reg = ModelRegistry(tmp_path)
    params = {"gnn": SMALL, "gbm": {"max_iter": 60}}
    result = train_and_score(data, settings, registry=reg, model_params=params)
    assert {"gbm.auprc", "gnn.auprc", "selected.auprc"} <= set(result.metrics)
    best = max(("gbm", "gnn"), key=lambda k: result.metrics[f"{k}.auprc"])
    assert result.model_kind == best
    assert sorted(c.kind for c in reg.list()) == ["gbm", "gnn"]
    assert reg.promoted().version == result.model_version  # type: ignore[union-attr]
    loaded = reg.load(result.model_version, data=data, device="cpu")
    np.testing.assert_allclose(
        loaded.predict(data)[~data.labelled], result.scores[~data.labelled], rtol=1e-5
    )
