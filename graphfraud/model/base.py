"""What every risk model consumes (what they promise is `model/risk.py`).

`GraphData` is the model-side view of a run: dense node features and a typed, weighted edge list,
with the `user_id` order that maps rows back to business ids. Tensor indices never leave model/.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

UNKNOWN_LABEL = -1

# Feature columns whose name starts with this prefix are derived from labels. `build_graph_data`
# drops them: they were computed once from every label, so a held-out user's ring-mates would
# vouch for it in out-of-fold scores. Models compute their label evidence themselves, per fold
# (model/aggregate.py). Callers that still put such columns in `x` get them as ego features only —
# a neighbour's value may contain this node's own label.
LABEL_DERIVED_PREFIX = "lbl_"


@dataclass(frozen=True)
class GraphData:
    """Users as nodes, links as typed weighted edges (both directions present).

    `labels` holds -1 for unknown. Label-derived columns of `x` (if any) were computed without
    each node's own label, so a model may train on `x` and still be scored out-of-fold honestly.
    """

    user_ids: npt.NDArray[np.object_]  # [n] business ids, row i = node i
    x: npt.NDArray[np.float32]  # [n, f]
    feature_names: tuple[str, ...]
    edge_index: npt.NDArray[np.int64]  # [2, E], both directions
    edge_type: npt.NDArray[np.int64]  # [E] index into relation_names
    edge_weight: npt.NDArray[np.float32]  # [E] 0..1
    relation_names: tuple[str, ...]
    labels: npt.NDArray[np.int8]  # [n] 1 fraud, 0 legit, -1 unknown
    # [n] ring index (-1: in no ring), or None: out-of-fold training keeps a ring in one fold,
    # and label aggregates count the labels of a node's ring-mates.
    ring_index: npt.NDArray[np.int64] | None = None

    @property
    def num_nodes(self) -> int:
        return int(self.x.shape[0])

    @property
    def labelled(self) -> npt.NDArray[np.bool_]:
        return np.asarray(self.labels != UNKNOWN_LABEL, dtype=np.bool_)
