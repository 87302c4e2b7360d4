"""The engine seam: results in item order, partitions that never split a key, settings and
flags that pick the engine, and clear errors for a bad one."""

from __future__ import annotations

import polars as pl
import pytest

from graphfraud.config import load_settings
from graphfraud.engine import SERIAL, LocalEngine, hash_partitions, map_frames, open_engine, slices
from graphfraud.errors import ConfigError


def _shifted(frame: pl.DataFrame, by: int) -> pl.DataFrame:
    return frame.with_columns(pl.col("x") + by)


def test_a_process_pool_returns_the_results_in_item_order() -> None:
    frame = pl.DataFrame({"x": list(range(1_000))})
    engine = LocalEngine(2)
    try:
        out = map_frames(engine, _shifted, slices(frame, 7), 5)
    finally:
        engine.close()
    assert out["x"].to_list() == list(range(5, 1_005))


def test_one_part_is_the_function_on_the_whole_input() -> None:
    frame = pl.DataFrame({"x": [3, 1, 2]})
    (whole,) = slices(frame, SERIAL.partitions)
    assert whole.equals(frame)
    assert map_frames(SERIAL, _shifted, [frame], 1)["x"].to_list() == [4, 2, 3]


def test_slices_cover_the_frame_without_an_empty_one() -> None:
    frame = pl.DataFrame({"x": list(range(10))})
    parts = slices(frame, 4)
    assert [p.height for p in parts] == [3, 3, 3, 1]
    assert pl.concat(parts).equals(frame)
    assert [p.height for p in slices(frame, 50)] == [1] * 10


def test_hash_partitions_keep_every_key_in_one_part() -> None:
    frame = pl.DataFrame({"key": [f"k{i % 37}" if i % 11 else None for i in range(2_000)]})
    parts = hash_partitions(frame.with_row_index("row"), "key", 4)
    assert 1 < len(parts) <= 4
    keys = [set(p["key"].to_list()) for p in parts]
    assert sum(len(k) for k in keys) == len(set().union(*keys))  # no key in two parts
    assert pl.concat(parts).sort("row").drop("row").equals(frame)  # no row lost or repeated


def test_the_engine_comes_from_settings_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().engine == "local"
    monkeypatch.setenv("GRAPHFRAUD_ENGINE", "dask")
    monkeypatch.setenv("GRAPHFRAUD_DASK_SCHEDULER", "tcp://scheduler:8786")
    monkeypatch.setenv("GRAPHFRAUD_ENGINE_WORKERS", "3")
    settings = load_settings()
    assert (settings.engine, settings.dask_scheduler, settings.engine_workers) == (
        "dask",
        "tcp://scheduler:8786",
        3,
    )
    monkeypatch.setenv("GRAPHFRAUD_ENGINE", "spark")
    with pytest.raises(ConfigError, match="GRAPHFRAUD_ENGINE"):
        load_settings()


def test_the_local_engine_is_the_default_and_closes_its_pool() -> None:
    with open_engine(load_settings(engine_workers=2)) as engine:
        assert (engine.name, engine.partitions) == ("local", 2)
        assert engine.map(abs, [-1, -2, 3]) == [1, 2, 3]
        assert isinstance(engine, LocalEngine)
        assert engine._pool is not None
    assert engine._pool is None


def test_zero_workers_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        LocalEngine(0)


def test_user_features_in_parts_are_the_whole_table() -> None:
    from graphfraud.ingest.validate import ingest
    from graphfraud.linking.link import build_links
    from graphfraud.model.feature_parts import user_features_on
    from graphfraud.model.features import user_features
    from graphfraud.rings.detect import build_rings, pair_strengths
    from graphfraud.synthetic import generate_population

    settings = load_settings()
    population = generate_population(3_000, 4)
    ingested = ingest(population.users, population.devices, settings.ingest)
    users = ingested.users.sort("user_id")
    found = build_links(users, ingested.devices, settings.link)
    rings = build_rings(found.links, users, settings.rings)
    inputs = (users, ingested.devices, found.links, found.support,
              pair_strengths(found.links), rings.members, rings.rings)  # fmt: skip
    options = {"max_share": settings.link.max_share, "strong": settings.rings.min_weight}
    whole = user_features(*inputs, **options)  # type: ignore[arg-type]
    assert whole["lbl_ring_fraud"].sum() > 0  # ring-mates' labels are in play
    engine = LocalEngine(3)
    try:
        parts = user_features_on(engine, *inputs, **options)  # type: ignore[arg-type]
    finally:
        engine.close()
    assert parts.equals(whole)
