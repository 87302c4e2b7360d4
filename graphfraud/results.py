"""A finished run, read as a program or a notebook wants it: `graphfraud.open_run(path)`.

The typed face of a run directory: frames for scores, rings, links and features, a user's score
with its reasons in words, the ring of a user (the same `RingView` the API and the graph store
return, with `to_networkx()`), a ring's history across earlier runs, and the evaluation helpers a
data scientist compares models with. Nothing here computes a score: it reads what the batch wrote
and calls the stage functions (`evaluate`, `scoring.scores.prior_scores`) the batch itself uses.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from graphfraud.errors import GraphFraudError
from graphfraud.evaluate import Evaluation, evaluate_run, load_truth
from graphfraud.graph.base import LinkExplanation, RingView
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.identifiers import IdentifierRegistry
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    FEATURES_FILE,
    LINKS_FILE,
    MEMBERS_FILE,
    QUARANTINE_DIR,
    SCORES_FILE,
    USERS_FILE,
)


@dataclass(frozen=True)
class UserScore:
    """One user's row of scores.parquet, its reason codes spelled out."""

    user_id: str
    score: float
    ring_id: str | None
    ring_score: float | None
    reasons: tuple[str, ...]
    reason_texts: tuple[str, ...]
    model_version: str


class Run:
    """A finished run directory (`status: complete`); an unfinished one is refused."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._dir = RunDir(self.path)
        self.manifest: dict[str, Any] = self._dir.manifest()
        self._dir.check_finished(self.manifest)
        self._store = EmbeddedGraphStore(self.path)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, run_id={self.run_id!r})"

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", ""))

    @property
    def model_version(self) -> str | None:
        version = self.manifest.get("model_version")
        return None if version is None else str(version)

    @cached_property
    def identifier_registry(self) -> IdentifierRegistry:
        """The identifier kinds the run was made with (built-in plus declared)."""
        from graphfraud.pipeline import run_registry

        return run_registry(self._dir)

    # ---- frames ---------------------------------------------------------------------------
    def scores(self) -> pl.DataFrame:
        """`user_id, score, ring_id, ring_score, reasons, model_version`, one row per user."""
        return self._dir.read(SCORES_FILE)

    def rings(self) -> pl.DataFrame:
        """Ring features with each ring's `ring_score`."""
        from graphfraud.scoring.scores import scored_rings

        return scored_rings(self._dir)

    def links(self) -> pl.DataFrame:
        """Every link with its evidence: kind, both values, similarity, support, weight."""
        return self._dir.read(LINKS_FILE)

    def members(self) -> pl.DataFrame:
        """`user_id, ring_id` for every user in a ring."""
        return self._dir.read(MEMBERS_FILE)

    def features(self) -> pl.DataFrame:
        """The model's input, one row per user (`user_id` + one column per feature)."""
        return self._dir.read(FEATURES_FILE)

    def users(self) -> pl.DataFrame:
        """The accepted, normalised users (PII: handle as the raw input)."""
        return self._dir.read(USERS_FILE)

    def quarantine(self, role: str = "users") -> pl.DataFrame:
        """The rows of one input (`users`, `devices`) that were quarantined, with their reason."""
        return self._dir.read(f"{QUARANTINE_DIR}/{role}.parquet")

    def riskiest_rings(self, top: int = 10, min_size: int = 3) -> pl.DataFrame:
        """The `top` rings of at least `min_size` members by ring score (ties by id)."""
        return (
            self.rings()
            .filter(pl.col("size") >= min_size)
            .sort(["ring_score", "ring_id"], descending=[True, False], nulls_last=True)
            .head(top)
        )

    # ---- one user, one ring ---------------------------------------------------------------
    def score_of(self, user_id: str) -> UserScore:
        """A user's score and reasons; raises NotFound for a user the run does not hold."""
        from graphfraud.errors import NotFound
        from graphfraud.scoring.reasons import reason_text

        rows = self.scores().filter(pl.col("user_id") == user_id)
        if rows.height == 0:
            raise NotFound("no user with this id in the run")
        row = rows.row(0, named=True)
        codes = tuple(row["reasons"] or ())
        return UserScore(
            user_id=user_id,
            score=float(row["score"]),
            ring_id=row["ring_id"],
            ring_score=None if row["ring_score"] is None else float(row["ring_score"]),
            reasons=codes,
            reason_texts=tuple(reason_text(c, self.identifier_registry) for c in codes),
            model_version=str(row["model_version"]),
        )

    def ring_of(self, user_id: str) -> RingView | None:
        """The ring a user is in (None when in none); raises NotFound for an unknown user."""
        return self._store.ring_of(user_id)

    def ring(self, ring_id: str) -> RingView:
        """One ring with its members and the evidence of its links; raises NotFound."""
        return self._store.ring(ring_id)

    def explain_link(self, user_a: str, user_b: str) -> LinkExplanation:
        """The shortest chain of links between two users, with the evidence of each hop."""
        return self._store.explain_link(user_a, user_b)

    def earlier_runs(self) -> list[Path]:
        """Finished runs beside this one (same parent directory) that were made before it,
        oldest first: where `ring_history` looks by default."""
        found: list[tuple[str, Path]] = []
        for path in sorted(self.path.parent.iterdir()) if self.path.parent.is_dir() else []:
            if path.resolve() == self.path.resolve() or not (path / "manifest.json").is_file():
                continue
            try:
                manifest = RunDir(path).manifest()
            except GraphFraudError:
                continue
            created = str(manifest.get("created_at", ""))
            if manifest.get("status") == "complete" and created < self.created_at:
                found.append((created, path))
        return [path for _, path in sorted(found)]

    @property
    def created_at(self) -> str:
        return str(self.manifest.get("created_at", ""))

    def ring_history(
        self, ring_id: str, earlier: Iterable[Path | str] | None = None
    ) -> pl.DataFrame:
        """The ring through earlier runs (default `earlier_runs()`): per run, the ring there that
        shares the most of this ring's members (`run_id, ring_id, size, shared, ring_score,
        grew_from`), this run last; ring ids are stable, so an unchanged ring keeps its id.
        Directories that are not finished runs are skipped."""
        members = self.members().filter(pl.col("ring_id") == ring_id).select("user_id")
        rows: list[dict[str, Any]] = []
        runs = self.earlier_runs() if earlier is None else list(earlier)
        for path in [*runs, self.path]:
            try:
                run = self if Path(path) == self.path else Run(path)
            except GraphFraudError:  # an unfinished or foreign directory holds no history
                continue
            overlap = (
                run.members()
                .join(members, on="user_id")
                .group_by("ring_id")
                .len("shared")
                .sort(["shared", "ring_id"], descending=[True, False])
                .head(1)
            )
            if overlap.height == 0:
                rows.append({"run_id": run.run_id, "ring_id": None, "size": 0, "shared": 0})
                continue
            best = overlap.row(0, named=True)
            ring = run.rings().filter(pl.col("ring_id") == best["ring_id"]).row(0, named=True)
            rows.append(
                {
                    "run_id": run.run_id,
                    "ring_id": best["ring_id"],
                    "size": int(ring["size"]),
                    "shared": int(best["shared"]),
                    "ring_score": ring["ring_score"],
                    "grew_from": ring.get("grew_from"),
                }
            )
        return pl.DataFrame(
            rows,
            schema={
                "run_id": pl.String,
                "ring_id": pl.String,
                "size": pl.Int64,
                "shared": pl.Int64,
                "ring_score": pl.Float64,
                "grew_from": pl.String,
            },
        )

    # ---- evaluation (data science) --------------------------------------------------------
    def evaluate(self, truth: Path | str) -> Evaluation:
        """`graphfraud evaluate`: ROC-AUC, AP, P@K on users whose label the run never saw, and
        ring recovery."""
        return evaluate_run(self.path, Path(truth))

    def baseline_scores(self) -> pl.DataFrame:
        """`user_id, baseline`: the label-free prior the batch falls back to without labels or a
        promoted model (strongest tie, raised by a dense ring): what the model must beat."""
        from graphfraud.scoring.scores import prior_scores

        features = self.features()
        return pl.DataFrame({"user_id": features["user_id"], "baseline": prior_scores(features)})

    def compare(self, truth: Path | str) -> pl.DataFrame:
        """`user_id, is_fraud, score, baseline` for the users whose label the run never saw
        (the only fair ground for a comparison)."""
        unseen = self.users().filter(pl.col("label").is_null()).select("user_id")
        return (
            unseen.join(load_truth(Path(truth)).select("user_id", "is_fraud"), on="user_id")
            .join(self.scores().select("user_id", "score"), on="user_id")
            .join(self.baseline_scores(), on="user_id")
            .sort("user_id")
        )

    def candidates(self) -> pl.DataFrame:
        """The model stage's candidates: `kind, auprc, roc_auc, seconds` (out of fold), and
        which one scored the run (`selected`)."""
        metrics: dict[str, Any] = self.manifest.get("model", {}).get("metrics", {})
        kind = self.manifest.get("model", {}).get("kind")
        kinds = sorted({k.split(".")[0] for k in metrics if "." in k} - {"selected"})
        return pl.DataFrame(
            {
                "kind": kinds,
                "auprc": [metrics.get(f"{k}.auprc") for k in kinds],
                "roc_auc": [metrics.get(f"{k}.roc_auc") for k in kinds],
                "seconds": [metrics.get(f"{k}.seconds") for k in kinds],
                "selected": [k == kind for k in kinds],
            },
            schema={
                "kind": pl.String,
                "auprc": pl.Float64,
                "roc_auc": pl.Float64,
                "seconds": pl.Float64,
                "selected": pl.Boolean,
            },
        )

    def close(self) -> None:
        self._store.close()


def open_run(path: Path | str) -> Run:
    """Open a finished run directory (`graphfraud run --out PATH`) for reading."""
    return Run(path)
