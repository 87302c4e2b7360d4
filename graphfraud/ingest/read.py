"""Read an input table (CSV or Parquet) as text, or fail in one line.

Everything is read as text: type decisions (timestamps, labels) belong to `validate`, where a bad
value quarantines one row instead of failing the file. A CSV record that cannot be split into the
header's columns (see `records`) is kept apart, with its line number and raw text, for `validate`
to quarantine; every other record goes on. Only what makes the whole *file* unusable stops it, in
one `InputDataError` line naming the file (and column): missing/unreadable/empty file, a header
that does not parse or repeats a column, rows delimited differently from the header, a missing
required column, corrupt gzip or Parquet. Messages never quote a data row (PII); header names are
shown only when they look like column names.

CSV specifics: a UTF-8 BOM is dropped; gzip is detected by its magic bytes; old-Mac CR line ends
are read as lines; bytes that are not UTF-8 are decoded with U+FFFD replacement (`validate`
quarantines rows whose keys carry it, reason `invalid_utf8`); the delimiter is sniffed from the
header among `, ; TAB |`, so a `;` export reads as well as a `,` one. Header names are stripped
and contract names matched case-insensitively.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from graphfraud.errors import InputDataError
from graphfraud.ingest.records import Records, complete_fields, split_records
from graphfraud.schema import (
    DEVICE_COLUMNS_OPTIONAL,
    DEVICE_COLUMNS_REQUIRED,
    INPUT_LINE,
    INPUT_ROW,
    INPUT_TEXT,
    QUARANTINE_REASON,
    USER_COLUMNS_OPTIONAL,
    USER_COLUMNS_REQUIRED,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", ";", "\t", "|")
MALFORMED_ROW = "malformed_csv_row"
"""Reason prefix of a CSV record that could not be split: `malformed_csv_row:<problem>`."""

ROLE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "users": (USER_COLUMNS_REQUIRED, USER_COLUMNS_OPTIONAL),
    "devices": (DEVICE_COLUMNS_REQUIRED, DEVICE_COLUMNS_OPTIONAL),
    "truth": (("user_id", "is_fraud"), ("ring_id", "ring_kind")),
}
"""Per role: (required, optional) contract columns."""

_MALFORMED = {
    INPUT_ROW: pl.Int64,
    INPUT_LINE: pl.Int64,
    INPUT_TEXT: pl.String,
    QUARANTINE_REASON: pl.String,
}
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True)
class InputTable:
    """One input file as text: the rows that split into its columns, and the records that did not.

    `input = rows + malformed`; every record keeps its place in the file (`input_row`, and for CSV
    `input_line`), so a quarantined row can be found and fixed at its source.
    """

    file: str
    rows: pl.DataFrame
    """The file's columns, all String, in file order."""
    positions: pl.DataFrame
    """`input_row`, `input_line` of each row of `rows`."""
    malformed: pl.DataFrame
    """`input_row`, `input_line`, `input_text` (the raw line) and `reason` of each record that
    could not be split into columns."""

    @classmethod
    def of(cls, frame: pl.DataFrame, file: str) -> InputTable:
        """A frame read elsewhere (Parquet, a caller's): rows numbered 1.., no line numbers."""
        positions = pl.DataFrame(
            {
                INPUT_ROW: pl.int_range(1, frame.height + 1, eager=True, dtype=pl.Int64),
                INPUT_LINE: pl.repeat(None, frame.height, dtype=pl.Int64, eager=True),
            }
        )
        return cls(file, frame, positions, pl.DataFrame(schema=_MALFORMED))

    @property
    def height(self) -> int:
        """Records in the file: rows + malformed."""
        return self.rows.height + self.malformed.height


