from __future__ import annotations

import gc
import weakref
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from graphfraud.errors import ArtifactError
from graphfraud.model import aggregate
from graphfraud.model import inputs as inputs_module
from graphfraud.model.aggregate import (
    build_adjacency,
    feature_aggregates,
    label_aggregates,
    stacked_columns,
    with_visible_labels,
)
from graphfraud.model.base import GraphData
from graphfraud.model.dataset import RELATIONS, build_graph_data
from graphfraud.model.inputs import GraphInputs


def _tiny() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    features = pl.DataFrame({"user_id": ["a", "b", "c", "d"], "f": [1.0, 2.0, None, 4.0]})
    links = pl.DataFrame(
        {
            "user_a": ["a", "a", "b", "a"],
            "user_b": ["b", "c", "c", "b"],
            "kind": ["device", "ip", "phone", "device"],
            "weight": [0.9, 0.1, 1.0, 0.5],  # duplicate a-b device keeps the max
        }
    )
    labels = pl.DataFrame({"user_id": ["a", "c"], "label": [1, None]})
    return features, links, labels


def test_build_graph_data_shapes_and_relations() -> None:
    data = build_graph_data(*_tiny())
    assert data.relation_names == RELATIONS
    assert list(data.user_ids) == ["a", "b", "c", "d"]
    assert data.labels.tolist() == [1, -1, -1, -1]
    assert data.edge_index.shape == (2, 6)  # 3 distinct (pair, kind), both directions
    pairs = {
        (int(s), int(t), data.relation_names[r], round(float(w), 3))
        for (s, t), r, w in zip(data.edge_index.T, data.edge_type, data.edge_weight, strict=True)
    }
    assert (0, 1, "device", 0.9) in pairs
    assert (1, 0, "device", 0.9) in pairs
    assert (2, 1, "phone", 1.0) in pairs
    assert np.isnan(data.x[2, 0])


@pytest.mark.parametrize(
    ("links_patch", "message"),
    [
        ({"user_b": ["zz", "c", "c", "b"]}, "missing from the feature frame"),
        ({"kind": ["device", "ip", "telepathy", "device"]}, "unknown link kinds"),
        ({"user_b": ["a", "c", "c", "b"]}, "linked to itself"),
    ],
)
def test_bad_links_are_clear_errors(links_patch: dict[str, list[str]], message: str) -> None:
    features, links, labels = _tiny()
    with pytest.raises(ArtifactError, match=message):
        build_graph_data(
            features,
            links.with_columns(**{k: pl.Series(v) for k, v in links_patch.items()}),
            labels,
        )


def test_bad_labels_are_clear_errors() -> None:
    features, links, _ = _tiny()
    with pytest.raises(ArtifactError, match="values other than"):
        build_graph_data(features, links, pl.DataFrame({"user_id": ["a"], "label": [3]}))
    with pytest.raises(ArtifactError, match="missing from the feature frame"):
        build_graph_data(features, links, pl.DataFrame({"user_id": ["q"], "label": [1]}))


def test_own_label_never_reaches_own_inputs(planted: tuple[GraphData, np.ndarray]) -> None:
    """Flipping node i's label changes nothing in row i of the model inputs (1- and 2-hop)."""
    data, _ = planted
    x0, names = GraphInputs(data).matrix()
    for node in np.flatnonzero(data.labelled)[:20]:
        labels = data.labels.copy()
        labels[node] = 1 - labels[node]
        x1, _ = GraphInputs(replace(data, labels=labels)).matrix()
        np.testing.assert_array_equal(x0[node], x1[node])
        assert not np.array_equal(x0, x1), "the flip should reach the neighbours' rows"
    assert any(n.startswith("lab:") for n in names)


def test_label_rates_match_a_loop_reference() -> None:
    features, links, _ = _tiny()
    labels = pl.DataFrame({"user_id": ["a", "b", "c"], "label": [1, 0, 1]})
    data = build_graph_data(features, links, labels)
    lab, names = label_aggregates(data, build_adjacency(data))
    rate = lab[:, names.index("lab:fraud_rate")]
    assert rate[1] == pytest.approx(1.0)  # b: neighbours a, c both fraud
    assert rate[0] == pytest.approx(0.5)  # a: b legit, c fraud (a's own label not counted)
    assert np.isnan(rate[3])  # d: isolated, nothing known


