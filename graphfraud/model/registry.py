"""A directory of versioned models with cards, a promoted pointer and rollback history.

Layout (the same on local disk or shared storage):
```
<root>/registry.json              {"promoted": v, "stack": [...promotions...], "history": [...]}
<root>/<version>/model_card.json  kind, metrics, data fingerprint, features, params, files+sha256,
                                  trained_on (the run that trained it: run_id, input sha256s)
<root>/<version>/fold_<i>/...     one fitted model per fold (torch state_dict, LightGBM text)
```
Writes are atomic: a version is written to a hidden temp directory and renamed into place;
`registry.json` is written to a temp file and `os.replace`d.

**Trust: loading a model never runs code.** Every weight file is in a format whose reader only
parses numbers: LightGBM's text model plus JSON for the GBM, torch state_dicts loaded with
`weights_only=True` for the GNN. `load` refuses any other file a card lists (a `.joblib`
pickle from an older graphfraud is refused with a hint to retrain, never opened), checks every
file's sha256 from the card (corruption, an edited weight file) and, with a signing key
(`GRAPHFRAUD_MODEL__SIGNING_KEY`), the card's HMAC-SHA256: cards are then signed on save, and
an unsigned or mis-signed card is refused by `load` and `promote`, so rewriting a weight file
*and* its card needs the key. Without a key the sha256 in the card is unauthenticated: it
catches accidents, not an attacker who can write the registry.

Which version is promoted is decided by `model/promotion.py`; the registry only stores the
versions and moves the pointer.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import SecretStr

from graphfraud import __version__
from graphfraud.errors import ArtifactError, ModelMismatchError, NotFound
from graphfraud.model.base import GraphData
from graphfraud.model.ensemble import FoldEnsemble, fold_dir
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.kinds import load_model
from graphfraud.model.risk import ModelInput

CARD_FILE = "model_card.json"
REGISTRY_FILE = "registry.json"


def data_fingerprint(data: GraphData) -> str:
    """sha256 over features, edges and labels: which data a model was trained on."""
    h = hashlib.sha256()
    h.update("\x1f".join(data.feature_names).encode())
    h.update("\x1f".join(data.relation_names).encode())
    for arr in (data.x, data.edge_index, data.edge_type, data.edge_weight, data.labels):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """What a saved model is; `model_card.json` holds exactly these fields."""

    version: str
    kind: str
    metrics: dict[str, float]
    data_fingerprint: str
    feature_names: tuple[str, ...]
    relation_names: tuple[str, ...]
    params: dict[str, Any]
    package_version: str
    training_seconds: float
    created_at: str
    members: int
    files: dict[str, str]  # relative path -> sha256
    signature: str = ""  # hex HMAC-SHA256 of the other fields (`signed_payload`), "" unsigned
    # Which run trained it: `run_id`, `run_dir`, and the sha256 of each input file
    # (`users_sha256`, `devices_sha256`: the manifest's `inputs`). Empty for models saved
    # outside a run, or before graphfraud recorded it (left out of the JSON then, so older
    # signed cards still verify).
    trained_on: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = self.__dict__.copy()
        out["feature_names"] = list(self.feature_names)
        out["relation_names"] = list(self.relation_names)
        out["trained_on"] = dict(self.trained_on)
        if not self.signature:
            del out["signature"]
        if not self.trained_on:
            del out["trained_on"]
        return out

    def signed_payload(self) -> bytes:
        """The bytes the signature covers: every field but the signature, canonical JSON."""
        body = self.to_json()
        body.pop("signature", None)
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelCard:
        try:
            return cls(
                version=str(raw["version"]),
                kind=str(raw["kind"]),
                metrics={k: float(v) for k, v in raw["metrics"].items()},
                data_fingerprint=str(raw["data_fingerprint"]),
                feature_names=tuple(raw["feature_names"]),
                relation_names=tuple(raw["relation_names"]),
                params=dict(raw["params"]),
                package_version=str(raw["package_version"]),
                training_seconds=float(raw["training_seconds"]),
                created_at=str(raw["created_at"]),
                members=int(raw["members"]),
                files={str(k): str(v) for k, v in raw["files"].items()},
                signature=str(raw.get("signature", "")),
                trained_on={str(k): str(v) for k, v in raw.get("trained_on", {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"model card is malformed: {exc!r}") from exc


def check_compatible(card: ModelCard, data: GraphData) -> None:
    """Raise `ModelMismatchError` unless `data` has exactly the model's features and relations."""
    if card.feature_names == data.feature_names and card.relation_names == data.relation_names:
        return
    want, have = set(card.feature_names), set(data.feature_names)
    parts = []
    if want - have:
        parts.append(f"missing features {sorted(want - have)}")
    if have - want:
        parts.append(f"extra features {sorted(have - want)}")
    if not parts and card.feature_names != data.feature_names:
        parts.append("same features in a different order")
    if card.relation_names != data.relation_names:
        parts.append(f"relations {list(data.relation_names)} != {list(card.relation_names)}")
    raise ModelMismatchError(
        f"model {card.version} was trained on a different feature set: {'; '.join(parts)}",
        hint="retrain (`graphfraud run`) or promote a model trained on these features",
    )


