from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from graphfraud.errors import ArtifactError
from graphfraud.model.base import GraphData
from graphfraud.model.gbm import META_FILE, WEIGHTS_FILE, GBMModel


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


def test_columns_empty_on_the_rows_trees_grow_from_do_not_crash_the_fit(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    """A quiet night's label rates over sparse relations hold a value for a handful of users:
    once early stopping splits off its validation rows, such a column can be empty on the rows
    the trees are binned on (scikit-learn: 'window shape cannot be larger than input array
    shape'). Forty columns with one value each make that certain for any split."""
    data, _ = planted
    labelled = np.flatnonzero(data.labelled)
    assert len(labelled) >= 200  # early stopping is on
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