def test_ring_label_evidence_counts_ring_mates_only_and_follows_visible_labels() -> None:
    """Ring-mates' labels reach a node only through fold-aware aggregates, never `lbl_` columns."""
    features, links, _ = _tiny()
    features = features.with_columns(lbl_ring_fraud=pl.Series([9.0, 9.0, 9.0, 9.0]))
    labels = pl.DataFrame({"user_id": ["a", "b", "c", "d"], "label": [1, 1, 0, None]})
    members = pl.DataFrame({"user_id": ["a", "b", "c"], "ring_id": ["R2", "R2", "R1"]})
    data = build_graph_data(features, links, labels, members)
    assert "lbl_ring_fraud" not in data.feature_names  # computed once from every label: dropped
    assert data.ring_index is not None
    assert data.ring_index.tolist() == [1, 1, 0, -1]
    lab, names = label_aggregates(data, build_adjacency(data))
    fraud = np.expm1(lab[:, names.index("lab:ring_log_fraud")])
    known = np.expm1(lab[:, names.index("lab:ring_log_known")])
    np.testing.assert_allclose(fraud, [1, 1, 0, 0], atol=1e-6)  # the other member, never self
    np.testing.assert_allclose(known, [1, 1, 0, 0], atol=1e-6)
    assert np.isnan(lab[2, names.index("lab:ring_fraud_rate")])  # c is alone in its ring
    hidden = with_visible_labels(data, np.array([True, False, True, True]))
    lab_h, _ = label_aggregates(hidden, build_adjacency(hidden))
    assert lab_h[0, names.index("lab:ring_log_fraud")] == 0.0  # b's hidden label is gone


def test_ring_members_naming_one_user_twice_is_a_clear_error() -> None:
    features, links, labels = _tiny()
    members = pl.DataFrame({"user_id": ["a", "a"], "ring_id": ["R1", "R2"]})
    with pytest.raises(ArtifactError, match="more than one ring"):
        build_graph_data(features, links, labels, members)


