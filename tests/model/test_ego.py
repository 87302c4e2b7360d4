"""`ego_row` over a node's neighbours is that node's batch row (`GraphInputs.matrix`)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from graphfraud.errors import ArtifactError
from graphfraud.model.base import GraphData
from graphfraud.model.dataset import build_graph_data
from graphfraud.model.ego import (
    Ego,
    Neighbourhood,
    check_names,
    ego_row,
    load_state,
    node_state,
    one_hop,
    save_state,
)
from graphfraud.model.inputs import GraphInputs
from tests.model.conftest import planted_frames


def _ringed() -> GraphData:
    features, links, labels, _ = planted_frames(n=300, seed=3)
    ids = features["user_id"].to_list()
    members = pl.DataFrame({"user_id": ids[:60], "ring_id": [f"r{i // 6}" for i in range(60)]})
    return build_graph_data(
        features,
        links,
        labels,
        members,
        relations=("device", "phone_similar", "ip", "email_similar"),
    )


def neighbourhood_in_graph(data: GraphData, node: int, state) -> Neighbourhood:  # type: ignore[no-untyped-def]
    src, dst = data.edge_index
    sel = (src == node) & (dst != node)
    rows = np.unique(dst[sel])
    weights = np.zeros((len(rows), len(data.relation_names)), dtype=np.float64)
    pos = np.searchsorted(rows, dst[sel])
    np.add.at(weights, (pos, data.edge_type[sel]), data.edge_weight[sel].astype(np.float64))
    return Neighbourhood.of_rows(state, rows, weights.astype(np.float32))


def _ego(data: GraphData, node: int, state) -> Ego:  # type: ignore[no-untyped-def]
    known = float(data.labels[node] >= 0)
    fraud = float(data.labels[node] == 1)
    ring_known = ring_fraud = 0.0
    if data.ring_index is not None and data.ring_index[node] >= 0:
        totals_known, totals_fraud = state.ring_totals()
        r = int(data.ring_index[node])
        ring_known, ring_fraud = totals_known[r] - known, totals_fraud[r] - fraud
    return Ego(data.x[node], known, fraud, ring_known, ring_fraud)


@pytest.mark.parametrize("per_relation", [False, True])
def test_ego_row_equals_the_batch_row_for_every_node(per_relation: bool) -> None:
    data = _ringed()
    inputs = GraphInputs.of(data)
    batch, names = inputs.matrix(label_features=True, per_relation=per_relation)
    state = node_state(inputs)
    for node in range(data.num_nodes):
        row, ego_names = ego_row(
            state.meta,
            _ego(data, node, state),
            neighbourhood_in_graph(data, node, state),
            per_relation=per_relation,
        )
        assert ego_names == names
        np.testing.assert_allclose(row, batch[node], rtol=2e-5, atol=2e-6, equal_nan=True)


def test_one_hop_is_what_the_state_holds_for_a_batch_node() -> None:
    data = _ringed()
    state = node_state(GraphInputs.of(data))
    node = 7
    mine = one_hop(state.meta, _ego(data, node, state), neighbourhood_in_graph(data, node, state))
    row = np.array([node])
    np.testing.assert_allclose(mine["m1"], state.m1(row)[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mine["x"], state.x(row)[0], rtol=1e-6)
    for name in ("log_count", "weighted_degree", "w_known", "w_fraud"):
        assert mine[name] == pytest.approx(float(state.scalar(name, row)[0]), rel=1e-5, abs=1e-6)


def test_an_isolated_node_gets_zeros_and_unknown_rates() -> None:
    data = _ringed()
    state = node_state(GraphInputs.of(data))
    empty = Neighbourhood.concat([], state.width, len(data.relation_names))
    row, names = ego_row(state.meta, Ego(data.x[0]), empty)
    by_name = dict(zip(names, row.tolist(), strict=True))
    assert by_name["deg:log_count"] == 0.0
    assert np.isnan(by_name["lab:fraud_rate"])
    assert by_name["nb_mean:f0"] == 0.0


def test_state_round_trips_through_files_memory_mapped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = node_state(GraphInputs.of(_ringed()))
    save_state(state, tmp_path)
    back = load_state(tmp_path)
    assert back.meta == state.meta
    assert isinstance(back.matrix, np.memmap)
    np.testing.assert_array_equal(np.asarray(back.matrix), state.matrix)


def test_a_truncated_state_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    state = node_state(GraphInputs.of(_ringed()))
    save_state(state, tmp_path)
    np.save(tmp_path / "node_state.npy", state.matrix[:-1], allow_pickle=False)
    with pytest.raises(ArtifactError, match="node state"):
        load_state(tmp_path)


def test_check_names_names_the_first_difference() -> None:
    with pytest.raises(ArtifactError, match="column 1"):
        check_names(("a", "b", "c"), ("a", "x", "c"))
    check_names(("a",), ("a",))
