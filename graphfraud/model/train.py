"""Out-of-fold training, candidate selection and scoring.

Labelled users are split into K stratified folds (a ring's users share one). For fold k a fresh
model sees only the labels of the other folds — the fold's labels are hidden from the *inputs*
too (every label aggregate, ring-mates' labels included, is recomputed with them set to
unknown) — and scores fold k. So a labelled user's score never depends on its own label.
Unlabelled users get the mean of the K fold models. Each candidate kind is scored this way; the
one with the best out-of-fold AUPRC is selected. Unlabelled users are scored with all labels
visible to the label aggregates, exactly as the saved ensemble scores them.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.model_selection import StratifiedKFold

from graphfraud.config import ModelSettings
from graphfraud.errors import ConfigError, InputDataError, TrainingFailed
from graphfraud.memory import release_freed_memory
from graphfraud.metrics import average_precision, roc_auc
from graphfraud.model.base import GraphData
from graphfraud.model.ensemble import FoldEnsemble
from graphfraud.model.gate import auc_lower_bound
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.kinds import make_model, model_kinds, trained_kinds
from graphfraud.model.promotion import (
    Promotion,
    compare_on_rows,
    decide_promotion,
    promoted_out_of_fold,
    select_best,
)
from graphfraud.model.registry import ModelRegistry, data_fingerprint
from graphfraud.model.risk import ModelInput, RiskModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Scores for every node plus what produced them.

    `scores` are out-of-fold for labelled nodes and the fold-model mean for the rest.
    `metrics` holds `<kind>.auprc` / `<kind>.roc_auc` (out-of-fold, over all labelled users) for
    every candidate that trained, plus `selected.*`, `n_labelled`, `n_positive`, `folds` and
    `folds_grouped`; `failures` says why the others did not (kind -> reason).
    """

    scores: npt.NDArray[np.float32]
    model_version: str
    model_kind: str
    metrics: dict[str, float]
    feature_names: tuple[str, ...]
    seconds: float
    failures: dict[str, str] = field(default_factory=dict)
    promotion: Promotion | None = None  # with a registry: should `model_version` be promoted
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why it stopped early


@dataclass(frozen=True)
class Provenance:
    """Where tonight's training stands: the run that trains (`ModelCard.trained_on`) and which
    labelled rows the promoted model did not train on (`fresh`, one flag per node; None when
    its training run is not at hand) — the rows promotion compares both models on."""

    trained_on: dict[str, str] = field(default_factory=dict)
    fresh: npt.NDArray[np.bool_] | None = None


@dataclass(frozen=True)
class Candidates:
    """What `train_candidates` gives: the candidates that trained, on which folds, and why the
    others did not (`failures`: kind -> reason). `grouped`: the folds keep rings together."""

    runs: list[CandidateRun]
    fold_ids: npt.NDArray[np.int64]
    failures: dict[str, str]
    grouped: bool
    skipped: dict[str, str] = field(default_factory=dict)  # kind -> why it stopped early


@dataclass(frozen=True)
class CandidateRun:
    """One candidate's out-of-fold outcome (kept for the registry and the benchmark)."""

    kind: str
    scores: npt.NDArray[np.float32]
    model: FoldEnsemble
    auprc: float
    roc_auc: float
    seconds: float
    per_fold: npt.NDArray[np.float32]  # [k, n] each fold model's scores (see `out_of_fold`)


