"""`GNNModel`: the relation-aware GNN as a `RiskModel` (fit, predict, save, load).

Inputs are the GBM's inputs (x, neighbour means/std, 2-hop means, degrees, label evidence)
through the fitted `InputEncoding`, so the GNN starts where the baseline is strong. Label
features are ego-only (`network.py`); scores are mapped back to the base rate like the GBM's.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from sklearn.model_selection import train_test_split
from torch import Tensor

from graphfraud.errors import ArtifactError, ConfigError, InputDataError
from graphfraud.model.aggregate import Adjacency
from graphfraud.model.device import resolve_device
from graphfraud.model.gnn.encoding import ENCODINGS, InputEncoding, fit_columns, split_columns
from graphfraud.model.gnn.network import RelationalSepNet
from graphfraud.model.gnn.plans import field_batches, full_plan, receptive_plan
from graphfraud.model.gnn.training import Schedule, label_slots, train_network, with_label_inputs
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.risk import ModelInput, balanced_to_prior

F32Array = npt.NDArray[np.float32]

log = logging.getLogger(__name__)

WEIGHTS_FILE = "gnn.pt"
# Keys cards written while the GNN also held the stacked GBM still carry (see model/stack.py).
STACK_PARAMS = ("stack", "stack_weight", "gbm")


class GNNModel:
    """Fit/predict wrapper: input encoding, receptive-field batches, early stopping, seeds.

    * `encoding="quantile"` maps every input column through its empirical quantiles to a
      standard normal (`InputEncoding`); `"asinh"` is the older squash + standardise.
    * `label_input > 0` is the label trick (UniMP, Shi et al. 2021): each step a random
      `label_input` share of the training labels is fed in as node inputs — and propagated —
      while the loss is taken on the others, so no node ever sees its own label; at scoring time
      every visible label is an input.
    * `ensemble > 1` averages the logits of that many independently seeded networks.
    * `batch_size` training targets per step (each on its receptive field), fewer when that
      field would exceed `max_field` nodes (`field_batches`); `bases` caps the
      per-relation weight matrices (R-GCN basis decomposition).
    """

    kind = "gnn"

    def __init__(
        self,
        *,
        hidden: int = 32,
        layers: int = 2,
        dropout: float = 0.2,
        lr: float = 0.005,
        weight_decay: float = 1e-5,
        max_epochs: int = 400,
        patience: int = 20,
        val_fraction: float = 0.15,
        encoding: str = "quantile",
        label_input: float = 0.0,
        ensemble: int = 1,
        bases: int = 2,
        batch_size: int = 512,
        max_field: int = 65_536,
        device: str = "auto",
    ) -> None:
        if encoding not in ENCODINGS:
            raise ConfigError(f"unknown GNN encoding {encoding!r}", hint=f"one of {ENCODINGS}")
        if not 0.0 <= label_input < 1.0:
            raise ConfigError(f"label_input must be in [0, 1), got {label_input}")
        if ensemble < 1:
            raise ConfigError(f"ensemble must be at least 1, got {ensemble}")
        self._params: dict[str, Any] = {
            "hidden": hidden,
            "layers": layers,
            "dropout": dropout,
            "lr": lr,
            "weight_decay": weight_decay,
            "max_epochs": max_epochs,
            "patience": patience,
            "val_fraction": val_fraction,
            "encoding": encoding,
            "label_input": label_input,
            "ensemble": ensemble,
            "bases": bases,
            "batch_size": batch_size,
            "max_field": max_field,
        }
        self.device = resolve_device(device)
        self._nets: list[RelationalSepNet] = []
        self._encoding: InputEncoding | None = None
        self._pos_rate = 0.5
        # Names this fitted state in the shared h_L slot of `GraphInputs`; a new fit or load
        # gets a new one, so a stale h_L can never be read back.
        self._fitted = object()
        self.epochs_run = 0

    def params(self) -> dict[str, object]:
        return dict(self._params)

    @property
    def _label_slots(self) -> int:
        return label_slots(self._params["label_input"])

    # ---- inputs ------------------------------------------------------------------------------
    def _inputs(self, inputs: GraphInputs) -> tuple[Tensor, Tensor | None, Adjacency]:
        blocks, names = inputs.blocks(label_features=True)
        if self._encoding is None:
            kind = self._params["encoding"]
            # The propagated columns are label-free: every fold and candidate of this graph
            # fits them alike, so once per graph (150 columns of 100k rows: seconds a fold).
            prop_fit = inputs.label_free(
                "gnn.prop_fit",
                (kind, names),
                lambda: fit_columns(kind, blocks, split_columns(names)[0]),
            )
            self._encoding = InputEncoding.fit(kind, blocks, names, prop_fit=prop_fit)
        enc = self._encoding
        if len(names) != enc.n_inputs:
            raise ArtifactError(f"GNN expects {enc.n_inputs} inputs, got {len(names)}")
        # The label-free block is the same for every fold, candidate and scoring call on this
        # graph (same columns, same encoding): encode it once — at 1M users, ~13 s a call.
        x_prop = inputs.label_free(
            "gnn.encoded",
            enc.prop_key(),
            lambda: torch.from_numpy(enc.encode_blocks(blocks, enc.prop_cols)),
        ).to(self.device)
        x_label = None
        if len(enc.label_cols):
            # Fitting and scoring the fold's held-out rows read the same labels: encode once.
            x_label = inputs.labelled(
                "gnn.label_encoded",
                self._fitted,
                lambda: torch.from_numpy(enc.encode_blocks(blocks, enc.label_cols)),
            ).to(self.device)
        return x_prop, x_label, inputs.adjacency

    def _build(self, relations: int) -> RelationalSepNet:
        p = self._params
        assert self._encoding is not None
        return RelationalSepNet(
            len(self._encoding.prop_cols) + self._label_slots,
            len(self._encoding.label_cols),
            p["hidden"],
            p["layers"],
            relations,
            p["dropout"],
            p["bases"],
        ).to(self.device)

    # ---- fit / predict -----------------------------------------------------------------------
    def fit(self, data: ModelInput, train_mask: npt.NDArray[np.bool_], seed: int) -> None:
        inputs = GraphInputs.of(data)
        labels = inputs.data.labels
        idx = np.flatnonzero(train_mask)
        y_all = labels[idx]
        n_pos, n_neg = int((y_all == 1).sum()), int((y_all == 0).sum())
        if n_pos < 2 or n_neg < 2:
            raise InputDataError(
                "need at least 2 fraud and 2 legit labels to train", column="label"
            )
        self._encoding, self._fitted = None, object()
        x_prop, x_label, adj = self._inputs(inputs)
        p = self._params
        # At least one validation label of each class: a handful of labels must still split.
        n_val = max(int(np.ceil(p["val_fraction"] * len(idx))), 2)
        fit_idx, val_idx = train_test_split(idx, test_size=n_val, stratify=y_all, random_state=seed)
        # Fixed batches: each batch's receptive field is sliced once and reused every epoch
        # (and by every ensemble member) — slicing, not arithmetic, dominated small graphs.
        layers = p["layers"]
        order = np.random.default_rng(seed).permutation(fit_idx)
        batches = field_batches(adj, order, layers, p["batch_size"], p["max_field"])
        plans = [receptive_plan(adj, b, layers, self.device, grad=True) for b in batches]
        val_plan = receptive_plan(adj, val_idx, layers, self.device)
        schedule = Schedule(
            lr=p["lr"],
            weight_decay=p["weight_decay"],
            max_epochs=p["max_epochs"],
            patience=p["patience"],
            label_input=p["label_input"],
        )
        relations = len(inputs.data.relation_names)
        self._nets, self.epochs_run = [], 0
        for member in range(p["ensemble"]):
            net, epochs = train_network(
                lambda: self._build(relations),
                (x_prop, x_label),
                labels,
                fit_idx,
                plans,
                val_plan,
                schedule,
                seed + 7919 * member,
            )
            self._nets.append(net)
            self.epochs_run += epochs
        self._pos_rate = n_pos / (n_pos + n_neg)

    def predict(
        self, data: ModelInput, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        """P(fraud) per node; with `rows`, only those nodes are scored (the rest are 0).

        Every visible label is a label-trick input; a labelled node's own label is therefore
        an input to its own score here — out-of-fold callers hide it first.
        """
        if not self._nets:
            raise ArtifactError("GNN model used before fit/load")
        inputs = GraphInputs.of(data)
        graph = inputs.data
        x_prop, x_label, adj = self._inputs(inputs)
        layers = self._params["layers"]
        raw = np.zeros(graph.num_nodes, dtype=np.float64)
        with torch.no_grad():
            if not self._label_slots:
                # h_L is label-free: held-out rows (labels hidden) and unlabelled users (labels
                # shown) of one graph share one full-graph pass; only the readout's ego label
                # features differ.
                hidden = inputs.label_free(
                    "gnn.hidden",
                    self._fitted,
                    lambda: [
                        net.embed(x_prop, full_plan(adj, layers, self.device)) for net in self._nets
                    ],
                )
                logits = torch.stack(
                    [
                        net.readout(h, x_label, None)
                        for net, h in zip(self._nets, hidden, strict=True)
                    ]
                ).mean(0)
                raw[:] = logits.double().cpu().numpy()
            else:
                x_in = with_label_inputs(
                    x_prop, graph.labels, np.flatnonzero(graph.labelled), self._label_slots
                )
                if rows is None or rows.sum() * 3 > graph.num_nodes:
                    plan = full_plan(adj, layers, self.device)
                else:
                    plan = receptive_plan(adj, np.flatnonzero(rows), layers, self.device)
                logits = torch.stack([net(x_in, x_label, plan) for net in self._nets]).mean(0)
                where = slice(None) if plan.targets is None else plan.targets.cpu().numpy()
                raw[where] = logits.double().cpu().numpy()
        prob = balanced_to_prior(1.0 / (1.0 + np.exp(-raw)), self._pos_rate)
        if rows is not None:
            prob = np.where(rows, prob, np.float32(0.0)).astype(np.float32)
        return prob

    # ---- one node at a time (the online scorer) -------------------------------------------
    @property
    def networks(self) -> int:
        """How many networks this model averages (its share of a node's stored states)."""
        return len(self._nets)

    @property
    def layers(self) -> int:
        return int(self._params["layers"])

    @property
    def hidden(self) -> int:
        return int(self._params["hidden"])

    def layer_states(
        self, data: ModelInput, out: npt.NDArray[np.floating[Any]] | None = None
    ) -> npt.NDArray[np.floating[Any]]:
        """[n, networks, L, hidden]: every node's h_0 … h_{L-1} per network, as the scoring pass
        computes them (every visible label an input): what a new neighbour's layers read.

        Written into `out` when given (any float dtype: the run's float16 memory map), one
        layer at a time; at 1M users a float32 stack of every state and its copies came to 1 GB
        on top of the score stage's inputs."""
        if not self._nets:
            raise ArtifactError("GNN model used before fit/load")
        inputs = GraphInputs.of(data)
        graph = inputs.data
        shape = (graph.num_nodes, len(self._nets), self.layers, self.hidden)
        if out is None:
            out = np.empty(shape, dtype=np.float32)
        elif out.shape != shape:
            raise ArtifactError(f"GNN states are {shape}, the output is {out.shape}")
        x_prop, _, adj = self._inputs(inputs)
        x_in = with_label_inputs(
            x_prop, graph.labels, np.flatnonzero(graph.labelled), self._label_slots
        )
        plan = full_plan(adj, self.layers, self.device)
        with torch.no_grad():
            for j, net in enumerate(self._nets):
                for layer, h in enumerate(net.layer_states(x_in, plan)):
                    if layer == self.layers:  # h_L: no new node's layer reads it
                        break
                    out[:, j, layer] = h.float().cpu().numpy()
        return out

    def predict_node(
        self,
        row: npt.NDArray[np.float32],
        states: npt.NDArray[np.float32],
        weights: F32Array,
        encoded: dict[str, Tensor] | None = None,
    ) -> tuple[float, npt.NDArray[np.float32]]:
        """P(fraud) of one unlabelled node, and its own [networks, L, hidden] states.

        `row` is the node's input row (`GraphInputs.blocks(label_features=True)` columns,
        `model.ego.ego_row`); `states` [k, networks, L, hidden] and `weights` [k, R] are its k
        neighbours' states and its summed link weight to each per relation. The node's layer l
        reads its neighbours' h_l through the row-normalised per-relation weights, as the
        full-graph pass does; its neighbours keep the states the batch gave them. `encoded`
        keeps the row's propagated columns encoded across the fold members that share an
        encoding of them (`InputEncoding.prop_key`: they all do, it is fitted label-free).
        """
        if not self._nets or self._encoding is None:
            raise ArtifactError("GNN model used before fit/load")
        enc = self._encoding
        if row.shape != (enc.n_inputs,):
            raise ArtifactError(f"GNN expects {enc.n_inputs} inputs, got {row.shape}")
        x = row[None, :].astype(np.float32)
        key = enc.prop_key()
        x_prop = None if encoded is None else encoded.get(key)
        if x_prop is None:
            x_prop = torch.from_numpy(enc.encode(x[:, enc.prop_cols], enc.prop_cols))
            if encoded is not None:
                encoded[key] = x_prop
        if self._label_slots:  # an unlabelled node shows no label
            shown = torch.zeros(1, self._label_slots, dtype=x_prop.dtype)
            x_prop = torch.cat([x_prop, shown], dim=1)
        x_label = None
        if len(enc.label_cols):
            x_label = torch.from_numpy(enc.encode(x[:, enc.label_cols], enc.label_cols))
        w = weights.astype(np.float64)
        totals = w.sum(axis=0)
        share = {
            r: torch.from_numpy((w[:, r] / totals[r]).astype(np.float32))
            for r in range(w.shape[1])
            if totals[r] > 0
        }
        neighbours = torch.from_numpy(np.ascontiguousarray(states, dtype=np.float32))
        logits, own = [], []
        with torch.no_grad():
            x_prop, neighbours = x_prop.to(self.device), neighbours.to(self.device)
            x_label = None if x_label is None else x_label.to(self.device)
            for j, net in enumerate(self._nets):
                h = net.encode_inputs(x_prop)
                mine = [h]
                for layer in range(self.layers):
                    means = [a.to(self.device) @ neighbours[:, j, layer, :] for a in share.values()]
                    side = torch.cat(means)[None, :] if means else None
                    h = net.layer(layer, h, side, list(share))
                    mine.append(h)
                logits.append(net.readout(h, x_label, None))
                own.append(torch.cat(mine[:-1], dim=0))
        raw = float(torch.stack(logits).mean().double().cpu())
        prob = float(balanced_to_prior(np.array([1.0 / (1.0 + np.exp(-raw))]), self._pos_rate)[0])
        return prob, torch.stack(own).float().cpu().numpy()

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """torch state_dicts and tensors only, so `load` can use `weights_only=True`."""
        if not self._nets or self._encoding is None:
            raise ArtifactError("cannot save an unfitted GNN")
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "nets": [{k: v.cpu() for k, v in net.state_dict().items()} for net in self._nets],
                "encoding": self._encoding.to_state(),
                "n_inputs": torch.tensor(self._encoding.n_inputs),
                "pos_rate": torch.tensor(self._pos_rate),
                "relations": torch.tensor(self._nets[0].rel_coef.shape[1]),
            },
            directory / WEIGHTS_FILE,
        )

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], *, device: str = "auto") -> GNNModel:
        """Inverse of `save` (`weights_only=True`: no code runs)."""
        model = cls(device=device, **{k: v for k, v in params.items() if k not in STACK_PARAMS})
        try:
            blob = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            # weights_only refuses anything but tensors and plain containers: no code runs.
            raise ArtifactError(
                f"{directory / WEIGHTS_FILE}: not a readable graphfraud GNN "
                f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                hint="retrain (`graphfraud run`) or roll back to another model version",
            ) from exc
        if not isinstance(blob, dict) or "nets" not in blob:
            raise ArtifactError(
                f"{directory / WEIGHTS_FILE} was saved by an older graphfraud GNN",
                hint="retrain it (`graphfraud run`) or roll back to a model this version can read",
            )
        model._encoding = InputEncoding.from_state(dict(blob["encoding"]), int(blob["n_inputs"]))
        model._pos_rate = float(blob["pos_rate"])
        for state in blob["nets"]:
            net = model._build(int(blob["relations"]))
            net.load_state_dict(state)
            net.eval()
            model._nets.append(net)
        return model
