"""What the run report says: a typed `RunReport` computed from one run's artifacts and the
previous run's, plus the drift warnings its thresholds raise (`ReportSettings`).

Reading (`read_artifacts`) is kept apart from computing (`build_report`, pure), so a test can
build a report from frames. Nothing in a report is raw PII: hub identifiers are masked by their
kind's rule, and kinds analysts see as they are (device ids, IPs) are shown as hashes here too —
the report travels further than the analyst UI (mail, tickets, scheduler logs). The only other
values are counts, ring ids, model versions and feature names.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from graphfraud.config import ReportSettings
from graphfraud.errors import ArtifactError
from graphfraud.identifiers import IdentifierRegistry, Mask, registry_from_manifest
from graphfraud.report.drift import column_psi, psi
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    FEATURES_FILE,
    IDENTIFIERS_FILE,
    LINKS_FILE,
    QUARANTINE_DIR,
    RING_EVENTS_FILE,
    RINGS_FILE,
    SCORES_FILE,
    USER_ID,
    USERS_FILE,
)
from graphfraud.service.masking import mask_hash, mask_value

SCORE_BINS = 20  # the score histogram's equal-width bins on [0, 1]
HIGH_SCORE = 0.5
RING_SIZE_BUCKETS = ((2, 2), (3, 3), (4, 4), (5, 9), (10, 19), (20, 49), (50, None))
RING_EVENT_ORDER = ("born", "grew", "shrank", "merged_into", "split_from", "dissolved")
MIN_LINKS_TO_WARN = 20  # a kind with fewer links on both nights moves by chance


@dataclass(frozen=True)
class RunArtifacts:
    """The parts of one run directory a report reads (small: counts and a few columns)."""

    manifest: dict[str, Any]
    scores: np.ndarray  # float64, one per user
    features: pl.DataFrame | None
    links_by_kind: dict[str, int]
    ring_sizes: np.ndarray  # int64, one per ring
    hubs: pl.DataFrame  # kind, value, support: the top supports
    quarantine: dict[str, dict[str, int]]  # role -> reason -> rows
    ring_events: dict[str, int] | None  # event -> count, None without the artifact
    labelled: int  # users with a label


@dataclass(frozen=True)
class Count:
    """One labelled count tonight and on the previous run (None: no previous run)."""

    label: str
    current: int
    previous: int | None = None


@dataclass(frozen=True)
class Hub:
    kind: str
    value: str  # masked
    support: int


@dataclass(frozen=True)
class Quarantined:
    role: str
    reason: str
    rows: int


@dataclass(frozen=True)
class Metric:
    name: str
    tonight: float | None
    promoted: float | None


@dataclass(frozen=True)
class ModelSection:
    version: str
    kind: str
    retrain: str  # why tonight trained or scored with the promoted model
    promotion: str  # whether tonight's pick was promoted, and why ("" when nothing trained)
    promoted_version: str | None  # the promoted model tonight was measured against
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class Stage:
    name: str
    seconds: float
    peak_rss_mb: float


@dataclass(frozen=True)
class DriftWarning:
    """One threshold crossed: `code` (score_psi, feature_psi, links, quarantine) and a line."""

    code: str
    message: str


@dataclass(frozen=True)
class RunReport:
    run_id: str
    previous_run_id: str | None
    created_at: str
    status: str
    users: Count
    labelled: Count
    high_scores: Count
    score_edges: tuple[float, ...]
    score_counts: tuple[int, ...]
    previous_score_counts: tuple[int, ...] | None
    score_psi: float | None
    feature_psi: tuple[tuple[str, float], ...]  # highest first
    rings: Count
    largest_ring: Count
    ring_sizes: tuple[Count, ...]
    ring_events: tuple[Count, ...] | None
    links: tuple[Count, ...]
    hubs: tuple[Hub, ...]
    inputs: tuple[Count, ...]  # rows in per role (previous: the previous run's)
    quarantine: tuple[Quarantined, ...]
    model: ModelSection
    stages: tuple[Stage, ...]
    seconds: float
    peak_rss_mb: float
    warnings: tuple[DriftWarning, ...]

    @property
    def max_feature_psi(self) -> tuple[str, float] | None:
        return self.feature_psi[0] if self.feature_psi else None

    def manifest_entry(self) -> dict[str, Any]:
        """What the manifest records of the report (`manifest.report`)."""
        top = self.max_feature_psi
        return {
            "file": "report.html",
            "previous_run_id": self.previous_run_id,
            "score_psi": _finite_or_none(self.score_psi),
            "max_feature_psi": None if top is None else {"feature": top[0], "psi": top[1]},
            "warnings": [{"code": w.code, "message": w.message} for w in self.warnings],
        }


def read_artifacts(run: RunDir, *, top_hubs: int = 10, features: bool = True) -> RunArtifacts:
    """Read what a report needs from a run directory; artifacts a run lacks (an older run, a
    failed stage) read as empty rather than stopping the report. `features=False` skips the
    widest artifact (only feature drift reads it: not needed without a previous run)."""
    manifest = run.manifest()
    scores = (
        run.read(SCORES_FILE, columns=["score"])["score"].cast(pl.Float64).to_numpy()
        if run.exists(SCORES_FILE)
        else np.zeros(0)
    )
    table = run.read(FEATURES_FILE) if features and run.exists(FEATURES_FILE) else None
    links = (
        dict(run.read(LINKS_FILE, columns=["kind"]).group_by("kind").len().iter_rows())
        if run.exists(LINKS_FILE)
        else {}
    )
    sizes = (
        run.read(RINGS_FILE, columns=["size"])["size"].cast(pl.Int64).to_numpy()
        if run.exists(RINGS_FILE)
        else np.zeros(0, dtype=np.int64)
    )
    hubs = (
        pl.scan_parquet(run.file(IDENTIFIERS_FILE))
        .select("kind", "value", "support")
        .sort(["support", "kind", "value"], descending=[True, False, False])
        .head(top_hubs)
        .collect()
        if run.exists(IDENTIFIERS_FILE) and top_hubs
        else pl.DataFrame(schema={"kind": pl.String, "value": pl.String, "support": pl.Int32})
    )
    quarantine: dict[str, dict[str, int]] = {}
    for path in sorted(run.file(QUARANTINE_DIR).glob("*.parquet")):
        reasons = run.read(f"{QUARANTINE_DIR}/{path.name}", columns=["reason"])
        quarantine[path.stem] = dict(reasons.group_by("reason").len().iter_rows())
    events = None
    if run.exists(RING_EVENTS_FILE):
        events = dict(
            run.read(RING_EVENTS_FILE, columns=["event"]).group_by("event").len().iter_rows()
        )
    labelled = (
        int(run.read(USERS_FILE, columns=["label"])["label"].is_not_null().sum())
        if run.exists(USERS_FILE)
        else 0
    )
    return RunArtifacts(manifest, scores, table, links, sizes, hubs, quarantine, events, labelled)


def report_mask(kind: str, value: str, registry: IdentifierRegistry) -> str:
    """A hub value as the report shows it: its kind's mask, and never shown whole."""
    spec = registry.spec_of_link(kind)
    if spec is not None and spec.mask == Mask.NONE:
        return mask_hash(value) or ""
    return mask_value(kind, value, registry) or ""