def stratified_folds(
    labels: npt.NDArray[np.int8],
    folds: int,
    seed: int,
    groups: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.int64]:
    """Fold id per node (-1 for unlabelled); stratified on the label, seeded.

    With `groups` (e.g. ring index, -1 = none), a group's labelled users share one fold: a held-out
    user's ring-mates are then held out with it, as in a ring nobody has labelled yet. Random
    folds let ring-mates' labels vouch for each other and flatter label-driven models, so they
    would pick the wrong candidate for exactly the users the scores are for.

    Every fold's training part (the other folds) must hold at least 2 fraud and 2 legit labels,
    or its model cannot be fitted: `folds` shrinks (to at least 2) until it does — on a quiet
    night with a few labelled rings that is fewer folds, not a crash. `InputDataError` when even
    2 folds cannot (e.g. every fraud label in one ring, with `groups`).
    """
    idx = np.flatnonzero(labels >= 0)
    y = labels[idx]
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if min(n_pos, n_neg) < 2:
        raise InputDataError(
            f"out-of-fold training needs at least 2 fraud and 2 legit labels "
            f"(have {n_pos} fraud, {n_neg} legit)",
            column="label",
            hint="score with the promoted model instead (`score_with_promoted`)",
        )
    if groups is None:
        units_pos, units_neg = n_pos, n_neg
        g = None
    else:
        g = groups[idx].astype(np.int64)
        alone = g < 0
        g[alone] = g.max(initial=0) + 1 + np.arange(int(alone.sum()))
        units_pos, units_neg = len(np.unique(g[y == 1])), len(np.unique(g[y == 0]))
    for k in range(min(folds, units_pos, units_neg), 1, -1):
        if g is None:
            splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(idx, y)
            fold_of = np.full(len(idx), -1, dtype=np.int64)
            for f, (_, test) in enumerate(splits):
                fold_of[test] = f
        else:
            fold_of = stratified_group_folds(y, g, k, seed)
        if all(
            min(int((y[fold_of != f] == 1).sum()), int((y[fold_of != f] == 0).sum())) >= 2
            for f in range(k)
        ):
            out = np.full(labels.shape[0], -1, dtype=np.int64)
            out[idx] = fold_of
            return out
    where = f" in {units_pos} ring group(s)" if groups is not None else ""
    raise InputDataError(
        f"no split into 2 or more folds leaves 2 fraud and 2 legit labels to train every fold "
        f"on (have {n_pos} fraud{where}, {n_neg} legit)",
        column="label",
    )


def stratified_group_folds(
    y: npt.NDArray[np.integer[Any]], groups: npt.NDArray[np.int64], k: int, seed: int
) -> npt.NDArray[np.int64]:
    """The fold of each row as scikit-learn's `StratifiedGroupKFold(k, shuffle=True,
    random_state=seed)` assigns it, in a fraction of its time.

    Its greedy pass — groups by falling spread of their class counts, each to the fold that
    keeps the folds' class shares most even (ties: the smaller fold) — is sequential, and a
    handful of numpy calls per group and fold made 5,000 labelled users cost it 2.4 s of a
    small night's model stage. The same float operations on Python floats take about 0.1 s.
    """
    _, y_inv = np.unique(y, return_inverse=True)
    y_cnt = np.bincount(y_inv).astype(np.float64)
    _, groups_inv = np.unique(groups, return_inverse=True)
    n_groups = int(groups_inv.max()) + 1
    per_group = np.zeros((n_groups, len(y_cnt)))
    np.add.at(per_group, (groups_inv, y_inv), 1)
    perm = np.arange(n_groups)
    np.random.RandomState(seed).shuffle(perm)
    per_group = per_group[perm]
    inv_perm = np.empty_like(perm)
    inv_perm[perm] = np.arange(n_groups)
    groups_inv = inv_perm[groups_inv]
    totals = [float(c) for c in y_cnt]
    per_fold = [[0.0] * len(y_cnt) for _ in range(k)]
    fold_of_group = np.empty(n_groups, dtype=np.int64)
    rows = per_group.tolist()
    for group in np.argsort(-np.std(per_group, axis=1), kind="stable").tolist():
        counts = rows[group]
        best, best_eval, best_size = 0, math.inf, math.inf
        for i in range(k):  # the same float operations, in the same order, as theirs
            spread = 0.0
            for c, total in enumerate(totals):
                shares = [
                    (fold[c] + counts[c]) / total if j == i else fold[c] / total
                    for j, fold in enumerate(per_fold)
                ]
                mean = sum(shares) / k
                spread += math.sqrt(sum((v - mean) * (v - mean) for v in shares) / k)
            value = spread / len(totals)
            size = sum(per_fold[i])
            close = math.isfinite(best_eval) and abs(value - best_eval) <= 1e-8 + 1e-5 * abs(
                best_eval
            )
            if value < best_eval or (close and size < best_size):
                best, best_eval, best_size = i, value, size
        per_fold[best] = [a + b for a, b in zip(per_fold[best], counts, strict=True)]
        fold_of_group[group] = best
    out: npt.NDArray[np.int64] = fold_of_group[groups_inv]
    return out


