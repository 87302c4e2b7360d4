"""A night's delta applied to the previous artifacts: upserts replace, deletes erase, bad rows
are quarantined, and nothing of an erased user stays."""

from __future__ import annotations

import polars as pl

from graphfraud.config import IngestSettings
from graphfraud.ingest.delta import Delta, ingest_delta
from graphfraud.ingest.read import InputTable
from graphfraud.ingest.validate import ingest

SETTINGS = IngestSettings()


def _previous() -> tuple[pl.DataFrame, pl.DataFrame]:
    users = pl.DataFrame(
        {
            "user_id": ["u1", "u2", "u3"],
            "email": ["a.one@gmail.com", "b.two@gmail.com", "c.three@gmail.com"],
            "phone": ["9876543210", "9876543211", "9876543212"],
        }
    )
    devices = pl.DataFrame({"user_id": ["u1", "u2", "u3"], "device_id": ["d1", "d2", "d3"]})
    day1 = ingest(users, devices, SETTINGS)
    return day1.users, day1.devices


def _delta(
    rows: dict[str, list[str | None]], sightings: dict[str, list[str]] | None = None
) -> Delta:
    users, devices = _previous()
    return ingest_delta(
        InputTable.of(pl.DataFrame(rows), "delta.csv"),
        None if sightings is None else InputTable.of(pl.DataFrame(sightings), "new.csv"),
        SETTINGS,
        previous_users=users,
        previous_devices=devices,
    )


def test_upserts_replace_and_add_and_deletes_erase() -> None:
    got = _delta(
        {
            "user_id": ["u2", "u4", "u3"],
            "email": ["b.new@gmail.com", "d.four@gmail.com", None],
            "op": ["upsert", None, "DELETE "],
        },
        {"user_id": ["u4", "u2", "u3"], "device_id": ["d4", "d1", "d3"]},
    )
    users = got.ingested.users.sort("user_id")
    assert users["user_id"].to_list() == ["u1", "u2", "u4"]
    assert (
        users.filter(pl.col("user_id") == "u2")["email"].item() == "bnew@gmail.com"
    )  # gmail ignores dots
    # the replacing row is the whole record: its phone was not given
    assert users.filter(pl.col("user_id") == "u2")["phone"].item() is None
    sightings = got.ingested.devices.select("user_id", "device_id").sort("user_id", "device_id")
    assert sightings.rows() == [("u1", "d1"), ("u2", "d1"), ("u2", "d2"), ("u4", "d4")]
    assert got.deleted.to_list() == ["u3"]
    counts = got.ingested.counts
    assert counts["users"]["deleted"] == 1
    assert counts["users"]["input"] == counts["users"]["accepted"] + counts["users"]["quarantined"]
    assert counts["devices"]["erased"] == 1


def test_bad_ops_and_anonymous_deletes_are_quarantined_and_a_delete_wins() -> None:
    got = _delta(
        {
            "user_id": ["u1", None, "u9", "u2", "u2"],
            "email": ["x@gmail.com", None, None, "b.two@gmail.com", None],
            "created_at": [None, None, None, "yesterday", None],
            "op": ["archive", "delete", "delete", "upsert", "delete"],
        }
    )
    quarantine = got.ingested.quarantine["users"]
    assert quarantine["reason"].to_list() == ["bad_op", "missing_user_id"]
    assert quarantine["input_row"].to_list() == [1, 2]
    # u2's upsert was bad (quarantined) and u2 is erased: its row must not stay in quarantine
    assert "u2" not in quarantine["user_id"].to_list()
    assert got.ingested.users["user_id"].sort().to_list() == ["u1", "u3"]
    counts = got.ingested.counts["users"]
    assert counts["deleted_unknown"] == 1  # u9
    assert counts["erased_from_quarantine"] == 1
    assert counts["input"] == counts["accepted"] + counts["quarantined"]


def test_a_delta_without_an_op_column_is_all_upserts() -> None:
    got = _delta({"user_id": ["u5"], "email": ["e.five@gmail.com"]})
    assert got.ingested.users.height == 4
    assert got.deleted.is_empty()
