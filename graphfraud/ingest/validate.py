"""Validate raw input tables, quarantine the rows that break the contract, normalise the rest.

`ingest` takes the `InputTable`s `read_table` returns and gives back frames that match
`users_schema(registry)` / `DEVICES_SCHEMA`, the quarantined rows (`input_row`, `input_line`, the
original columns as strings, `input_text`, `reason`) and counts where
`input == accepted + quarantined` for every role.

Each quarantined row carries the *first* reason that applies, in this order:

| role | reason | when |
|---|---|---|
| both | `malformed_csv_row:<problem>` | the CSV record does not split into the header's columns |
| both | `missing_user_id` | user_id empty, or a null token (`NaN`, `null`, `None`, …) |
| devices | `missing_device_id` | device_id empty or a null token |
| both | `invalid_utf8` | a key (user_id / device_id) holds U+FFFD, i.e. bytes that were not UTF-8 |
| both | `control_char_in_id` | a key holds a control character (C0, DEL, C1: NUL, ESC, …) |
| both | `absurd_field:<column>` | a contract column longer than `max_field_chars` |
| users | `duplicate_user_id` | the id appears on rows that differ: *all* copies are quarantined |
| users | `duplicate_row` | an exact copy of an earlier row: the first is kept, copies quarantined |
| users | `bad_created_at` | created_at present but not ISO-8601 (or outside 1900..2100) |
| users | `bad_label` | label not one of 1/0/1.0/0.0/true/false/empty |
| devices | `bad_seen_at` | seen_at present but not ISO-8601 |
| devices | `unknown_user` | user_id is not an accepted user |

A malformed CSV record (`too_many_fields`, `too_few_fields`, `stray_quote`, `unterminated_quote`;
see `records`) has its raw line in `input_text` and null columns. A control character inside an id
makes it a different id from the one a person types or looks up, and logs and graph tools mangle
it (an id with a NUL was accepted, scored null and served as known with score 0.0).

Duplicates: an id on rows that disagree has no trustworthy version (which email is the real one?),
and silently keeping the first would let export order decide a fraud score — so every copy goes
to quarantine for a person to resolve. Byte-identical rows are a harmless re-export: one is kept.

Optional fields that fail to parse do not cost the user its row: they are nulled and *counted*,
per field, in `Ingested.rejected_fields` (the manifest's `counts.<role>.rejected_fields`), so a feed
whose phones stopped parsing shows up in the run record, not only as fewer links:

| role | field | nulled when | raw kept |
|---|---|---|---|
| users | `email` | not one `@`; local part or domain not plain ASCII (`a@b@c`, IDN) | `email_raw` |
| users | `phone` | not a valid number; letters among the digits (`+91 98AB CD1234`) | `phone_raw` |
| devices | `ip` | not an IPv4/IPv6 address | no |

Counts rather than a column: the raw value sits beside the null canonical one in `users.parquet`,
so the rows are one filter away, and the per-night numbers are where an operator looks first.
Emoji in names are kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from graphfraud.config import IngestSettings
from graphfraud.errors import InputDataError
from graphfraud.identifiers import BUILTIN, IdentifierRegistry, Source
from graphfraud.ingest.normalize import clean_text_expr, device_expr, name_expr, normalize_ips
from graphfraud.ingest.read import InputTable, describe_columns
from graphfraud.schema import (
    DEVICE_COLUMNS_OPTIONAL,
    DEVICE_COLUMNS_REQUIRED,
    DEVICES_SCHEMA,
    INPUT_LINE,
    INPUT_ROW,
    INPUT_TEXT,
    QUARANTINE_REASON,
    USER_COLUMNS_REQUIRED,
    conform_frame,
    polars_schema,
    user_columns_optional,
    users_schema,
)

ROLE_USERS = "users"
ROLE_DEVICES = "devices"
REPLACEMENT_CHAR = "\ufffd"
CONTROL_CHARS = r"[\x00-\x1f\x7f-\x9f]"
"""C0, DEL and C1: never part of an id (leading/trailing whitespace is stripped before the check,
so `u1\\t` is `u1`; a device id's inner whitespace is folded to one space first)."""

_P = "__gf_"  # prefix of working columns, so they cannot clash with a user's extra columns


@dataclass(frozen=True)
class Ingested:
    """Accepted, normalised frames; quarantined rows, counts and rejected fields per role."""

    users: pl.DataFrame
    devices: pl.DataFrame
    quarantine: dict[str, pl.DataFrame]
    counts: dict[str, dict[str, int]]
    rejected_fields: dict[str, dict[str, int]]
    """Per role, per optional field: accepted rows whose value was present but nulled."""


# ---- field parsers (vectorised) -------------------------------------------------------------

_TIMESTAMP = (
    r"(?i)^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[t ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?)?"
    r"(?:[ ]?(z|utc|[+-][0-9]{2}(?::?[0-9]{2})?))?$"
)
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.f%z"
MIN_YEAR, MAX_YEAR = 1900, 2100


def parse_timestamps(raw: pl.Series) -> pl.Series:
    """ISO-8601 text → Datetime(us, UTC); null when absent or unparseable.

    Accepts a date alone, `T` or space before the time, minutes/seconds/fractions optional, and
    `Z`, `UTC`, `+05:30`, `+0530` or `+05` as offset; a naive time is taken as UTC. The pieces are
    rebuilt into one fixed format so polars parses every variant in a single vectorised pass
    (staged columns, so the regex runs once per value, not once per piece).
    """
    frame = pl.DataFrame({"raw": raw.cast(pl.String)})
    frame = frame.with_columns(parts=pl.col("raw").str.extract_groups(_TIMESTAMP)).unnest("parts")
    offset = pl.col("8").str.to_lowercase().str.replace(":", "", literal=True)
    frame = frame.with_columns(offset=offset)
    offset = pl.col("offset")
    frame = frame.with_columns(
        offset=pl.when(offset.is_null() | offset.is_in(["z", "utc"]))
        .then(pl.lit("+0000"))
        .when(offset.str.len_chars() == 3)
        .then(pl.concat_str(offset, pl.lit("00")))
        .otherwise(offset),
        fraction=pl.concat_str(pl.col("7").fill_null(""), pl.lit("000000")).str.slice(0, 6),
    )
    text = pl.concat_str(
        pl.col("1"),
        pl.lit("-"),
        pl.col("2"),
        pl.lit("-"),
        pl.col("3"),
        pl.lit("T"),
        pl.col("4").fill_null("00"),
        pl.lit(":"),
        pl.col("5").fill_null("00"),
        pl.lit(":"),
        pl.col("6").fill_null("00"),
        pl.lit("."),
        pl.col("fraction"),
        pl.col("offset"),
    )
    parsed = frame.select(
        text.str.to_datetime(_TIMESTAMP_FORMAT, strict=False, time_unit="us")
        .dt.convert_time_zone("UTC")
        .alias("ts")
    ).with_columns(year=pl.col("ts").dt.year())
    ok = (pl.col("year") >= MIN_YEAR) & (pl.col("year") <= MAX_YEAR)
    return parsed.select(pl.when(ok).then(pl.col("ts"))).to_series().alias(raw.name)


def timestamp_expr(expr: pl.Expr) -> pl.Expr:
    """`parse_timestamps` as an expression over a whole column."""
    return expr.map_batches(parse_timestamps, return_dtype=TIMESTAMP_DTYPE)


TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")


_LABELS = {"1": 1, "1.0": 1, "true": 1, "0": 0, "0.0": 0, "false": 0}


def label_expr(expr: pl.Expr) -> pl.Expr:
    """Label text (already cleaned) → Int8 1/0; null when absent or not a known spelling."""
    return expr.str.to_lowercase().replace_strict(_LABELS, default=None, return_dtype=pl.Int8)


# ---- helpers --------------------------------------------------------------------------------


def _check_columns(frame: pl.DataFrame, required: Sequence[str], file: str) -> None:
    for column in required:
        if column not in frame.columns:
            raise InputDataError(
                "required column missing",
                file=file,
                column=column,
                hint=describe_columns(frame.columns),
            )


def _prepare(table: InputTable, optional: Sequence[str]) -> pl.DataFrame:
    """All columns as strings, the row's place in its file, and absent optional columns as nulls."""
    frame = table.rows
    strings = frame.with_columns(
        pl.col(c).cast(pl.String) for c, t in frame.schema.items() if t != pl.String
    )
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in optional if c not in frame.columns]
    positions = table.positions.select(
        pl.col(INPUT_ROW).alias(f"{_P}row"), pl.col(INPUT_LINE).alias(f"{_P}line")
    )
    return pl.concat([strings.with_columns(*missing), positions], how="horizontal")


