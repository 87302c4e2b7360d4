"""Relation-aware GNN for heterophilous fraud graphs (PyTorch Geometric, exact mini-batches).

Design, and why:
* **Ego / neighbour separation per relation** (GraphSAGE with a root weight, R-GCN weights per
  link kind, basis-decomposed past `bases` relations): fraudsters camouflage by linking to honest
  users, so a node's own representation must not be blurred into its neighbours' (Platonov et
  al. 2023: ``-sep`` models win on Tolokers). Neighbour means are weighted by link evidence.
* **Residual layers with LayerNorm**, early stopping on validation AUPRC.
* **Inputs = the GBM's inputs** (x, neighbour means/std, 2-hop means, degrees), quantile-mapped to
  a standard normal, so the GNN starts where the baseline is strong.
* **Label features are ego-only.** Leave-self-out label rates (and `lbl_` columns) go straight to
  the output head and are never propagated: a neighbour's label rate contains this node's own
  label, and passing it back would leak that label into the node's own score. Labels that are
  propagated (the optional label trick) are never the target's own.
* **Cost follows the labels, not the graph**: a training batch is computed exactly on its L-hop
  receptive field (`receptive_plan`); only scoring everyone is a full-graph pass.
* Class imbalance: `BCEWithLogits(pos_weight = #neg/#pos)`; scores are mapped back to the base
  rate like the GBM's.
* Deterministic on CPU for a fixed seed (seeded init, dropout, split; sparse CSR products).
  CUDA sparse kernels may differ in the last bits; `benchmarks/gpu_check.py` bounds that.
* Propagation is `torch.sparse` CSR @ dense (via PyG's `spmm`), no pyg-lib / torch-sparse needed,
  and messages are never materialised per edge.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import torch
from scipy.special import ndtri
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

from graphfraud.errors import ArtifactError, ConfigError, InputDataError
from graphfraud.model.aggregate import (
    Adjacency,
    graph_arrays,
    graph_key,
    input_blocks,
    stacked_columns,
)
from graphfraud.model.base import LABEL_DERIVED_PREFIX, GraphData
from graphfraud.model.device import resolve_device
from graphfraud.model.gbm import GBMModel, balanced_to_prior

log = logging.getLogger(__name__)

WEIGHTS_FILE = "gnn.pt"
GBM_DIR = "gbm"


def _is_label_input(name: str) -> bool:
    return name.startswith("lab:") or name.startswith(LABEL_DERIVED_PREFIX)


class _SparseMean(torch.autograd.Function):
    """`P @ h` with the gradient `Pᵀ @ g` from a precomputed CSR transpose.

    torch's own CSR backward transposes P on every step, which made an epoch ~5x slower. Plans
    that are only evaluated (validation, scoring) carry no transpose.
    """

    @staticmethod
    def forward(ctx: Any, h: Tensor, adj: Tensor, adj_t: Tensor | None) -> Tensor:
        ctx.adj_t = adj_t
        out: Tensor = spmm(adj, h, reduce="sum")
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        if ctx.adj_t is None:
            raise ArtifactError("this plan was built without gradients (grad=False)")
        return spmm(ctx.adj_t, grad, reduce="sum"), None, None


class RelationMeanConv(MessagePassing):  # type: ignore[misc]
    """Evidence-weighted neighbour mean over one relation: `P_r @ h` as one sparse product."""

    def __init__(self) -> None:
        super().__init__(aggr="sum")

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        out: Tensor = _SparseMean.apply(x, adj[0], adj[1])  # type: ignore[no-untyped-call]
        return out


class RelationalSepNet(nn.Module):
    """h ← h + Dropout(ReLU(LN(W_self h + Σ_r W_r · mean_r(h)))); head sees [h_L, label feats].

    `W_r = Σ_b a_rb V_b` (R-GCN basis decomposition, Schlichtkrull et al. 2018) when there are
    more relations than `bases`: the dense products, which dominate the cost at 1M users, drop
    from R+1 to bases+1 per layer while every relation keeps its own learned mix.
    """

    def __init__(
        self,
        in_prop: int,
        in_label: int,
        hidden: int,
        layers: int,
        relations: int,
        dropout: float,
        bases: int = 2,
    ) -> None:
        super().__init__()
        n_basis = min(relations, bases)
        self.encode = nn.Sequential(nn.Linear(in_prop, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.conv = RelationMeanConv()
        self.self_lin = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.rel_lin = nn.ModuleList(
            nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(n_basis))
            for _ in range(layers)
        )
        if relations <= bases:  # one basis per relation: plain per-relation weights
            coef = torch.eye(relations).repeat(layers, 1, 1)
        else:
            coef = torch.randn(layers, relations, n_basis) / n_basis**0.5
        self.rel_coef = nn.Parameter(coef)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.label_enc = nn.Linear(in_label, hidden) if in_label else None
        self.head = nn.Sequential(
            nn.Linear(hidden * (2 if in_label else 1), hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x_prop: Tensor, x_label: Tensor | None, plan: Plan) -> Tensor:
        """Logits for `plan.targets` (every node for a full plan)."""
        return self.readout(self.embed(x_prop, plan), x_label, plan.targets)

    def embed(self, x_prop: Tensor, plan: Plan) -> Tensor:
        """h_L for `plan.targets`: everything that depends on the graph, nothing on labels."""
        if plan.inputs is not None:
            x_prop = x_prop[plan.inputs]
        h: Tensor = self.encode(x_prop)
        for i, (keep, adjs) in enumerate(plan.layers):
            h_self = h if keep is None else h[keep]
            z = self.self_lin[i](h_self)
            if adjs:
                coef = self.rel_coef[i]
                mixed: Tensor | None = None
                for r, adj in adjs:
                    term = self.conv(h, adj).unsqueeze(-1) * coef[r]
                    mixed = term if mixed is None else mixed + term
                assert mixed is not None
                basis: nn.ModuleList = self.rel_lin[i]  # type: ignore[assignment]
                for b, lin in enumerate(basis):
                    z = z + lin(mixed[..., b])
            h = h_self + self.dropout(torch.relu(self.norms[i](z)))
        return h

    def readout(self, h: Tensor, x_label: Tensor | None, targets: Tensor | None) -> Tensor:
        """Logits from h_L and the targets' ego label features."""
        if self.label_enc is not None and x_label is not None:
            lab = x_label if targets is None else x_label[targets]
            h = torch.cat([h, torch.relu(self.label_enc(lab))], dim=1)
        out: Tensor = self.head(h).squeeze(-1)
        return out