def build_report(
    current: RunArtifacts,
    previous: RunArtifacts | None,
    settings: ReportSettings,
    promoted: Mapping[str, Any] | None = None,
) -> RunReport:
    """The report of `current` against `previous` (None on a first night). `promoted` is the
    model card (JSON) tonight was measured against when the manifest does not record one."""
    m = current.manifest
    pm = previous.manifest if previous is not None else None
    warnings: list[DriftWarning] = []

    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    counts = _histogram(current.scores, edges)
    prev_counts = _histogram(previous.scores, edges) if previous is not None else None
    score_psi = None
    if previous is not None and previous.scores.size and current.scores.size:
        score_psi = psi(previous.scores, current.scores)
        if score_psi >= settings.psi_warn:
            warnings.append(
                DriftWarning(
                    "score_psi",
                    f"score PSI {score_psi:.3f} ≥ {settings.psi_warn:g} against "
                    f"{pm.get('run_id') if pm else 'the previous run'}",
                )
            )
    feature_psi: list[tuple[str, float]] = []
    if previous is not None and previous.features is not None and current.features is not None:
        names = [c for c in current.features.columns if c != USER_ID]
        table = column_psi(previous.features, current.features, names)
        feature_psi = sorted(
            ((k, v) for k, v in table.items() if math.isfinite(v)), key=lambda kv: (-kv[1], kv[0])
        )
        drifted = [(k, v) for k, v in feature_psi if v >= settings.feature_psi_warn]
        if drifted:
            shown = ", ".join(f"{k} {v:.2f}" for k, v in drifted[:5])
            more = f" (+{len(drifted) - 5} more)" if len(drifted) > 5 else ""
            warnings.append(
                DriftWarning(
                    "feature_psi",
                    f"{len(drifted)} feature(s) with PSI ≥ {settings.feature_psi_warn:g}: "
                    f"{shown}{more}",
                )
            )

    kinds = sorted(
        set(current.links_by_kind) | set(previous.links_by_kind if previous else ()),
        key=lambda k: (-current.links_by_kind.get(k, 0), k),
    )
    links = tuple(
        Count(
            k,
            current.links_by_kind.get(k, 0),
            previous.links_by_kind.get(k, 0) if previous is not None else None,
        )
        for k in kinds
    )
    for link in links:
        if link.previous is None or max(link.current, link.previous) < MIN_LINKS_TO_WARN:
            continue
        change = abs(link.current - link.previous) / max(link.previous, 1)
        if change >= settings.links_change_warn:
            warnings.append(
                DriftWarning(
                    "links",
                    f"{link.label} links {link.previous:,} → {link.current:,} "
                    f"({link.current / max(link.previous, 1) - 1:+.0%})",
                )
            )

    inputs: list[Count] = []
    for role, c in m.get("counts", {}).items():
        before = pm.get("counts", {}).get(role, {}).get("input") if pm else None
        inputs.append(Count(role, int(c.get("input", 0)), before))
        share = c.get("quarantined", 0) / max(c.get("input", 0), 1)
        if c.get("quarantined", 0) and share >= settings.quarantine_warn:
            warnings.append(
                DriftWarning(
                    "quarantine",
                    f"{role}: {c['quarantined']:,} of {c['input']:,} rows quarantined "
                    f"({share:.1%} ≥ {settings.quarantine_warn:.1%})",
                )
            )
    quarantine = tuple(
        Quarantined(role, reason, n)
        for role, reasons in current.quarantine.items()
        for reason, n in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    )

    registry = registry_from_manifest(m)
    hubs = tuple(
        Hub(kind, report_mask(kind, value, registry), int(support))
        for kind, value, support in current.hubs.iter_rows()
    )

    users = _accepted_users(m)
    return RunReport(
        run_id=str(m.get("run_id", "")),
        previous_run_id=str(pm.get("run_id")) if pm else None,
        created_at=str(m.get("created_at", "")),
        status=str(m.get("status", "")),
        users=Count("users", users, _accepted_users(pm) if pm else None),
        labelled=Count(
            "labelled", current.labelled, previous.labelled if previous is not None else None
        ),
        high_scores=Count(
            f"score ≥ {HIGH_SCORE}",
            int((current.scores >= HIGH_SCORE).sum()),
            int((previous.scores >= HIGH_SCORE).sum()) if previous is not None else None,
        ),
        score_edges=tuple(float(e) for e in edges),
        score_counts=counts,
        previous_score_counts=prev_counts,
        score_psi=score_psi,
        feature_psi=tuple(feature_psi),
        rings=Count(
            "rings",
            int(current.ring_sizes.size),
            int(previous.ring_sizes.size) if previous is not None else None,
        ),
        largest_ring=Count(
            "largest ring",
            int(current.ring_sizes.max(initial=0)),
            int(previous.ring_sizes.max(initial=0)) if previous is not None else None,
        ),
        ring_sizes=_ring_sizes(current.ring_sizes, previous.ring_sizes if previous else None),
        ring_events=_ring_events(current.ring_events),
        links=links,
        hubs=hubs,
        inputs=tuple(inputs),
        quarantine=quarantine,
        model=_model_section(m, promoted),
        stages=_stages(m),
        seconds=float(
            m.get("seconds") or sum(s.get("seconds", 0) for s in m.get("stages", {}).values())
        ),
        peak_rss_mb=max(
            (s.get("peak_rss_mb", 0.0) for s in m.get("stages", {}).values()), default=0.0
        ),
        warnings=tuple(warnings),
    )