def out_of_fold(
    data: ModelInput,
    build: Callable[[], RiskModel],
    fold_ids: npt.NDArray[np.int64],
    seed: int,
    on_fold: Callable[[], None] | None = None,
    after_fold: Callable[[int, npt.NDArray[np.float32]], None] | None = None,
) -> tuple[npt.NDArray[np.float32], FoldEnsemble, npt.NDArray[np.float32]]:
    """Out-of-fold scores for labelled nodes, fold-mean scores for the rest, the fold models, and
    each fold model's scores `[k, n]` (held-out rows for labelled nodes, every unlabelled node).

    `after_fold(f, scores)` sees fold f's model's scores of its held-out rows (`[n]`, 0
    elsewhere) before the next fold trains; it may raise to stop the candidate there.

    Every fold reads label copies of one `GraphInputs`, so the label-free inputs are derived
    once for all folds (and for all candidates, when the caller passes the same inputs).
    """
    inputs = GraphInputs.of(data)
    n = inputs.data.num_nodes
    labelled = fold_ids >= 0
    k = int(fold_ids.max()) + 1
    oof = np.zeros(n, dtype=np.float32)
    per_fold = np.zeros((k, n), dtype=np.float32)
    members: list[RiskModel] = []
    kind = "?"
    for f in range(k):
        visible = labelled & (fold_ids != f)
        fold_data = inputs.with_visible_labels(visible)
        model = build()
        kind = model.kind
        model.fit(fold_data, visible, seed + f)
        held = fold_ids == f
        oof[held] = per_fold[f, held] = model.predict(fold_data, held)[held]
        if after_fold is not None and f + 1 < k:
            after_fold(f, np.where(held, per_fold[f], np.float32(0.0)))
        if not labelled.all():
            # Unlabelled users have no label to leak: score them with every label visible,
            # as `score_with_promoted` will later.
            per_fold[f, ~labelled] = model.predict(inputs, ~labelled)[~labelled]
        members.append(model)
        if on_fold is not None:
            on_fold()
    oof[~labelled] = per_fold[:, ~labelled].mean(0)
    return oof, FoldEnsemble(kind, members), per_fold


def stack_run(
    gbm: CandidateRun,
    gnn: CandidateRun,
    fold_ids: npt.NDArray[np.int64],
    labels: npt.NDArray[np.int8],
) -> CandidateRun:
    """`gnn_stack` from the GBM's and the GNN's fold models, trained once on the same folds.

    Fold f's stacked model is GNN_f joined with GBM_f, so its out-of-fold scores are the blend of
    the two out-of-fold scores and unlabelled users get the mean of the K blends — exactly what
    the saved ensemble reproduces — at no extra training cost. The GNN's share of the logit blend
    is the one (of 0, 0.1, …, 1) with the best out-of-fold AUPRC: one number chosen on
    out-of-fold scores, the classic stacking meta-learner (Wolpert 1992).
    """
    from graphfraud.model.gbm import GBMModel
    from graphfraud.model.gnn import GNNModel
    from graphfraud.model.stack import StackModel, logit_blend

    rows = np.flatnonzero(fold_ids >= 0)
    y = labels[rows]

    def blended(weight: float) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        per_fold = logit_blend(gnn.per_fold, gbm.per_fold, weight)
        scores = per_fold.mean(0)
        scores[rows] = per_fold[fold_ids[rows], rows]
        return scores, per_fold

    def quality(weight: float) -> tuple[float, float]:
        return np.nan_to_num(ranking_metrics(y, blended(weight)[0][rows])[0]), -abs(weight - 0.5)

    weight = max((w / 10 for w in range(11)), key=quality)
    scores, per_fold = blended(weight)
    members: list[RiskModel] = []
    for g, b in zip(gnn.model.members, gbm.model.members, strict=True):
        if not (isinstance(g, GNNModel) and isinstance(b, GBMModel)):
            raise ConfigError(f"gnn_stack joins a gnn and a gbm, got {g.kind} and {b.kind}")
        members.append(StackModel(g, b, weight))
    auprc, roc = ranking_metrics(y, scores[rows])
    log.info("gnn_stack: GNN share of the logit blend %.1f", weight)
    return CandidateRun(
        "gnn_stack",
        scores,
        FoldEnsemble("gnn_stack", members),
        auprc,
        roc,
        gbm.seconds + gnn.seconds,
        per_fold,
    )