def read_table(path: Path, *, role: str, optional: tuple[str, ...] | None = None) -> InputTable:
    """The file at `path` as text, checked to hold `role`'s required columns.

    `role` is `users`, `devices` or `truth`. Parquet is chosen by suffix (`.parquet`, `.pq`) or
    magic bytes; anything else is read as CSV. A header-only file gives zero rows. `optional`
    overrides the role's optional contract columns (a run with declared identifier kinds has
    more).
    """
    if role not in ROLE_COLUMNS:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLE_COLUMNS)}")
    required, default_optional = ROLE_COLUMNS[role]
    optional = default_optional if optional is None else optional
    file = str(path)
    data = _read_bytes(path)
    if path.suffix.lower() in PARQUET_SUFFIXES or data.startswith(_PARQUET_MAGIC):
        frame = _read_parquet(data, file)
        names = _canonical_names(frame.columns, required + optional, file)
        table = InputTable.of(frame.rename(dict(zip(frame.columns, names, strict=True))), file)
    else:
        table = _read_csv(data, file, required, optional)
    for column in required:
        if column not in table.rows.columns:
            raise InputDataError(
                f"required {role} column missing",
                file=file,
                column=column,
                hint=describe_columns(table.rows.columns),
            )
    return table


def describe_columns(names: list[str]) -> str:
    """`found columns: …` for an error message, hiding names that do not look like column names:
    a file without a header has a data row (an email, a phone) in their place."""
    shown = [n if _COLUMN_NAME.fullmatch(n) else "…" for n in names if n]
    return f"found columns: {', '.join(shown) or 'none'}"


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputDataError("file not found", file=str(path)) from None
    except IsADirectoryError:
        raise InputDataError("is a directory, expected a file", file=str(path)) from None
    except OSError as exc:
        raise InputDataError(f"cannot read file: {exc.strerror or exc}", file=str(path)) from None


def _read_parquet(data: bytes, file: str) -> pl.DataFrame:
    if not data:
        raise InputDataError("empty file", file=file)
    try:
        frame = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars/arrow raise many types for corrupt files
        raise InputDataError(f"not a readable Parquet file: {_one_line(exc)}", file=file) from None
    return frame.with_columns(_as_string(frame.get_column(c)) for c in frame.columns)


def _as_string(series: pl.Series) -> pl.Series:
    """A Parquet column as text: timestamps in ISO-8601, nested values as their repr."""
    dtype = series.dtype
    if dtype == pl.String:
        return series
    if isinstance(dtype, pl.Datetime):
        fmt = "%Y-%m-%dT%H:%M:%S%.f" + ("%:z" if dtype.time_zone else "")
        return series.dt.to_string(fmt)
    if dtype == pl.Date:
        return series.dt.to_string("%Y-%m-%d")
    if dtype == pl.Binary:
        return pl.Series(
            series.name,
            [None if v is None else v.decode("utf-8", errors="replace") for v in series],
            dtype=pl.String,
        )
    try:
        return series.cast(pl.String)
    except Exception:  # nested types have no string cast; extra columns only, so rows are few
        return pl.Series(
            series.name, [None if v is None else str(v) for v in series], dtype=pl.String
        )


