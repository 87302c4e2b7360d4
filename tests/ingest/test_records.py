"""split_records against a plain character-by-character reference, and the cases it is for."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from graphfraud.ingest.read import read_table
from graphfraud.ingest.records import split_records

Reference = list[tuple[int, str | None, list[str] | None]]


def _tokenize(
    lines: list[str], i: int, sep: str, max_lines: int
) -> tuple[list[str] | None, int, str | None]:
    """RFC 4180 from line `i`: (fields, lines used, error), error `stray` (a quote where none may
    be) or `open` (a quoted value still open at the end of the file or of `max_lines`)."""
    fields: list[str] = []
    field: list[str] = []
    state = "start"  # start of a field | unquoted | quoted | quote (a quote inside quoted)
    j = i
    while True:
        for ch in lines[j]:
            if state == "start" and ch == '"':
                state = "quoted"
            elif state in ("start", "unquoted", "quote") and ch == sep:
                fields.append("".join(field))
                field, state = [], "start"
            elif state in ("start", "unquoted"):
                if ch == '"':
                    return None, j - i + 1, "stray"
                field.append(ch)
                state = "unquoted"
            elif state == "quoted":
                if ch == '"':
                    state = "quote"
                else:
                    field.append(ch)
            elif ch == '"':  # state == "quote": `""` stands for a quote
                field.append('"')
                state = "quoted"
            else:
                return None, j - i + 1, "stray"
        if state != "quoted":
            fields.append("".join(field))
            return fields, j - i + 1, None
        if j + 1 >= len(lines) or j - i + 1 >= max_lines:
            return None, j - i + 1, "open"
        field.append("\n")
        j += 1


def reference(lines: list[str], sep: str, k: int, max_lines: int) -> Reference:
    """(0-based line, problem, fields) per record, by the rule `records` states: a record that
    would span lines but does not close into `k` fields costs its first line only."""
    out: Reference = []
    i = 0
    while i < len(lines):
        if lines[i] == "":
            i += 1
            continue
        fields, used, error = _tokenize(lines, i, sep, max_lines)
        if error == "stray" and used == 1:
            out.append((i, "stray_quote", None))
        elif fields is not None and used == 1 and len(fields) != k:
            out.append((i, "too_many_fields" if len(fields) > k else "too_few_fields", None))
        elif fields is not None and len(fields) == k:
            out.append((i, None, fields))
            i += used
            continue
        else:
            out.append((i, "unterminated_quote", None))
        i += 1
    return out


# Fragments rather than characters, so closing-and-reopening lines (`a","b`) are common.
line_text = st.lists(
    st.sampled_from(["a", ",", '"', " ", ";", '","', '",', ',"', '""']), max_size=5
).map("".join)


@settings(max_examples=500, deadline=None)
@example(['1,"a', 'b","c', 'd"'], 2, 4, True, ",")  # closes and reopens on one line
@example(['1,"a', 'b","c', 'd"'], 2, 2, True, ",")  # ... but longer than max_lines
@example(['a,"x""', 'y"",z"', "b,c"], 2, 3, False, ",")  # escaped quotes on both sides of a break
@example(['"', '"', ""], 1, 2, True, ";")  # a value that is one line break
@given(
    st.lists(line_text, max_size=12),
    st.integers(1, 4),
    st.integers(1, 4),
    st.booleans(),
    st.sampled_from([",", ";"]),
)
def test_matches_the_reference(
    lines: list[str], k: int, max_lines: int, terminated: bool, sep: str
) -> None:
    data = ("h\n" + "\n".join(lines) + ("\n" if terminated and lines else "")).encode()
    records = split_records(data, 2, sep, k, max_lines=max_lines)
    expected = reference(lines, sep, k, max_lines)
    problems: list[str | None] = [None] * len(records)
    for row in records.malformed.iter_rows(named=True):
        problems[row["record"]] = row["problem"]
    got = [(int(line) - 2, p) for line, p in zip(records.line, problems, strict=True)]
    assert got == [(i, p) for i, p, _ in expected]
    for start, stop, good, (_, _, fields) in zip(
        records.start, records.stop, records.good, expected, strict=True
    ):
        if good:  # a good record's bytes parse, with Python's csv, to the reference's fields
            text = data[start:stop].decode()
            assert next(csv.reader(io.StringIO(text), delimiter=sep, strict=True)) == fields


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(st.text(st.sampled_from('ab,"\n ;'), max_size=5), min_size=2, max_size=2)))
def test_what_a_csv_writer_writes_reads_back_whole(rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([["user_id", "name"], *rows])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "u.csv"
        path.write_text(buffer.getvalue())
        table = read_table(path, role="users")
    assert table.malformed.height == 0
    assert [[v or "" for v in r] for r in table.rows.rows()] == rows
    assert table.positions.get_column("input_row").to_list() == list(range(1, len(rows) + 1))


def test_a_quote_left_open_costs_its_line_only() -> None:
    body = 'u1,"open,x\nu2,b,c\nu3,c,d\nu4,"x\ny",z\n'
    records = split_records(("user_id,name,extra\n" + body).encode(), 19, ",", 3)
    assert records.malformed.select("line", "problem").rows() == [(2, "unterminated_quote")]
    assert records.line.tolist() == [2, 3, 4, 5]
    assert records.good.tolist() == [False, True, True, True]


@pytest.mark.parametrize(("max_lines", "good"), [(3, True), (2, False)])
def test_a_quoted_value_spans_at_most_max_lines(max_lines: int, good: bool) -> None:
    data = b'a,b\n1,"x\ny\nz"\n2,w\n'
    records = split_records(data, 4, ",", 2, max_lines=max_lines)
    assert bool(records.good[0]) is good
    assert records.good[-1]
