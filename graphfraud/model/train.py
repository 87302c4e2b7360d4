"""Out-of-fold training, candidate selection and scoring.

Labelled users are split into K stratified folds. For fold k a fresh model sees only the labels
of the other folds — the fold's labels are hidden from the *inputs* too (label aggregates are
recomputed with them set to unknown) — and scores fold k. So a labelled user's score never
depends on its own label. Unlabelled users get the mean of the K fold models. Each candidate kind
is scored this way; the one with the best out-of-fold AUPRC is selected. Unlabelled users are
scored with all labels visible to the label aggregates, exactly as the saved ensemble scores them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from graphfraud.config import ModelSettings
from graphfraud.errors import ArtifactError, ConfigError, InputDataError
from graphfraud.model.aggregate import with_visible_labels
from graphfraud.model.base import GraphData
from graphfraud.model.gbm import GBMModel

if TYPE_CHECKING:
    from graphfraud.model.registry import ModelRegistry

log = logging.getLogger(__name__)


class SavableModel(Protocol):
    """RiskModel plus what the registry needs (implemented by GBMModel and the GNNs)."""

    kind: str
    input_names: tuple[str, ...]

    def fit(self, data: GraphData, train_mask: npt.NDArray[np.bool_], seed: int) -> None: ...
    def predict(self, data: GraphData) -> npt.NDArray[np.float32]: ...
    def params(self) -> dict[str, object]: ...
    def save(self, directory: Path) -> None: ...


def model_kinds() -> tuple[str, ...]:
    """Candidate kinds `ModelSettings.candidates` may name."""
    return ("gbm", "gnn", "gnn_stack")


def make_model(kind: str, settings: ModelSettings, params: dict[str, Any] | None = None) -> Any:
    """A fresh, unfitted model of `kind` (params override the defaults, e.g. from a model card)."""
    params = dict(params or {})
    if kind == "gbm":
        from graphfraud.model.gbm import GBMModel

        return GBMModel(**params)
    if kind in ("gnn", "gnn_stack"):
        from graphfraud.model.gnn import GNNModel

        params.setdefault("stack", kind == "gnn_stack")
        return GNNModel(device=settings.device, **params)
    raise ConfigError(f"unknown model kind {kind!r}", hint=f"one of {', '.join(model_kinds())}")


def load_model(kind: str, directory: Path, params: dict[str, Any], device: str) -> Any:
    """Inverse of `SavableModel.save` for one fitted model."""
    if kind == "gbm":
        from graphfraud.model.gbm import GBMModel

        return GBMModel.load(directory, params, ())
    if kind in ("gnn", "gnn_stack"):
        from graphfraud.model.gnn import GNNModel

        return GNNModel.load(directory, params, device=device)
    raise ArtifactError(f"model card names an unknown kind {kind!r}")


class FoldEnsemble:
    """The K fold models of one candidate; predicts their mean (how unlabelled users are scored)."""

    def __init__(self, kind: str, members: Sequence[Any], input_names: tuple[str, ...]) -> None:
        self.kind = kind
        self.members = list(members)
        self.input_names = input_names

    def fit(self, data: GraphData, train_mask: npt.NDArray[np.bool_], seed: int) -> None:
        raise ArtifactError("a FoldEnsemble is built by train_and_score, not fitted directly")

    def predict(self, data: GraphData) -> npt.NDArray[np.float32]:
        scores = np.zeros(data.num_nodes, dtype=np.float64)
        for member in self.members:
            scores += member.predict(data)
        return (scores / max(len(self.members), 1)).astype(np.float32)

    def params(self) -> dict[str, object]:
        return dict(self.members[0].params()) if self.members else {}

    def save(self, directory: Path) -> None:
        for i, member in enumerate(self.members):
            member.save(directory / f"fold_{i}")


@dataclass(frozen=True)
class TrainResult:
    """Scores for every node plus what produced them.

    `scores` are out-of-fold for labelled nodes and the fold-model mean for the rest.
    `metrics` holds `<kind>.auprc` / `<kind>.roc_auc` (out-of-fold, over all labelled users) for
    every candidate, plus `selected.*`, `n_labelled`, `n_positive`, `folds` and `promoted`.
    """

    scores: npt.NDArray[np.float32]
    model_version: str
    model_kind: str
    metrics: dict[str, float]
    feature_names: tuple[str, ...]
    seconds: float


@dataclass(frozen=True)
class CandidateRun:
    """One candidate's out-of-fold outcome (kept for the registry and the benchmark)."""

    kind: str
    scores: npt.NDArray[np.float32]
    model: FoldEnsemble
    auprc: float
    roc_auc: float
    seconds: float


def stratified_folds(labels: npt.NDArray[np.int8], folds: int, seed: int) -> npt.NDArray[np.int64]:
    """Fold id per node (-1 for unlabelled); stratified on the label, seeded.

    `folds` shrinks to the size of the smaller class when labels are scarce (at least 2).
    """
    idx = np.flatnonzero(labels >= 0)
    y = labels[idx]
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    k = min(folds, n_pos, n_neg)
    if k < 2:
        raise InputDataError(
            f"out-of-fold training needs at least 2 fraud and 2 legit labels "
            f"(have {n_pos} fraud, {n_neg} legit)",
            column="label",
            hint="score with the promoted model instead (`score_with_promoted`)",
        )
    out = np.full(labels.shape[0], -1, dtype=np.int64)
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for f, (_, test) in enumerate(splitter.split(idx, y)):
        out[idx[test]] = f
    return out