def _read_csv(
    data: bytes, file: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> InputTable:
    data = _csv_text(data, file)
    separator = _sniff_separator(data, required)
    newline = data.find(b"\n")
    begin = len(data) if newline < 0 else newline + 1
    header = data[: len(data) if newline < 0 else newline].decode().removesuffix("\r")
    names = _canonical_names(_header_names(header, separator, file), required + optional, file)
    records = split_records(data, begin, separator, len(names))
    _check_rows_use_the_header_separator(records, separator, len(names), file)
    rows = _split_rows(data, begin, records, names, separator)
    good = records.good
    positions = pl.DataFrame(
        {
            INPUT_ROW: pl.Series(np.flatnonzero(good) + 1, dtype=pl.Int64),
            INPUT_LINE: pl.Series(records.line[good], dtype=pl.Int64),
        }
    )
    bad = records.malformed
    malformed = bad.select(
        (pl.col("record") + 1).alias(INPUT_ROW),
        pl.col("line").alias(INPUT_LINE),
        pl.col("text").alias(INPUT_TEXT),
        (pl.lit(f"{MALFORMED_ROW}:") + pl.col("problem")).alias(QUARANTINE_REASON),
    )
    return InputTable(file, rows, positions, malformed)


def _csv_text(data: bytes, file: str) -> bytes:
    """Decompressed, BOM-less, LF- or CRLF-terminated, valid UTF-8 bytes of a CSV file."""
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputDataError(f"corrupt gzip file: {exc}", file=file) from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data or data.isspace():
        raise InputDataError("empty file", file=file, hint="expected a header line")
    if b"\n" not in data and b"\r" in data:  # classic Mac line ends
        data = data.replace(b"\r", b"\n")
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            data = data.decode("utf-8", errors="replace").encode("utf-8")
    return data


def _sniff_separator(data: bytes, required: tuple[str, ...]) -> str:
    """The delimiter whose header split yields the required columns; else the most frequent one.

    Falls back to `,` so a file with no recognisable header fails later with the missing column
    named, which is the most useful message.
    """
    newline = data.find(b"\n")
    header = data[: None if newline < 0 else newline].decode("utf-8", errors="replace")
    header = header.rstrip("\r")
    wanted = {c.lower() for c in required}
    for separator in DELIMITERS:
        names = {part.strip().strip('"').strip().lower() for part in header.split(separator)}
        if wanted <= names:
            return separator
    counts = {separator: header.count(separator) for separator in DELIMITERS}
    best = max(DELIMITERS, key=lambda s: counts[s])
    return best if counts[best] else ","


def _header_names(header: str, separator: str, file: str) -> list[str]:
    if not header:
        return [""]
    if complete_fields(header.encode(), separator) is None:
        raise InputDataError(
            "the header line does not parse as CSV", file=file, hint="check its quotes"
        )
    return next(csv.reader([header], delimiter=separator, quotechar='"', strict=True))


def _canonical_names(names: list[str], contract: tuple[str, ...], file: str) -> list[str]:
    """Header names stripped; case variants of contract columns renamed (`User_ID` → `user_id`).

    A name given twice is ambiguous (which `email` is the real one?), so the file stops.
    """
    by_lower = {c.lower(): c for c in contract}
    canonical = []
    for name in names:
        stripped = name.strip().lstrip("\ufeff").strip()
        canonical.append(by_lower.get(stripped.lower(), stripped))
    duplicates = sorted({n for n in canonical if canonical.count(n) > 1})
    if duplicates:
        raise InputDataError("column appears more than once", file=file, column=duplicates[0])
    return canonical


def _check_rows_use_the_header_separator(
    records: Records, separator: str, n_fields: int, file: str
) -> None:
    """Stop when most rows have the wrong field count *because* they use another delimiter than
    the header (a TAB header over comma rows would otherwise quarantine every row, or worse)."""
    wrong = records.malformed.filter(pl.col("problem").is_in(["too_many_fields", "too_few_fields"]))
    if n_fields < 2 or 2 * wrong.height <= len(records):
        return
    sample = wrong.get_column("text").head(200).to_list()
    for other in DELIMITERS:
        if other == separator:
            continue
        fits = sum(
            len(next(csv.reader([line], delimiter=other, quotechar='"'), [])) == n_fields
            for line in sample
        )
        if 2 * fits > len(sample):
            raise InputDataError(
                f"the header is delimited by {_name(separator)} but the rows by {_name(other)}",
                file=file,
                hint="export the file with one delimiter",
            )


def _name(separator: str) -> str:
    return "TAB" if separator == "\t" else repr(separator)


def _split_rows(
    data: bytes, begin: int, records: Records, names: list[str], separator: str
) -> pl.DataFrame:
    """The well-formed records split into String columns by polars' CSV reader.

    When no record was set aside (the common case) polars reads the file as it is, past its
    one-line header; else the well-formed records are cut out of the file with a byte mask.
    """
    schema = {name: pl.String for name in names}
    good = records.good
    if not good.any():
        return pl.DataFrame(schema=schema)
    gapless = bool(good.all()) and records.start[0] == begin and records.stop[-1] == len(data)
    if gapless and (records.start[1:] == records.stop[:-1]).all():
        source, skip = data, 1
    else:
        edges = np.zeros(len(data) + 1, dtype=np.int8)
        edges[records.start[good]] += 1  # records do not overlap: each index once per array
        edges[records.stop[good]] -= 1
        keep = np.cumsum(edges[:-1], dtype=np.int8).astype(bool)
        source, skip = np.frombuffer(data, dtype=np.uint8)[keep].tobytes(), 0
    rows = pl.read_csv(
        source,
        has_header=False,
        skip_rows=skip,
        schema=schema,
        separator=separator,
        quote_char='"',
        raise_if_empty=False,
    )
    if rows.height != int(good.sum()):  # the record splitter and polars disagree: a bug here
        raise AssertionError(f"CSV split {rows.height} rows, expected {int(good.sum())}")
    return rows


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
