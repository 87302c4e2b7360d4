"""The model kinds a night may train, and how each is built fresh or loaded from a registry.

Imports are lazy: a `gbm`-only night never imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from graphfraud.config import ModelSettings
from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.model.risk import RiskModel

KINDS = ("gbm", "gnn", "gnn_stack")


def model_kinds() -> tuple[str, ...]:
    """Candidate kinds `ModelSettings.candidates` may name (`gnn_stack` implies gbm and gnn)."""
    return KINDS


def trained_kinds(candidates: Sequence[str]) -> list[str]:
    """The kinds actually fitted: `gnn_stack` is built from the gbm and gnn fold models."""
    kinds = [k for k in candidates if k != "gnn_stack"]
    if "gnn_stack" in candidates:
        kinds += [k for k in ("gbm", "gnn") if k not in kinds]
    return kinds


def make_model(
    kind: str, settings: ModelSettings, params: dict[str, Any] | None = None
) -> RiskModel:
    """A fresh, unfitted model of `kind` (params override the defaults, e.g. from a model card
    or `model.params`); ConfigError naming the setting for a parameter the kind does not take."""
    try:
        return _make(kind, settings, dict(params or {}))
    except TypeError as exc:
        raise ConfigError(
            f"model.params.{kind}: {exc}",
            hint="GRAPHFRAUD_MODEL__PARAMS holds constructor arguments per kind (docs/models.md)",
        ) from exc


def _make(kind: str, settings: ModelSettings, params: dict[str, Any]) -> RiskModel:
    if kind == "gbm":
        from graphfraud.model.gbm import GBMModel

        return GBMModel(num_threads=settings.num_threads, **params)
    if kind == "gnn":
        from graphfraud.model.gnn import GNNModel

        return GNNModel(device=settings.device, **params)
    if kind == "gnn_stack":
        from graphfraud.model.stack import StackModel

        return StackModel.from_params(
            params, device=settings.device, num_threads=settings.num_threads
        )
    raise ConfigError(f"unknown model kind {kind!r}", hint=f"one of {', '.join(KINDS)}")


def load_model(kind: str, directory: Path, params: dict[str, Any], device: str) -> RiskModel:
    """One fitted model of `kind` from its saved files (inverse of `RiskModel.save`)."""
    if kind == "gbm":
        from graphfraud.model.gbm import GBMModel

        return GBMModel.load(directory, params, device=device)
    if kind == "gnn":
        from graphfraud.model.gnn import GNNModel

        return GNNModel.load(directory, params, device=device)
    if kind == "gnn_stack":
        from graphfraud.model.stack import StackModel

        return StackModel.load(directory, params, device=device)
    raise ArtifactError(f"model card names an unknown kind {kind!r}")