def _first_reason(rules: Sequence[tuple[pl.Expr, str]]) -> pl.Expr:
    """The first reason whose condition holds, else null (the row is accepted)."""
    reason = pl.lit(None, dtype=pl.String)
    for condition, code in reversed(rules):  # built inside-out so the first rule wins
        reason = pl.when(condition.fill_null(False)).then(pl.lit(code)).otherwise(reason)
    return reason


def _absurd_rules(columns: Sequence[str], max_chars: int) -> list[tuple[pl.Expr, str]]:
    return [(pl.col(c).str.len_chars() > max_chars, f"absurd_field:{c}") for c in columns]


_QUARANTINE_OWN = (INPUT_ROW, INPUT_LINE, INPUT_TEXT, QUARANTINE_REASON)


def _quarantine(checked: pl.DataFrame, table: InputTable) -> pl.DataFrame:
    """Rejected rows in file order: input_row, input_line, the original columns unchanged,
    input_text (the raw line of a record that did not split, whose columns are null), reason.

    An original column named like one of ours is kept as `<name>_input`."""
    original = table.rows.columns
    renames = {c: f"{c}_input" for c in original if c in _QUARANTINE_OWN}
    rejected = checked.filter(pl.col(f"{_P}reason").is_not_null()).select(
        pl.col(f"{_P}row").cast(pl.Int64).alias(INPUT_ROW),
        pl.col(f"{_P}line").cast(pl.Int64).alias(INPUT_LINE),
        *(pl.col(c).cast(pl.String).alias(renames.get(c, c)) for c in original),
        pl.lit(None, dtype=pl.String).alias(INPUT_TEXT),
        pl.col(f"{_P}reason").alias(QUARANTINE_REASON),
    )
    malformed = table.malformed.select(
        INPUT_ROW,
        INPUT_LINE,
        *(pl.lit(None, dtype=pl.String).alias(renames.get(c, c)) for c in original),
        INPUT_TEXT,
        QUARANTINE_REASON,
    )
    return pl.concat([rejected, malformed]).sort(INPUT_ROW)