def ranking_metrics(
    y: npt.NDArray[np.integer[Any]], scores: npt.NDArray[np.floating[Any]]
) -> tuple[float, float]:
    """(AUPRC, ROC-AUC); NaN when only one class is present."""
    if len(np.unique(y)) < 2:
        return float("nan"), float("nan")
    return average_precision(y, scores), roc_auc(y, scores)


def train_candidates(
    data: ModelInput,
    settings: ModelSettings,
    *,
    progress: bool = False,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    groups: npt.NDArray[np.int64] | None = None,
) -> Candidates:
    """Run every candidate out-of-fold on the same folds (`model_params[kind]` overrides).

    Folds are grouped by `groups`, by default `data.ring_index` (see `stratified_folds`); when
    the labels are too few for grouped folds they are stratified without groups (logged).

    A candidate that fails — a library error on odd data, too few labels in a fold — is
    recorded with its reason and the others go on; `TrainingFailed` only when none trained.
    Settings errors (`ConfigError`, e.g. CUDA asked for but absent) are raised, not recorded.
    `gnn_stack` is not fitted on its own: it joins the gbm and gnn fold models (both become
    candidates too), so listing all three costs what gbm + gnn cost.
    """
    inputs = GraphInputs.of(data)  # label-free inputs shared by every candidate and fold
    data = inputs.data
    if not settings.candidates:
        raise ConfigError("model.candidates is empty", hint=f"pick from {', '.join(model_kinds())}")
    for kind in settings.candidates:
        if kind not in model_kinds():
            raise ConfigError(
                f"unknown model kind {kind!r}", hint=f"one of {', '.join(model_kinds())}"
            )
    fold_ids, grouped = _fold_ids(data, settings, data.ring_index if groups is None else groups)
    k = int(fold_ids.max()) + 1
    labelled = fold_ids >= 0
    y = data.labels[labelled]
    runs: list[CandidateRun] = []
    failures: dict[str, str] = {}
    skipped: dict[str, str] = {}
    kinds = trained_kinds(settings.candidates)
    with _Progress(progress, total=k * len(kinds), folds=k) as tick:
        for kind in kinds:
            if tick is not None:
                tick.start(kind)
            start = time.perf_counter()
            gbm = next((run for run in runs if run.kind == "gbm"), None)
            try:
                scores, ensemble, per_fold = out_of_fold(
                    inputs,
                    partial(make_model, kind, settings, dict((model_params or {}).get(kind, {}))),
                    fold_ids,
                    settings.seed,
                    tick,
                    _must_add_to(gbm, fold_ids, data.labels) if kind == "gnn" else None,
                )
            except ConfigError:
                raise
            except _Skipped as exc:
                skipped[kind] = str(exc)
                log.info("candidate %s skipped: %s", kind, exc)
                continue
            except Exception as exc:  # a failed candidate must not end the night
                failures[kind] = _reason(exc)
                log.warning("candidate %s failed: %s", kind, failures[kind])
                log.debug("candidate %s traceback", kind, exc_info=True)
                continue
            auprc, roc = ranking_metrics(y, scores[labelled])
            seconds = time.perf_counter() - start
            log.info("candidate %s: AUPRC %.4f ROC-AUC %.4f (%.1fs)", kind, auprc, roc, seconds)
            runs.append(CandidateRun(kind, scores, ensemble, auprc, roc, seconds, per_fold))
            release_freed_memory()  # the GBM's scoring chunks must not sit under the GNN's peak
    if "gnn_stack" in settings.candidates:
        by_kind = {run.kind: run for run in runs}
        missing = [kind for kind in ("gbm", "gnn") if kind not in by_kind]
        if missing and all(kind in skipped for kind in missing):
            skipped["gnn_stack"] = f"joins gbm and gnn, and {' and '.join(missing)} was skipped"
        elif missing:
            failures["gnn_stack"] = f"joins gbm and gnn, and {' and '.join(missing)} failed"
        else:
            stacked = stack_run(by_kind["gbm"], by_kind["gnn"], fold_ids, data.labels)
            log.info("candidate gnn_stack: AUPRC %.4f ROC-AUC %.4f", stacked.auprc, stacked.roc_auc)
            runs.append(stacked)
    if not runs:
        raise TrainingFailed(
            "no candidate model trained: "
            + "; ".join(f"{kind}: {why}" for kind, why in failures.items()),
            failures=failures,
        )
    return Candidates(runs, fold_ids, failures, grouped, skipped)


