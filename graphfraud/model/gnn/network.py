"""The relation-aware network: ego / neighbour separation per relation, residual, LayerNorm.

Fraudsters camouflage by linking to honest users, so a node's own representation must not be
blurred into its neighbours' (GraphSAGE with a root weight, R-GCN weights per link kind;
Platonov et al. 2023: ``-sep`` models win on Tolokers). Label features are ego-only: they go
straight to the head and are never propagated, since a neighbour's label rate contains this
node's own label.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphfraud.model.gnn.ops import RelationMeanConv
from graphfraud.model.gnn.plans import Plan


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
        return self.layer_states(x_prop, plan)[-1]

    def layer_states(self, x_prop: Tensor, plan: Plan) -> list[Tensor]:
        """[h_0, …, h_L], h_l over the rows layer l computes (every node for a full plan): a
        new node's layers read its neighbours' h_0 … h_{L-1} (`GNNModel.predict_node`)."""
        if plan.inputs is not None:
            x_prop = x_prop[plan.inputs]
        h: Tensor = self.encode(x_prop)
        states = [h]
        for i, (keep, adjs) in enumerate(plan.layers):
            h_self = h if keep is None else h[keep]
            h = self.layer(i, h_self, [(r, self.conv(h, adj)) for r, adj in adjs])
            states.append(h)
        return states

    def layer(self, i: int, h_self: Tensor, means: list[tuple[int, Tensor]]) -> Tensor:
        """Layer `i` of some nodes from their own h and their neighbours' mean h per relation
        (`(r, P_r h)`, relations without neighbours left out): one definition for the
        full-graph pass and for one new node."""
        z = self.self_lin[i](h_self)
        if means:
            coef = self.rel_coef[i]
            mixed: Tensor | None = None
            for r, mean in means:
                term = mean.unsqueeze(-1) * coef[r]
                mixed = term if mixed is None else mixed + term
            assert mixed is not None
            basis: nn.ModuleList = self.rel_lin[i]  # type: ignore[assignment]
            for b, lin in enumerate(basis):
                z = z + lin(mixed[..., b])
        out: Tensor = h_self + self.dropout(torch.relu(self.norms[i](z)))
        return out

    def readout(self, h: Tensor, x_label: Tensor | None, targets: Tensor | None) -> Tensor:
        """Logits from h_L and the targets' ego label features."""
        if self.label_enc is not None and x_label is not None:
            lab = x_label if targets is None else x_label[targets]
            h = torch.cat([h, torch.relu(self.label_enc(lab))], dim=1)
        out: Tensor = self.head(h).squeeze(-1)
        return out