# ---- the stage ------------------------------------------------------------------------------


def _check_users(
    frame: pl.DataFrame, settings: IngestSettings, registry: IdentifierRegistry
) -> pl.DataFrame:
    original = [c for c in frame.columns if not c.startswith(_P)]
    contract = [*USER_COLUMNS_REQUIRED, *user_columns_optional(registry)]
    uid = pl.col(f"{_P}uid")
    exact_first = pl.struct(original).is_first_distinct()
    return (
        frame.lazy()
        .with_columns(
            clean_text_expr(pl.col("user_id")).alias(f"{_P}uid"),
            clean_text_expr(pl.col("created_at")).alias(f"{_P}created_raw"),
            clean_text_expr(pl.col("label")).alias(f"{_P}label_raw"),
            exact_first.alias(f"{_P}exact_first"),
        )
        .with_columns(
            timestamp_expr(pl.col(f"{_P}created_raw")).alias(f"{_P}created_at"),
            label_expr(pl.col(f"{_P}label_raw")).alias(f"{_P}label"),
            pl.len().over(uid).alias(f"{_P}copies"),
            pl.col(f"{_P}exact_first").sum().over(uid).alias(f"{_P}versions"),
        )
        .with_columns(
            _first_reason(
                [
                    (uid.is_null(), "missing_user_id"),
                    (uid.str.contains(REPLACEMENT_CHAR, literal=True), "invalid_utf8"),
                    (uid.str.contains(CONTROL_CHARS), "control_char_in_id"),
                    *_absurd_rules(contract, settings.max_field_chars),
                    (
                        (pl.col(f"{_P}copies") > 1) & (pl.col(f"{_P}versions") > 1),
                        "duplicate_user_id",
                    ),
                    ((pl.col(f"{_P}copies") > 1) & ~pl.col(f"{_P}exact_first"), "duplicate_row"),
                    (
                        pl.col(f"{_P}created_raw").is_not_null()
                        & pl.col(f"{_P}created_at").is_null(),
                        "bad_created_at",
                    ),
                    (
                        pl.col(f"{_P}label_raw").is_not_null() & pl.col(f"{_P}label").is_null(),
                        "bad_label",
                    ),
                ]
            ).alias(f"{_P}reason")
        )
        .collect()
    )