def test_row_and_column_slices_of_the_inputs_match_the_full_stack(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, _ = planted
    inputs = GraphInputs(data)
    full, names = inputs.matrix()
    rows = data.labelled
    np.testing.assert_array_equal(inputs.matrix(rows=rows)[0], full[rows])
    blocks, block_names = inputs.blocks()
    assert block_names == names
    cols = np.array([len(names) - 1, 0, 5, len(names) // 2], dtype=np.int64)  # any order
    np.testing.assert_array_equal(stacked_columns(blocks, cols), full[:, cols])


def test_inputs_in_row_chunks_stack_to_the_full_matrix(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, _ = planted
    inputs = GraphInputs(data)
    full, _ = inputs.matrix()
    chunks = list(inputs.matrix_chunks(chunk=7))
    assert len(chunks) == -(-data.num_nodes // 7)
    np.testing.assert_array_equal(np.vstack(chunks), full)
    rows = data.labelled
    np.testing.assert_array_equal(
        np.vstack(list(inputs.matrix_chunks(rows=rows, chunk=7))), full[rows]
    )
    assert list(inputs.matrix_chunks(rows=np.zeros(data.num_nodes, dtype=bool))) == []


@pytest.mark.parametrize("per_relation", [False, True])
def test_feature_aggregates_a_few_columns_at_a_time_equal_one_product(
    planted: tuple[GraphData, np.ndarray], monkeypatch: pytest.MonkeyPatch, per_relation: bool
) -> None:
    data, _ = planted
    x = data.x.copy()
    x[::3, 1] = np.nan  # filled per column: a chunk must fill with its own columns' means
    data = replace(data, x=x)
    adj = build_adjacency(data)
    monkeypatch.setattr(aggregate, "AGGREGATE_COLUMNS", 10_000)
    whole, names = feature_aggregates(data, adj, per_relation=per_relation)
    monkeypatch.setattr(aggregate, "AGGREGATE_COLUMNS", 3)
    chunked, chunked_names = feature_aggregates(data, adj, per_relation=per_relation)
    assert chunked_names == names
    assert len(names) == whole.shape[1]
    np.testing.assert_array_equal(chunked, whole)
    means = 3 * len(aggregate.aggregable_columns(data.feature_names))
    assert not np.isnan(whole[:, :means]).any()


def test_label_copies_share_the_label_free_inputs_and_keep_their_own_labels(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, _ = planted
    inputs = GraphInputs(data)
    visible = data.labelled & (np.arange(data.num_nodes) % 2 == 0)
    copy = inputs.with_visible_labels(visible)
    assert copy.adjacency is inputs.adjacency
    assert copy.feature_aggregates()[0] is inputs.feature_aggregates()[0]
    fresh, _ = GraphInputs(with_visible_labels(data, visible)).matrix()
    np.testing.assert_array_equal(copy.matrix()[0], fresh)
    assert not np.array_equal(copy.matrix()[0], inputs.matrix()[0])  # the labels do differ


def test_folds_of_every_candidate_share_one_copy_per_set_of_visible_labels(
    planted: tuple[GraphData, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same visible labels give the same copy, so its label aggregates are computed once
    for all candidates; other labels give another copy."""
    data, _ = planted
    calls: list[int] = []
    real = inputs_module.label_aggregates
    monkeypatch.setattr(
        inputs_module, "label_aggregates", lambda d, a: calls.append(1) or real(d, a)
    )
    inputs = GraphInputs(data)
    visible = data.labelled & (np.arange(data.num_nodes) % 3 != 0)
    first, again = inputs.with_visible_labels(visible), inputs.with_visible_labels(visible.copy())
    assert first.data is again.data
    first.matrix(), again.matrix()
    assert len(calls) == 1
    other = inputs.with_visible_labels(data.labelled & ~visible)
    assert other.data is not first.data
    other.matrix()
    assert len(calls) == 2
    inputs.forget_label_copies()  # the folds are done: their label inputs go
    inputs.with_visible_labels(visible).matrix()
    assert len(calls) == 3
    adjacency, aggregates = inputs.adjacency, inputs.feature_aggregates()[0]
    inputs.matrix()
    inputs.forget_all_but_adjacency()  # the online node state reads the adjacency only
    assert inputs.adjacency is adjacency
    assert inputs.feature_aggregates()[0] is not aggregates
    inputs.matrix()
    assert len(calls) == 5


def test_a_graphs_inputs_are_freed_without_the_cyclic_collector(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    """The model stage drops its `GraphInputs` when it returns; a reference cycle through the
    label copies would keep every derived input (GBs at 1M users) until a gen-2 collection."""
    data, _ = planted
    gc.disable()
    try:
        inputs = GraphInputs(data)
        copy = inputs.with_visible_labels(data.labelled & (np.arange(data.num_nodes) % 2 == 0))
        copy.matrix(), inputs.matrix()
        derived = weakref.ref(inputs._shared)
        del inputs, copy
        assert derived() is None
    finally:
        gc.enable()


def test_a_stale_derived_input_is_released_before_its_replacement_is_built(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    """One value per name, and never two at once: a fold's full-graph pass replaces the last
    fold's only after that one is gone (at 1M users both at once were the night's peak)."""
    data, _ = planted
    inputs = GraphInputs(data)
    first = inputs.label_free("h", "fold 1", lambda: np.ones(4))
    assert inputs.label_free("h", "fold 1", lambda: np.zeros(4)) is first  # a hit: kept
    stale = weakref.ref(first)
    del first
    seen: list[bool] = []

    def build() -> np.ndarray:
        seen.append(stale() is None)
        return np.zeros(4)

    second = inputs.label_free("h", "fold 2", build)
    assert seen == [True]
    assert inputs.label_free("h", "fold 2", build) is second
    assert len(seen) == 1
