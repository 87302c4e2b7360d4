"""A night's delta: new, changed and erased users and new device sightings, applied to the
previous run's normalised artifacts to give tonight's full users and devices.

The users delta is a users file (same columns) with one more column, `op`:

| op | row |
|---|---|
| `upsert` (or empty) | a new user, or every field of an existing one (the row replaces it) |
| `delete` | an erasure request (India's DPDP Act): only `user_id` is read |

The devices delta holds only new sightings (the devices file's columns); a changed user keeps
its earlier sightings. Upserts go through the same validation and quarantine as a full users file;
a row whose `op` is anything else is quarantined as `bad_op`, a delete without an id as
`missing_user_id`. A delete wins over an upsert of the same id in the same delta, and every trace
of an erased user goes: its rows in the previous artifacts, its sightings in the delta (dropped,
not quarantined) and its rows in tonight's quarantine. Deleting an id the previous run does not
hold is a no-op (counted as `deleted_unknown`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from graphfraud.config import IngestSettings
from graphfraud.identifiers import BUILTIN, IdentifierRegistry
from graphfraud.ingest.normalize import clean_text_expr
from graphfraud.ingest.read import InputTable
from graphfraud.ingest.validate import ROLE_DEVICES, ROLE_USERS, Ingested, ingest
from graphfraud.schema import INPUT_LINE, INPUT_ROW, INPUT_TEXT, QUARANTINE_REASON

OP_COLUMN = "op"
UPSERT = "upsert"
DELETE = "delete"


@dataclass(frozen=True)
class Delta:
    """Tonight's full users and devices (`ingested`, as a full snapshot's ingest gives them) and
    the erased ids."""

    ingested: Ingested
    deleted: pl.Series


def ingest_delta(
    users: InputTable,
    devices: InputTable | None,
    settings: IngestSettings,
    *,
    previous_users: pl.DataFrame,
    previous_devices: pl.DataFrame,
    registry: IdentifierRegistry = BUILTIN,
) -> Delta:
    """Validate the delta, quarantine its bad rows and apply it to the previous artifacts."""
    rows = users.rows
    op = (
        clean_text_expr(pl.col(OP_COLUMN)).str.to_lowercase().fill_null(UPSERT)
        if OP_COLUMN in rows.columns
        else pl.lit(UPSERT)
    )
    uid = clean_text_expr(pl.col("user_id"))
    marked = rows.select(op.alias("op"), uid.alias("uid"))
    is_upsert = marked["op"] == UPSERT
    is_delete = (marked["op"] == DELETE) & marked["uid"].is_not_null()
    bad = ~is_upsert & ~is_delete
    reasons = marked.select(
        pl.when(pl.col("op") == DELETE)
        .then(pl.lit("missing_user_id"))
        .otherwise(pl.lit("bad_op"))
        .alias(QUARANTINE_REASON)
    )[QUARANTINE_REASON]
    deleted = marked.filter(is_delete)["uid"].unique().sort()

    upserts = InputTable(
        users.file, rows.filter(is_upsert), users.positions.filter(is_upsert), users.malformed
    )
    erased_sightings = 0
    if devices is not None:
        sighted = devices.rows.select(clean_text_expr(pl.col("user_id"))).to_series()
        keep = ~sighted.is_in(deleted.implode()).fill_null(False)
        erased_sightings = int((~keep).sum())
        devices = InputTable(
            devices.file,
            devices.rows.filter(keep),
            devices.positions.filter(keep),
            devices.malformed,
        )
    previous_ids = previous_users["user_id"]
    staying = previous_ids.filter(~previous_ids.is_in(deleted.implode()))
    today = ingest(upserts, devices, settings, registry=registry, known_users=staying)

    upserted = today.users.filter(~pl.col("user_id").is_in(deleted.implode()))
    replaced = pl.concat([deleted, upserted["user_id"]])
    full_users = pl.concat(
        [
            previous_users.filter(~pl.col("user_id").is_in(replaced.implode())),
            upserted.select(previous_users.columns),
        ]
    )
    full_devices = pl.concat(
        [
            previous_devices.filter(~pl.col("user_id").is_in(deleted.implode())),
            today.devices.select(previous_devices.columns),
        ]
    )
    bad_rows = _quarantined(users, bad, reasons)
    quarantine = {
        ROLE_USERS: pl.concat([today.quarantine[ROLE_USERS], bad_rows], how="diagonal_relaxed")
        .select(today.quarantine[ROLE_USERS].columns)
        .sort(INPUT_ROW),
        **{k: v for k, v in today.quarantine.items() if k != ROLE_USERS},
    }
    erased = {role: _erase(rows, deleted) for role, rows in quarantine.items()}
    n_users = today.counts[ROLE_USERS]
    counts = {
        **today.counts,
        ROLE_USERS: {
            "input": users.height,
            "accepted": n_users["accepted"] + int(is_delete.sum()),
            "quarantined": n_users["quarantined"] + bad_rows.height,
            "upserted": n_users["accepted"],
            "deleted": int(previous_ids.is_in(deleted.implode()).sum()),
            "deleted_unknown": int((~deleted.is_in(previous_ids.implode())).sum()),
            "materialised": full_users.height,
            "erased_from_quarantine": quarantine[ROLE_USERS].height - erased[ROLE_USERS].height,
        },
    }
    if ROLE_DEVICES in counts:
        counts[ROLE_DEVICES] = {
            **counts[ROLE_DEVICES],
            "input": counts[ROLE_DEVICES]["input"] + erased_sightings,
            "erased": erased_sightings,
            "materialised": full_devices.height,
        }
    return Delta(
        ingested=Ingested(
            users=full_users,
            devices=full_devices,
            quarantine=erased,
            counts=counts,
            rejected_fields=today.rejected_fields,
        ),
        deleted=deleted,
    )


def _quarantined(table: InputTable, bad: pl.Series, reasons: pl.Series) -> pl.DataFrame:
    """The delta's rows with a bad `op`, laid out like the ingest's quarantine."""
    return (
        pl.concat(
            [
                table.positions.select(
                    pl.col(INPUT_ROW).cast(pl.Int64), pl.col(INPUT_LINE).cast(pl.Int64)
                ),
                table.rows.select(pl.all().cast(pl.String)),
                pl.DataFrame({QUARANTINE_REASON: reasons}),
            ],
            how="horizontal",
        )
        .filter(bad)
        .with_columns(pl.lit(None, dtype=pl.String).alias(INPUT_TEXT))
    )


def _erase(quarantine: pl.DataFrame, deleted: pl.Series) -> pl.DataFrame:
    """`quarantine` without the rows of erased users (their PII must not stay anywhere). A
    record that did not split has only its raw line: it goes when the line holds an erased id
    (which may take a stranger's line with it; erasure errs on that side)."""
    if deleted.is_empty():
        return quarantine
    held = clean_text_expr(pl.col("user_id")).is_in(deleted.implode()).fill_null(False)
    raw = pl.col(INPUT_TEXT).str.contains_any(deleted.to_list()).fill_null(False)
    return quarantine.filter(~(held | raw))