def _csr(a: Any, device: torch.device) -> Tensor:
    a = sp.csr_matrix(a)
    a.sort_indices()
    with warnings.catch_warnings():
        # torch labels CSR "beta" and warns on every run; the products used here are tested
        # against the full-graph pass, so the warning would only alarm operators.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(a.data.astype(np.float32)),
            size=a.shape,
            device=device,
            check_invariants=False,
        )


Adj = tuple[Tensor, Tensor | None]  # P and (for training) Pᵀ as CSR


def _adj(a: Any, device: torch.device, grad: bool) -> Adj:
    return _csr(a, device), _csr(a.T, device) if grad else None


@dataclass(frozen=True)
class Plan:
    """Which rows each layer computes: the whole graph, or only a batch's receptive field.

    Layer l computes rows `S_l` from rows `S_{l-1} ⊇ S_l ∪ N(S_l)`, with the full graph's
    row-normalised adjacency sliced to `S_l × S_{l-1}`, so a batch's logits are exactly what the
    full-graph pass gives them, at the cost of its L-hop neighbourhood only.
    """

    inputs: Tensor | None  # node ids of S_0 (None: all nodes)
    layers: list[tuple[Tensor | None, list[tuple[int, Adj]]]]  # (S_l's positions in S_{l-1}, P_r)
    targets: Tensor | None  # node ids of S_L, sorted (None: all nodes)


def full_plan(adj: Adjacency, layers: int, device: torch.device, *, grad: bool = False) -> Plan:
    """Every layer over every node (scoring)."""
    adjs = [(r, _adj(a, device, grad)) for r, a in enumerate(adj.per_relation) if a.nnz]
    return Plan(None, [(None, adjs)] * layers, None)


