"""ingest: quarantine reasons, reconciled counts, normalised output matching the schema contract."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphfraud.config import IngestSettings
from graphfraud.errors import InputDataError
from graphfraud.ingest.read import read_table
from graphfraud.ingest.validate import Ingested, ingest, label_expr, timestamp_expr
from graphfraud.schema import DEVICES_SCHEMA, USERS_SCHEMA

HEADER = "user_id,email,phone,name,created_at,label\n"
DEVICE_HEADER = "user_id,device_id,ip,seen_at\n"


def _run(
    users: str | bytes, devices: str | None = None, tmp_path: Path | None = None, **settings_: int
) -> Ingested:
    assert tmp_path is not None
    upath = tmp_path / "users.csv"
    upath.write_bytes(users.encode() if isinstance(users, str) else users)
    dframe = None
    if devices is not None:
        dpath = tmp_path / "devices.csv"
        dpath.write_text(devices)
        dframe = read_table(dpath, role="devices")
    result = ingest(
        read_table(upath, role="users"),
        dframe,
        IngestSettings(**settings_),
        users_file="users.csv",
        devices_file="devices.csv" if devices else None,
    )
    _assert_reconciled(result)
    return result


def _assert_reconciled(result: Ingested) -> None:
    assert result.users.schema == _polars(USERS_SCHEMA)
    assert result.devices.schema == _polars(DEVICES_SCHEMA)
    assert result.users.to_arrow().cast(USERS_SCHEMA).num_rows == result.users.height
    assert result.devices.to_arrow().cast(DEVICES_SCHEMA).num_rows == result.devices.height
    for role, counts in result.counts.items():
        assert counts["input"] == counts["accepted"] + counts["quarantined"]
        assert result.quarantine[role].height == counts["quarantined"]
        assert result.quarantine[role].get_column("reason").null_count() == 0
    assert result.counts["users"]["accepted"] == result.users.height
    assert result.users.get_column("user_id").is_unique().all()


def _polars(schema: pa.Schema) -> pl.Schema:
    frame = pl.from_arrow(schema.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return frame.schema


def _reasons(result: Ingested, role: str = "users") -> dict[str, str]:
    q = result.quarantine[role]
    key = "user_id" if role == "users" else "device_id"
    return {str(k): r for k, r in q.select(key, "reason").iter_rows()}


def test_clean_rows_are_normalised(tmp_path: Path) -> None:
    result = _run(
        HEADER
        + "u1, John.Doe+x@GMail.com ,098765 43210,  Ana  😀 ,2024-01-05T10:00:00+05:30,1\n"
        + "u2,not-an-email,12,Bo,2024-01-05,0\n"
        + "u3,,,,,\n",
        tmp_path=tmp_path,
    )
    assert result.counts["users"] == {"input": 3, "accepted": 3, "quarantined": 0}
    u1, u2, u3 = result.users.sort("user_id").iter_rows(named=True)
    assert u1["email"] == "johndoe@gmail.com"
    assert u1["email_raw"] == "John.Doe+x@GMail.com"
    assert (u1["email_local"], u1["email_domain"]) == ("johndoe", "gmail.com")
    assert u1["phone"] == "+919876543210"
    assert u1["phone_raw"] == "098765 43210"
    assert u1["name"] == "Ana 😀"  # emoji in names are fine
    assert u1["created_at"] == datetime(2024, 1, 5, 4, 30, tzinfo=UTC)
    assert u1["label"] == 1
    # an email or phone that does not parse keeps the user, raw kept, canonical null
    assert (u2["email"], u2["email_raw"], u2["phone"], u2["phone_raw"]) == (
        None,
        "not-an-email",
        None,
        "12",
    )
    assert u2["label"] == 0
    assert (u3["email_raw"], u3["created_at"], u3["label"]) == (None, None, None)


def test_unparseable_optional_fields_are_nulled_and_counted(tmp_path: Path) -> None:
    """IDN and multi-@ emails, lettered phones and bad IPs were nulled with no trace."""
    result = _run(
        HEADER
        + "u1,用户@例子.公司,+91 98AB CD1234,,,\n"
        + "u2,a@b@c,12,,,\n"
        + "u3,ok@x.com,+91 98765 43210,,,\n"
        + "u4,,,,,\n",
        DEVICE_HEADER + "u1,d1,999.1.1.1,\nu2,d2,10.0.0.1,\nu3,d3,,\n",
        tmp_path=tmp_path,
    )
    assert result.rejected_fields == {
        "users": {"email": 2, "phone": 2, "upi": 0},  # every kind that keeps its raw value
        "devices": {"ip": 1},
    }
    u1 = result.users.row(0, named=True)
    assert (u1["email"], u1["email_raw"]) == (None, "用户@例子.公司")
    assert (u1["phone"], u1["phone_raw"]) == (None, "+91 98AB CD1234")  # never +919822231234
    assert result.counts["users"]["accepted"] == 4  # nulled fields cost no row


def test_nan_strings_are_null(tmp_path: Path) -> None:
    result = _run(HEADER + "u1,NaN,nan,None,null,NULL\n", tmp_path=tmp_path)
    row = result.users.row(0, named=True)
    nulls = ("email_raw", "email", "phone_raw", "phone", "name", "created_at", "label")
    assert [row[c] for c in nulls] == [None] * len(nulls)


def test_duplicates_conflicting_all_quarantined_exact_copies_keep_first(tmp_path: Path) -> None:
    result = _run(
        HEADER
        + "u1,a@x.com,,,,\n"
        + "u1,b@x.com,,,,\n"  # conflicting: both u1 rows go
        + "u2,c@x.com,,,,\n"
        + "u2,c@x.com,,,,\n"  # byte-identical re-export: first u2 kept
        + "u3,d@x.com,,,,\n",
        tmp_path=tmp_path,
    )
    assert sorted(result.users.get_column("user_id").to_list()) == ["u2", "u3"]
    q = result.quarantine["users"]
    assert q.select("input_row", "user_id", "reason").rows() == [
        (1, "u1", "duplicate_user_id"),
        (2, "u1", "duplicate_user_id"),
        (4, "u2", "duplicate_row"),
    ]
    assert result.counts["users"] == {"input": 5, "accepted": 2, "quarantined": 3}


def test_missing_ids(tmp_path: Path) -> None:
    result = _run(
        HEADER + ",a@x.com,,,,\n   ,b@x.com,,,,\nnan,c@x.com,,,,\nu1,,,,,\n", tmp_path=tmp_path
    )
    assert result.quarantine["users"].get_column("reason").to_list() == ["missing_user_id"] * 3
    assert result.quarantine["users"].get_column("email").to_list() == [
        "a@x.com",
        "b@x.com",
        "c@x.com",
    ]
    assert result.counts["users"] == {"input": 4, "accepted": 1, "quarantined": 3}


def test_absurd_fields(tmp_path: Path) -> None:
    huge_email = "a" * 10_000 + "@gmail.com"
    result = _run(
        HEADER + f"u1,{huge_email},,,,\nu2,,,{'x' * 400},,\nu3,ok@x.com,,,,\n", tmp_path=tmp_path
    )
    assert _reasons(result) == {"u1": "absurd_field:email", "u2": "absurd_field:name"}
    assert result.quarantine["users"].get_column("email").to_list()[0] == huge_email  # raw kept
    relaxed = _run(HEADER + f"u1,{huge_email},,,,\n", tmp_path=tmp_path, max_field_chars=20_000)
    assert relaxed.users.get_column("email").to_list() == [None]  # accepted, email unparseable


def test_emoji_email_keeps_user(tmp_path: Path) -> None:
    result = _run(HEADER + "u1,😀😀@gmail.com,,😀 Zed,,\n", tmp_path=tmp_path)
    row = result.users.row(0, named=True)
    assert (row["email"], row["email_raw"], row["name"]) == (None, "😀😀@gmail.com", "😀 Zed")


def test_unparseable_dates_and_labels(tmp_path: Path) -> None:
    result = _run(
        HEADER
        + "u1,,,,yesterday,\n"
        + "u2,,,,2024-02-30,\n"
        + "u3,,,,1850-01-01,\n"
        + "u4,,,,2024-01-01,maybe\n"
        + "u5,,,,2024-01-01,2\n"
        + "u6,,,,2024-01-01 10:20:30.5Z,true\n",
        tmp_path=tmp_path,
    )
    assert _reasons(result) == {
        "u1": "bad_created_at",
        "u2": "bad_created_at",
        "u3": "bad_created_at",
        "u4": "bad_label",
        "u5": "bad_label",
    }
    row = result.users.row(0, named=True)
    assert row["created_at"] == datetime(2024, 1, 1, 10, 20, 30, 500_000, tzinfo=UTC)
    assert row["label"] == 1


def test_non_utf8_key_quarantined_other_fields_kept(tmp_path: Path) -> None:
    data = HEADER.encode() + b"u\xff1,a@x.com,,,,\nu2,,,Jos\xe9,,\n"
    result = _run(data, tmp_path=tmp_path)
    assert result.quarantine["users"].select("user_id", "reason").rows() == [
        ("u\ufffd1", "invalid_utf8")
    ]
    assert result.users.get_column("name").to_list() == ["Jos\ufffd"]


def test_devices(tmp_path: Path) -> None:
    result = _run(
        HEADER
        + "u1,,,,,\nu2,,,,,\nu2,x@y.com,,,,\n",  # u2 is quarantined as a conflicting duplicate
        DEVICE_HEADER
        + "u1, AB  12 ,::ffff:10.0.0.1,2024-03-01 10:00:00\n"
        + "u1,ab 12,999.1.1.1,\n"  # bad ip → null, row kept
        + "u1,,1.1.1.1,\n"
        + "u1,dev-late,,not a time\n"
        + "u2,dev-dup,,\n"
        + "u9,dev-ghost,,\n"
        + ",dev-anon,,\n",
        tmp_path=tmp_path,
    )
    assert result.devices.rows() == [
        ("u1", "ab 12", "10.0.0.1", datetime(2024, 3, 1, 10, tzinfo=UTC)),
        ("u1", "ab 12", None, None),
    ]
    q = result.quarantine["devices"]
    assert q.select("input_row", "reason").rows() == [
        (3, "missing_device_id"),
        (4, "bad_seen_at"),
        (5, "unknown_user"),
        (6, "unknown_user"),
        (7, "missing_user_id"),
    ]
    assert result.counts["devices"] == {"input": 7, "accepted": 2, "quarantined": 5}


def test_no_devices_file(tmp_path: Path) -> None:
    result = _run(HEADER + "u1,,,,,\n", tmp_path=tmp_path)
    assert set(result.counts) == set(result.quarantine) == {"users"}
    assert result.devices.height == 0


def test_header_only_files(tmp_path: Path) -> None:
    result = _run(HEADER, DEVICE_HEADER, tmp_path=tmp_path)
    assert result.counts == {
        "users": {"input": 0, "accepted": 0, "quarantined": 0},
        "devices": {"input": 0, "accepted": 0, "quarantined": 0},
    }


def test_quarantine_keeps_extra_columns_and_input_clashes(tmp_path: Path) -> None:
    result = _run("user_id,reason,input_line,extra\n,why,7,keep me\n", tmp_path=tmp_path)
    q = result.quarantine["users"]
    assert q.columns == [
        "input_row",
        "input_line",
        "user_id",
        "reason_input",
        "input_line_input",
        "extra",
        "input_text",
        "reason",
    ]
    assert q.row(0) == (1, 2, None, "why", "7", "keep me", None, "missing_user_id")


def test_malformed_csv_rows_are_quarantined_and_the_rest_goes_on(tmp_path: Path) -> None:
    """One `"Rajiv Anand"x` refused the whole file; now it is one quarantined row."""
    result = _run(
        HEADER
        + "u1,a@x.com,,Ann,,\n"
        + 'u2,,,"Rajiv Anand"x,,\n'
        + ",,,,,\n"  # a row that splits but fails validation: quarantined in file order
        + "u3,b@x.com,,,,,,\n"
        + "u4,c@x.com,,Bo,2024-01-01,0\n",
        DEVICE_HEADER + "u1,dev-1,,\nu4,dev-2,1.1.1.1,,extra\n",
        tmp_path=tmp_path,
    )
    assert result.users.get_column("user_id").to_list() == ["u1", "u4"]
    q = result.quarantine["users"]
    assert q.select("input_row", "input_line", "user_id", "input_text", "reason").rows() == [
        (2, 3, None, 'u2,,,"Rajiv Anand"x,,', "malformed_csv_row:stray_quote"),
        (3, 4, None, None, "missing_user_id"),
        (4, 5, None, "u3,b@x.com,,,,,,", "malformed_csv_row:too_many_fields"),
    ]
    assert result.counts["users"] == {"input": 5, "accepted": 2, "quarantined": 3}
    assert result.counts["devices"] == {"input": 2, "accepted": 1, "quarantined": 1}
    assert result.quarantine["devices"].get_column("reason").to_list() == [
        "malformed_csv_row:too_many_fields"
    ]


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\x9f", "\t", "\n"])
def test_control_characters_inside_ids_are_quarantined(char: str) -> None:
    """A NUL inside user_id was accepted; the id then scored null and was served as known."""
    users = pl.DataFrame({"user_id": [f"u{char}1", "u2", f" u3{char}"], "email": [None] * 3})
    devices = pl.DataFrame(
        {"user_id": ["u2", "u2", f"u{char}1"], "device_id": [f"d{char}1", "d2", "d3"]}
    )
    result = ingest(users, devices, IngestSettings())
    _assert_reconciled(result)
    whitespace = char in "\t\n\x85"  # stripped at an id's edges, folded inside a device id
    accepted = sorted(result.users.get_column("user_id").to_list())
    assert accepted == (["u2", "u3"] if whitespace else ["u2"])
    assert result.quarantine["users"].get_column("reason").to_list()[0] == "control_char_in_id"
    if whitespace:
        assert result.devices.get_column("device_id").to_list() == ["d 1", "d2"]
    else:
        assert result.devices.get_column("device_id").to_list() == ["d2"]
    assert set(result.quarantine["devices"].get_column("reason")) == {"control_char_in_id"}


def test_missing_required_column_in_frame() -> None:
    with pytest.raises(InputDataError, match=r"file users.parquet, column 'user_id'"):
        ingest(
            pl.DataFrame({"id": ["1"]}),
            None,
            IngestSettings(),
            users_file="users.parquet",
            devices_file=None,
        )
    with pytest.raises(InputDataError, match=r"file d.csv, column 'device_id'"):
        ingest(
            pl.DataFrame({"user_id": ["1"]}),
            pl.DataFrame({"user_id": ["1"]}),
            IngestSettings(),
            users_file="u.csv",
            devices_file="d.csv",
        )


def test_non_string_frames_are_accepted() -> None:
    result = ingest(
        pl.DataFrame({"user_id": [1, 2], "label": [1, 0]}),
        None,
        IngestSettings(),
        users_file="u",
        devices_file=None,
    )
    assert result.users.select("user_id", "label").rows() == [("1", 1), ("2", 0)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-05", datetime(2024, 1, 5, tzinfo=UTC)),
        ("2024-01-05T10:20", datetime(2024, 1, 5, 10, 20, tzinfo=UTC)),
        ("2024-01-05 10:20:30", datetime(2024, 1, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-01-05T10:20:30Z", datetime(2024, 1, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-01-05t10:20:30z", datetime(2024, 1, 5, 10, 20, 30, tzinfo=UTC)),
        (
            "2024-01-05T10:20:30.123456789+05:30",
            datetime(2024, 1, 5, 4, 50, 30, 123456, tzinfo=UTC),
        ),
        ("2024-01-05T10:20:30-0800", datetime(2024, 1, 5, 18, 20, 30, tzinfo=UTC)),
        ("2024-01-05T10:20:30+01", datetime(2024, 1, 5, 9, 20, 30, tzinfo=UTC)),
        ("2024-01-05 10:20:30 UTC", datetime(2024, 1, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-13-05", None),
        ("05/01/2024", None),
        ("2024-01-05T25:00", None),
        ("", None),
    ],
)
def test_timestamp_variants(text: str, expected: datetime | None) -> None:
    parsed = pl.select(timestamp_expr(pl.lit(text))).item()
    assert parsed == expected


@settings(max_examples=100, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1901, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    )
)
def test_timestamp_roundtrip(moment: datetime) -> None:
    for text in (
        moment.isoformat(),
        moment.isoformat().replace("+00:00", "Z"),
        moment.replace(tzinfo=None).isoformat(sep=" "),
    ):
        assert pl.select(timestamp_expr(pl.lit(text))).item() == moment


def test_labels() -> None:
    raw = pl.Series(["1", "0", "1.0", "0.0", "TRUE", "false", None, "2", "yes"])
    assert pl.select(label_expr(pl.lit(raw))).to_series().to_list() == [
        1,
        0,
        1,
        0,
        1,
        0,
        None,
        None,
        None,
    ]
