from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from graphfraud.config import ModelSettings
from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.model.aggregate import with_visible_labels
from graphfraud.model.base import GraphData
from graphfraud.model.gbm import GBMModel
from graphfraud.model.gnn import GNNModel, network
from graphfraud.model.gnn import encoding as encoding_module
from graphfraud.model.gnn.encoding import (
    InputEncoding,
    fit_columns,
    quantile_normal,
    quantile_reference,
    split_columns,
)
from graphfraud.model.gnn.plans import field_batches, full_plan, receptive_plan, receptive_sets
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.stack import StackModel, logit_blend
from graphfraud.model.train import (
    out_of_fold,
    stratified_folds,
    train_and_score,
    train_candidates,
)

SMALL = {"hidden": 16, "max_epochs": 80, "patience": 20, "lr": 0.01}


def test_gnn_is_seeded_deterministic_and_learns(planted: tuple[GraphData, np.ndarray]) -> None:
    data, truth = planted
    scores = []
    for _ in range(2):
        model = GNNModel(device="cpu", **SMALL)
        model.fit(data, data.labelled, seed=11)
        scores.append(model.predict(data))
    np.testing.assert_array_equal(scores[0], scores[1])
    unl = ~data.labelled  # never trained on
    assert roc_auc_score(truth[unl], scores[0][unl]) > 0.85