def receptive_plan(
    adj: Adjacency,
    targets: npt.NDArray[np.int64],
    layers: int,
    device: torch.device,
    *,
    grad: bool = False,
) -> Plan:
    """The exact computation for `targets` only (training batches with `grad`, validation)."""
    sets = receptive_sets(adj, targets, layers)
    specs: list[tuple[Tensor | None, list[tuple[int, Adj]]]] = []
    for rows, cols in zip(sets[1:], sets[:-1], strict=True):
        keep = torch.from_numpy(np.searchsorted(cols, rows)).to(device)
        rel = []
        for r, a in enumerate(adj.per_relation):
            if a.nnz:
                rel.append((r, _adj(a[rows][:, cols], device, grad)))
        specs.append((keep, rel))
    return Plan(torch.from_numpy(sets[0]).to(device), specs, torch.from_numpy(sets[-1]).to(device))


def receptive_sets(
    adj: Adjacency, targets: npt.NDArray[np.int64], layers: int
) -> list[npt.NDArray[np.int64]]:
    """[S_0, …, S_L]: the sorted node sets each layer reads, S_L = targets."""
    sets = [np.unique(targets)]
    for _ in range(layers):
        rows = sets[-1]
        sets.append(np.union1d(rows, adj.weighted[rows].indices))
    sets.reverse()  # S_0 ⊇ S_1 ⊇ … ⊇ S_L = targets
    return sets


