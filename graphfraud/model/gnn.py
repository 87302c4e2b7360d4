"""Relation-aware GNN for heterophilous fraud graphs (PyTorch Geometric, full batch).

Design, and why:
* **Ego / neighbour separation per relation** (GraphSAGE with a root weight, RGCN-style weights per
  link kind): fraudsters camouflage by linking to honest users, so a node's own representation
  must not be blurred into its neighbours' (Platonov et al. 2023: ``-sep`` models win on
  Tolokers). Neighbour means are weighted by link evidence (`edge_weight`).
* **Residual layers with LayerNorm**, many epochs with early stopping on validation AUPRC.
* **Inputs = the GBM's inputs** (x, neighbour means/std, 2-hop means, degrees) standardised after
  an asinh squash, so the GNN starts where the baseline is strong.
* **Label features are ego-only.** Leave-self-out label rates (and `lbl_` columns) go straight to
  the output head and are never propagated: a neighbour's label rate contains this node's own
  label, and passing it back would leak that label into the node's own score.
* Class imbalance: `BCEWithLogits(pos_weight = #neg/#pos)`; scores are mapped back to the base
  rate like the GBM's.
* Deterministic on CPU for a fixed seed (seeded init, dropout, split; sparse CSR products).
  CUDA sparse kernels may differ in the last bits; `benchmarks/gpu_check.py` bounds that.
* Propagation is `torch.sparse` CSR @ dense (via PyG's `spmm`), no pyg-lib / torch-sparse needed,
  and messages are never materialised per edge — 1M nodes / 6M edges fit in a few hundred MB.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from sklearn.metrics import average_precision_score
from sklearn.model_selection import train_test_split
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

from graphfraud.errors import ArtifactError, InputDataError
from graphfraud.model.aggregate import Adjacency, graph_inputs
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

    torch's own CSR backward transposes P on every step, which made an epoch ~5x slower.
    """

    @staticmethod
    def forward(ctx: Any, h: Tensor, adj: Tensor, adj_t: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        out: Tensor = spmm(adj, h, reduce="sum")
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        return spmm(ctx.adj_t, grad, reduce="sum"), None, None


class RelationMeanConv(MessagePassing):  # type: ignore[misc]
    """Evidence-weighted neighbour mean over one relation: `P_r @ h` as one sparse product."""

    def __init__(self) -> None:
        super().__init__(aggr="sum")

    def forward(self, x: Tensor, adj: tuple[Tensor, Tensor]) -> Tensor:
        out: Tensor = _SparseMean.apply(x, adj[0], adj[1])  # type: ignore[no-untyped-call]
        return out


class RelationalSepNet(nn.Module):
    """h ← h + Dropout(ReLU(LN(W_self h + Σ_r W_r · mean_r(h)))); head sees [h_L, label feats]."""

    def __init__(
        self, in_prop: int, in_label: int, hidden: int, layers: int, relations: int, dropout: float
    ) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Linear(in_prop, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.conv = RelationMeanConv()
        self.self_lin = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.rel_lin = nn.ModuleList(
            nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(relations))
            for _ in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.label_enc = nn.Linear(in_label, hidden) if in_label else None
        self.head = nn.Sequential(
            nn.Linear(hidden * (2 if in_label else 1), hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(
        self, x_prop: Tensor, x_label: Tensor | None, adjs: list[tuple[int, Adj]]
    ) -> Tensor:
        h = self.encode(x_prop)
        for i, self_lin in enumerate(self.self_lin):
            z = self_lin(h)
            rel_lin = self.rel_lin[i]
            for r, adj in adjs:
                z = z + rel_lin[r](self.conv(h, adj))  # type: ignore[index]
            h = h + self.dropout(torch.relu(self.norms[i](z)))
        if self.label_enc is not None and x_label is not None:
            h = torch.cat([h, torch.relu(self.label_enc(x_label))], dim=1)
        out: Tensor = self.head(h).squeeze(-1)
        return out


def _csr(a: Any, device: torch.device) -> Tensor:
    a = a.tocsr()
    a.sort_indices()
    return torch.sparse_csr_tensor(
        torch.from_numpy(a.indptr.astype(np.int64)),
        torch.from_numpy(a.indices.astype(np.int64)),
        torch.from_numpy(a.data.astype(np.float32)),
        size=a.shape,
        device=device,
        check_invariants=False,
    )


Adj = tuple[Tensor, Tensor]  # P and Pᵀ as CSR


def _relation_adjs(adj: Adjacency, device: torch.device) -> list[tuple[int, Adj]]:
    """Row-normalised sparse adjacency (and its transpose) per relation that has edges."""
    return [
        (r, (_csr(a, device), _csr(a.T, device))) for r, a in enumerate(adj.per_relation) if a.nnz
    ]


class GNNModel:
    """Fit/predict wrapper: inputs, standardisation, early stopping, optional GBM blend.

    `stack=True` also fits the GBM baseline on the same labels and averages the two models'
    logits (kind `gnn_stack`): the GBM is strong on tabular aggregates, the GNN on learned
    multi-hop structure, and their errors differ.
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
        gbm: dict[str, Any] | None = None,
        device: str = "auto",
    ) -> None:
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
            "gbm": dict(gbm or {}),
        }
        self.kind = "gnn_stack" if stack else "gnn"
        self.device = resolve_device(device)
        self.input_names: tuple[str, ...] = ()
        self._net: RelationalSepNet | None = None
        self._center: Tensor | None = None
        self._scale: Tensor | None = None
        self._prop_cols: Tensor | None = None
        self._label_cols: Tensor | None = None
        self._pos_rate = 0.5
        self._gbm: GBMModel | None = None
        self.epochs_run = 0

    def params(self) -> dict[str, object]:
        return dict(self._params)

    # ---- inputs ------------------------------------------------------------------------------
    def _inputs(self, data: GraphData) -> tuple[Tensor, Tensor | None, list[tuple[int, Adj]]]:
        x_np, names, adj = graph_inputs(data, label_features=True)
        x = torch.from_numpy(np.arcsinh(x_np)).to(self.device)
        if self._center is None:
            finite = torch.nan_to_num(x, nan=0.0)
            self._center = finite.mean(0)
            self._scale = finite.std(0).clamp_min(1e-6)
            label = [i for i, n in enumerate(names) if _is_label_input(n)]
            prop = [i for i, n in enumerate(names) if not _is_label_input(n)]
            self._prop_cols = torch.tensor(prop, dtype=torch.long)
            self._label_cols = torch.tensor(label, dtype=torch.long)
            self._n_inputs = len(names)
        if x.shape[1] != self._n_inputs:
            raise ArtifactError(f"GNN expects {self._n_inputs} inputs, got {x.shape[1]}")
        assert self._scale is not None
        assert self._prop_cols is not None
        assert self._label_cols is not None
        z = torch.nan_to_num((x - self._center) / self._scale, nan=0.0).clamp(-10, 10)
        x_label = z[:, self._label_cols.to(self.device)] if len(self._label_cols) else None
        return z[:, self._prop_cols.to(self.device)], x_label, _relation_adjs(adj, self.device)

    def _build(self, data: GraphData) -> RelationalSepNet:
        assert self._prop_cols is not None
        assert self._label_cols is not None
        p = self._params
        return RelationalSepNet(
            len(self._prop_cols),
            len(self._label_cols),
            p["hidden"],
            p["layers"],
            len(data.relation_names),
            p["dropout"],
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
        torch.manual_seed(seed)
        p = self._params
        self._center = None
        x_prop, x_label, adjs = self._inputs(data)
        fit_idx, val_idx = train_test_split(
            idx, test_size=p["val_fraction"], stratify=y_all, random_state=seed
        )
        y = torch.from_numpy(data.labels.astype(np.float32)).to(self.device)
        fit_t = torch.from_numpy(fit_idx).to(self.device)
        val_y = data.labels[val_idx]
        net = self._build(data)
        opt = torch.optim.AdamW(net.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
        loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(n_neg / n_pos, device=self.device))
        best, best_state, since = -1.0, copy.deepcopy(net.state_dict()), 0
        epoch = 0
        for epoch in range(p["max_epochs"]):  # noqa: B007 (read after the loop)
            net.train()
            opt.zero_grad()
            logits = net(x_prop, x_label, adjs)
            loss = loss_fn(logits[fit_t], y[fit_t])
            loss.backward()
            opt.step()
            net.eval()
            with torch.no_grad():
                val_logits = net(x_prop, x_label, adjs)[torch.from_numpy(val_idx).to(self.device)]
            score = float(average_precision_score(val_y, val_logits.cpu().numpy()))
            if score > best + 1e-5:
                best, best_state, since = score, copy.deepcopy(net.state_dict()), 0
            else:
                since += 1
                if since >= p["patience"]:
                    break
        self.epochs_run = epoch + 1
        net.load_state_dict(best_state)
        net.eval()
        self._net = net
        self._pos_rate = n_pos / (n_pos + n_neg)
        self.input_names = data.feature_names
        log.debug("gnn: %d epochs, best val AUPRC %.4f", self.epochs_run, best)
        if p["stack"]:
            self._gbm = GBMModel(**p["gbm"])
            self._gbm.fit(data, train_mask, seed)

    def predict(self, data: GraphData) -> npt.NDArray[np.float32]:
        if self._net is None:
            raise ArtifactError("GNN model used before fit/load")
        x_prop, x_label, adjs = self._inputs(data)
        with torch.no_grad():
            logits = self._net(x_prop, x_label, adjs).double().cpu().numpy()
        prob = balanced_to_prior(1.0 / (1.0 + np.exp(-logits)), self._pos_rate)
        if self._gbm is None:
            return prob
        q = np.clip(np.stack([prob, self._gbm.predict(data)]).astype(np.float64), 1e-7, 1 - 1e-7)
        mean_logit = np.log(q / (1 - q)).mean(0)
        out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-mean_logit))).astype(np.float32)
        return out

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """A torch state_dict (+ the GBM's joblib when stacked); loaded with weights_only=True."""
        if self._net is None:
            raise ArtifactError("cannot save an unfitted GNN")
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "net": {k: v.cpu() for k, v in self._net.state_dict().items()},
                "center": self._center.cpu() if self._center is not None else None,
                "scale": self._scale.cpu() if self._scale is not None else None,
                "prop_cols": self._prop_cols,
                "label_cols": self._label_cols,
                "n_inputs": torch.tensor(self._n_inputs),
                "pos_rate": torch.tensor(self._pos_rate),
                "relations": torch.tensor(len(self._net.rel_lin[0])),  # type: ignore[arg-type]
            },
            directory / WEIGHTS_FILE,
        )
        if self._gbm is not None:
            self._gbm.save(directory / GBM_DIR)

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], *, device: str = "auto") -> GNNModel:
        model = cls(device=device, **params)
        blob = torch.load(directory / WEIGHTS_FILE, map_location=model.device, weights_only=True)
        model._center, model._scale = blob["center"], blob["scale"]
        model._prop_cols, model._label_cols = blob["prop_cols"], blob["label_cols"]
        model._n_inputs = int(blob["n_inputs"])
        model._pos_rate = float(blob["pos_rate"])
        net = RelationalSepNet(
            len(model._prop_cols),
            len(model._label_cols),
            params.get("hidden", 64),
            params.get("layers", 2),
            int(blob["relations"]),
            params.get("dropout", 0.2),
        ).to(model.device)
        net.load_state_dict(blob["net"])
        net.eval()
        model._net = net
        if params.get("stack"):
            model._gbm = GBMModel.load(directory / GBM_DIR, params.get("gbm") or {}, ())
        return model
