"""The dask engine on a real `LocalCluster` (two single-threaded worker processes on loopback:
real serialisation between processes, not threads): a whole run gives the local engine's
links, ring partition, features and scores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from distributed import LocalCluster

from graphfraud.config import Settings, load_settings
from graphfraud.engine import dask as dask_engine
from graphfraud.engine import open_engine
from graphfraud.errors import ConfigError
from graphfraud.pipeline import run_pipeline
from graphfraud.synthetic import generate_population, write_population

# The 20k users pass too (five minutes on a loaded two-core host): 5k keeps CI quick.
USERS = 5_000

# Identifier support is grouped per value: its row order was never fixed, even locally.
ARTIFACTS = {
    "links.parquet": None,
    "identifiers.parquet": ["kind", "value"],
    "lookalikes.parquet": None,
    "communities.parquet": None,
    "ring_members.parquet": None,
    "rings.parquet": None,
    "features.parquet": None,
    "scores.parquet": None,
    "ring_scores.parquet": None,
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local:
        yield local


def _settings(tmp: Path, **engine: object) -> Settings:
    settings = load_settings(**engine)
    settings.model.registry = tmp / "models"
    settings.model.candidates = ["gbm"]
    return settings


@pytest.fixture(scope="module")
def runs(cluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("engines")
    files = write_population(generate_population(USERS, 21), tmp / "data", fmt="parquet")
    local = run_pipeline(
        files["users"], files["devices"], tmp / "local", _settings(tmp / "local")
    ).run_dir
    on_dask = _settings(tmp / "dask", engine="dask", dask_scheduler=cluster.scheduler_address)
    dask = run_pipeline(files["users"], files["devices"], tmp / "dask", on_dask).run_dir
    return local, dask


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ARTIFACTS))
def test_the_dask_engine_writes_the_local_engines_artifacts(
    runs: tuple[Path, Path], name: str
) -> None:
    local, dask = (pl.read_parquet(run / name) for run in runs)
    order = ARTIFACTS[name]
    if order is not None:
        local, dask = local.sort(order), dask.sort(order)
    assert local.height > 0
    if name == "scores.parquet":  # each run registered its own model version
        local, dask = (f.drop("model_version", strict=False) for f in (local, dask))
    assert dask.equals(local), name


@pytest.mark.slow
def test_the_manifest_says_which_engine_ran(runs: tuple[Path, Path]) -> None:
    import json

    local, dask = (json.loads((run / "manifest.json").read_text()) for run in runs)
    for stage in ("link", "rings"):
        assert local["stages"][stage]["engine"] == "local"
        assert dask["stages"][stage]["engine"] == "dask"
    assert local["rings_suspected"] == dask["rings_suspected"]


def test_the_engine_maps_in_order_on_the_cluster(cluster: LocalCluster) -> None:
    settings = load_settings(engine="dask", dask_scheduler=cluster.scheduler_address)
    with open_engine(settings) as engine:
        assert engine.partitions == 2
        assert engine.map(divmod, list(range(10)), 3) == [divmod(i, 3) for i in range(10)]
        assert engine.map(abs, []) == []


def test_an_unreachable_scheduler_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from graphfraud.graph.server import free_port

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT_S", 1)
    settings = load_settings(engine="dask", dask_scheduler=f"tcp://127.0.0.1:{free_port()}")
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"), open_engine(settings):
        pass