def field_batches(
    adj: Adjacency,
    order: npt.NDArray[np.int64],
    layers: int,
    batch_size: int,
    max_field: int,
) -> list[npt.NDArray[np.int64]]:
    """`order` in equal batches of at most `batch_size` targets, shrunk until a batch's L-hop
    receptive field holds at most `max_field` nodes.

    On a large graph the 2-hop field of a few thousand users is the whole graph, so a step
    would cost a full-graph pass; bounding the field makes a step's cost independent of the
    graph's size. Graphs whose fields already fit keep `batch_size` batches.
    """
    n_batches = max(1, -(-len(order) // batch_size))
    for _ in range(8):  # the field grows sub-linearly in the batch, so a few rounds suffice
        batches = np.array_split(order, n_batches)
        size = len(receptive_sets(adj, batches[0], layers)[0])
        if size <= max_field or n_batches >= len(order):
            break
        n_batches = min(len(order), int(np.ceil(n_batches * size / max_field * 1.1)))
    return batches


class GNNModel:
    """Fit/predict wrapper: input encoding, early stopping, seed ensemble, optional GBM blend.

    * `encoding="quantile"` maps every input column through its empirical quantiles to a
      standard normal (fitted on all nodes, a fixed 262k sample past that): heavy-tailed counts
      and rates become well-scaled MLP inputs, which is what lets a network compete with trees
      on tabular inputs.
      `"asinh"` is the older squash + standardise.
    * `label_input > 0` is the label trick (UniMP, Shi et al. 2021): each step a random
      `label_input` share of the training labels is fed in as node inputs — and propagated —
      while the loss is taken on the others, so no node ever sees its own label; at scoring time
      every visible label is an input.
    * `ensemble > 1` averages the logits of that many independently seeded networks.
    * `batch_size` training targets per step (each on its receptive field), fewer when that
      field would exceed `max_field` nodes (`field_batches`); `bases` caps the
      per-relation weight matrices (R-GCN basis decomposition).
    * `stack=True` also fits the GBM baseline on the same labels and blends the two models'
      logits, `stack_weight` on the GNN (kind `gnn_stack`): their errors differ.
    """

    def __init__(
        self,
        *,
        hidden: int = 64,
        layers: int = 2,
        dropout: float = 0.2,
        lr: float = 0.005,
        weight_decay: float = 1e-5,
        max_epochs: int = 400,
        patience: int = 60,
        val_fraction: float = 0.15,
        stack: bool = False,
        stack_weight: float = 0.5,
        gbm: dict[str, Any] | None = None,
        encoding: str = "quantile",
        label_input: float = 0.0,
        ensemble: int = 1,
        bases: int = 2,
        batch_size: int = 8192,
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
            "stack": stack,
            "stack_weight": stack_weight,
            "gbm": dict(gbm or {}),
            "encoding": encoding,
            "label_input": label_input,
            "ensemble": ensemble,
            "bases": bases,
            "batch_size": batch_size,
            "max_field": max_field,
        }
        self.kind = "gnn_stack" if stack else "gnn"
        self.device = resolve_device(device)
        self.input_names: tuple[str, ...] = ()
        self._nets: list[RelationalSepNet] = []
        self._enc: dict[str, Tensor] = {}
        self._n_inputs = 0
        self._pos_rate = 0.5
        self._gbm: GBMModel | None = None
        self._hidden: tuple[tuple[int, ...], tuple[object, ...], list[Tensor]] | None = None
        self.epochs_run = 0

    def params(self) -> dict[str, object]:
        return dict(self._params)

    @property
    def _label_slots(self) -> int:
        """Extra propagated input columns for the label trick: [known fraud, known legit]."""
        return 2 if self._params["label_input"] > 0 else 0

    # ---- inputs ------------------------------------------------------------------------------
    def _fit_encoding(self, blocks: list[npt.NDArray[np.float32]], names: tuple[str, ...]) -> None:
        label = [i for i, n in enumerate(names) if _is_label_input(n)]
        prop = [i for i, n in enumerate(names) if not _is_label_input(n)]
        enc = {
            "prop_cols": torch.tensor(prop, dtype=torch.long),
            "label_cols": torch.tensor(label, dtype=torch.long),
        }
        rows = reference_rows(blocks[0].shape[0])
        x = np.hstack([b[rows] for b in blocks]).astype(np.float32, copy=False)
        if self._params["encoding"] == "quantile":
            enc["qref"] = torch.from_numpy(quantile_reference(x))
        else:
            squashed = np.nan_to_num(np.arcsinh(x), nan=0.0)
            enc["center"] = torch.from_numpy(squashed.mean(0))
            enc["scale"] = torch.from_numpy(squashed.std(0)).clamp_min(1e-6)
        self._enc = enc
        self._n_inputs = len(names)

    def _inputs(self, data: GraphData) -> tuple[Tensor, Tensor | None, Adjacency]:
        blocks, names, adj = input_blocks(data, label_features=True)
        if not self._enc:
            self._fit_encoding(blocks, names)
        if len(names) != self._n_inputs:
            raise ArtifactError(f"GNN expects {self._n_inputs} inputs, got {len(names)}")
        prop = self._enc["prop_cols"].numpy()
        label = self._enc["label_cols"].numpy()
        # The label-free block is the same for every fold, candidate and scoring call on this
        # graph (same columns, same encoding): encode it once — at 1M users that is ~20 s a call.
        key = (*graph_key(data), self._encoding_digest(prop))
        hit = next((c for c in _ENCODED if c[0] == key), None)
        if hit is None:
            z = self._encode(stacked_columns(blocks, prop), prop)
            hit = (key, graph_arrays(data), torch.from_numpy(z))
            _ENCODED[:] = [hit]
        x_prop = hit[2].to(self.device)
        x_label = None
        if len(label):
            z = self._encode(stacked_columns(blocks, label), label)
            x_label = torch.from_numpy(z).to(self.device)
        return x_prop, x_label, adj

    def _encode(self, x: npt.NDArray[np.float32], cols: npt.NDArray[np.int64]) -> Any:
        """Input columns `cols` (their values `x`) through the fitted encoding, NaN → 0, clipped."""
        if "qref" in self._enc:
            z = quantile_normal(x, self._enc["qref"].numpy()[:, cols])
        else:
            center, scale = self._enc["center"].numpy()[cols], self._enc["scale"].numpy()[cols]
            z = (np.arcsinh(x) - center) / scale
        return np.ascontiguousarray(np.nan_to_num(z, nan=0.0).clip(-10, 10), dtype=np.float32)

    def _encoding_digest(self, cols: npt.NDArray[np.int64]) -> str:
        """Identifies the encoding of `cols`: equal digests encode equal inputs identically."""
        h = hashlib.blake2b(self._params["encoding"].encode(), digest_size=16)
        h.update(cols.tobytes())
        for name in ("qref", "center", "scale"):
            if name in self._enc:
                h.update(np.ascontiguousarray(self._enc[name].numpy()).tobytes())
        return h.hexdigest()

    def _with_labels(self, x_prop: Tensor, labels: npt.NDArray[np.int8], rows: Any) -> Tensor:
        """`x_prop` plus the label-trick columns, showing the labels of `rows` only."""
        if not self._label_slots:
            return x_prop
        slots = np.zeros((len(labels), 2), dtype=np.float32)
        slots[rows, 0] = labels[rows] == 1
        slots[rows, 1] = labels[rows] == 0
        return torch.cat([x_prop, torch.from_numpy(slots).to(self.device)], dim=1)

    def _build(self, relations: int) -> RelationalSepNet:
        p = self._params
        return RelationalSepNet(
            len(self._enc["prop_cols"]) + self._label_slots,
            len(self._enc["label_cols"]),
            p["hidden"],
            p["layers"],
            relations,
            p["dropout"],
            p["bases"],
        ).to(self.device)

    # ---- fit / predict -----------------------------------------------------------------------
    def fit(self, data: GraphData, train_mask: npt.NDArray[np.bool_], seed: int) -> None:
        idx = np.flatnonzero(train_mask)
        y_all = data.labels[idx]
        n_pos, n_neg = int((y_all == 1).sum()), int((y_all == 0).sum())
        if n_pos < 2 or n_neg < 2:
            raise InputDataError(
                "need at least 2 fraud and 2 legit labels to train", column="label"
            )
        self._enc, self._hidden = {}, None
        x_prop, x_label, adj = self._inputs(data)
        fit_idx, val_idx = train_test_split(
            idx, test_size=self._params["val_fraction"], stratify=y_all, random_state=seed
        )
        # Fixed batches: each batch's receptive field is sliced once and reused every epoch
        # (and by every ensemble member) — slicing, not arithmetic, dominated small graphs.
        layers = self._params["layers"]
        order = np.random.default_rng(seed).permutation(fit_idx)
        batches = field_batches(
            adj, order, layers, self._params["batch_size"], self._params["max_field"]
        )
        plans = [receptive_plan(adj, b, layers, self.device, grad=True) for b in batches]
        val_plan = receptive_plan(adj, val_idx, layers, self.device)
        self._nets, self.epochs_run = [], 0
        for member in range(self._params["ensemble"]):
            net, epochs = self._fit_one(
                data, (x_prop, x_label), fit_idx, plans, val_plan, seed + 7919 * member
            )
            self._nets.append(net)
            self.epochs_run += epochs
        self._pos_rate = n_pos / (n_pos + n_neg)
        self.input_names = data.feature_names
        if self._params["stack"]:
            self._gbm = GBMModel(**self._params["gbm"])
            self._gbm.fit(data, train_mask, seed)

    def _fit_one(
        self,
        data: GraphData,
        inputs: tuple[Tensor, Tensor | None],
        fit_idx: npt.NDArray[np.int64],
        plans: list[Plan],
        val_plan: Plan,
        seed: int,
    ) -> tuple[RelationalSepNet, int]:
        """Train one network with early stopping on validation AUPRC; (best net, epochs run).

        An epoch is one pass over the training labels in batches of `batch_size` targets, each
        computed on its receptive field only. With k batches per epoch, `max_epochs` and
        `patience` are divided by k, so the optimiser-step budget does not grow with the graph.
        """
        x_prop, x_label = inputs
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        p = self._params
        labels = data.labels
        y = torch.from_numpy(labels.astype(np.float32)).to(self.device)
        n_pos = int((labels[fit_idx] == 1).sum())
        pos_weight = torch.tensor((len(fit_idx) - n_pos) / max(n_pos, 1), device=self.device)
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
        net = self._build(len(data.relation_names))
        opt = torch.optim.AdamW(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        max_epochs = max(1, -(-p["max_epochs"] // len(plans)))
        patience = max(2, round(p["patience"] / len(plans)))  # the nearest whole epochs
        # Validation sees every training label as input, never its own (as scoring will).
        x_eval = self._with_labels(x_prop, labels, fit_idx)
        assert val_plan.targets is not None
        val_y = labels[val_plan.targets.cpu().numpy()]
        shown = np.zeros(len(labels), dtype=bool)
        best, best_state, since, epoch = -1.0, copy.deepcopy(net.state_dict()), 0, 0
        for epoch in range(max_epochs):  # noqa: B007 (read after the loop)
            net.train()
            for b in rng.permutation(len(plans)):
                targets = plans[b].targets
                assert targets is not None
                x_in = x_prop
                if self._label_slots:  # show some labels, learn on the others
                    shown[:] = False
                    shown[fit_idx[rng.random(len(fit_idx)) < p["label_input"]]] = True
                    x_in = self._with_labels(x_prop, labels, np.flatnonzero(shown))
                    learn = torch.from_numpy(~shown[targets.cpu().numpy()]).to(self.device)
                else:
                    learn = torch.ones(len(targets), dtype=torch.bool, device=self.device)
                if not bool(learn.any()):
                    continue
                opt.zero_grad()
                logits = net(x_in, x_label, plans[b])
                loss = loss_fn(logits[learn], y[targets][learn])
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                val_logits = net(x_eval, x_label, val_plan)
            score = float(average_precision_score(val_y, val_logits.cpu().numpy()))
            if score > best + 1e-5:
                best, best_state, since = score, copy.deepcopy(net.state_dict()), 0
            else:
                since += 1
                if since >= patience:
                    break
        net.load_state_dict(best_state)
        net.eval()
        log.debug("gnn: %d epochs x %d batches, best AUPRC %.4f", epoch + 1, len(plans), best)
        return net, epoch + 1

    def predict(
        self, data: GraphData, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        """P(fraud) per node; with `rows`, only those nodes are scored (the rest are 0).

        Every visible label is a label-trick input; a labelled node's own label is therefore
        an input to its own score here — out-of-fold callers hide it first.
        """
        if not self._nets:
            raise ArtifactError("GNN model used before fit/load")
        x_prop, x_label, adj = self._inputs(data)
        layers = self._params["layers"]
        raw = np.zeros(data.num_nodes, dtype=np.float64)
        with torch.no_grad():
            if not self._label_slots:  # h_L is label-free: one full pass serves every call
                hidden = self._full_hidden(data, x_prop, adj)
                logits = torch.stack(
                    [
                        net.readout(h, x_label, None)
                        for net, h in zip(self._nets, hidden, strict=True)
                    ]
                ).mean(0)
                raw[:] = logits.double().cpu().numpy()
            else:
                x_in = self._with_labels(x_prop, data.labels, np.flatnonzero(data.labelled))
                if rows is None or rows.sum() * 3 > data.num_nodes:
                    plan = full_plan(adj, layers, self.device)
                else:
                    plan = receptive_plan(adj, np.flatnonzero(rows), layers, self.device)
                logits = torch.stack([net(x_in, x_label, plan) for net in self._nets]).mean(0)
                where = slice(None) if plan.targets is None else plan.targets.cpu().numpy()
                raw[where] = logits.double().cpu().numpy()
        prob = balanced_to_prior(1.0 / (1.0 + np.exp(-raw)), self._pos_rate)
        if self._gbm is not None:
            prob = logit_blend(prob, self._gbm.predict(data, rows), self._params["stack_weight"])
        if rows is not None:
            prob = np.where(rows, prob, np.float32(0.0)).astype(np.float32)
        return prob

    def _full_hidden(self, data: GraphData, x_prop: Tensor, adj: Adjacency) -> list[Tensor]:
        """Each network's h_L for every node of `data`'s graph, kept for the last graph seen.

        Without the label trick nothing propagated depends on labels, so the out-of-fold
        scoring of held-out rows (labels hidden) and of unlabelled users (labels shown) share
        one full-graph pass; only the ego label features of the readout differ.
        """
        key = graph_key(data)
        if self._hidden is None or self._hidden[0] != key:
            plan = full_plan(adj, self._params["layers"], self.device)
            hidden = [net.embed(x_prop, plan) for net in self._nets]
            self._hidden = (key, graph_arrays(data), hidden)
        return self._hidden[2]

    def release_graph(self) -> None:
        """Drop the cached h_L (256 MB per network at 1M users) once a graph is scored."""
        self._hidden = None

    def joined_with(self, gbm: GBMModel, weight: float) -> GNNModel:
        """This fitted GNN blended with a fitted GBM: a `gnn_stack` without refitting either."""
        if not self._nets:
            raise ArtifactError("cannot join an unfitted GNN")
        joined = copy.copy(self)
        joined._params = {
            **self._params,
            "stack": True,
            "stack_weight": weight,
            "gbm": gbm.params(),
        }
        joined.kind = "gnn_stack"
        joined._gbm = gbm
        return joined

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """torch state_dicts (+ the GBM's joblib when stacked); loaded with weights_only=True."""
        if not self._nets:
            raise ArtifactError("cannot save an unfitted GNN")
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "nets": [{k: v.cpu() for k, v in net.state_dict().items()} for net in self._nets],
                "encoding": {k: v.cpu() for k, v in self._enc.items()},
                "n_inputs": torch.tensor(self._n_inputs),
                "pos_rate": torch.tensor(self._pos_rate),
                "relations": torch.tensor(self._nets[0].rel_coef.shape[1]),
            },
            directory / WEIGHTS_FILE,
        )
        if self._gbm is not None:
            self._gbm.save(directory / GBM_DIR)

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], *, device: str = "auto") -> GNNModel:
        model = cls(device=device, **params)
        blob = torch.load(directory / WEIGHTS_FILE, map_location="cpu", weights_only=True)
        if "nets" not in blob:
            raise ArtifactError(
                f"{directory / WEIGHTS_FILE} was saved by an older graphfraud GNN",
                hint="retrain it (`graphfraud run`) or roll back to a model this version can read",
            )
        model._enc = dict(blob["encoding"])
        model._n_inputs = int(blob["n_inputs"])
        model._pos_rate = float(blob["pos_rate"])
        for state in blob["nets"]:
            net = model._build(int(blob["relations"]))
            net.load_state_dict(state)
            net.eval()
            model._nets.append(net)
        if params.get("stack"):
            model._gbm = GBMModel.load(directory / GBM_DIR, params.get("gbm") or {}, ())
        return model


ENCODINGS = ("quantile", "asinh")


def logit_blend(
    p_gnn: npt.NDArray[np.floating[Any]], p_gbm: npt.NDArray[np.floating[Any]], gnn_weight: float
) -> npt.NDArray[np.float32]:
    """`gnn_weight`·logit(p_gnn) + (1-`gnn_weight`)·logit(p_gbm), back to a probability."""
    q = np.clip(np.stack([p_gnn, p_gbm]).astype(np.float64), 1e-7, 1 - 1e-7)
    z = np.log(q / (1 - q))
    mixed = gnn_weight * z[0] + (1.0 - gnn_weight) * z[1]
    out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-mixed))).astype(np.float32)
    return out


