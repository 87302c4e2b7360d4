"""The night's rings record the emerging ring of the day they grew from."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from graphfraud.errors import InputDataError
from graphfraud.rings.adopt import adopt_emerging, read_emerging
from graphfraud.rings.features import Rings


def _rings() -> Rings:
    members = pl.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "e", "f", "g"],
            "ring_id": ["R1", "R1", "R1", "R2", "R2", "R3", "R3"],
        }
    )
    rings = pl.DataFrame(
        {"ring_id": ["R1", "R2", "R3"], "size": [3, 2, 2], "grew_from": [None, None, None]},
        schema={"ring_id": pl.String, "size": pl.Int32, "grew_from": pl.String},
    )
    return Rings(members=members, rings=rings)


def test_a_ring_grew_from_the_emerging_ring_most_of_its_members_were_in() -> None:
    emerging = pl.DataFrame(
        {
            "user_id": ["a", "b", "c", "d", "f", "z"],
            "emerging_ring_id": ["em-1", "em-1", "em-2", "em-3", "em-4", "em-1"],
        }
    )
    adopted = adopt_emerging(_rings(), emerging)
    grew = dict(adopted.rings.select("ring_id", "grew_from").iter_rows())
    assert grew == {"R1": "em-1", "R2": None, "R3": None}  # R2, R3: one member each, not two
    assert adopted.rings.columns == _rings().rings.columns
    assert adopted.members.equals(_rings().members)


def test_the_export_is_read_from_parquet_or_csv_and_a_wrong_file_is_refused(
    tmp_path: Path,
) -> None:
    frame = pl.DataFrame({"user_id": ["a", "a"], "emerging_ring_id": ["em-1", "em-1"]})
    frame.write_parquet(tmp_path / "e.parquet")
    frame.write_csv(tmp_path / "e.csv")
    assert read_emerging(tmp_path / "e.parquet").height == 1
    assert read_emerging(tmp_path / "e.csv").height == 1
    pl.DataFrame({"user": ["a"]}).write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputDataError, match="lacks"):
        read_emerging(tmp_path / "bad.parquet")
    with pytest.raises(InputDataError, match="cannot read"):
        read_emerging(tmp_path / "missing.parquet")


def test_the_rings_stage_adopts_the_days_emerging_rings(tmp_path: Path, online_run) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from graphfraud.pipeline import stage_rings
    from graphfraud.rundir import RunDir

    run = tmp_path / "run"
    shutil.copytree(online_run.run_dir, run)
    members = pl.read_parquet(run / "ring_members.parquet")
    ring_id = (
        members.group_by("ring_id")
        .len()
        .sort("len", "ring_id", descending=[True, False])["ring_id"][0]
    )
    two = members.filter(pl.col("ring_id") == ring_id)["user_id"].head(2).to_list()
    path = tmp_path / "emerging.csv"
    pl.DataFrame({"user_id": two, "emerging_ring_id": ["em-abc", "em-abc"]}).write_csv(path)
    settings = online_run.settings.model_copy(deep=True)
    settings.rings.emerging = path
    stage_rings(RunDir(run), settings)
    rings = pl.read_parquet(run / "rings.parquet")
    grew = rings.filter(pl.col("grew_from").is_not_null())
    assert grew.select("ring_id", "grew_from").rows() == [(ring_id, "em-abc")]
    assert RunDir(run).manifest()["stages"]["rings"]["grew_from_emerging"] == 1
