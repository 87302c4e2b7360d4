"""The model stage of a night: a score for every user, whatever the labels.

With `train=False` (the retrain policy said so, `model/retrain.py`) score with the promoted
model; when it cannot (none, or another feature set) train instead. Otherwise train the
candidates when both classes have `MIN_LABELS_PER_CLASS` labels; when there are fewer,
every candidate failed, or the pick's out-of-fold ranking is near chance (`model/gate.py`: metrics
`gate`; the candidates stay saved, none is promoted), score with the promoted model (a gated pick
with no promoted model still scores when it ranks the labels better than the prior, `beats`); when
there is none (or it was trained on another feature set), use the label-free prior. A valid night
therefore always ends with scores, and `ModelScores.metrics` says which path was taken and why
(`fallback`, and `failed`: kind -> reason for every candidate that did not train). A registry whose
files were altered is not a valid night: that `ArtifactError` is raised, never papered over with the
prior.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.config import ModelSettings
from graphfraud.errors import ModelMismatchError, TrainingFailed
from graphfraud.model.gate import beats, ranking_gate
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.promotion import Promotion
from graphfraud.model.registry import ModelRegistry, score_with_promoted
from graphfraud.model.risk import ModelInput
from graphfraud.model.train import Provenance, train_and_score

log = logging.getLogger(__name__)

MIN_LABELS_PER_CLASS = 5
PRIOR_VERSION = "prior-v2"  # v2: the structural ring prior (model/prior.py)


@dataclass(frozen=True)
class ModelScores:
    """One score per node of `data` and what produced it.

    `kind` is the trained model's kind, `promoted` (the registry's promoted model) or `prior`;
    `files` are the scoring model's weight files with their sha256 (empty for the prior), for
    the run manifest.
    """

    scores: npt.NDArray[np.float32]
    version: str
    kind: str
    metrics: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)  # the model's files -> sha256
    # For a trained model: whether to promote `version` once the run is complete (never
    # before: a run that crashes after the model stage must leave the promoted model alone).
    promotion: Promotion | None = None


def score_users(
    data: ModelInput,
    settings: ModelSettings,
    registry: ModelRegistry,
    prior: Callable[[], npt.NDArray[np.float32]],
    *,
    progress: bool = False,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    train: bool = True,
    provenance: Provenance | None = None,
) -> ModelScores:
    """Train, or fall back to the promoted model, or to `prior()` (see the module docstring).
    Every path scores through one `GraphInputs`: pass them to keep what they derive."""
    inputs = GraphInputs.of(data)
    data = inputs.data
    if not train:
        card = registry.promoted()
        if card is not None:
            try:
                scores, version = score_with_promoted(inputs, registry, device=settings.device)
            except ModelMismatchError as exc:
                log.warning("the promoted model cannot score tonight (%s): training", exc)
            else:
                return ModelScores(scores, version, "promoted", {}, card.files)
        else:
            log.warning("no promoted model to score with: training")
    cached: list[npt.NDArray[np.float32]] = []

    def prior_once() -> npt.NDArray[np.float32]:
        if not cached:
            cached.append(prior())
        return cached[0]

    n_fraud = int((data.labels == 1).sum())
    n_legit = int((data.labels == 0).sum())
    failed: dict[str, str] = {}
    gated: dict[str, Any] = {}  # a trained model's metrics when the ranking gate refused it
    if min(n_fraud, n_legit) >= MIN_LABELS_PER_CLASS:
        try:
            result = train_and_score(
                inputs,
                settings,
                registry=registry,
                progress=progress,
                model_params=model_params,
                provenance=provenance,
            )
        except TrainingFailed as exc:
            why = str(exc)
            failed = exc.failures
        else:
            labelled = data.labels >= 0
            gate = ranking_gate(
                data.labels[labelled], result.scores[labelled], settings.gate_margin
            )
            metrics: dict[str, Any] = dict(result.metrics)
            metrics["gate"] = gate.public()
            if result.failures:
                metrics["failed"] = dict(result.failures)
            if result.skipped:
                metrics["skipped"] = dict(result.skipped)
            if gate.passed:
                files = registry.show(result.model_version).files
                return ModelScores(
                    result.scores,
                    result.model_version,
                    result.model_kind,
                    metrics,
                    files,
                    result.promotion,
                )
            # saved in the registry, never promoted: its ranking is near chance
            why = f"{result.model_kind} {result.model_version}: {gate.reason}"
            failed = dict(result.failures)
            gated = {k: v for k, v in metrics.items() if k != "failed"}
            if registry.promoted() is None:
                better, mine, theirs = beats(
                    data.labels[labelled], result.scores[labelled], prior_once()[labelled]
                )
                versus = f"AUPRC {mine:.3f} vs the label-free prior's {theirs:.3f}"
                if better:
                    metrics["fallback"] = f"{why}; not promoted, but scores: {versus}"
                    log.warning("%s", metrics["fallback"])
                    files = registry.show(result.model_version).files
                    return ModelScores(
                        result.scores, result.model_version, result.model_kind, metrics, files
                    )
                why = f"{why}; {versus}"
    else:
        why = (
            f"only {n_fraud} fraud / {n_legit} legit labels "
            f"(need {MIN_LABELS_PER_CLASS} of each to train)"
        )
    extra: dict[str, Any] = {"failed": failed} if failed else {}
    extra |= gated
    card = registry.promoted()
    if card is not None:
        try:
            scores, version = score_with_promoted(inputs, registry, device=settings.device)
        except ModelMismatchError as exc:
            why = f"{why}; the promoted model cannot score tonight's data: {exc}"
        else:
            log.warning("%s: scoring with the promoted model %s", why, version)
            return ModelScores(scores, version, "promoted", {"fallback": why, **extra}, card.files)
    log.warning("%s: scoring with the label-free prior", why)
    return ModelScores(prior_once(), PRIOR_VERSION, "prior", {"fallback": why, **extra})