QUANTILES = 512
QUANTILE_SAMPLE = 262_144

# (graph key + encoding digest, pinned arrays, encoded label-free inputs) of the last graph seen.
_ENCODED: list[tuple[tuple[object, ...], tuple[object, ...], Tensor]] = []


def reference_rows(n: int, sample: int = QUANTILE_SAMPLE) -> npt.NDArray[np.int64] | slice:
    """The rows an encoding is fitted on: all of them, or a fixed sorted sample past `sample`."""
    if n <= sample:
        return slice(None)
    return np.sort(np.random.default_rng(0).choice(n, sample, replace=False))


def quantile_reference(
    x: npt.NDArray[np.float32], q: int = QUANTILES, sample: int = QUANTILE_SAMPLE
) -> npt.NDArray[np.float64]:
    """[q, d] empirical quantiles of each column (NaN ignored; an all-NaN column stays NaN).

    Past `sample` rows they are taken on a fixed random sample of that many rows: 512 quantiles
    need no more, and sorting every column of 1M rows cost seconds per fold.
    """
    x = x[reference_rows(x.shape[0], sample)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        ref: npt.NDArray[np.float64] = np.nanquantile(
            x.astype(np.float64), np.linspace(0.0, 1.0, q), axis=0
        )
    return ref


def quantile_normal(
    x: npt.NDArray[np.float32], ref: npt.NDArray[np.float64]
) -> npt.NDArray[np.float32]:
    """Each column through its quantiles to N(0, 1); ties land mid-way (as scikit-learn does).

    Quantile levels are clipped to 0.1 % / 99.9 %. A column without ties interpolates straight
    onto the normal scores of the grid (no inverse CDF per value: at 1M users that was most of
    the cost); a column with ties averages its upward and downward levels first. Values outside
    the fitted range clip to the end quantiles; NaN stays NaN.
    """
    u_grid = np.clip(np.linspace(0.0, 1.0, ref.shape[0]), 1e-3, 1 - 1e-3)
    z_grid = ndtri(u_grid)
    out = np.full(x.shape, np.nan, dtype=np.float32)

    def column(c: int) -> None:
        r = ref[:, c]
        if np.isnan(r).any():
            return
        v = x[:, c].astype(np.float64)
        if np.all(np.diff(r) > 0):
            out[:, c] = np.interp(v, r, z_grid)
            return
        up = np.interp(v, r, u_grid)
        down = -np.interp(-v, -r[::-1], -u_grid[::-1])
        out[:, c] = ndtri(0.5 * (up + down))

    # np.interp releases the GIL: columns run on torch's thread budget (2.3x on 2 cores).
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        list(pool.map(column, range(x.shape[1])))
    return out