class _Skipped(Exception):
    """A candidate stopped after a fold because it cannot help (`_must_add_to`)."""


# A fold's held-out rows must hold this many of each class for its verdict to mean anything.
SKIP_MIN_PER_CLASS = 10


def _must_add_to(
    gbm: CandidateRun | None, fold_ids: npt.NDArray[np.int64], labels: npt.NDArray[np.int8]
) -> Callable[[int, npt.NDArray[np.float32]], None] | None:
    """After the GNN's first fold: go on only if it ranks better than chance there (the lower
    95 % bound of its held-out ROC-AUC above 0.5, as the gate asks of a pick) and adds to the
    GBM's fold model.

    The GNN is picked alone or in `gnn_stack`, whose blend weight is chosen on out-of-fold
    AUPRC. When no GNN share of the blend (0.1 … 1) ranks fold 0's held-out rows better than
    the GBM alone, the blend would pick weight 0 there — the GNN cannot win — and its other
    folds (minutes at 1M users) are skipped. Conservative: the best of ten weights on one fold
    is biased *for* the GNN, so it is only skipped when it does not help even then.
    """
    if gbm is None:
        return None
    from graphfraud.model.stack import logit_blend

    def check(fold: int, scores: npt.NDArray[np.float32]) -> None:
        if fold != 0:
            return
        held = fold_ids == fold
        y = labels[held]
        n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
        if min(n_pos, n_neg) < 1:
            return
        auc = roc_auc(y, scores[held])
        lower = auc_lower_bound(auc, n_pos, n_neg)
        if lower <= 0.5:  # the gate's test (`model/gate.py`) on one fold: a ranking at chance
            raise _Skipped(
                f"fold 1: held-out ROC-AUC {auc:.3f} (95 % lower bound {lower:.3f}, "
                f"{n_pos} fraud / {n_neg} legit) is at chance"
            )
        if min(n_pos, n_neg) < SKIP_MIN_PER_CLASS:
            return
        alone = average_precision(y, gbm.per_fold[fold, held])
        best = max(
            average_precision(y, logit_blend(scores[held], gbm.per_fold[fold, held], w / 10))
            for w in range(1, 11)
        )
        if best <= alone:
            raise _Skipped(
                f"fold 1: no GNN share of the blend beats the gbm's held-out AUPRC "
                f"({best:.4f} at best vs {alone:.4f})"
            )

    return check


def _fold_ids(
    data: GraphData, settings: ModelSettings, groups: npt.NDArray[np.int64] | None
) -> tuple[npt.NDArray[np.int64], bool]:
    """(fold ids, grouped): ring-grouped folds, or plain stratified ones when grouping leaves a
    fold untrainable (e.g. every fraud label in one ring) — scores from a model whose
    validation is flattered beat no model. `TrainingFailed` when the labels allow neither."""
    try:
        return stratified_folds(
            data.labels, settings.folds, settings.seed, groups
        ), groups is not None
    except InputDataError as grouped:
        if groups is None:
            raise TrainingFailed(f"no folds: {grouped}") from grouped
        try:
            fold_ids = stratified_folds(data.labels, settings.folds, settings.seed)
        except InputDataError as plain:
            raise TrainingFailed(f"no folds: {plain}") from plain
        log.warning("%s: folds are not grouped by ring tonight", grouped)
        return fold_ids, False


