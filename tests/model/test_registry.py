from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graphfraud.cli import app
from graphfraud.config import ModelSettings
from graphfraud.errors import ArtifactError, ModelMismatchError, NotFound
from graphfraud.model.base import GraphData
from graphfraud.model.registry import ModelRegistry, score_with_promoted
from graphfraud.model.train import train_and_score

FAST = ModelSettings(folds=2, seed=1, candidates=["gbm"])
FAST_PARAMS = {"gbm": {"max_iter": 60}}


@pytest.fixture(scope="module")
def trained(
    planted: tuple[GraphData, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> tuple[ModelRegistry, GraphData, list[str]]:
    data, _ = planted
    reg = ModelRegistry(tmp_path_factory.mktemp("registry"))
    versions = [
        train_and_score(data, FAST, registry=reg, model_params=FAST_PARAMS).model_version
        for _ in range(2)
    ]
    return reg, data, versions


def test_every_run_is_saved_with_a_card(
    trained: tuple[ModelRegistry, GraphData, list[str]],
) -> None:
    reg, data, versions = trained
    assert [c.version for c in reg.list()] == versions
    card = reg.show(versions[0])
    assert card.kind == "gbm"
    assert card.feature_names == data.feature_names
    assert card.members == 2
    assert 0.0 < card.metrics["auprc"] <= 1.0
    assert set(card.files) == {"fold_0/gbm.joblib", "fold_1/gbm.joblib"}
    raw = json.loads((reg.root / versions[0] / "model_card.json").read_text())
    assert raw["data_fingerprint"] == card.data_fingerprint


def test_promote_rollback_and_score(trained: tuple[ModelRegistry, GraphData, list[str]]) -> None:
    reg, data, versions = trained
    # Same data and metrics twice: the second run is promoted under the tolerance policy.
    promoted = reg.promoted()
    assert promoted is not None
    assert promoted.version == versions[1]
    assert reg.rollback().version == versions[0]
    assert reg.promoted().version == versions[0]  # type: ignore[union-attr]
    with pytest.raises(NotFound, match="nothing to roll back"):
        reg.rollback()
    reg.promote(versions[1])
    scores, version = score_with_promoted(data, reg)
    assert version == versions[1]
    assert scores.shape == (data.num_nodes,)
    assert np.isfinite(scores).all()
    assert [e["action"] for e in reg.history()] == ["promote", "promote", "rollback", "promote"]


def test_mismatch_names_missing_and_extra(
    trained: tuple[ModelRegistry, GraphData, list[str]],
) -> None:
    reg, data, versions = trained
    other = replace(data, feature_names=(*data.feature_names[:-1], "brand_new"))
    with pytest.raises(
        ModelMismatchError, match=r"missing features \['f3'\]; extra features \['brand_new'\]"
    ):
        reg.load(versions[0], data=other)


def test_tampered_weights_are_refused(
    trained: tuple[ModelRegistry, GraphData, list[str]], tmp_path: Path
) -> None:
    reg, _, versions = trained
    copy = ModelRegistry(tmp_path / "copy")
    import shutil

    shutil.copytree(reg.root / versions[0], copy.root / versions[0])
    (copy.root / versions[0] / "fold_0" / "gbm.joblib").write_bytes(b"not a model")
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        copy.load(versions[0])


def test_unknown_version_is_not_found(tmp_path: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(NotFound):
        reg.show("gbm-nope")
    with pytest.raises(NotFound):
        reg.show("../etc")
    assert reg.promoted() is None


def test_cli_list_show_promote_rollback(
    trained: tuple[ModelRegistry, GraphData, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, _, versions = trained
    runner = CliRunner()
    monkeypatch.setenv("GRAPHFRAUD_MODEL__REGISTRY", str(reg.root))
    out = runner.invoke(app, ["models", "list"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert versions[0] in out.output
    out = runner.invoke(app, ["models", "show", versions[0], "--json"])
    assert json.loads(out.output)["version"] == versions[0]
    out = runner.invoke(app, ["models", "promote", versions[0]])
    assert "Promoted" in out.output
    out = runner.invoke(app, ["models", "rollback", "--registry", str(reg.root)])
    assert out.exit_code == 0
    assert versions[1] in out.output
    out = runner.invoke(app, ["models", "show", "gbm-missing"])
    assert out.exit_code != 0
    assert isinstance(out.exception, NotFound)