# Suffixes of the files a model may consist of: formats whose readers cannot run code.
SAFE_SUFFIXES = (".txt", ".json", ".pt")
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(payload, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class ModelRegistry:
    """Versioned models under `root`; see the module docstring for layout, trust and policy."""

    def __init__(self, root: Path | str, *, signing_key: SecretStr | str | None = None) -> None:
        self.root = Path(root)
        key = signing_key.get_secret_value() if isinstance(signing_key, SecretStr) else signing_key
        self._key = key.encode() if key else None

    def __repr__(self) -> str:
        return f"ModelRegistry({str(self.root)!r}, signed={self._key is not None})"

    # ---- trust -------------------------------------------------------------------------------
    def _sign(self, card: ModelCard) -> str:
        assert self._key is not None
        return hmac.new(self._key, card.signed_payload(), hashlib.sha256).hexdigest()

    def verify(self, card: ModelCard) -> None:
        """With a signing key, refuse a card that is unsigned or whose signature does not match."""
        if self._key is None:
            return
        if not card.signature:
            raise ArtifactError(
                f"model {card.version} is not signed, and this registry requires signed cards",
                hint="retrain it with GRAPHFRAUD_MODEL__SIGNING_KEY set, or unset the key",
            )
        if not hmac.compare_digest(card.signature, self._sign(card)):
            raise ArtifactError(
                f"model {card.version}: the card's signature does not match (edited card, or "
                "signed with another key); refusing to load it"
            )

    # ---- state -------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        path = self.root / REGISTRY_FILE
        if not path.is_file():
            return {"format": 1, "promoted": None, "stack": [], "history": []}
        try:
            state: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"{path} is not readable JSON: {exc}") from exc
        return state

    def _write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.root / REGISTRY_FILE, state)

    # ---- write -------------------------------------------------------------------------------
    def save(
        self,
        model: FoldEnsemble,
        data: GraphData,
        metrics: dict[str, float],
        *,
        training_seconds: float = 0.0,
        trained_on: dict[str, str] | None = None,
    ) -> ModelCard:
        """Save a fitted model (all fold members) as a new version; returns its card.
        `trained_on`: the run that trained it (see `ModelCard.trained_on`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        fingerprint = data_fingerprint(data)
        stamp = datetime.now(UTC)
        base = f"{model.kind}-{stamp:%Y%m%dT%H%M%S}-{fingerprint[:6]}"
        version, i = base, 1
        while (self.root / version).exists():
            i += 1
            version = f"{base}-{i}"
        tmp = Path(tempfile.mkdtemp(dir=self.root, prefix=f".{version}."))
        try:
            model.save(tmp)
            files = {
                str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()
            }
            card = ModelCard(
                version=version,
                kind=model.kind,
                metrics=dict(metrics),
                data_fingerprint=fingerprint,
                feature_names=data.feature_names,
                relation_names=data.relation_names,
                params=_jsonable(model.params()),
                package_version=__version__,
                training_seconds=round(training_seconds, 3),
                created_at=stamp.isoformat(timespec="seconds"),
                members=len(model.members),
                files=files,
                trained_on=dict(trained_on or {}),
            )
            if self._key is not None:
                card = replace(card, signature=self._sign(card))
            _write_json_atomic(tmp / CARD_FILE, card.to_json())
            os.replace(tmp, self.root / version)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return card

    def promote(self, version: str, *, reason: str = "", run_id: str = "") -> ModelCard:
        """Make `version` the promoted model (the previous one stays on the rollback stack);
        the history records why and for which run (`graphfraud models history`)."""
        card = self.show(version)
        self.verify(card)
        state = self._state()
        if state.get("promoted") == version:
            return card
        state["stack"] = [*state.get("stack", []), version]
        state["promoted"] = version
        state.setdefault("history", []).append(_event("promote", version, reason, run_id))
        self._write_state(state)
        return card

    def keep(self, version: str, *, reason: str, run_id: str = "") -> None:
        """Record that a run's pick `version` was not promoted, and why (the promoted model
        stays); a human can still `promote` it."""
        self.show(version)
        state = self._state()
        state.setdefault("history", []).append(_event("not_promoted", version, reason, run_id))
        self._write_state(state)

    def rollback(self) -> ModelCard:
        """Re-promote the model promoted before the current one."""
        state = self._state()
        stack = list(state.get("stack", []))
        if len(stack) < 2:
            raise NotFound("nothing to roll back to: fewer than two promotions in this registry")
        stack.pop()
        previous = stack[-1]
        card = self.show(previous)
        state["stack"], state["promoted"] = stack, previous
        state.setdefault("history", []).append(_event("rollback", previous))
        self._write_state(state)
        return card

    # ---- read --------------------------------------------------------------------------------
    def list(self) -> builtins.list[ModelCard]:
        """Every saved version, oldest first."""
        if not self.root.is_dir():
            return []
        cards = [
            self.show(p.name)
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / CARD_FILE).is_file()
        ]
        return sorted(cards, key=lambda c: (c.created_at, c.version))

    def show(self, version: str) -> ModelCard:
        if not version or "/" in version or version.startswith("."):
            raise NotFound(f"no model version {version!r}")
        path = self.root / version / CARD_FILE
        if not path.is_file():
            raise NotFound(
                f"no model version {version!r} in {self.root}",
                hint="`graphfraud models list` shows the versions",
            )
        try:
            return ModelCard.from_json(json.loads(path.read_text()))
        except ValueError as exc:
            raise ArtifactError(f"{path} is not readable JSON: {exc}") from exc

    def promoted(self) -> ModelCard | None:
        version = self._state().get("promoted")
        return self.show(version) if version else None

    def history(self) -> builtins.list[dict[str, Any]]:
        return list(self._state().get("history", []))

    def load(
        self, version: str, *, data: GraphData | None = None, device: str = "auto"
    ) -> FoldEnsemble:
        """Load a saved model; with `data`, first check it was trained on the same features.

        Refused with `ArtifactError` before any weight file is read: a file in a format that
        could run code, a card whose signature fails (with a key), a sha256 mismatch.
        """
        card = self.show(version)
        self.verify(card)
        if data is not None:
            check_compatible(card, data)
        directory = self.root / version
        for rel in card.files:
            if rel.endswith(PICKLE_SUFFIXES):
                raise ArtifactError(
                    f"model {version} was saved by an older graphfraud as a pickle ({rel}); "
                    "pickles are never loaded, since loading one runs code",
                    hint="retrain (`graphfraud run`), or promote a model saved in the current "
                    "format",
                )
            if not rel.endswith(SAFE_SUFFIXES):
                raise ArtifactError(
                    f"model {version}: {rel} is not a format this registry loads "
                    f"({', '.join(SAFE_SUFFIXES)})"
                )
        for rel, digest in card.files.items():
            path = directory / rel
            if not path.is_file() or _sha256(path) != digest:
                raise ArtifactError(
                    f"model {version}: weight file {rel} is missing or altered (sha256 mismatch)"
                )
        members = [
            load_model(card.kind, directory / fold_dir(i), card.params, device)
            for i in range(card.members)
        ]
        return FoldEnsemble(card.kind, members)


def score_with_promoted(
    data: ModelInput, registry: ModelRegistry, *, device: str = "auto"
) -> tuple[npt.NDArray[np.float32], str]:
    """Score every node with the promoted model, no training: (scores, version).

    Label aggregates use all labels visible in `data`, and labelled users are scored by models
    that may have trained on them: these scores are in-sample for them, unlike `train_and_score`.
    """
    card = registry.promoted()
    if card is None:
        raise NotFound(
            f"no promoted model in {registry.root}",
            hint="train one with `graphfraud run` or `graphfraud models promote VERSION`",
        )
    inputs = GraphInputs.of(data)
    model = registry.load(card.version, data=inputs.data, device=device)
    return model.predict(inputs), card.version


def _event(action: str, version: str, reason: str = "", run_id: str = "") -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": action,
        "version": version,
        "at": datetime.now(UTC).isoformat(),
        "t": time.time(),
    }
    if reason:
        event["reason"] = reason
    if run_id:
        event["run_id"] = run_id
    return event


def _jsonable(params: dict[str, object]) -> dict[str, Any]:
    return json.loads(json.dumps(params, default=str))  # type: ignore[no-any-return]