def _reason(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, one line, bounded (manifest and log material)."""
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def train_and_score(
    data: ModelInput,
    settings: ModelSettings,
    *,
    registry: ModelRegistry | None = None,
    progress: bool = False,
    model_params: Mapping[str, Mapping[str, Any]] | None = None,
    groups: npt.NDArray[np.int64] | None = None,
    provenance: Provenance | None = None,
) -> TrainResult:
    """Train every candidate out-of-fold, pick the best by AUPRC, score every node with it.

    With a registry, every candidate is saved and `promotion` says whether the selected one
    should be promoted (`model/promotion.py`); it is not promoted here — a night promotes only
    once its run is complete (`ModelRegistry.promote`). `model_version` is the saved version of
    the selected model (the one whose scores are returned). `model_params` maps a
    kind to constructor overrides (benchmarks, tests); the defaults are the tuned ones. Pass
    `GraphInputs` to share their derived inputs with the caller (the night's score stage).
    """
    start = time.perf_counter()
    inputs = GraphInputs.of(data)
    data = inputs.data
    trained = train_candidates(
        inputs, settings, progress=progress, model_params=model_params, groups=groups
    )
    runs, fold_ids = trained.runs, trained.fold_ids
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
            "folds_grouped": 1.0 if trained.grouped else 0.0,
        }
    )
    promotion = None
    if registry is not None:
        version, promotion = _register(
            registry, inputs, trained, best, settings, provenance or Provenance()
        )
    else:
        version = f"{best.kind}-unsaved-{data_fingerprint(data)[:8]}"
    return TrainResult(
        scores=best.scores,
        model_version=version,
        model_kind=best.kind,
        metrics=metrics,
        feature_names=data.feature_names,
        seconds=time.perf_counter() - start,
        failures=trained.failures,
        promotion=promotion,
        skipped=trained.skipped,
    )


def _register(
    registry: ModelRegistry,
    inputs: GraphInputs,
    trained: Candidates,
    best: CandidateRun,
    settings: ModelSettings,
    provenance: Provenance,
) -> tuple[str, Promotion]:
    """Save every candidate and decide whether `best` should be promoted; (its version, the
    decision). Nothing is promoted here: the caller does it once the run is complete."""
    data = inputs.data
    current = registry.promoted()  # before tonight's saves: the model to beat
    n_labelled = float((data.labels >= 0).sum())
    versions: dict[str, str] = {}
    for run in trained.runs:
        card = registry.save(
            run.model,
            data,
            {"auprc": run.auprc, "roc_auc": run.roc_auc, "n_labelled": n_labelled},
            training_seconds=run.seconds,
            trained_on=provenance.trained_on,
        )
        versions[run.kind] = card.version
    same_rows, why_not = None, ""
    if current is not None and (current.feature_names, current.relation_names) == (
        data.feature_names,
        data.relation_names,
    ):
        if provenance.fresh is None:
            why_not = "the run that trained it is not at hand to tell its training rows"
        else:
            rows = (trained.fold_ids >= 0) & provenance.fresh
            model = registry.load(current.version, data=data, device=settings.device)
            promoted = promoted_out_of_fold(model, inputs, trained.fold_ids, rows)
            same_rows = compare_on_rows(data.labels, best.scores, promoted, rows)
            if same_rows is None:
                why_not = f"only {int(rows.sum())} validation rows it did not train on"
    promotion = decide_promotion(
        best.auprc, data, current, same_rows=same_rows, why_not_same_rows=why_not
    )
    return versions[best.kind], promotion


class _Progress:
    """Fold progress when asked for: a rich bar on a terminal; piped to a file or a log, one
    line per finished fold (a model stage can take minutes, and must not look stuck)."""

    def __init__(self, enabled: bool, total: int, folds: int) -> None:
        self.enabled, self.total, self.folds = enabled, total, folds
        self._bar: Any = None

    def __enter__(self) -> _FoldTick | None:
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import Progress

        if not Console().is_terminal:
            return _FoldTick(self.folds, None)
        self._bar = Progress(transient=True)
        self._bar.start()
        task = self._bar.add_task("training folds", total=self.total)
        return _FoldTick(self.folds, lambda: self._bar.advance(task))

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


class _FoldTick:
    """Called once per finished fold: advances the bar, or prints `model gbm: fold 2/3 (3.1s)`."""

    def __init__(self, folds: int, advance: Callable[[], None] | None) -> None:
        self.folds, self.advance = folds, advance
        self.kind, self.done = "", 0
        self._since = time.perf_counter()

    def start(self, kind: str) -> None:
        self.kind, self.done = kind, 0
        self._since = time.perf_counter()

    def __call__(self) -> None:
        self.done += 1
        if self.advance is not None:
            self.advance()
            return
        took = time.perf_counter() - self._since
        self._since = time.perf_counter()
        print(f"    model {self.kind}: fold {self.done}/{self.folds} ({took:.1f}s)", flush=True)