def _normalise_users(
    accepted: pl.DataFrame, settings: IngestSettings, registry: IdentifierRegistry
) -> pl.DataFrame:
    """Every user-held identifier kind through its registry normaliser (raw kept where the kind
    says so), plus the profile columns."""
    parts: list[pl.DataFrame] = [accepted.select(pl.col(f"{_P}uid").alias("user_id"))]
    for spec in registry.of_source(Source.USERS):
        raw = accepted.select(clean_text_expr(pl.col(spec.column)).alias(spec.raw_column))
        if spec.keep_raw:
            parts.append(raw)
        parts.append(spec.normaliser.vector(raw.to_series(), settings.default_region))
    parts.append(
        accepted.select(
            name_expr(pl.col("name")).alias("name"),
            pl.col(f"{_P}created_at").alias("created_at"),
            pl.col(f"{_P}label").alias("label"),
        )
    )
    return conform_frame(pl.concat(parts, how="horizontal"), users_schema(registry))


def _check_devices(
    frame: pl.DataFrame, known_users: pl.Series, settings: IngestSettings
) -> pl.DataFrame:
    contract = [*DEVICE_COLUMNS_REQUIRED, *DEVICE_COLUMNS_OPTIONAL]
    uid, dev = pl.col(f"{_P}uid"), pl.col(f"{_P}device")
    return (
        frame.lazy()
        .with_columns(
            clean_text_expr(pl.col("user_id")).alias(f"{_P}uid"),
            device_expr(pl.col("device_id")).alias(f"{_P}device"),
            clean_text_expr(pl.col("seen_at")).alias(f"{_P}seen_raw"),
        )
        .with_columns(timestamp_expr(pl.col(f"{_P}seen_raw")).alias(f"{_P}seen_at"))
        .with_columns(
            _first_reason(
                [
                    (uid.is_null(), "missing_user_id"),
                    (dev.is_null(), "missing_device_id"),
                    (
                        uid.str.contains(REPLACEMENT_CHAR, literal=True)
                        | dev.str.contains(REPLACEMENT_CHAR, literal=True),
                        "invalid_utf8",
                    ),
                    (
                        uid.str.contains(CONTROL_CHARS) | dev.str.contains(CONTROL_CHARS),
                        "control_char_in_id",
                    ),
                    *_absurd_rules(contract, settings.max_field_chars),
                    (
                        pl.col(f"{_P}seen_raw").is_not_null() & pl.col(f"{_P}seen_at").is_null(),
                        "bad_seen_at",
                    ),
                    (~uid.is_in(known_users.implode()), "unknown_user"),
                ]
            ).alias(f"{_P}reason")
        )
        .collect()
    )


def _normalise_devices(accepted: pl.DataFrame) -> pl.DataFrame:
    devices = accepted.select(
        pl.col(f"{_P}uid").alias("user_id"),
        pl.col(f"{_P}device").alias("device_id"),
        pl.col("ip"),
        pl.col(f"{_P}seen_at").alias("seen_at"),
    )
    devices = devices.with_columns(normalize_ips(devices.get_column("ip")).alias("ip"))
    return conform_frame(devices, DEVICES_SCHEMA)


