"""A user-declared identifier kind, end to end on a synthetic night, with no code change: the
settings name `pan_hash`, and its shared values become links, features, reasons, graph nodes on
the real Bolt server, snapshot lookups, online matches and masked evidence."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from graphfraud.config import DeclaredIdentifier, Settings, load_settings
from graphfraud.graph.neo4j import Neo4jGraphStore
from graphfraud.graph.tables import load_tables
from graphfraud.pipeline import run_pipeline
from graphfraud.scoring.snapshot import load_snapshot
from graphfraud.service import create_app
from graphfraud.synthetic.population import generate_population, write_population
from tests.service.factories import headers, make_settings

N_USERS = 3_000


def _with_pan_hashes(users: pl.DataFrame, truth: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Every user their own PAN hash, except that each ring's members mostly share one (one
    person's PAN behind many accounts) and a few honest pairs share one too (a data-entry twin)."""
    rng = np.random.default_rng(seed)
    frame = users.join(truth.select("user_id", "ring_id"), on="user_id", how="left")
    own = pl.Series([f"{x:016x}" for x in rng.integers(0, 2**62, frame.height)])
    ring_hash = pl.col("ring_id").hash(seed).cast(pl.String).str.slice(0, 16)
    covered = pl.Series(rng.random(frame.height) < 0.6)
    honest_pair = pl.Series(rng.random(frame.height) < 0.01)
    return frame.with_columns(
        pan_hash=pl.when(pl.col("ring_id").is_not_null() & covered)
        .then(ring_hash.str.to_uppercase())  # typed in another case: still one value
        .when(honest_pair)
        .then(pl.lit("00honest00twin00"))
        .otherwise(own)
    ).drop("ring_id")


@pytest.fixture(scope="module")
def declared_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Settings]:
    tmp = tmp_path_factory.mktemp("declared")
    pop = generate_population(N_USERS, 13)
    paths = write_population(pop, tmp / "data")
    users = _with_pan_hashes(pl.read_csv(paths["users"], infer_schema=False), pop.truth, 13)
    users.write_csv(paths["users"])
    settings = load_settings()
    settings.identifiers = [DeclaredIdentifier(name="pan_hash")]
    settings.model.registry = tmp / "models"
    settings.model.candidates = ["gbm"]
    settings.service.audit_log = tmp / "audit.log"
    run_pipeline(paths["users"], paths["devices"], tmp / "run", settings)
    return tmp / "run", settings


def test_declared_values_become_links_features_and_reasons(
    declared_run: tuple[Path, Settings],
) -> None:
    run, _ = declared_run
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["identifiers"] == [
        {"name": "pan_hash", "prior": 1.0, "decay": 0.0, "mask": "hash", "case_sensitive": False}
    ]
    assert manifest["stages"]["link"]["pan_hash_links"] > 0
    links = pl.read_parquet(run / "links.parquet").filter(pl.col("kind") == "pan_hash")
    assert links.height == manifest["stages"]["link"]["pan_hash_links"]
    assert (links["value_a"] == links["value_a"].str.to_lowercase()).all()  # case folded
    assert links["evidence"].str.starts_with("same pan hash, held by").all()
    features = pl.read_parquet(run / "features.parquet")
    assert {"has_pan_hash", "log_pan_hash_support", "n_pan_hash", "max_w_pan_hash"} <= set(
        features.columns
    )
    reasons = pl.read_parquet(run / "scores.parquet")["reasons"].explode()
    assert (reasons == "SHARED_PAN_HASH").any()


def test_declared_kind_reaches_the_graph_on_a_real_bolt_server(
    declared_run: tuple[Path, Settings],
    bolt_driver: Any,
    new_bolt_database: Callable[[str], str],
) -> None:
    run, _ = declared_run
    tables = load_tables(run)
    held = tables.holds["pan_hash"]
    db = new_bolt_database("declared")
    Neo4jGraphStore(bolt_driver, db).publish(str(run))
    with bolt_driver.session(database=db) as session:
        nodes = session.run("MATCH (n:PanHash) RETURN count(n) AS n").single()["n"]
        rels = session.run("MATCH (:User)-[r:HAS_PAN_HASH]->(:PanHash) RETURN count(r) AS n")
        assert nodes == tables.identifiers["pan_hash"].height > 0
        assert rels.single()["n"] == held.height


@pytest.fixture
def client(declared_run: tuple[Path, Settings]) -> Iterator[TestClient]:
    run, settings = declared_run
    svc = make_settings(run.parent, run.parent).service
    app = create_app(Settings(service=svc, identifiers=settings.identifiers), run)
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(30)
        yield c


def test_online_scorer_matches_a_declared_value_and_masks_it(
    declared_run: tuple[Path, Settings], client: TestClient
) -> None:
    run, _ = declared_run
    snapshot = load_snapshot(run)
    assert snapshot.identifiers is not None
    assert len(snapshot.identifiers.exact["pan_hash"]) > 0
    shared = (
        pl.read_parquet(run / "links.parquet")
        .filter(pl.col("kind") == "pan_hash")
        .group_by("value_a")
        .len()
        .sort("len", descending=True)["value_a"][0]
    )
    body = {"user_id": "new-1", "identifiers": {"pan_hash": f"  {shared.upper()} "}}
    got = client.post("/v1/score", json=body, headers=headers("analyst"))
    assert got.status_code == 200, got.text
    doc = got.json()
    assert "SHARED_PAN_HASH" in doc["reasons"]
    # analysts see the matches, masked as hashes: never the raw value
    assert {m["kind"] for m in doc["matches"]} == {"pan_hash"}
    assert all(shared not in m["matched_value"] for m in doc["matches"])
    unknown = client.post(
        "/v1/score", json={"identifiers": {"aadhaar_hash": "x1"}}, headers=headers("scorer")
    )
    assert unknown.status_code == 422
    assert "aadhaar_hash" in unknown.json()["detail"]
    builtin = client.post(
        "/v1/score", json={"identifiers": {"email": "a@b.co"}}, headers=headers("scorer")
    )
    assert builtin.status_code == 422
    assert "'email'" in builtin.json()["hint"]
    vocab = client.get("/v1/vocabulary", headers=headers("scorer")).json()
    declared = [k for k in vocab["identifiers"] if k["declared"]]
    assert [k["name"] for k in declared] == ["pan_hash"]
    assert any(r["code"] == "SHARED_PAN_HASH" and r["text"] for r in vocab["reasons"])
