"""read_table: every malformed-file case is one InputDataError line naming the file, or a frame."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from graphfraud.errors import InputDataError
from graphfraud.ingest.read import read_table

HEADER = "user_id,email,phone,name,created_at,label\n"


def _write(tmp_path: Path, name: str, data: bytes | str) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _one_line_error(path: Path, role: str = "users") -> InputDataError:
    with pytest.raises(InputDataError) as info:
        read_table(path, role=role)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return info.value


def test_reads_all_columns_as_strings(tmp_path: Path) -> None:
    path = _write(tmp_path, "u.csv", HEADER + "1,a@b.com,0098,Ana,2024-01-01,1\n")
    frame = read_table(path, role="users").rows
    assert frame.columns == ["user_id", "email", "phone", "name", "created_at", "label"]
    assert all(dtype == pl.String for dtype in frame.dtypes)
    assert frame.row(0) == ("1", "a@b.com", "0098", "Ana", "2024-01-01", "1")  # leading zeros kept


def test_missing_file(tmp_path: Path) -> None:
    err = _one_line_error(tmp_path / "nope.csv")
    assert "not found" in str(err)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    _one_line_error(tmp_path)


def test_empty_file(tmp_path: Path) -> None:
    err = _one_line_error(_write(tmp_path, "u.csv", b""))
    assert "empty file" in str(err)
    assert "empty file" in str(_one_line_error(_write(tmp_path, "b.csv", b"\xef\xbb\xbf \n")))


def test_header_only_gives_zero_rows(tmp_path: Path) -> None:
    frame = read_table(_write(tmp_path, "u.csv", HEADER), role="users").rows
    assert frame.height == 0
    assert "user_id" in frame.columns


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_other_delimiters_are_sniffed(tmp_path: Path, sep: str) -> None:
    text = f"user_id{sep}email{sep}name\nu1{sep}a,b@x.com{sep}Doe, Ann\n"
    frame = read_table(_write(tmp_path, "u.csv", text), role="users").rows
    assert frame.row(0) == ("u1", "a,b@x.com", "Doe, Ann")


def test_bom_is_stripped(tmp_path: Path) -> None:
    frame = read_table(
        _write(tmp_path, "u.csv", b"\xef\xbb\xbf" + HEADER.encode() + b"u1,,,,,\n"), role="users"
    ).rows
    assert frame.columns[0] == "user_id"
    assert frame.get_column("user_id").to_list() == ["u1"]


def test_non_utf8_bytes_are_replaced_not_fatal(tmp_path: Path) -> None:
    data = b"user_id,name\nu\xff1,Jos\xe9\nu2,ok\n"
    frame = read_table(_write(tmp_path, "u.csv", data), role="users").rows
    assert frame.get_column("user_id").to_list() == ["u\ufffd1", "u2"]
    assert frame.get_column("name").to_list() == ["Jos\ufffd", "ok"]


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    err = _one_line_error(_write(tmp_path, "d.csv", "user_id,ip\nu1,1.1.1.1\n"), role="devices")
    assert err.column == "device_id"
    assert "'device_id'" in str(err)
    assert "found columns: user_id, ip" in str(err)


def test_header_names_are_matched_case_insensitively(tmp_path: Path) -> None:
    frame = read_table(
        _write(tmp_path, "u.csv", " User_ID ,EMAIL,extra\nu1,a@b.c,x\n"), role="users"
    ).rows
    assert frame.columns == ["user_id", "email", "extra"]


def test_malformed_rows_are_set_aside_and_every_other_row_goes_on(tmp_path: Path) -> None:
    text = HEADER + (
        "u1,a@x.com,,Ann,,\n"  # line 2
        'u2,"Rajiv Anand"x,,,,\n'  # 3: a stray quote (polars refused the whole file)
        "u3,a,b,c,d,e,f\n"  # 4: more fields than the header
        'u4,"Rajiv,,,,\n'  # 5: a quote that never closes...
        "u5,b@x.com,,Bo,,\n"  # 6: ...must not swallow the rows after it
        "u6,c\n"  # 7: fewer fields
        'u7,,,"12 Main St\nPune",,\n'  # 8-9: a quoted newline is one record
        "\n"  # 10: blank, no record
        "u8,,,,,"  # 11, no final newline
    )
    table = read_table(_write(tmp_path, "u.csv", text), role="users")
    assert table.rows.get_column("user_id").to_list() == ["u1", "u5", "u7", "u8"]
    assert table.rows.get_column("name").to_list() == ["Ann", "Bo", "12 Main St\nPune", None]
    assert table.positions.rows() == [(1, 2), (5, 6), (7, 8), (8, 11)]
    assert table.malformed.rows() == [
        (2, 3, 'u2,"Rajiv Anand"x,,,,', "malformed_csv_row:stray_quote"),
        (3, 4, "u3,a,b,c,d,e,f", "malformed_csv_row:too_many_fields"),
        (4, 5, 'u4,"Rajiv,,,,', "malformed_csv_row:unterminated_quote"),
        (6, 7, "u6,c", "malformed_csv_row:too_few_fields"),
    ]
    assert table.height == 8


def test_crlf_and_quoted_crlf(tmp_path: Path) -> None:
    text = HEADER.replace("\n", "\r\n") + 'u1,,,"a\r\nb",,\r\nu2,x"y,,,,\r\nu3,,,,,\r\n'
    table = read_table(_write(tmp_path, "u.csv", text), role="users")
    assert table.rows.select("user_id", "name").rows() == [("u1", "a\r\nb"), ("u3", None)]
    assert table.malformed.select("input_line", "input_text").rows() == [(4, 'u2,x"y,,,,')]


def test_old_mac_line_ends(tmp_path: Path) -> None:
    table = read_table(_write(tmp_path, "u.csv", "user_id,name\ru1,Ann\ru2,Bo\r"), role="users")
    assert table.rows.rows() == [("u1", "Ann"), ("u2", "Bo")]


def test_header_delimiter_differs_from_rows_is_one_line(tmp_path: Path) -> None:
    """A TAB header over comma rows made user_id the whole line and accepted corrupt users."""
    rows = "".join(f"u{i},u{i}@x.com,,Name {i},,\n" for i in range(10))
    err = _one_line_error(_write(tmp_path, "u.csv", HEADER.replace(",", "\t") + rows))
    assert "delimited by TAB but the rows by ','" in str(err)
    assert "@x.com" not in str(err)


def test_a_few_rows_in_another_delimiter_are_rows_not_a_file_problem(tmp_path: Path) -> None:
    tab = HEADER.replace(",", "\t")
    good = "".join(f"u{i}\t\t\tName {i}\t\t\n" for i in range(6))
    table = read_table(_write(tmp_path, "u.csv", tab + good + "u9,a,b,c,d,e\n"), role="users")
    assert table.rows.height == 6
    assert table.malformed.get_column("reason").to_list() == ["malformed_csv_row:too_few_fields"]


def test_malformed_header_and_duplicate_columns_are_one_line(tmp_path: Path) -> None:
    assert "header" in str(_one_line_error(_write(tmp_path, "a.csv", 'user_id,"email\nu1,x\n')))
    err = _one_line_error(_write(tmp_path, "b.csv", "user_id,email,email\nu1,a,b\n"))
    assert err.column == "email"
    err = _one_line_error(_write(tmp_path, "c.csv", "user_id,Email,EMAIL\nu1,a,b\n"))
    assert err.column == "email"


def test_a_headerless_file_does_not_echo_its_first_row(tmp_path: Path) -> None:
    """Without a header the first data row stands where the column names are expected: the
    message must not print its email or phone (PII on stderr)."""
    path = _write(tmp_path, "u.csv", "u1,john.doe@gmail.com,+91 98765 43210,John Doe\n")
    err = _one_line_error(path)
    assert "john.doe" not in str(err)
    assert "98765" not in str(err)
    assert "John Doe" not in str(err)
    assert "found columns: u1, …" in str(err)


def test_gzip_csv(tmp_path: Path) -> None:
    path = _write(tmp_path, "u.csv.gz", gzip.compress(b"user_id\nu1\n"))
    assert read_table(path, role="users").rows.get_column("user_id").to_list() == ["u1"]


def test_parquet_is_cast_to_strings(tmp_path: Path) -> None:
    path = tmp_path / "u.parquet"
    pl.DataFrame(
        {
            "user_id": [1, 2],
            "created_at": pl.Series(["2024-01-05 10:00:00", None]).str.to_datetime(time_zone="UTC"),
            "label": [1.0, None],
            "tags": [["a"], ["b", "c"]],
        }
    ).write_parquet(path)
    table = read_table(path, role="users")
    frame = table.rows
    assert all(dtype == pl.String for dtype in frame.dtypes)
    assert frame.get_column("user_id").to_list() == ["1", "2"]
    assert table.positions.rows() == [(1, None), (2, None)]  # rows numbered, no lines in Parquet
    assert frame.get_column("created_at").to_list() == ["2024-01-05T10:00:00+00:00", None]
    assert frame.get_column("label").to_list() == ["1.0", None]


def test_corrupt_parquet(tmp_path: Path) -> None:
    err = _one_line_error(_write(tmp_path, "u.parquet", b"PAR1 not really"))
    assert "Parquet" in str(err)


def test_unknown_role_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown role"):
        read_table(_write(tmp_path, "u.csv", HEADER), role="accounts")