def ingest(
    users: InputTable | pl.DataFrame,
    devices: InputTable | pl.DataFrame | None,
    settings: IngestSettings,
    *,
    users_file: str | None = None,
    devices_file: str | None = None,
    registry: IdentifierRegistry = BUILTIN,
    known_users: pl.Series | None = None,
) -> Ingested:
    """Validate, quarantine and normalise users (and device sightings, when given).

    Takes what `read_table` returns, or a frame built elsewhere (then `users_file` /
    `devices_file` name it in errors). Raises `InputDataError` (naming the file and column) when a
    required column is missing; every other problem is a quarantined row, never an exception.
    `registry` names the identifier columns a users file may hold (built-in kinds plus declared
    ones). `known_users`: ids a device sighting may name besides the accepted users (a delta's
    sightings of users it does not carry, `ingest.delta`).
    """
    users_in = _as_table(users, users_file or ROLE_USERS)
    _check_columns(users_in.rows, USER_COLUMNS_REQUIRED, users_in.file)
    checked = _check_users(_prepare(users_in, user_columns_optional(registry)), settings, registry)
    accepted = checked.filter(pl.col(f"{_P}reason").is_null())
    users_out = _normalise_users(accepted, settings, registry)
    quarantine = {ROLE_USERS: _quarantine(checked, users_in)}
    counts = {ROLE_USERS: _counts(users_in.height, users_out.height, quarantine[ROLE_USERS].height)}
    rejected = {ROLE_USERS: _rejected_raw(users_out)}

    devices_out = pl.DataFrame(schema=polars_schema(DEVICES_SCHEMA))
    if devices is not None:
        devices_in = _as_table(devices, devices_file or ROLE_DEVICES)
        _check_columns(devices_in.rows, DEVICE_COLUMNS_REQUIRED, devices_in.file)
        checked_devices = _check_devices(
            _prepare(devices_in, DEVICE_COLUMNS_OPTIONAL),
            users_out.get_column("user_id")
            if known_users is None
            else pl.concat([users_out.get_column("user_id"), known_users.cast(pl.String)]),
            settings,
        )
        accepted_devices = checked_devices.filter(pl.col(f"{_P}reason").is_null())
        devices_out = _normalise_devices(accepted_devices)
        quarantine[ROLE_DEVICES] = _quarantine(checked_devices, devices_in)
        counts[ROLE_DEVICES] = _counts(
            devices_in.height, devices_out.height, quarantine[ROLE_DEVICES].height
        )
        typed_ips = accepted_devices.select(clean_text_expr(pl.col("ip")).is_not_null().sum())
        rejected[ROLE_DEVICES] = {
            "ip": int(typed_ips.item()) - devices_out.get_column("ip").count()
        }
    return Ingested(
        users=users_out,
        devices=devices_out,
        quarantine=quarantine,
        counts=counts,
        rejected_fields=rejected,
    )


def _as_table(table: InputTable | pl.DataFrame, file: str) -> InputTable:
    return table if isinstance(table, InputTable) else InputTable.of(table, file)


def _rejected_raw(users: pl.DataFrame) -> dict[str, int]:
    """Per `<field>_raw` / `<field>` pair: values typed but nulled by normalisation."""
    fields = [c.removesuffix("_raw") for c in users.columns if c.endswith("_raw")]
    counts = users.select(
        (pl.col(f"{f}_raw").is_not_null() & pl.col(f).is_null()).sum().alias(f) for f in fields
    )
    return {f: int(counts.get_column(f).item()) for f in fields}


def _counts(n_input: int, accepted: int, quarantined: int) -> dict[str, int]:
    if n_input != accepted + quarantined:  # an invariant of this module, not of the input
        raise AssertionError(f"ingest lost rows: {n_input} != {accepted} + {quarantined}")
    return {"input": n_input, "accepted": accepted, "quarantined": quarantined}
