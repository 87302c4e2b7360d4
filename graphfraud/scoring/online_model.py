"""The batch's model, online: what a served run needs to score an account it has not seen with
the model that scored it.

Loaded beside the snapshot (`load_online_model`), from the run's files and the model registry:
- the run's model (its version in the scores), verified and loaded like the batch loads it; the
  GBM scores online — a `gnn_stack` contributes its GBM half (`part`), a model without a GBM
  leaves the run without an online model (the caller falls back to link evidence and says so);
- the node state (`model/ego.py`), memory-mapped, whose rows must be the snapshot's rows;
- the ring features of the run's rings (a new account joining one gets that ring's features)
  and the ring-mates' label counts;
- the population counts behind the email features (`model.features.Population`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud import schema
from graphfraud.errors import ArtifactError, GraphFraudError
from graphfraud.model.ego import (
    Ego,
    Neighbourhood,
    NodeState,
    check_names,
    ego_row,
    ids_digest,
    load_state,
)
from graphfraud.model.features import RING_COLUMNS
from graphfraud.model.gbm import GBMModel
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.stack import StackModel
from graphfraud.rundir import RunDir
from graphfraud.scoring.snapshot import ScoreSnapshot, SortedValues

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class OnlineModel:
    """Everything `scoring.account` needs to run one run's model on a new account."""

    version: str
    kind: str  # the model card's kind
    part: str  # what scores online ("gbm")
    members: tuple[GBMModel, ...]
    state: NodeState
    names: tuple[str, ...]  # the model's input columns
    label_features: bool
    per_relation: bool
    ring_known: npt.NDArray[np.float64]  # per snapshot ring code: labelled members
    ring_fraud: npt.NDArray[np.float64]  # per snapshot ring code: members labelled fraud
    rings: pl.DataFrame  # ring_id + RING_COLUMNS of the run's rings
    ring_row: dict[str, int]
    domains: SortedValues  # email domain → rows (how many hold it)
    latest: datetime | None  # the run's newest sign-up

    def predict(self, ego: Ego, nb: Neighbourhood) -> float:
        """P(fraud) of one node from its ego row: the mean of the fold members, as in the batch."""
        row, names = ego_row(
            self.state.meta, ego, nb, label_features=self.label_features,
            per_relation=self.per_relation,
        )  # fmt: skip
        check_names(self.names, names)
        x = row[None, :]
        return float(np.mean([m.predict_rows(x)[0] for m in self.members]))

    def ring_features(self, ring_id: str) -> pl.DataFrame:
        """The run's ring's feature row (ring_id + RING_COLUMNS)."""
        return self.rings.slice(self.ring_row[ring_id], 1)


def _gbm_members(kind: str, members: list[object]) -> tuple[GBMModel, ...] | None:
    if kind == "gbm":
        return tuple(m for m in members if isinstance(m, GBMModel))
    if kind == "gnn_stack":
        return tuple(m.gbm for m in members if isinstance(m, StackModel))
    return None


def load_online_model(
    run_dir: Path, snapshot: ScoreSnapshot, registry: ModelRegistry
) -> OnlineModel:
    """The online model of a served run; ArtifactError saying why when the run has none."""
    run = RunDir(run_dir)
    version = snapshot.info.model_version
    card = registry.show(version)  # NotFound / ArtifactError when the version is not there
    ensemble = registry.load(version)
    members = _gbm_members(card.kind, list(ensemble.members))
    if not members:
        raise ArtifactError(
            f"model {version} is a {card.kind!r} without a GBM: online accounts are scored from "
            "their links only",
            hint="train the gbm or gnn_stack candidate (GRAPHFRAUD_MODEL__CANDIDATES)",
        )
    state = load_state(run.file(schema.ONLINE_DIR))
    meta = state.meta
    if meta.feature_names != card.feature_names or meta.relation_names != card.relation_names:
        raise ArtifactError(
            f"the node state of {run_dir.name} and model {version} disagree on the features",
            hint="rerun the score stage",
        )
    if meta.users != len(snapshot) or meta.ids_digest != ids_digest(snapshot.user_ids):
        raise ArtifactError(
            f"the node state of {run_dir.name} is not in the order of its scores",
            hint="rerun the score stage",
        )
    label_features, per_relation = members[0].input_options
    names = _model_names(state, label_features, per_relation)
    rows = np.flatnonzero(snapshot.ring_code >= 0)
    codes = snapshot.ring_code[rows].astype(np.int64)
    n_rings = len(snapshot.ring_ids)
    known, fraud = state.scalar("known", rows), state.scalar("fraud", rows)
    ring_known = np.bincount(codes, weights=known, minlength=n_rings).astype(np.float64)
    ring_fraud = np.bincount(codes, weights=fraud, minlength=n_rings).astype(np.float64)
    rings = (
        run.read(schema.RINGS_FILE, columns=["ring_id", *RING_COLUMNS])
        if run.exists(schema.RINGS_FILE)
        else pl.DataFrame(schema={"ring_id": pl.String, **dict.fromkeys(RING_COLUMNS, pl.Float32)})
    )
    users = run.read(schema.USERS_FILE, columns=["user_id", "email_domain", "created_at"])
    domains = SortedValues.build(
        users.with_row_index("row").select("row", "email_domain"), "email_domain"
    )
    latest = users.get_column("created_at").max()
    return OnlineModel(
        version=version,
        kind=card.kind,
        part="gbm",
        members=members,
        state=state,
        names=names,
        label_features=label_features,
        per_relation=per_relation,
        ring_known=ring_known,
        ring_fraud=ring_fraud,
        rings=rings,
        ring_row={rid: i for i, rid in enumerate(rings.get_column("ring_id").to_list())},
        domains=domains,
        latest=latest if isinstance(latest, datetime) else None,
    )


def _model_names(state: NodeState, label_features: bool, per_relation: bool) -> tuple[str, ...]:
    """The model's input columns: those of an ego row (the batch's `GraphInputs.matrix` names,
    which `tests/model/test_ego.py` holds equal)."""
    empty = Neighbourhood.concat([], state.width, len(state.meta.relation_names))
    x = np.zeros(len(state.meta.feature_names), dtype=np.float32)
    _, names = ego_row(
        state.meta, Ego(x), empty, label_features=label_features, per_relation=per_relation
    )
    return names


def try_load_online_model(
    run_dir: Path, snapshot: ScoreSnapshot, registry: ModelRegistry | None
) -> tuple[OnlineModel | None, str | None]:
    """(model, None), or (None, why not): a run without an online model still serves."""
    if registry is None:
        return None, "no model registry is configured (GRAPHFRAUD_MODEL__REGISTRY)"
    try:
        return load_online_model(run_dir, snapshot, registry), None
    except GraphFraudError as exc:
        log.warning("no online model", extra={"run": run_dir.name, "error": str(exc)})
        return None, str(exc)
