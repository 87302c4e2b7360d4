"""The contract on a real run: the pipeline on a tiny synthetic population, published to the Bolt
server, must answer exactly as the embedded store reading the same run directory."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from graphfraud.config import load_settings
from graphfraud.graph.embedded import EmbeddedGraphStore
from graphfraud.graph.neo4j import Neo4jGraphStore
from graphfraud.schema import LINKS_FILE, RINGS_FILE, USERS_FILE

pytestmark = [pytest.mark.slow, pytest.mark.bolt]


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from graphfraud.pipeline import run_pipeline
    from graphfraud.synthetic import LabelPolicy, generate_population, write_population

    root = tmp_path_factory.mktemp("synthetic")
    # small, but with enough labels for the out-of-fold model to train
    labels = LabelPolicy(labelled_rings=1.0, member_rate=0.5, honest_rate=0.2)
    population = generate_population(200, 7, fraud_share=0.1, labels=labels)
    files = write_population(population, root / "in", fmt="parquet")
    settings = load_settings()
    settings.model.registry = root / "models"
    settings.graph.uri = ""  # publish is what this test does itself
    return run_pipeline(files["users"], files.get("devices"), root / "run", settings).run_dir


def test_bolt_store_answers_like_the_embedded_store(
    synthetic_run: Path, bolt_driver: Any, new_bolt_database: Callable[[str], str]
) -> None:
    embedded = EmbeddedGraphStore(synthetic_run)
    bolt = Neo4jGraphStore(bolt_driver, new_bolt_database("synthetic"))
    ours, theirs = bolt.publish(str(synthetic_run)), embedded.publish(str(synthetic_run))
    key = ("run_id", "nodes", "relationships", "rows")
    assert [getattr(ours, k) for k in key] == [getattr(theirs, k) for k in key]
    ring_ids = pl.read_parquet(synthetic_run / RINGS_FILE)["ring_id"].to_list()
    assert ring_ids, "the synthetic population should plant rings"
    for ring_id in ring_ids:
        assert bolt.ring(ring_id) == embedded.ring(ring_id)
    rng = random.Random(3)
    users = pl.read_parquet(synthetic_run / USERS_FILE)["user_id"].to_list()
    for user in rng.sample(users, 60):
        assert bolt.ring_of(user) == embedded.ring_of(user)
    links = pl.read_parquet(synthetic_run / LINKS_FILE)
    linked = sorted(set(links["user_a"].to_list()) | set(links["user_b"].to_list()))
    for _ in range(40):
        a, b = rng.sample(linked, 2)
        ours, theirs = bolt.explain_link(a, b), embedded.explain_link(a, b)
        assert len(ours.path) == len(theirs.path)  # shortest paths may differ, lengths may not
        if ours.path != theirs.path:
            continue
        assert ours == theirs
    assert bolt.ping()
