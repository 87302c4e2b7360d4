"""`GraphInputs`: one graph's model inputs, with its label-free parts derived once and shared.

Out-of-fold training scores the same graph K times per candidate with different labels visible.
Everything that does not depend on labels (the adjacency, the neighbour aggregates of `x`, the
GNN's encoded columns, a fitted GNN's h_L) is the same for all of them, and at 1M users each
costs seconds. A `GraphInputs` owns those derivations for its graph: computed on first use,
shared by every label copy made with `with_visible_labels`, dropped with the object. Each copy
computes its own label aggregates once (a fold model scores its held-out rows and then the
unlabelled ones with the same labels), and candidates trained on the same folds share the copy.
Nothing is keyed by `id()` and nothing lives at module level, so two graphs can never share an
entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from graphfraud.model.aggregate import (
    F32,
    Adjacency,
    build_adjacency,
    feature_aggregates,
    label_aggregates,
    with_visible_labels,
)
from graphfraud.model.base import GraphData

T = TypeVar("T")

# Rows per chunk when a model scores a whole graph: the stacked inputs of 1M users (~200 float32
# columns) are 800 MB more on the batch's peak, a chunk of them a few MB.
SCORE_CHUNK_ROWS = 65_536


@dataclass
class _LabelFree:
    """What every label copy of one graph shares (mutable: filled on first use)."""

    adjacency: Adjacency | None = None
    aggregates: dict[bool, tuple[F32, tuple[str, ...]]] = field(default_factory=dict)
    # name -> (key, value): one derived value per name, replaced when its key changes
    slots: dict[str, tuple[Hashable, Any]] = field(default_factory=dict)
    # digest of a copy's labels -> that copy's data and memo: every candidate's fold f sees the
    # same labels, so they share one set of label aggregates (at 1M users, about a second each).
    # Not the copy itself: it points back here, a cycle only the cyclic collector frees, which
    # kept 2.3 GB of a 1M-user graph's inputs alive past the model stage.
    copies: dict[bytes, tuple[GraphData, dict[str, tuple[Hashable, Any]]]] = field(
        default_factory=dict
    )


@dataclass(frozen=True)
class GraphInputs:
    """`data` (labels as visible to this use) plus the label-free inputs of its graph."""

    data: GraphData
    _shared: _LabelFree = field(default_factory=_LabelFree, repr=False, compare=False)
    # what this copy derived from its labels (they are fixed: `with_visible_labels` copies)
    _labelled: dict[str, tuple[Hashable, Any]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, data: GraphData | GraphInputs) -> GraphInputs:
        """`data` itself if it already is one, else fresh inputs over `data`'s graph."""
        return data if isinstance(data, GraphInputs) else cls(data)

    def with_visible_labels(self, visible: npt.NDArray[np.bool_]) -> GraphInputs:
        """The same graph with the labels outside `visible` unknown; label-free parts shared,
        and one memo of label inputs per set of visible labels (the candidates' folds reuse it)."""
        data = with_visible_labels(self.data, visible)
        key = hashlib.blake2b(data.labels.tobytes(), digest_size=16).digest()
        data, labelled = self._shared.copies.setdefault(key, (data, {}))
        return GraphInputs(data, self._shared, labelled)

    def forget_label_copies(self) -> None:
        """Drop what every label copy derived (the folds are done; what follows reads all the
        labels): at 1M users about 0.14 GB a copy, on top of the night's score stage."""
        self._shared.copies.clear()

    def forget_all_but_adjacency(self) -> None:
        """Drop every derived input but the adjacency (what the online node state reads): at
        1M users the aggregates and the GNN's encoded inputs are 1.6 GB."""
        self.forget_label_copies()
        self._shared.aggregates.clear()
        self._shared.slots.clear()
        self._labelled.clear()

    @property
    def adjacency(self) -> Adjacency:
        if self._shared.adjacency is None:
            self._shared.adjacency = build_adjacency(self.data)
        return self._shared.adjacency

    def feature_aggregates(self, *, per_relation: bool = False) -> tuple[F32, tuple[str, ...]]:
        """Label-free neighbour aggregates of `x` (see `aggregate.feature_aggregates`)."""
        if per_relation not in self._shared.aggregates:
            self._shared.aggregates[per_relation] = feature_aggregates(
                self.data, self.adjacency, per_relation=per_relation
            )
        return self._shared.aggregates[per_relation]

    def blocks(
        self, *, label_features: bool = True, per_relation: bool = False
    ) -> tuple[list[F32], tuple[str, ...]]:
        """`[x, feature aggregates(, label aggregates)]` unstacked, and their column names.

        Per-relation neighbour means are off by default: on the synthetic 100k population they
        cost 40 % of the GBM's time for no gain in held-out AP.
        """
        agg, agg_names = self.feature_aggregates(per_relation=per_relation)
        blocks = [self.data.x, agg]
        names = self.data.feature_names + agg_names
        if label_features:
            lab, lab_names = self.labelled(
                "labels", None, lambda: label_aggregates(self.data, self.adjacency)
            )
            blocks.append(lab)
            names += lab_names
        return blocks, names

    def matrix(
        self,
        *,
        label_features: bool = True,
        per_relation: bool = False,
        rows: npt.NDArray[np.bool_] | None = None,
    ) -> tuple[F32, tuple[str, ...]]:
        """`blocks` stacked into one matrix; with `rows`, only those rows (fitting on the
        labelled few of 1M users need not copy a 1M x 200 matrix)."""
        blocks, names = self.blocks(label_features=label_features, per_relation=per_relation)
        if rows is not None:
            blocks = [b[rows] for b in blocks]
        return np.hstack(blocks).astype(np.float32, copy=False), names

    def matrix_chunks(
        self,
        *,
        label_features: bool = True,
        per_relation: bool = False,
        rows: npt.NDArray[np.bool_] | None = None,
        chunk: int | None = None,
    ) -> Iterator[F32]:
        """`matrix(...)` (of `rows`, or of every node) `chunk` rows at a time (default
        `SCORE_CHUNK_ROWS`), in order: what scoring a whole graph reads, without a stacked copy
        of every node's inputs."""
        chunk = chunk or SCORE_CHUNK_ROWS
        blocks, _ = self.blocks(label_features=label_features, per_relation=per_relation)
        index = None if rows is None else np.flatnonzero(rows)
        total = self.data.num_nodes if index is None else len(index)
        for lo in range(0, total, chunk):
            at = slice(lo, lo + chunk) if index is None else index[lo : lo + chunk]
            yield np.hstack([b[at] for b in blocks]).astype(np.float32, copy=False)

    def labelled(self, name: str, key: Hashable, build: Callable[[], T]) -> T:
        """A value derived from this copy's labels (and `key`), built once per key, as
        `label_free` is per graph: a fold model reads its copy's label inputs when it fits and
        again when it scores the fold's held-out rows."""
        return _memo(self._labelled, name, key, build)

    def label_free(self, name: str, key: Hashable, build: Callable[[], T]) -> T:
        """A value derived from this graph's label-free inputs only, built once per `key`.

        One value is kept per `name` (the latest key wins), so a model that re-derives with
        another key (a new encoding, another fitted network) replaces its entry rather than
        growing memory. `key` must identify everything the value depends on besides the graph.
        """
        return _memo(self._shared.slots, name, key, build)


def _memo(
    slots: dict[str, tuple[Hashable, Any]], name: str, key: Hashable, build: Callable[[], T]
) -> T:
    """`slots[name]`'s value if it was built for `key`, else `build()` kept in its place.

    A stale value goes before its replacement is built: the next fold's full-graph h_L was
    built while the last fold's was still held (0.13 GB at 1M users, at the night's peak)."""
    if name in slots and slots[name][0] == key:
        value: T = slots[name][1]
        return value
    slots.pop(name, None)
    value = build()
    slots[name] = (key, value)
    return value