def out_of_fold(
    data: GraphData,
    build: Callable[[], Any],
    fold_ids: npt.NDArray[np.int64],
    seed: int,
    on_fold: Callable[[], None] | None = None,
) -> tuple[npt.NDArray[np.float32], FoldEnsemble]:
    """Out-of-fold scores for labelled nodes, fold-mean scores for the rest, and the fold models."""
    n = data.num_nodes
    labelled = fold_ids >= 0
    k = int(fold_ids.max()) + 1
    oof = np.zeros(n, dtype=np.float32)
    rest = np.zeros(n, dtype=np.float64)
    members = []
    kind = "?"
    for f in range(k):
        visible = labelled & (fold_ids != f)
        fold_data = with_visible_labels(data, visible)
        model = build()
        kind = model.kind
        model.fit(fold_data, visible, seed + f)
        held = fold_ids == f
        oof[held] = _predict(model, fold_data, held)[held]
        if not labelled.all():
            # Unlabelled users have no label to leak: score them with every label visible,
            # as `score_with_promoted` will later.
            rest += _predict(model, data, ~labelled)
        members.append(model)
        if on_fold is not None:
            on_fold()
    oof[~labelled] = (rest[~labelled] / k).astype(np.float32)
    return oof, FoldEnsemble(kind, members, data.feature_names)


def _predict(model: Any, data: GraphData, rows: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
    """Score only `rows` when the model can (the GBM's cost is per row; a GNN's is per graph)."""
    if isinstance(model, GBMModel):
        return model.predict(data, rows)
    out: npt.NDArray[np.float32] = model.predict(data)
    return out


def ranking_metrics(
    y: npt.NDArray[np.integer[Any]], scores: npt.NDArray[np.floating[Any]]
) -> tuple[float, float]:
    """(AUPRC, ROC-AUC); NaN when only one class is present."""
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    return float(average_precision_score(y, scores)), float(roc_auc_score(y, scores))


def train_candidates(
    data: GraphData,
    settings: ModelSettings,
    *,
    progress: bool = False,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[CandidateRun], npt.NDArray[np.int64]]:
    """Run every candidate out-of-fold on the same folds (`model_params[kind]` overrides)."""
    if not settings.candidates:
        raise ConfigError("model.candidates is empty", hint=f"pick from {', '.join(model_kinds())}")
    for kind in settings.candidates:
        if kind not in model_kinds():
            raise ConfigError(
                f"unknown model kind {kind!r}", hint=f"one of {', '.join(model_kinds())}"
            )
    fold_ids = stratified_folds(data.labels, settings.folds, settings.seed)
    k = int(fold_ids.max()) + 1
    labelled = fold_ids >= 0
    y = data.labels[labelled]
    runs: list[CandidateRun] = []
    with _Progress(progress, total=k * len(settings.candidates)) as tick:
        for kind in settings.candidates:
            start = time.perf_counter()
            scores, ensemble = out_of_fold(
                data,
                partial(make_model, kind, settings, dict((model_params or {}).get(kind, {}))),
                fold_ids,
                settings.seed,
                tick,
            )
            auprc, roc = ranking_metrics(y, scores[labelled])
            seconds = time.perf_counter() - start
            log.info("candidate %s: AUPRC %.4f ROC-AUC %.4f (%.1fs)", kind, auprc, roc, seconds)
            runs.append(CandidateRun(kind, scores, ensemble, auprc, roc, seconds))
    return runs, fold_ids


def select_best(runs: Sequence[CandidateRun]) -> CandidateRun:
    """Highest out-of-fold AUPRC; ties go to the earlier (simpler) candidate."""
    return max(runs, key=lambda r: (np.nan_to_num(r.auprc, nan=-1.0), -runs.index(r)))


def train_and_score(
    data: GraphData,
    settings: ModelSettings,
    *,
    registry: ModelRegistry | None = None,
    progress: bool = False,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
) -> TrainResult:
    """Train every candidate out-of-fold, pick the best by AUPRC, score every node with it.

    With a registry, every candidate is saved and the selected one is promoted under the policy
    in `ModelRegistry.record_run`; `model_version` is the saved version of the selected model
    (the one whose scores are returned), whether or not it was promoted. `model_params` maps a
    kind to constructor overrides (benchmarks, tests); the defaults are the tuned ones.
    """
    start = time.perf_counter()
    runs, fold_ids = train_candidates(data, settings, progress=progress, model_params=model_params)
    best = select_best(runs)
    metrics: dict[str, float] = {}
    for run in runs:
        metrics[f"{run.kind}.auprc"] = run.auprc
        metrics[f"{run.kind}.roc_auc"] = run.roc_auc
        metrics[f"{run.kind}.seconds"] = run.seconds
    labelled = fold_ids >= 0
    metrics.update(
        {
            "selected.auprc": best.auprc,
            "selected.roc_auc": best.roc_auc,
            "n_labelled": float(labelled.sum()),
            "n_positive": float((data.labels == 1).sum()),
            "folds": float(fold_ids.max() + 1),
        }
    )
    if registry is not None:
        version, promoted = registry.record_run(data, runs, best, settings)
        metrics["promoted"] = 1.0 if promoted else 0.0
    else:
        from graphfraud.model.registry import data_fingerprint

        version = f"{best.kind}-unsaved-{data_fingerprint(data)[:8]}"
    return TrainResult(
        scores=best.scores,
        model_version=version,
        model_kind=best.kind,
        metrics=metrics,
        feature_names=data.feature_names,
        seconds=time.perf_counter() - start,
    )


class _Progress:
    """A rich progress bar when asked for, a no-op otherwise."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._bar: Any = None

    def __enter__(self) -> Callable[[], None] | None:
        if not self.enabled:
            return None
        from rich.progress import Progress

        self._bar = Progress(transient=True)
        self._bar.start()
        task = self._bar.add_task("training folds", total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
