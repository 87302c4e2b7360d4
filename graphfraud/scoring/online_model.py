"""The batch's model, online: what a served run needs to score an account it has not seen with
the model that scored it.

Loaded beside the snapshot (`load_online_model`), from the run's files and the model registry:
- the run's model (its version in the scores), verified and loaded like the batch loads it: a
  GBM on the account's ego row; a GNN inductively on its neighbourhood, from the neighbours'
  stored hidden states (`model/gnn/state.py`), which carry their own 2-hop neighbourhoods; a
  `gnn_stack` blends the two as the batch does. Each fold member scores, their mean is the score;
- the node state (`model/ego.py`) and the GNN's states, memory-mapped, whose rows must be the
  snapshot's rows;
- the ring features of the run's rings (a new account joining one gets that ring's features)
  and the ring-mates' label counts;
- the population counts behind the email features (`model.features.Population`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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
    load_state,
)
from graphfraud.model.features import RING_COLUMNS
from graphfraud.model.gbm import GBMModel
from graphfraud.model.gnn import GNNModel
from graphfraud.model.gnn.state import GnnStates, gnn_members, load_gnn_states
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.stack import StackModel, logit_blend
from graphfraud.rundir import RunDir
from graphfraud.scoring.store import ScoreStore

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class OnlineModel:
    """Everything `scoring.account` needs to run one run's model on a new account."""

    version: str
    kind: str  # the model card's kind
    part: str  # what scores online: "gbm", "gnn" or "gnn_stack"
    gbms: tuple[GBMModel, ...]  # per fold member (empty for a GNN)
    gnns: tuple[GNNModel, ...]  # per fold member (empty for a GBM)
    gnn_weight: float  # a stack's share of the GNN's logit (1 for a GNN, 0 for a GBM)
    state: NodeState
    gnn_states: GnnStates | None
    names: tuple[str, ...]  # the GBM's input columns
    label_features: bool
    per_relation: bool
    ring_known: dict[str, float]  # per snapshot ring: labelled members
    ring_fraud: dict[str, float]  # per snapshot ring: members labelled fraud
    rings: pl.DataFrame  # ring_id + RING_COLUMNS of the run's rings
    ring_row: dict[str, int]
    domains: dict[str, int]  # email domain → how many users hold it (a few thousand domains)
    latest: datetime | None  # the run's newest sign-up

    def predict(
        self,
        ego: Ego,
        nb: Neighbourhood,
        hidden: F32 | None = None,
        stateless: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[float, F32 | None]:
        """P(fraud) of one node, the mean of the fold members as in the batch, and (with a GNN)
        its own states for the accounts that link to it next.

        `hidden` [k, networks, L, units] are `nb`'s GNN states (None: no neighbour has any);
        `stateless` marks neighbours without states (accounts recorded under another model):
        they count in the GBM's row, the GNN does not read them."""
        gbm_p = self._gbm(ego, nb) if self.gbms else None
        if not self.gnns:
            assert gbm_p is not None
            return float(np.mean(gbm_p)), None
        assert self.gnn_states is not None
        # The GNN's inputs are `GraphInputs.blocks(label_features=True)`, whatever the GBM reads.
        row, _ = ego_row(self.state.meta, ego, nb, label_features=True, per_relation=False)
        weights = nb.weights
        if hidden is None:
            states = np.zeros((len(weights), *self.gnn_states.matrix.shape[1:]), np.float32)
            weights = np.zeros_like(weights)
        else:
            states = hidden
            if stateless is not None and stateless.any():
                weights = np.where(stateless[:, None], np.float32(0.0), weights)
        per_member, own = [], []
        encoded: dict[str, Any] = {}
        for gnn, slots in zip(self.gnns, self.gnn_states.slots(), strict=True):
            p, mine = gnn.predict_node(row, states[:, slots], weights, encoded)
            per_member.append(p)
            own.append(mine)
        gnn_p = np.array(per_member)
        if gbm_p is not None:
            gnn_p = logit_blend(gnn_p, gbm_p, self.gnn_weight).astype(np.float64)
        return float(np.mean(gnn_p)), np.concatenate(own).astype(np.float32)

    def _gbm(self, ego: Ego, nb: Neighbourhood) -> npt.NDArray[np.float64]:
        row, names = ego_row(
            self.state.meta, ego, nb, label_features=self.label_features,
            per_relation=self.per_relation,
        )  # fmt: skip
        check_names(self.names, names)
        x = row[None, :]
        return np.array([m.predict_rows(x)[0] for m in self.gbms], dtype=np.float64)

    def ring_labels(self, ring_id: str) -> tuple[float, float]:
        """(labelled members, members labelled fraud) of a snapshot ring (0, 0 when unknown)."""
        return self.ring_known.get(ring_id, 0.0), self.ring_fraud.get(ring_id, 0.0)

    def ring_features(self, ring_id: str) -> pl.DataFrame:
        """The run's ring's feature row (ring_id + RING_COLUMNS)."""
        return self.rings.slice(self.ring_row[ring_id], 1)


def _parts(
    kind: str, members: list[object]
) -> tuple[tuple[GBMModel, ...], tuple[GNNModel, ...], float]:
    """(GBMs, GNNs, the GNN's logit share) of a model's fold members."""
    if kind == "gbm":
        return tuple(m for m in members if isinstance(m, GBMModel)), (), 0.0
    if kind == "gnn":
        return (), gnn_members(members), 1.0
    if kind == "gnn_stack":
        stacks = [m for m in members if isinstance(m, StackModel)]
        weight = stacks[0].gnn_weight if stacks else 0.5
        return tuple(m.gbm for m in stacks), gnn_members(stacks), weight
    return (), (), 0.0


def load_online_model(
    run_dir: Path, snapshot: ScoreStore, registry: ModelRegistry, *, device: str = "auto"
) -> OnlineModel:
    """The online model of a served run; ArtifactError saying why when the run has none.
    `device` is the GNN's torch device (settings' `model.device`)."""
    run = RunDir(run_dir)
    version = snapshot.info.model_version
    card = registry.show(version)  # NotFound / ArtifactError when the version is not there
    ensemble = registry.load(version, device=device)
    gbms, gnns, gnn_weight = _parts(card.kind, list(ensemble.members))
    if not gbms and not gnns:
        raise ArtifactError(
            f"model {version} is a {card.kind!r}, which does not score one account: online "
            "accounts are scored from their links only",
            hint="train the gbm, gnn or gnn_stack candidate (GRAPHFRAUD_MODEL__CANDIDATES)",
        )
    state = load_state(run.file(schema.ONLINE_DIR))
    gnn_states = _gnn_states(run, version, gnns, snapshot) if gnns else None
    meta = state.meta
    if meta.feature_names != card.feature_names or meta.relation_names != card.relation_names:
        raise ArtifactError(
            f"the node state of {run_dir.name} and model {version} disagree on the features",
            hint="rerun the score stage",
        )
    if meta.users != len(snapshot) or meta.ids_digest != snapshot.ids_digest():
        raise ArtifactError(
            f"the node state of {run_dir.name} is not in the order of its scores",
            hint="rerun the score stage",
        )
    label_features, per_relation = gbms[0].input_options if gbms else (True, False)
    names = _model_names(state, label_features, per_relation)
    ring_code, ring_ids = snapshot.node_rings()
    rows = np.flatnonzero(np.asarray(ring_code) >= 0)
    codes = np.asarray(ring_code)[rows].astype(np.int64)
    known, fraud = state.scalar("known", rows), state.scalar("fraud", rows)
    ring_known = np.bincount(codes, weights=known, minlength=len(ring_ids)).tolist()
    ring_fraud = np.bincount(codes, weights=fraud, minlength=len(ring_ids)).tolist()
    rings = (
        run.read(schema.RINGS_FILE, columns=["ring_id", *RING_COLUMNS])
        if run.exists(schema.RINGS_FILE)
        else pl.DataFrame(schema={"ring_id": pl.String, **dict.fromkeys(RING_COLUMNS, pl.Float32)})
    )
    users = run.read(schema.USERS_FILE, columns=["user_id", "email_domain", "created_at"])
    # counts, not the users' rows: a worker holds a few thousand domains, not a row per user
    domains = dict(
        users.select("email_domain")
        .with_row_index("row")
        .filter(pl.col("email_domain").is_not_null() & (pl.col("email_domain") != ""))
        .group_by("email_domain")
        .agg(pl.col("row").n_unique())
        .iter_rows()
    )
    latest = users.get_column("created_at").max()
    return OnlineModel(
        version=version,
        kind=card.kind,
        part="gnn_stack" if gbms and gnns else "gnn" if gnns else "gbm",
        gbms=gbms,
        gnns=gnns,
        gnn_weight=gnn_weight,
        state=state,
        gnn_states=gnn_states,
        names=names,
        label_features=label_features,
        per_relation=per_relation,
        ring_known=dict(zip(ring_ids, map(float, ring_known), strict=True)),
        ring_fraud=dict(zip(ring_ids, map(float, ring_fraud), strict=True)),
        rings=rings,
        ring_row={rid: i for i, rid in enumerate(rings.get_column("ring_id").to_list())},
        domains=domains,
        latest=latest if isinstance(latest, datetime) else None,
    )


def _gnn_states(
    run: RunDir, version: str, gnns: tuple[GNNModel, ...], snapshot: ScoreStore
) -> GnnStates:
    """The run's GNN states, checked against the model and the snapshot's node order."""
    states = load_gnn_states(run.file(schema.ONLINE_DIR))
    shape = states.matrix.shape
    expected = (len(snapshot), sum(g.networks for g in gnns), gnns[0].layers, gnns[0].hidden)
    if states.version != version or shape != expected:
        raise ArtifactError(
            f"the GNN states of {run.path.name} are not model {version}'s "
            f"({states.version}, {shape})",
            hint="rerun the score stage",
        )
    if states.ids_digest != snapshot.ids_digest():
        raise ArtifactError(
            f"the GNN states of {run.path.name} are not in the order of its scores",
            hint="rerun the score stage",
        )
    return states


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
    run_dir: Path, snapshot: ScoreStore, registry: ModelRegistry | None, *, device: str = "auto"
) -> tuple[OnlineModel | None, str | None]:
    """(model, None), or (None, why not): a run without an online model still serves."""
    if registry is None:
        return None, "no model registry is configured (GRAPHFRAUD_MODEL__REGISTRY)"
    try:
        return load_online_model(run_dir, snapshot, registry, device=device), None
    except GraphFraudError as exc:
        log.warning("no online model", extra={"run": run_dir.name, "error": str(exc)})
        return None, str(exc)
