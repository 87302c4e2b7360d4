from __future__ import annotations

import json
import os
import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from graphfraud.config import ModelSettings
from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.model import inputs as inputs_module
from graphfraud.model.base import GraphData
from graphfraud.model.dataset import build_graph_data
from graphfraud.model.gbm import (
    EARLY_STOPPING_MIN_CLASS,
    META_FILE,
    SMALL_PREDICT_ROWS,
    VALIDATION_FRACTION,
    WEIGHTS_FILE,
    GBMModel,
    early_stopping_split,
)
from graphfraud.model.inputs import GraphInputs
from tests.model.conftest import planted_frames


def test_unbalanced_scores_are_probabilities_at_the_base_rate(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, _ = planted
    model = GBMModel(max_iter=40)
    model.fit(data, data.labelled, seed=1)
    scores = model.predict(data)[data.labelled]
    base_rate = float((data.labels[data.labelled] == 1).mean())
    assert abs(float(scores.mean()) - base_rate) < 0.03


@pytest.mark.parametrize("balanced", [False, True])
def test_saved_weights_are_text_and_json_and_load_to_the_same_scores(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path, balanced: bool
) -> None:
    data, _ = planted
    model = GBMModel(max_iter=20, balanced=balanced)
    model.fit(data, data.labelled, seed=2)
    model.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [META_FILE, WEIGHTS_FILE]
    assert (tmp_path / WEIGHTS_FILE).read_text().startswith("tree")  # LightGBM's text model
    assert json.loads((tmp_path / META_FILE).read_text())["balanced"] is balanced
    params = {k: v for k, v in model.params().items() if k != "balanced"}
    loaded = GBMModel.load(tmp_path, params)  # how it was trained travels with the weights
    np.testing.assert_array_equal(loaded.predict(data), model.predict(data))


def test_a_pickled_gbm_from_an_older_graphfraud_is_refused_unopened(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    (tmp_path / "gbm.joblib").write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ArtifactError, match="pickle"):
        GBMModel.load(tmp_path, {})
    assert not marker.exists()


def test_a_corrupt_or_foreign_gbm_file_is_a_clear_error(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    model = GBMModel(max_iter=10)
    model.fit(data, data.labelled, seed=2)
    model.save(tmp_path)
    marker = tmp_path / "ran"
    (tmp_path / WEIGHTS_FILE).write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(ArtifactError, match="not a readable graphfraud GBM"):
        GBMModel.load(tmp_path, {})
    (tmp_path / WEIGHTS_FILE).write_text("tree\nversion=v4\nnot a model")
    with pytest.raises(ArtifactError, match="not a readable graphfraud GBM"):
        GBMModel.load(tmp_path, {})
    assert not marker.exists()


class _RunsCode:
    """Unpickling this writes `marker`: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_scoring_without_the_ring_inputs_it_was_trained_on_is_a_clear_error(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, _ = planted
    ringed = replace(data, ring_index=np.arange(data.num_nodes, dtype=np.int64) // 6)
    model = GBMModel(max_iter=10)
    model.fit(ringed, ringed.labelled, seed=0)
    with pytest.raises(ArtifactError, match="GBM expects"):
        model.predict(data)


def test_columns_empty_on_the_rows_trees_grow_from_do_not_crash_the_fit() -> None:
    """A quiet night's label rates over sparse relations hold a value for a handful of users:
    once early stopping splits off its validation rows, such a column can be empty on the rows
    the trees are binned on (scikit-learn: 'window shape cannot be larger than input array
    shape'). Forty columns with one value each make that certain for any split."""
    features, links, labels, _ = planted_frames(n=2400, seed=1)  # enough fraud labels to split
    data = build_graph_data(features, links, labels)
    labelled = np.flatnonzero(data.labelled)
    assert early_stopping_split(data.labels[labelled], 0)[1] is not None  # early stopping is on
    sparse = np.full((data.num_nodes, 40), np.nan, dtype=np.float32)
    sparse[labelled[:40], np.arange(40)] = 1.0
    wide = replace(
        data,
        x=np.hstack([data.x, sparse]),
        feature_names=(*data.feature_names, *(f"rare{i}" for i in range(40))),
    )
    model = GBMModel(max_iter=30)
    model.fit(wide, wide.labelled, seed=0)
    scores = model.predict(wide)
    assert np.isfinite(scores).all()
    assert ((scores >= 0) & (scores <= 1)).all()


class _SpyPredict:
    """Wraps a booster's `predict`, recording the thread count of every call."""

    def __init__(self, booster: lgb.Booster) -> None:
        self.booster, self.threads = booster, list[int]()
        self._predict = booster.predict

    def __call__(self, x: np.ndarray, **kwargs: Any) -> np.ndarray:
        self.threads.append(int(kwargs["num_threads"]))
        return np.asarray(self._predict(x, **kwargs))


def test_training_uses_the_thread_count_it_is_given_else_the_available_cpus(
    planted: tuple[GraphData, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = planted
    seen: list[object] = []
    train = lgb.train

    def spy(params: dict[str, Any], *args: Any, **kwargs: Any) -> lgb.Booster:
        seen.append(params.get("num_threads"))
        return train(params, *args, **kwargs)

    monkeypatch.setattr(lgb, "train", spy)
    GBMModel(max_iter=5, num_threads=3).fit(data, data.labelled, seed=0)
    GBMModel(max_iter=5).fit(data, data.labelled, seed=0)
    assert seen == [3, len(os.sched_getaffinity(0))]
    assert "num_threads" not in GBMModel(num_threads=3).params()  # the host's, not the card's


def test_a_few_rows_score_on_one_thread_a_batch_on_the_configured_threads(
    tmp_path: Path,
) -> None:
    features, links, labels, _ = planted_frames(n=1200, seed=3)
    data = build_graph_data(features, links, labels)
    model = GBMModel(max_iter=20, num_threads=2)
    model.fit(data, data.labelled, seed=0)
    model.save(tmp_path)
    # The loaded booster's own parameters say 2 threads (the trainer's): scoring must not
    # inherit them on a host it was not trained on.
    assert "[num_threads: 2]" in (tmp_path / WEIGHTS_FILE).read_text()
    loaded = GBMModel.load(tmp_path, model.params())
    for m, batch_threads in ((model, 2), (loaded, len(os.sched_getaffinity(0)))):
        assert m._booster is not None
        spy = _SpyPredict(m._booster)
        m._booster.predict = spy  # type: ignore[method-assign]
        m.predict(data)
        one = np.zeros(data.num_nodes, dtype=bool)
        one[5] = True
        m.predict(data, one)
        assert spy.threads == [batch_threads, 1]
    assert SMALL_PREDICT_ROWS <= 1000


def test_one_row_scores_exactly_as_it_does_in_a_batch(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, _ = planted
    model = GBMModel(max_iter=30, num_threads=2)
    model.fit(data, data.labelled, seed=4)
    batch = model.predict(data)
    for node in (0, 17, data.num_nodes - 1):
        one = np.zeros(data.num_nodes, dtype=bool)
        one[node] = True
        scored = model.predict(data, one)
        assert scored[node] == batch[node]
        assert not scored[~one].any()


def test_scores_in_row_chunks_are_the_scores_of_one_stacked_matrix(
    planted: tuple[GraphData, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    data, _ = planted
    model = GBMModel(max_iter=30, num_threads=2)
    model.fit(data, data.labelled, seed=4)
    stacked = model.predict_rows(GraphInputs(data).matrix()[0])
    monkeypatch.setattr(inputs_module, "SCORE_CHUNK_ROWS", 13)
    np.testing.assert_array_equal(model.predict(data), stacked)
    rows = ~data.labelled
    np.testing.assert_array_equal(model.predict(data, rows)[rows], stacked[rows])


def test_a_thread_count_below_one_is_refused() -> None:
    with pytest.raises(ConfigError, match="num_threads"):
        GBMModel(num_threads=0)


def test_the_batch_builds_its_gbm_with_the_model_settings_threads() -> None:
    from graphfraud.model.kinds import make_model

    model = make_model("gbm", ModelSettings(num_threads=3), {"max_iter": 5})
    assert isinstance(model, GBMModel)
    assert model.threads() == 3
    assert model.threads(rows=1) == 1
    assert model.params()["max_iter"] == 5


@pytest.mark.parametrize("n_fraud", [8, 60, 133])
def test_too_few_labels_of_a_class_to_judge_a_round_grow_every_tree_on_every_row(
    n_fraud: int,
) -> None:
    """A quiet night: 15 % of the fraud labels is fewer than `EARLY_STOPPING_MIN_CLASS`, so a
    validation log-loss over them would pick the round by chance."""
    y = np.zeros(5000, dtype=np.int8)
    y[:n_fraud] = 1
    assert n_fraud * VALIDATION_FRACTION < EARLY_STOPPING_MIN_CLASS
    grow, val = early_stopping_split(y, seed=0)
    assert val is None
    np.testing.assert_array_equal(grow, np.arange(len(y)))


@pytest.mark.parametrize(("n_fraud", "n_rows"), [(134, 1000), (300, 5000), (4800, 5000)])
def test_enough_labels_of_each_class_split_off_a_stratified_validation_set(
    n_fraud: int, n_rows: int
) -> None:
    y = np.zeros(n_rows, dtype=np.int8)
    y[:n_fraud] = 1
    grow, val = early_stopping_split(y, seed=0)
    assert val is not None
    assert len(np.intersect1d(grow, val)) == 0
    assert len(grow) + len(val) == n_rows
    assert min(int(y[val].sum()), int((y[val] == 0).sum())) >= EARLY_STOPPING_MIN_CLASS - 1


def test_a_quiet_night_grows_max_iter_trees_on_all_rows_a_busy_one_stops_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, int]] = []  # (rows trees grow on, validation sets)
    train = lgb.train

    def spy(params: dict[str, Any], train_set: lgb.Dataset, **kwargs: Any) -> lgb.Booster:
        booster = train(params, train_set, **kwargs)
        seen.append((train_set.num_data(), len(kwargs["valid_sets"])))
        return booster

    monkeypatch.setattr(lgb, "train", spy)
    quiet_f, quiet_l, quiet_lab, _ = planted_frames(n=600, seed=2)  # about 70 fraud labels
    quiet = build_graph_data(quiet_f, quiet_l, quiet_lab)
    model = GBMModel(max_iter=40)
    model.fit(quiet, quiet.labelled, seed=0)
    assert model._booster is not None
    assert model._booster.num_trees() == 40
    busy_f, busy_l, busy_lab, _ = planted_frames(n=2400, seed=2)  # about 290
    busy = build_graph_data(busy_f, busy_l, busy_lab)
    GBMModel(max_iter=40).fit(busy, busy.labelled, seed=0)
    n_quiet, n_busy = int(quiet.labelled.sum()), int(busy.labelled.sum())
    assert seen == [(n_quiet, 0), (n_busy - int(np.ceil(VALIDATION_FRACTION * n_busy)), 1)]
