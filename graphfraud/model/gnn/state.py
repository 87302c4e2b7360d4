"""What a run's GNN leaves for the online scorer: every node's hidden states h_0 … h_{L-1}.

A new account's GNN score needs its neighbours' states at each layer (`GNNModel.predict_node`);
they depend on the neighbours' whole 2-hop neighbourhoods, so the batch computes them once, with
the pass that scores everyone, and the service memory-maps them (it reads only the rows a request
touches). One row per node holds every fold member's networks and layers, contiguous:
[n, networks, L, hidden] float16 (~0.4 KB a user with 3 folds, 2 layers, 32 units); half
precision moves a score by ~1e-4 (`tests/scoring/test_gnn_online.py` bounds it).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from numpy.lib.format import open_memmap

from graphfraud.errors import ArtifactError
from graphfraud.model.inputs import GraphInputs

if TYPE_CHECKING:  # torch loads only where a GNN runs: a GBM night never imports it
    from graphfraud.model.gnn.model import GNNModel

STATES_FILE = "gnn_states.npy"
STATES_META_FILE = "gnn_states.json"
STATES_FORMAT = 1
STATES_DTYPE = np.float16


@dataclass(frozen=True)
class GnnStates:
    """Every node's stored states, and which model and node order they belong to."""

    version: str  # the model version whose networks computed them
    networks: tuple[int, ...]  # per fold member, how many networks (their slots, in order)
    ids_digest: str  # `model.ego.ids_digest` of the node order
    matrix: npt.NDArray[np.float16]  # [n, Σ networks, L, hidden], may be a read-only memmap

    def of_rows(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        return np.asarray(self.matrix[rows], dtype=np.float32)

    def slots(self) -> list[slice]:
        """Each fold member's networks' slots along axis 1."""
        ends = np.cumsum([0, *self.networks])
        return [slice(int(a), int(b)) for a, b in itertools.pairwise(ends)]


def gnn_members(members: Sequence[object]) -> tuple[GNNModel, ...]:
    """The GNN of each fold member (a `gnn` member, or a `gnn_stack`'s GNN half)."""
    from graphfraud.model.gnn.model import GNNModel

    found = []
    for member in members:
        gnn = member if isinstance(member, GNNModel) else getattr(member, "gnn", None)
        if isinstance(gnn, GNNModel):
            found.append(gnn)
    return tuple(found)


def save_gnn_states(
    gnns: Sequence[GNNModel], inputs: GraphInputs, version: str, digest: str, directory: Path
) -> Path:
    """Compute and write the states of `gnns` over `inputs`' graph, network by network and
    layer by layer, renamed into place when complete."""
    first = gnns[0]
    networks = tuple(g.networks for g in gnns)
    shape = (inputs.data.num_nodes, sum(networks), first.layers, first.hidden)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{STATES_FILE}.tmp"
    out = open_memmap(tmp, mode="w+", dtype=STATES_DTYPE, shape=shape)
    at = 0
    for gnn in gnns:
        gnn.layer_states(inputs, out[:, at : at + gnn.networks])
        at += gnn.networks
    out.flush()
    del out
    os.replace(tmp, directory / STATES_FILE)
    meta = {
        "format": STATES_FORMAT,
        "version": version,
        "networks": list(networks),
        "ids_digest": digest,
        "shape": list(shape),
    }
    tmp_meta = directory / f".{STATES_META_FILE}.tmp"
    tmp_meta.write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp_meta, directory / STATES_META_FILE)
    return directory / STATES_FILE


def remove_gnn_states(directory: Path) -> None:
    """A rerun scored by a model without a GNN must not leave an older model's states."""
    for name in (STATES_META_FILE, STATES_FILE):
        (directory / name).unlink(missing_ok=True)


def load_gnn_states(directory: Path) -> GnnStates:
    """Inverse of `save_gnn_states`, memory-mapped; ArtifactError when missing or unreadable."""
    try:
        raw: dict[str, Any] = json.loads((directory / STATES_META_FILE).read_text("utf-8"))
        if raw.get("format") != STATES_FORMAT:
            raise ValueError(f"format {raw.get('format')!r}, expected {STATES_FORMAT}")
        matrix = np.load(directory / STATES_FILE, mmap_mode="r", allow_pickle=False)
        states = GnnStates(
            version=str(raw["version"]),
            networks=tuple(int(n) for n in raw["networks"]),
            ids_digest=str(raw["ids_digest"]),
            matrix=matrix,
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{directory.name}: GNN states are missing or unreadable ({type(exc).__name__}: {exc})",
            hint="rerun the score stage",
        ) from exc
    if matrix.dtype != STATES_DTYPE or list(matrix.shape) != raw["shape"]:
        raise ArtifactError(
            f"{directory.name}: GNN states are {matrix.dtype} {matrix.shape}, their meta says "
            f"{np.dtype(STATES_DTYPE)} {tuple(raw['shape'])}",
            hint="rerun the score stage",
        )
    return states