def test_gnn_and_stack_save_load_roundtrip(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    model = GNNModel(device="cpu", **SMALL)
    model.fit(data, data.labelled, seed=3)
    model.save(tmp_path / "gnn")
    loaded = GNNModel.load(tmp_path / "gnn", model.params(), device="cpu")
    np.testing.assert_allclose(loaded.predict(data), model.predict(data), rtol=1e-6)
    stack = StackModel(model, GBMModel(max_iter=40), gnn_weight=0.3)
    stack.gbm.fit(data, data.labelled, seed=3)
    stack.save(tmp_path / "stack")
    back = StackModel.load(tmp_path / "stack", stack.params(), device="cpu")
    assert back.gnn_weight == 0.3
    np.testing.assert_allclose(back.predict(data), stack.predict(data), rtol=1e-6)
    blend = logit_blend(model.predict(data), stack.gbm.predict(data), 0.3)
    np.testing.assert_array_equal(stack.predict(data), blend)


def test_cards_written_when_the_gnn_held_the_stack_still_load(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    """Older cards carry `stack`, `stack_weight` and `gbm` in a plain GNN's params."""
    data, _ = planted
    model = GNNModel(device="cpu", **SMALL)
    model.fit(data, data.labelled, seed=3)
    model.save(tmp_path)
    old_params = {**model.params(), "stack": False, "stack_weight": 0.5, "gbm": {}}
    loaded = GNNModel.load(tmp_path, old_params, device="cpu")
    np.testing.assert_allclose(loaded.predict(data), model.predict(data), rtol=1e-6)


def test_candidates_compete_and_registry_keeps_both(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    # The GNN first: with no GBM trained yet it is never skipped for failing to add to one
    # (`train._must_add_to`, tested on its own), so both candidates always compete here.
    settings = ModelSettings(folds=2, seed=2, candidates=["gnn", "gbm"], device="cpu")
    reg = ModelRegistry(tmp_path)
    params = {"gnn": SMALL, "gbm": {"max_iter": 60}}
    result = train_and_score(data, settings, registry=reg, model_params=params)
    assert {"gbm.auprc", "gnn.auprc", "selected.auprc"} <= set(result.metrics)
    best = max(("gbm", "gnn"), key=lambda k: result.metrics[f"{k}.auprc"])
    assert result.model_kind == best
    assert sorted(c.kind for c in reg.list()) == ["gbm", "gnn"]
    assert result.promotion is not None
    assert result.promotion.promote  # nothing promoted yet
    loaded = reg.load(result.model_version, data=data, device="cpu")
    np.testing.assert_allclose(
        loaded.predict(data)[~data.labelled], result.scores[~data.labelled], rtol=1e-5
    )


@pytest.mark.parametrize("chunk", [network.FULL_PASS_CHUNK, 7])
def test_receptive_plan_gives_the_full_graph_logits(
    planted: tuple[GraphData, np.ndarray], chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch computed on its 2-hop neighbourhood only must equal the whole-graph pass, in
    one chunk of nodes or in many (the last one short)."""
    monkeypatch.setattr(network, "FULL_PASS_CHUNK", chunk)
    data, _ = planted
    model = GNNModel(device="cpu", **SMALL)
    model.fit(data, data.labelled, seed=4)
    x_prop, x_label, adj = model._inputs(GraphInputs(data))
    net = model._nets[0]
    targets = np.sort(np.random.default_rng(0).choice(data.num_nodes, 37, replace=False))
    with torch.no_grad():
        full = net(x_prop, x_label, full_plan(adj, 2, torch.device("cpu")))
        plan = receptive_plan(adj, targets, 2, torch.device("cpu"))
        part = net(x_prop, x_label, plan)
    assert plan.inputs is not None
    assert len(plan.inputs) < data.num_nodes  # really a sub-problem
    np.testing.assert_allclose(part.numpy(), full.numpy()[targets], rtol=1e-5, atol=1e-5)


def test_minibatch_label_trick_ensemble_is_deterministic_and_learns(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    data, truth = planted
    params = {**SMALL, "batch_size": 64, "label_input": 0.5, "ensemble": 2}
    runs = []
    for _ in range(2):
        model = GNNModel(device="cpu", **params)  # type: ignore[arg-type]
        model.fit(data, data.labelled, seed=8)
        runs.append(model.predict(data))
    np.testing.assert_array_equal(runs[0], runs[1])
    unl = ~data.labelled
    assert roc_auc_score(truth[unl], runs[0][unl]) > 0.85
    rows = np.zeros(data.num_nodes, dtype=bool)
    rows[::7] = True
    np.testing.assert_allclose(model.predict(data, rows)[rows], runs[0][rows], rtol=1e-5)
    assert not model.predict(data, rows)[~rows].any()


def test_label_trick_never_scores_a_node_with_its_own_label(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    """Out of fold, flipping a held-out node's label must not move its score (labels are
    inputs with the label trick, so this can fail)."""
    data, _ = planted
    folds = stratified_folds(data.labels, 2, seed=1)
    node = int(np.flatnonzero(data.labelled)[3])
    flipped = data.labels.copy()
    flipped[node] = 1 - flipped[node]
    params = {**SMALL, "label_input": 0.5, "max_epochs": 15}

    def build() -> GNNModel:
        return GNNModel(device="cpu", **params)  # type: ignore[arg-type]

    a, _, _ = out_of_fold(data, build, folds, seed=0)
    b, _, _ = out_of_fold(replace(data, labels=flipped), build, folds, seed=0)
    assert a[node] == b[node]
    assert not np.array_equal(a, b)


def test_gnn_stack_joins_the_gbm_and_gnn_fold_models(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    data, _ = planted
    settings = ModelSettings(folds=2, seed=3, candidates=["gnn_stack"], device="cpu")
    params = {"gnn": SMALL, "gbm": {"max_iter": 40}}
    runs = train_candidates(data, settings, model_params=params).runs
    by_kind = {r.kind: r for r in runs}
    assert list(by_kind) == ["gbm", "gnn", "gnn_stack"]
    weight = float(by_kind["gnn_stack"].model.params()["stack_weight"])
    blend = logit_blend(by_kind["gnn"].scores, by_kind["gbm"].scores, weight)
    held = data.labelled
    np.testing.assert_allclose(by_kind["gnn_stack"].scores[held], blend[held], rtol=1e-5)
    reg = ModelRegistry(tmp_path)
    result = train_and_score(data, settings, registry=reg, model_params=params)
    stack = next(c for c in reg.list() if c.kind == "gnn_stack")
    loaded = reg.load(stack.version, data=data, device="cpu")
    expected = by_kind["gnn_stack"].scores[~held]
    np.testing.assert_allclose(loaded.predict(data)[~held], expected, rtol=1e-5)
    assert result.metrics["gnn_stack.auprc"] == by_kind["gnn_stack"].auprc


def test_quantile_encoding_is_monotone_with_ties_mid_way_and_nan_kept() -> None:
    x = np.array([[0.0], [0.0], [0.0], [1.0], [2.0], [50.0], [np.nan]], dtype=np.float32)
    ref = quantile_reference(x, q=16)
    z = quantile_normal(x, ref)[:, 0]
    assert np.all(np.diff(z[:6]) >= 0)
    assert z[3] < z[4] < z[5]
    assert z[0] == z[1] == z[2]
    assert -1.0 < z[0] < 0.0  # a tied block sits mid-way, not at 0 %
    assert np.isnan(z[6])
    assert quantile_normal(np.array([[1e9]], dtype=np.float32), ref)[0, 0] == z[5]


def test_bad_gnn_params_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="encoding"):
        GNNModel(device="cpu", encoding="zscore")
    with pytest.raises(ConfigError, match="label_input"):
        GNNModel(device="cpu", label_input=1.0)
    with pytest.raises(ConfigError, match="ensemble"):
        GNNModel(device="cpu", ensemble=0)


def test_weights_from_an_older_gnn_are_a_clear_error(tmp_path: Path) -> None:
    torch.save({"net": {}, "center": None}, tmp_path / "gnn.pt")
    with pytest.raises(ArtifactError, match="older graphfraud GNN"):
        GNNModel.load(tmp_path, dict(SMALL), device="cpu")


def test_shared_inputs_score_exactly_as_fresh_ones(planted: tuple[GraphData, np.ndarray]) -> None:
    """Folds share one graph's encoded inputs and h_L; every score must equal the score of the
    same model on fresh, unshared inputs (the reference path), for either encoding."""
    data, _ = planted
    shared = GraphInputs(data)
    scores = {}
    for encoding in ("quantile", "asinh"):  # the second must not reuse the first's encoding
        model = GNNModel(device="cpu", **{**SMALL, "encoding": encoding})
        model.fit(shared, data.labelled, seed=3)
        warm = model.predict(shared)
        shared.label_free("gnn.hidden", model._fitted, lambda: pytest.fail("h_L not shared"))
        np.testing.assert_array_equal(warm, model.predict(data))  # fresh GraphInputs
        reference = GNNModel(device="cpu", **{**SMALL, "encoding": encoding})
        reference.fit(data, data.labelled, seed=3)
        np.testing.assert_array_equal(reference.predict(data), warm)
        scores[encoding] = warm
    assert not np.array_equal(scores["quantile"], scores["asinh"])


def test_out_of_fold_on_shared_inputs_equals_fold_by_fold_on_fresh_data(
    planted: tuple[GraphData, np.ndarray],
) -> None:
    """`out_of_fold` derives label copies of one `GraphInputs`; the plain loop over fresh
    `GraphData` label copies (nothing shared) must give the same scores bit for bit."""
    data, _ = planted
    folds = stratified_folds(data.labels, 2, seed=4)
    labelled = folds >= 0
    builds = {
        "gnn": lambda: GNNModel(device="cpu", **SMALL),
        "gbm": lambda: GBMModel(max_iter=30),
    }
    for kind, build in builds.items():
        oof, ensemble, per_fold = out_of_fold(data, build, folds, seed=9)
        for f in range(2):
            visible = labelled & (folds != f)
            model = build()
            model.fit(with_visible_labels(data, visible), visible, 9 + f)
            held = folds == f
            fresh = model.predict(with_visible_labels(data, visible), held)
            np.testing.assert_array_equal(per_fold[f, held], fresh[held], err_msg=kind)
            np.testing.assert_array_equal(
                per_fold[f, ~labelled], model.predict(data)[~labelled], err_msg=kind
            )
        np.testing.assert_array_equal(oof[held], per_fold[1, held])
        np.testing.assert_allclose(
            ensemble.predict(data)[~labelled], oof[~labelled], rtol=1e-6, err_msg=kind
        )


def test_quantile_reference_on_a_sample_matches_the_full_one() -> None:
    x = np.random.default_rng(1).lognormal(size=(20_000, 2)).astype(np.float32)
    full = quantile_normal(x, quantile_reference(x))
    sampled = quantile_normal(x, quantile_reference(x, sample=5_000))
    assert np.abs(full - sampled).max() < 0.15
    assert np.corrcoef(full[:, 0], sampled[:, 0])[0, 1] > 0.999


def test_quantile_reference_is_numpys_nanquantile() -> None:
    rng = np.random.default_rng(4)
    x = rng.lognormal(size=(3_000, 4)).astype(np.float32)
    x[:, 1] = np.round(x[:, 1])  # ties
    x[rng.random(3_000) < 0.3, 2] = np.nan
    x[:, 3] = np.nan  # all missing: stays NaN
    expected = np.nanquantile(x.astype(np.float64), np.linspace(0.0, 1.0, 64), axis=0)
    np.testing.assert_allclose(quantile_reference(x, q=64), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["quantile", "asinh"])
def test_an_encoding_fitted_with_a_shared_prop_fit_is_the_same(
    planted: tuple[GraphData, np.ndarray], kind: str
) -> None:
    data, _ = planted
    blocks, names = GraphInputs(data).blocks(label_features=True)
    whole = InputEncoding.fit(kind, blocks, names)
    shared = fit_columns(kind, blocks, split_columns(names)[0])
    parts = InputEncoding.fit(kind, blocks, names, prop_fit=shared)
    assert parts.prop_key() == whole.prop_key()
    for part in ("qref", "center", "scale"):
        a, b = getattr(whole, part), getattr(parts, part)
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_gnn_fold_models_fit_the_label_free_encoding_once(
    planted: tuple[GraphData, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    from graphfraud.model.gnn import encoding, model

    data, _ = planted
    calls: list[int] = []
    real = encoding.fit_columns

    def counted(kind: str, blocks: list[np.ndarray], cols: np.ndarray) -> encoding.ColumnFit:
        calls.append(len(cols))
        return real(kind, blocks, cols)

    monkeypatch.setattr(model, "fit_columns", counted)
    folds = stratified_folds(data.labels, 3, seed=0)
    out_of_fold(data, lambda: GNNModel(device="cpu", **{**SMALL, "max_epochs": 4}), folds, seed=0)
    assert len(calls) == 1  # the propagated columns: once for three folds


def test_field_batches_bound_the_receptive_field(planted: tuple[GraphData, np.ndarray]) -> None:
    data, _ = planted
    adj = GraphInputs(data).adjacency
    order = np.random.default_rng(0).permutation(np.flatnonzero(data.labelled))
    whole = field_batches(adj, order, 2, batch_size=10_000, max_field=10_000)
    assert len(whole) == 1  # the field fits: one batch, as before
    assert len(receptive_sets(adj, order, 2)[0]) > 200  # so a 200-node bound must split it
    small = field_batches(adj, order, 2, batch_size=10_000, max_field=200)
    assert len(small) > 1
    np.testing.assert_array_equal(np.concatenate(small), order)  # every target, once, in order
    assert all(len(receptive_sets(adj, b, 2)[0]) <= 200 for b in small[:1])


def test_label_copies_share_the_full_pass_but_never_each_others_labels(
    planted: tuple[GraphData, np.ndarray], tmp_path: Path
) -> None:
    """Out-of-fold scoring reuses h_L across label copies of a graph; only labels may differ."""
    data, _ = planted
    model = GNNModel(device="cpu", **SMALL)
    model.fit(data, data.labelled, seed=5)
    shown = model.predict(data)  # caches h_L with every label visible
    blind = with_visible_labels(data, np.zeros(data.num_nodes, dtype=bool))
    warm = model.predict(blind)
    model.save(tmp_path)
    cold = GNNModel.load(tmp_path, model.params(), device="cpu").predict(blind)
    np.testing.assert_allclose(warm, cold, rtol=1e-6)
    assert not np.allclose(warm, shown)  # the labels really are inputs


def _neighbours(data: GraphData, node: int) -> tuple[np.ndarray, np.ndarray]:
    """A node's neighbours and its summed link weight to each per relation (the batch's
    adjacency, read edge by edge)."""
    src, dst = data.edge_index
    sel = (src == node) & (dst != node)
    others = np.unique(dst[sel])
    weights = np.zeros((len(others), len(data.relation_names)), dtype=np.float32)
    np.add.at(
        weights,
        (np.searchsorted(others, dst[sel]), data.edge_type[sel]),
        data.edge_weight[sel].astype(np.float32),
    )
    return others, weights


@pytest.mark.parametrize("label_input", [0.0, 0.3])
def test_one_node_from_its_neighbours_states_is_the_full_graph_pass(
    planted: tuple[GraphData, np.ndarray], label_input: float
) -> None:
    """`predict_node` over a node's neighbours' stored states returns what the full-graph pass
    gives that node, and the node's own states are the pass's: the online GNN is the batch's."""
    data, _ = planted
    model = GNNModel(device="cpu", label_input=label_input, ensemble=2, **SMALL)
    model.fit(data, data.labelled, seed=5)
    inputs = GraphInputs.of(data)
    batch = model.predict(inputs)
    states = model.layer_states(inputs)
    assert states.shape == (data.num_nodes, 2, 2, SMALL["hidden"])
    # written layer by layer into the run's float16 map: the same states, rounded
    half = model.layer_states(inputs, np.full(states.shape, np.nan, dtype=np.float16))
    np.testing.assert_array_equal(half, states.astype(np.float16))
    rows, _ = inputs.matrix(label_features=True)
    unlabelled = np.flatnonzero(~data.labelled)
    rng = np.random.default_rng(0)
    for node in rng.choice(unlabelled, size=40, replace=False).tolist():
        others, weights = _neighbours(data, node)
        p, own = model.predict_node(rows[node], states[others], weights)
        assert p == pytest.approx(float(batch[node]), rel=1e-4, abs=1e-6)
        np.testing.assert_allclose(own, states[node], rtol=1e-4, atol=1e-5)
    isolated = np.zeros((0, 2, 2, SMALL["hidden"]), dtype=np.float32)
    p, _ = model.predict_node(
        rows[unlabelled[0]], isolated, np.zeros((0, len(data.relation_names)), np.float32)
    )
    assert 0.0 < p < 1.0


def test_a_few_rows_encode_as_the_per_column_pass_does() -> None:
    """The online scorer's one-row quantile map (all columns at once) equals the batch's
    per-column np.interp, ties, values at the quantiles, out-of-range values and NaN included."""
    rng = np.random.default_rng(0)
    n = 4000
    columns = [
        rng.normal(size=n),
        np.round(rng.exponential(size=n)),  # ties everywhere
        (rng.random(n) < 0.9) * rng.random(n),  # a tie run at the bottom
        np.zeros(n),
        rng.integers(0, 3, n).astype(float),
        np.full(n, np.nan),  # never fitted
    ]
    x = np.stack(columns, 1).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    ref = quantile_reference(x)
    extremes = np.array([[0] * 6, [1e9, -1e9, 1, 0, 2, 0], [-1e9, 1e9, -1, 1, -1, 1]], np.float32)
    probe = np.concatenate([x[:300], extremes, ref[::9].astype(np.float32)])
    pooled = quantile_normal(probe, ref)
    one_by_one = np.concatenate([quantile_normal(probe[i : i + 1], ref) for i in range(len(probe))])
    np.testing.assert_array_equal(one_by_one, pooled)


@pytest.mark.parametrize("kind", ["quantile", "asinh"])
def test_an_encoding_in_row_chunks_is_the_one_chunk_encoding(
    planted: tuple[GraphData, np.ndarray], kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunked rows from unstacked blocks give the bits one stacked matrix gives."""
    data, _ = planted
    blocks, names = GraphInputs(data).blocks(label_features=True)
    enc = InputEncoding.fit(kind, blocks, names)
    cols = np.concatenate([enc.label_cols, enc.prop_cols[::-1]])  # across blocks, reordered
    whole = enc.encode(np.hstack(blocks)[:, cols], cols)
    monkeypatch.setattr(encoding_module, "ENCODE_CHUNK_ROWS", 13)
    assert data.num_nodes % 13  # a short last chunk
    chunked = enc.encode_blocks(blocks, cols)
    assert chunked.flags.c_contiguous
    np.testing.assert_array_equal(chunked, whole)


@pytest.mark.parametrize("kind", ["quantile", "asinh"])
def test_encoded_inputs_are_half_precision_codes_of_the_float32_map(
    planted: tuple[GraphData, np.ndarray], kind: str
) -> None:
    """The batch and the online scorer store the same codes: the map in float32, rounded once to
    `CODE_DTYPE` (half the memory of the graph's inputs); the rounding is below the map's grain."""
    data, _ = planted
    blocks, names = GraphInputs(data).blocks(label_features=True)
    enc = InputEncoding.fit(kind, blocks, names)
    cols = enc.prop_cols
    codes = enc.encode_blocks(blocks, cols)
    assert codes.dtype == encoding_module.CODE_DTYPE == np.float16
    x = np.hstack(blocks)[:, cols]
    if kind == "quantile":
        assert enc.qref is not None
        wide = quantile_normal(x, enc.qref[:, cols])
    else:
        assert enc.center is not None
        assert enc.scale is not None
        wide = ((np.arcsinh(x) - enc.center[cols]) / enc.scale[cols]).astype(np.float32)
    wide = np.clip(np.nan_to_num(wide, nan=0.0), -10, 10)
    np.testing.assert_array_equal(codes, wide.astype(np.float16))
    assert np.abs(codes.astype(np.float32) - wide).max() < 5e-3
    one = enc.encode(x[:1], cols)  # one account online
    np.testing.assert_array_equal(one, codes[:1])


def test_a_full_pass_widens_its_codes_a_chunk_at_a_time_as_a_batch_does(
    planted: tuple[GraphData, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """h_0 from half-precision codes, in float32: chunked outside autograd, whole inside it,
    the same values either way."""
    data, _ = planted
    model = GNNModel(device="cpu", **SMALL)
    model.fit(data, data.labelled, seed=5)
    x_prop, _, _ = model._inputs(GraphInputs.of(data))
    assert x_prop.dtype == torch.float16
    net = model._nets[0].eval()
    with torch.no_grad():
        whole = net.encode(x_prop.float())
        monkeypatch.setattr(network, "FULL_PASS_CHUNK", 37)
        assert data.num_nodes % 37  # a short last chunk
        chunked = net.encode_inputs(x_prop)
    assert chunked.dtype == torch.float32
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    with torch.enable_grad():
        graded = net.encode_inputs(x_prop)
    assert graded.requires_grad
    torch.testing.assert_close(graded.detach(), whole, rtol=1e-6, atol=1e-6)
