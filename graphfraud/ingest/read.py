"""Read an input table (CSV or Parquet) into an all-string polars frame, or fail in one line.

Everything is read as text: type decisions (timestamps, labels) belong to `validate`, where a bad
value quarantines one row instead of failing the file. The reader is strict only about what makes
the whole file unusable — missing/unreadable file, empty file, no required column, malformed CSV —
and says which file and column in one `InputDataError` line.

CSV specifics: a UTF-8 BOM is dropped; gzip is detected by its magic bytes; bytes that are not UTF-8
are decoded with U+FFFD replacement (`validate` quarantines rows whose keys carry it, reason
`invalid_utf8`); the delimiter is sniffed from the header among `, ; TAB |`, so a `;` export reads
as well as a `,` one. Header names are stripped and contract names matched case-insensitively.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import polars as pl

from graphfraud.errors import InputDataError
from graphfraud.schema import (
    DEVICE_COLUMNS_OPTIONAL,
    DEVICE_COLUMNS_REQUIRED,
    USER_COLUMNS_OPTIONAL,
    USER_COLUMNS_REQUIRED,
)

PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_MAGIC = b"PAR1"
_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
DELIMITERS = (",", ";", "\t", "|")

ROLE_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "users": (USER_COLUMNS_REQUIRED, USER_COLUMNS_OPTIONAL),
    "devices": (DEVICE_COLUMNS_REQUIRED, DEVICE_COLUMNS_OPTIONAL),
    "truth": (("user_id", "is_fraud"), ("ring_id", "ring_kind")),
}
"""Per role: (required, optional) contract columns."""


def read_table(path: Path, *, role: str, optional: tuple[str, ...] | None = None) -> pl.DataFrame:
    """The file at `path` as a frame of String columns, checked to hold `role`'s required columns.

    `role` is `users` or `devices`. Parquet is chosen by suffix (`.parquet`, `.pq`) or magic bytes;
    anything else is read as CSV. A header-only file gives zero rows. `optional` overrides the
    role's optional contract columns (a run with declared identifier kinds has more).
    """
    if role not in ROLE_COLUMNS:
        raise ValueError(f"unknown role {role!r}; expected one of {sorted(ROLE_COLUMNS)}")
    required, default_optional = ROLE_COLUMNS[role]
    optional = default_optional if optional is None else optional
    file = str(path)
    data = _read_bytes(path)
    if path.suffix.lower() in PARQUET_SUFFIXES or data.startswith(_PARQUET_MAGIC):
        frame = _read_parquet(data, file)
    else:
        frame = _read_csv(data, file, required)
    frame = _canonical_headers(frame, (*required, *optional), file)
    for column in required:
        if column not in frame.columns:
            raise InputDataError(
                f"required {role} column missing",
                file=file,
                column=column,
                hint=f"found columns: {', '.join(frame.columns) or 'none'}",
            )
    return frame


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


def _read_csv(data: bytes, file: str, required: tuple[str, ...]) -> pl.DataFrame:
    if data.startswith(_GZIP_MAGIC):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise InputDataError(f"corrupt gzip file: {exc}", file=file) from None
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.strip():
        raise InputDataError("empty file", file=file, hint="expected a header line")
    separator = _sniff_separator(data, required)
    try:
        return pl.read_csv(
            io.BytesIO(data),
            separator=separator,
            infer_schema=False,
            encoding="utf8-lossy",
            raise_if_empty=False,
        )
    except Exception as exc:  # polars raises ComputeError/NoDataError/... for malformed CSV
        raise InputDataError(
            f"malformed CSV: {_one_line(exc)}",
            file=file,
            hint="check quoting: a value holding the separator must be quoted",
        ) from None


def _sniff_separator(data: bytes, required: tuple[str, ...]) -> str:
    """The delimiter whose header split yields the required columns; else the most frequent one.

    Falls back to `,` so a file with no recognisable header fails later with the missing column
    named, which is the most useful message.
    """
    header = data.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r")
    wanted = {c.lower() for c in required}
    for separator in DELIMITERS:
        names = {part.strip().strip('"').strip().lower() for part in header.split(separator)}
        if wanted <= names:
            return separator
    counts = {separator: header.count(separator) for separator in DELIMITERS}
    best = max(DELIMITERS, key=lambda s: counts[s])
    return best if counts[best] else ","


def _canonical_headers(frame: pl.DataFrame, contract: tuple[str, ...], file: str) -> pl.DataFrame:
    """Strip header names; rename case variants of contract columns (`User_ID` → `user_id`)."""
    by_lower = {c.lower(): c for c in contract}
    renames: dict[str, str] = {}
    for column in frame.columns:
        name = column.strip().lstrip("\ufeff").strip()
        renames[column] = by_lower.get(name.lower(), name)
    targets = list(renames.values())
    duplicates = sorted({t for t in targets if targets.count(t) > 1})
    if duplicates:
        raise InputDataError("column appears more than once", file=file, column=duplicates[0])
    return frame.rename(renames)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