def _histogram(values: np.ndarray, edges: np.ndarray) -> tuple[int, ...]:
    counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
    return tuple(int(c) for c in counts)


def _accepted_users(manifest: Mapping[str, Any]) -> int:
    return int(manifest.get("counts", {}).get("users", {}).get("accepted", 0))


def _bucket(low: int, high: int | None) -> str:
    if high is None:
        return f"{low}+"
    return str(low) if low == high else f"{low}–{high}"


def _ring_sizes(current: np.ndarray, previous: np.ndarray | None) -> tuple[Count, ...]:
    out = []
    for low, high in RING_SIZE_BUCKETS:
        top = np.iinfo(np.int64).max if high is None else high

        def inside(sizes: np.ndarray, low: int = low, top: int = top) -> int:
            return int(((sizes >= low) & (sizes <= top)).sum())

        out.append(
            Count(
                _bucket(low, high), inside(current), None if previous is None else inside(previous)
            )
        )
    return tuple(out)


def _ring_events(events: Mapping[str, int] | None) -> tuple[Count, ...] | None:
    if events is None:
        return None
    order = [e for e in RING_EVENT_ORDER if e in events] + sorted(
        e for e in events if e not in RING_EVENT_ORDER
    )
    return tuple(Count(e, int(events[e])) for e in order)


