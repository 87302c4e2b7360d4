"""The public Python API (`import graphfraud`): pinned names, cheap import, typed run access."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

import graphfraud
from graphfraud.errors import ArtifactError, NotFound

TRUTH = Path(__file__).resolve().parents[1] / "data" / "synthetic" / "truth.csv"

PUBLIC = [
    "ArtifactError",
    "ConfigError",
    "Evaluation",
    "GraphFraudError",
    "GraphStoreError",
    "GraphStoreUnavailable",
    "InputDataError",
    "LinkEvidence",
    "LinkExplanation",
    "Member",
    "ModelRegistry",
    "NotFound",
    "RingView",
    "Run",
    "RunResult",
    "Settings",
    "TrainingFailed",
    "UserScore",
    "__version__",
    "average_precision",
    "generate_population",
    "load_settings",
    "open_graph_store",
    "open_run",
    "precision_recall",
    "reason_table",
    "run_pipeline",
    "write_population",
]


def test_all_is_pinned_and_every_name_resolves() -> None:
    assert sorted(graphfraud.__all__) == sorted(PUBLIC)
    assert set(graphfraud.__all__) - {"__version__"} == set(graphfraud._EXPORTS)
    for name in graphfraud.__all__:
        assert getattr(graphfraud, name) is not None, name
    assert graphfraud.NotFound is NotFound
    with pytest.raises(AttributeError):
        _ = graphfraud.not_a_name  # type: ignore[attr-defined]


def test_import_is_cheap() -> None:
    """`import graphfraud` loads none of the heavy stacks; the first use of a name does."""
    code = (
        "import sys, graphfraud; "
        "heavy = [m for m in ('polars', 'torch', 'fastapi', 'neo4j', 'sklearn', 'pydantic') "
        "if m in sys.modules]; print(heavy); graphfraud.open_run; "
        "print('polars' in sys.modules)"
    )
    out = _fresh_python(code)
    assert out[0] == "[]"
    assert out[1] == "True"


def test_open_run_gives_typed_frames_and_views(sample_run_dir: Path) -> None:
    run = graphfraud.open_run(sample_run_dir)
    scores = run.scores()
    assert scores.height == 2000
    assert {"user_id", "score", "ring_id", "reasons"} <= set(scores.columns)
    assert run.links().height > 0
    top = run.riskiest_rings(3)
    assert top.height == 3
    assert top["size"].min() >= 3  # type: ignore[operator]
    assert top["ring_score"].is_sorted(descending=True)
    ring = run.ring(top["ring_id"][0])
    assert isinstance(ring, graphfraud.RingView)
    member = ring.members[0].user_id
    assert run.ring_of(member) == ring
    user = run.score_of(member)
    assert user.ring_id == ring.ring_id
    assert len(user.reason_texts) == len(user.reasons)
    assert all(text != code for text, code in zip(user.reason_texts, user.reasons, strict=True))
    with pytest.raises(NotFound):
        run.score_of("nobody")
    with pytest.raises(NotFound):
        run.ring_of("nobody")


def test_ring_to_networkx_holds_every_member_and_link(sample_run_dir: Path) -> None:
    run = graphfraud.open_run(sample_run_dir)
    ring = run.ring(run.riskiest_rings(1)["ring_id"][0])
    graph = ring.to_networkx()
    assert set(graph.nodes) == {m.user_id for m in ring.members}
    assert graph.number_of_edges() == len(ring.links)
    a, b, kind = next(iter(graph.edges(keys=True)))
    evidence = graph.edges[a, b, kind]
    assert evidence["kind"] == kind
    assert 0 < evidence["weight"] <= 1


def test_compare_holds_unseen_users_with_model_and_baseline(sample_run_dir: Path) -> None:
    run = graphfraud.open_run(sample_run_dir)
    frame = run.compare(TRUTH)
    labelled = run.users().filter(pl.col("label").is_not_null()).height
    assert frame.height == 2000 - labelled
    assert frame.columns == ["user_id", "is_fraud", "score", "baseline"]
    model_ap = graphfraud.average_precision(frame["is_fraud"], frame["score"])
    baseline_ap = graphfraud.average_precision(frame["is_fraud"], frame["baseline"])
    assert model_ap > baseline_ap  # the model earns its place over the label-free prior
    assert model_ap == pytest.approx(run.evaluate(TRUTH).average_precision)
    curve = graphfraud.precision_recall(frame["is_fraud"], frame["score"])
    assert curve["recall"].is_sorted()
    assert curve["threshold"].is_sorted(descending=True)
    candidates = run.candidates()
    assert candidates["kind"].to_list() == ["gbm"]
    assert candidates["selected"].to_list() == [True]


def test_ring_history_follows_members_through_earlier_runs(
    sample_run_dir: Path, tmp_path: Path
) -> None:
    """Earlier runs are the finished siblings made before this one; others are skipped."""
    today = tmp_path / "runs" / "today"
    shutil.copytree(sample_run_dir, today)
    for name, created, status in (
        ("yesterday", "2000-01-02T00:00:00+00:00", "complete"),
        ("crashed", "2000-01-03T00:00:00+00:00", "failed"),
    ):
        shutil.copytree(sample_run_dir, tmp_path / "runs" / name)
        manifest = json.loads((tmp_path / "runs" / name / "manifest.json").read_text())
        manifest.update(run_id=name, created_at=created, status=status)
        (tmp_path / "runs" / name / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "runs" / "notes").mkdir()
    run = graphfraud.open_run(today)
    assert run.earlier_runs() == [tmp_path / "runs" / "yesterday"]
    ring_id = run.riskiest_rings(1)["ring_id"][0]
    history = run.ring_history(ring_id)
    assert history["run_id"].to_list() == ["yesterday", run.run_id]
    assert history["ring_id"].to_list() == [ring_id, ring_id]
    assert history["shared"].to_list() == history["size"].to_list()
    assert run.ring_history(ring_id, earlier=[tmp_path / "runs" / "notes"]).height == 1


def test_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(ArtifactError, match="not finished"):
        graphfraud.open_run(tmp_path)


def test_a_gbm_night_does_not_load_torch() -> None:
    """The score stage's modules (GNN states included) load torch only when a GNN runs: a GBM
    night, the service's GBM path and an incremental night with a GBM model skip its seconds of
    import."""
    code = (
        "import sys; import graphfraud.pipeline, graphfraud.model.stage, graphfraud.model.kinds, "
        "graphfraud.model.gnn.state, graphfraud.model.gnn, graphfraud.scoring.scores; "
        "print('torch' in sys.modules); graphfraud.model.gnn.GNNModel; "
        "print('torch' in sys.modules)"
    )
    assert _fresh_python(code)[:2] == ["False", "True"]


def _fresh_python(code: str) -> list[str]:
    """The lines `code` prints in a new interpreter (nothing imported yet)."""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return run.stdout.split("\n")
