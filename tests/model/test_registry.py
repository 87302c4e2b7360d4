from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr
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
    versions = []
    for _ in range(2):
        result = train_and_score(data, FAST, registry=reg, model_params=FAST_PARAMS)
        assert result.promotion is not None
        assert result.promotion.promote  # first model; then a tie with it
        reg.promote(result.model_version)  # what a completed run does
        versions.append(result.model_version)
    return reg, data, versions


def test_training_saves_candidates_but_never_moves_the_promoted_pointer(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    reg = ModelRegistry(tmp_path)
    result = train_and_score(data, FAST, registry=reg, model_params=FAST_PARAMS)
    assert [c.version for c in reg.list()] == [result.model_version]
    assert reg.promoted() is None
    assert result.promotion is not None
    assert result.promotion.promote


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
    assert set(card.files) == {f"fold_{i}/gbm.{ext}" for i in (0, 1) for ext in ("txt", "json")}
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
    shutil.copytree(reg.root / versions[0], copy.root / versions[0])
    (copy.root / versions[0] / "fold_0" / "gbm.txt").write_bytes(b"not a model")
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


class _RunsCode:
    """Unpickling this writes `marker`: proof that a loader ran code from a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _copy_version(reg: ModelRegistry, version: str, root: Path, **kw: object) -> ModelRegistry:
    copy = ModelRegistry(root, **kw)  # type: ignore[arg-type]
    shutil.copytree(reg.root / version, copy.root / version)
    return copy


def _rewrite_card(registry: ModelRegistry, version: str, files: dict[str, str]) -> None:
    """What an attacker with write access does: weight files and their sha256 in the card."""
    path = registry.root / version / "model_card.json"
    card = json.loads(path.read_text())
    card["files"] = files
    path.write_text(json.dumps(card))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_weight_files_replaced_by_a_pickle_are_refused_and_run_no_code(
    trained: tuple[ModelRegistry, GraphData, list[str]], tmp_path: Path
) -> None:
    reg, data, versions = trained
    copy = _copy_version(reg, versions[0], tmp_path / "copy")
    marker = tmp_path / "ran"
    evil = pickle.dumps(_RunsCode(marker))
    assert pickle.loads(evil) is None  # the payload really runs code:
    assert marker.exists()
    marker.unlink()
    directory = copy.root / versions[0]
    files = {}
    for rel in copy.show(versions[0]).files:  # every weight file, whatever its format
        (directory / rel).write_bytes(evil)
        files[rel] = _sha(directory / rel)
    _rewrite_card(copy, versions[0], files)
    with pytest.raises(ArtifactError):
        copy.load(versions[0]).predict(data)
    assert not marker.exists()


def test_a_registry_saved_with_pickles_is_refused_with_a_hint_to_retrain(
    trained: tuple[ModelRegistry, GraphData, list[str]], tmp_path: Path
) -> None:
    reg, data, versions = trained
    copy = _copy_version(reg, versions[0], tmp_path / "old")
    marker = tmp_path / "ran"
    directory = copy.root / versions[0]
    files = {}
    for fold in ("fold_0", "fold_1"):  # the layout older graphfraud wrote
        for f in (directory / fold).iterdir():
            f.unlink()
        (directory / fold / "gbm.joblib").write_bytes(pickle.dumps(_RunsCode(marker)))
        files[f"{fold}/gbm.joblib"] = _sha(directory / fold / "gbm.joblib")
    _rewrite_card(copy, versions[0], files)
    with pytest.raises(ArtifactError, match=r"pickle.*never loaded.*retrain"):
        copy.load(versions[0], data=data).predict(data)
    assert not marker.exists()


def test_a_gnn_weights_file_replaced_by_a_pickle_is_refused_and_runs_no_code(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    reg = ModelRegistry(tmp_path / "reg")
    gnn = ModelSettings(folds=2, seed=1, candidates=["gnn"], device="cpu")
    version = train_and_score(
        data, gnn, registry=reg, model_params={"gnn": {"hidden": 8, "max_epochs": 5}}
    ).model_version
    marker = tmp_path / "ran"
    weights = reg.root / version / "fold_0" / "gnn.pt"
    weights.write_bytes(pickle.dumps(_RunsCode(marker)))
    card = reg.show(version)
    _rewrite_card(reg, version, {**card.files, "fold_0/gnn.pt": _sha(weights)})
    with pytest.raises(ArtifactError, match="not a readable graphfraud GNN"):
        reg.load(version, device="cpu")
    assert not marker.exists()


def test_with_a_signing_key_cards_are_signed_and_unsigned_or_edited_ones_refused(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    key = SecretStr("a key from the environment")
    signed = ModelRegistry(tmp_path / "signed", signing_key=key)
    version = train_and_score(data, FAST, registry=signed, model_params=FAST_PARAMS).model_version
    card_path = signed.root / version / "model_card.json"
    raw = json.loads(card_path.read_text())
    assert len(raw["signature"]) == 64
    assert "a key from" not in card_path.read_text()
    signed.load(version, data=data).predict(data)  # signed by this key: loads
    ModelRegistry(signed.root).load(version)  # no key configured: sha256 checks only
    with pytest.raises(ArtifactError, match="signature does not match"):
        ModelRegistry(signed.root, signing_key="another key").load(version)
    edited = {**raw, "metrics": {**raw["metrics"], "auprc": 1.0}}
    card_path.write_text(json.dumps(edited))
    with pytest.raises(ArtifactError, match="signature does not match"):
        signed.load(version)
    with pytest.raises(ArtifactError, match="signature does not match"):
        signed.promote(version)
    unsigned = {k: v for k, v in raw.items() if k != "signature"}
    card_path.write_text(json.dumps(unsigned))
    with pytest.raises(ArtifactError, match="not signed"):
        signed.load(version)
    card_path.write_text(json.dumps(raw))
    signed.load(version)


def test_the_signing_key_never_reaches_a_settings_dump(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphfraud.config import load_settings

    monkeypatch.setenv("GRAPHFRAUD_MODEL__SIGNING_KEY", "s3cret-signing-key")
    settings = load_settings()
    assert settings.model.signing_key is not None
    assert settings.model.signing_key.get_secret_value() == "s3cret-signing-key"
    assert "s3cret" not in json.dumps(settings.model_dump(mode="json"))
    assert "s3cret" not in repr(settings)


def test_cards_record_the_training_run_and_the_history_each_verdict(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphfraud.model.train import Provenance

    data, _ = planted
    reg = ModelRegistry(tmp_path, signing_key="k")
    night = {"run_id": "20261201T020000Z-abcd1234", "users_sha256": "ab" * 32}
    first = train_and_score(
        data, FAST, registry=reg, model_params=FAST_PARAMS, provenance=Provenance(night)
    )
    card = reg.show(first.model_version)
    assert card.trained_on == night
    assert json.loads((reg.root / card.version / "model_card.json").read_text())["trained_on"]
    reg.promote(card.version, reason="nothing promoted yet", run_id=night["run_id"])
    second = train_and_score(data, FAST, registry=reg, model_params=FAST_PARAMS)
    assert reg.show(second.model_version).trained_on == {}  # saved outside a run: none
    reg.keep(second.model_version, reason="AUPRC too low", run_id="night-2")
    promote, keep = reg.history()[-2:]
    assert (promote["action"], promote["version"], promote["run_id"]) == (
        "promote",
        card.version,
        night["run_id"],
    )
    assert promote["reason"] == "nothing promoted yet"
    assert (keep["action"], keep["reason"], keep["run_id"]) == (
        "not_promoted",
        "AUPRC too low",
        "night-2",
    )
    assert reg.promoted() == card
    monkeypatch.setenv("COLUMNS", "300")  # rich's tables fold long cells to the terminal
    runner = CliRunner()
    shown = runner.invoke(
        app, ["models", "history", "--registry", str(reg.root)], terminal_width=300
    )
    assert shown.exit_code == 0, shown.output
    for words in ("not_promoted", "AUPRC too low", "night-2", night["run_id"]):
        assert words in shown.output
    shown = runner.invoke(
        app, ["models", "show", card.version, "--registry", str(reg.root)], terminal_width=300
    )
    assert night["run_id"] in shown.output
    assert f"users {'ab' * 6}…" in shown.output
    # The run is signed with the rest of the card: editing it breaks the signature.
    path = reg.root / card.version / "model_card.json"
    raw = json.loads(path.read_text())
    path.write_text(json.dumps({**raw, "trained_on": {**night, "run_id": "another night"}}))
    with pytest.raises(ArtifactError, match="signature does not match"):
        reg.load(card.version)


def test_a_card_from_before_runs_were_recorded_still_verifies(tmp_path: Path) -> None:
    """Cards without `trained_on` keep the exact bytes they were signed over."""
    from graphfraud.model.registry import ModelCard

    reg = ModelRegistry(tmp_path, signing_key="k")
    card = ModelCard.from_json(
        {
            "version": "gbm-old",
            "kind": "gbm",
            "metrics": {"auprc": 0.5},
            "data_fingerprint": "0" * 64,
            "feature_names": ["f0"],
            "relation_names": ["device"],
            "params": {},
            "package_version": "0.0",
            "training_seconds": 1.0,
            "created_at": "2026-01-01T00:00:00+00:00",
            "members": 1,
            "files": {},
        }
    )
    assert "trained_on" not in card.signed_payload().decode()
    reg.verify(replace(card, signature=reg._sign(card)))


def test_promotion_compares_on_the_rows_the_promoted_model_did_not_train_on(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    from graphfraud.model.train import Provenance

    data, _ = planted
    reg = ModelRegistry(tmp_path)
    reg.promote(train_and_score(data, FAST, registry=reg, model_params=FAST_PARAMS).model_version)
    labelled = data.labels >= 0

    def night(fresh: np.ndarray | None) -> str:
        result = train_and_score(
            data, FAST, registry=reg, model_params=FAST_PARAMS, provenance=Provenance({}, fresh)
        )
        assert result.promotion is not None
        return result.promotion.reason

    assert "the run that trained it is not at hand" in night(None)
    assert "only 0 validation rows it did not train on: against its card" in night(
        np.zeros(data.num_nodes, dtype=bool)
    )
    fresh = labelled & (np.arange(data.num_nodes) % 2 == 0)
    reason = night(fresh)
    assert f"on the same {int(fresh.sum())} validation rows" in reason