METRICS_SHOWN = (
    ("AUPRC (out-of-fold)", "selected.auprc", "auprc"),
    ("ROC-AUC (out-of-fold)", "selected.roc_auc", "roc_auc"),
    ("labelled users", "n_labelled", "n_labelled"),
)


def _model_section(manifest: Mapping[str, Any], promoted: Mapping[str, Any] | None) -> ModelSection:
    model = manifest.get("model", {})
    tonight = model.get("metrics", {})
    before = model.get("promoted_before") or promoted or {}
    before_metrics = before.get("metrics", {})
    scored_by_promoted = model.get("kind") == "promoted"
    metrics = tuple(
        Metric(
            label,
            None if scored_by_promoted else _num(tonight.get(key)),  # nothing trained tonight
            _num(before_metrics.get(card_key)),
        )
        for label, key, card_key in METRICS_SHOWN
    )
    retrain = model.get("retrain", {})
    promotion = model.get("promotion", {})
    promoted_text = ""
    if promotion:
        verdict = "promoted" if promotion.get("promote") else "not promoted"
        if promotion.get("promote") and not promotion.get("done"):
            verdict = "to be promoted (not done: the run stopped first)"
        promoted_text = f"{verdict}: {promotion.get('reason', '')}"
    retrain_text = ""
    if retrain:
        retrain_text = (
            f"{'trained' if retrain.get('train') else 'skipped'} ({retrain.get('reason')})"
        )
    elif tonight.get("fallback"):
        retrain_text = f"fallback: {tonight['fallback']}"
    return ModelSection(
        version=str(model.get("version", manifest.get("model_version", ""))),
        kind=str(model.get("kind", "")),
        retrain=retrain_text,
        promotion=promoted_text,
        promoted_version=before.get("version"),
        metrics=metrics,
    )


def _stages(manifest: Mapping[str, Any]) -> tuple[Stage, ...]:
    return tuple(
        Stage(name, float(s.get("seconds", 0.0)), float(s.get("peak_rss_mb", 0.0)))
        for name, s in manifest.get("stages", {}).items()
    )


def _num(value: object) -> float | None:
    if isinstance(value, int | float) and math.isfinite(value):
        return float(value)
    return None


def _finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def read_previous(run: RunDir, previous: RunDir | None, *, top_hubs: int) -> RunArtifacts | None:
    """The previous run's artifacts, or None; an unreadable previous run is an error (the
    caller named it), never silently a first night."""
    if previous is None:
        return None
    try:
        return read_artifacts(previous, top_hubs=0)
    except ArtifactError as exc:
        raise ArtifactError(
            f"the previous run {previous.path} cannot be read for the report of {run.path}: {exc}"
        ) from exc


__all__: Sequence[str] = (
    "Count",
    "DriftWarning",
    "RunArtifacts",
    "RunReport",
    "build_report",
    "read_artifacts",
    "read_previous",
    "report_mask",
)
