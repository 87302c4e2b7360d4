"""Vocabulary shared by every stage: column names, artifact names and schemas.

Identifier and link kinds are declared in `graphfraud.identifiers`; the users artifact's columns
follow the registry a run uses (`users_schema`).

Artifacts are keyed by business ids (`user_id`, canonical identifier values). The Arrow schemas
below are the contract between stages and with the outside world (run directory, GraphStore,
service); stages may add columns, never rename or drop these.
"""

from __future__ import annotations

from enum import StrEnum

import polars as pl
import pyarrow as pa

from graphfraud.identifiers import BUILTIN, IdentifierRegistry, Source

# ---- input contract (column names) -------------------------------------------------------
USER_ID = "user_id"
USER_COLUMNS_REQUIRED = (USER_ID,)
PROFILE_COLUMNS = ("name", "created_at", "label")
"""Optional user columns that are not identifiers."""
DEVICE_COLUMNS_REQUIRED = (USER_ID, "device_id")
DEVICE_COLUMNS_OPTIONAL = ("ip", "seen_at")

# ---- run directory file names ---------------------------------------------------------------
USERS_FILE = "users.parquet"  # accepted, normalised users
DEVICES_FILE = "devices.parquet"  # accepted, normalised device sightings
LINKS_FILE = "links.parquet"
# user_a, user_b, kind, similarity: every look-alike pair at or above the similarity threshold,
# before the weight filter — what the next (incremental) night reuses instead of comparing again
LOOKALIKES_FILE = "lookalikes.parquet"
IDENTIFIERS_FILE = "identifiers.parquet"  # kind, value, support: how many users hold each value
RINGS_FILE = "rings.parquet"  # ring features, written once by the rings stage
RING_SCORES_FILE = "ring_scores.parquet"  # ring_id, ring_score, suspected_ring: score stage
MEMBERS_FILE = "ring_members.parquet"
RING_EVENTS_FILE = "ring_events.parquet"  # this run's ring events (`rings.lineage`)
RING_HISTORY_FILE = "ring_history.parquet"  # every ring event so far, carried run to run
RING_IDS_FILE = "ring_ids.parquet"  # every ring id ever issued, carried run to run
REPORT_FILE = "report.html"  # the run report (`graphfraud.report`)
# user_id, community: Leiden's communities before the dedicated-IP merge, kept by the next night
# for the components its changes do not touch
COMMUNITIES_FILE = "communities.parquet"
FEATURES_FILE = "features.parquet"
SCORES_FILE = "scores.parquet"
MANIFEST_FILE = "manifest.json"
QUARANTINE_DIR = "quarantine"
OPERATING_POINTS_FILE = "operating_points.parquet"  # per threshold: caught vs affected per 10k
CALIBRATION_FILE = "calibration.parquet"  # out-of-fold score bins vs labelled fraud rate
OPERATING_PLOT_FILE = "operating_points.svg"  # both, drawn
ONLINE_DIR = "online"  # the node state the online scorer runs the batch's model on
# In a runs directory (beside the run directories): the name of the run to serve, moved only
# after a run passed its checks (`graphfraud.schedule.pointer`); the service follows it.
CURRENT_FILE = "CURRENT"
RUN_LOCK_FILE = ".graphfraud-run.lock"  # in a run directory: held by the process writing it
NIGHTLY_LOCK_FILE = ".graphfraud-nightly.lock"  # in a runs directory: held by `graphfraud nightly`

# ---- artifact schemas -----------------------------------------------------------------------
_USER_PROFILE_FIELDS = (
    pa.field("name", pa.string()),
    pa.field("created_at", pa.timestamp("us", tz="UTC")),
    pa.field("label", pa.int8()),  # 1 fraud, 0 legit, null unknown
)


def user_columns_optional(registry: IdentifierRegistry = BUILTIN) -> tuple[str, ...]:
    """Optional columns of the users input: one per user-held identifier kind, then the profile."""
    return (*(s.column for s in registry.of_source(Source.USERS)), *PROFILE_COLUMNS)


def users_schema(registry: IdentifierRegistry = BUILTIN) -> pa.Schema:
    """users.parquet: `user_id`, per user-held kind its raw value (when kept) and canonical
    columns (e.g. `email_raw, email, email_local, email_domain`; null when unparseable), then the
    profile columns."""
    fields = [pa.field("user_id", pa.string(), nullable=False)]
    for spec in registry.of_source(Source.USERS):
        if spec.keep_raw:
            fields.append(pa.field(spec.raw_column, pa.string()))
        fields += [pa.field(c, pa.string()) for c in spec.normaliser.columns]
    return pa.schema([*fields, *_USER_PROFILE_FIELDS])


USER_COLUMNS_OPTIONAL = user_columns_optional()
USERS_SCHEMA = users_schema()  # the built-in kinds' users artifact

DEVICES_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("device_id", pa.string(), nullable=False),  # normalised
        pa.field(
            "ip", pa.string()
        ),  # normalised (compressed IPv6, IPv4-mapped folded), null if absent/bad
        pa.field("seen_at", pa.timestamp("us", tz="UTC")),
    ]
)

# One row per (pair, kind); user_a < user_b. `support` = how many users share the value(s):
# the reason a device used by 400 people weighs little.
LINKS_SCHEMA = pa.schema(
    [
        pa.field("user_a", pa.string(), nullable=False),
        pa.field("user_b", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # a link kind of the run's registry
        pa.field("value_a", pa.string()),  # canonical identifier of user_a behind the link
        pa.field("value_b", pa.string()),  # canonical identifier of user_b (== value_a when shared)
        pa.field("similarity", pa.float32(), nullable=False),  # 0..1, 1 for exact
        pa.field("support", pa.int32(), nullable=False),
        pa.field("weight", pa.float32(), nullable=False),  # 0..1 evidence strength
        pa.field("evidence", pa.string(), nullable=False),  # one human-readable sentence
    ]
)

RINGS_SCHEMA = pa.schema(
    [
        pa.field("ring_id", pa.string(), nullable=False),
        pa.field("size", pa.int32(), nullable=False),
        pa.field("n_links", pa.int32()),
        pa.field("density", pa.float32()),
        pa.field("mean_link_weight", pa.float32()),
        pa.field("shared_device_ratio", pa.float32()),
        pa.field("creation_span_hours", pa.float32()),
        pa.field("creation_burst", pa.float32()),
        pa.field("identifier_similarity", pa.float32()),
        pa.field("n_labelled", pa.int32()),
        pa.field("n_labelled_fraud", pa.int32()),
        pa.field("label_share", pa.float32()),
        pa.field("top_link_kinds", pa.string()),
        # the emerging ring of the day before it grew from (`rings.adopt`), null for most
        pa.field("grew_from", pa.string()),
    ]
)

RING_SCORES_SCHEMA = pa.schema(
    [
        pa.field("ring_id", pa.string(), nullable=False),
        pa.field("ring_score", pa.float32()),
        # the community is a suspected ring, not just a community (`scoring.suspected`)
        pa.field("suspected_ring", pa.bool_()),
    ]
)

MEMBERS_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("ring_id", pa.string(), nullable=False),
    ]
)


class RingEvent(StrEnum):
    """What happened to a ring id between the previous run and this one (`rings.lineage`)."""

    BORN = "born"  # a new ring, no earlier ring's part
    GREW = "grew"  # kept its id, not smaller (members may also have been swapped)
    SHRANK = "shrank"  # kept its id, smaller
    MERGED_INTO = "merged_into"  # most of its members are now in other_ring_id; id retired
    SPLIT_FROM = "split_from"  # a new ring holding a part of other_ring_id
    DISSOLVED = "dissolved"  # no ring holds most of its members; id retired


# One row per ring id an event happened to in one run (a ring id has at most one a run).
# ring_events.parquet holds this run's, ring_history.parquet every run's so far.
RING_EVENTS_SCHEMA = pa.schema(
    [
        pa.field("run_id", pa.string(), nullable=False),  # the run that recorded the event
        pa.field("at", pa.timestamp("us", tz="UTC"), nullable=False),  # that run's start
        pa.field("ring_id", pa.string(), nullable=False),
        pa.field("event", pa.string(), nullable=False),  # a RingEvent
        # merged_into: the ring it went into; split_from: the ring it came from; born: the
        # emerging ring it grew from (`grew_from`), else null
        pa.field("other_ring_id", pa.string()),
        pa.field("size_before", pa.int32(), nullable=False),  # 0 for born / split_from
        pa.field("size_after", pa.int32(), nullable=False),  # 0 for merged_into / dissolved
        # members shared with the ring it is matched to: grew / shrank its own kept members,
        # merged_into / split_from those shared with other_ring_id; null for born / dissolved
        pa.field("shared", pa.int32()),
    ]
)

# Every ring id ever issued, so a retired id is never issued again.
RING_IDS_SCHEMA = pa.schema(
    [
        pa.field("ring_id", pa.string(), nullable=False),
        pa.field("born_run_id", pa.string(), nullable=False),  # the run that issued it
        pa.field("retired_run_id", pa.string()),  # the run it merged or dissolved in; null: live
    ]
)

SCORES_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("score", pa.float32(), nullable=False),
        pa.field("ring_id", pa.string()),
        pa.field("ring_score", pa.float32()),
        pa.field("reasons", pa.list_(pa.string())),
        pa.field("model_version", pa.string(), nullable=False),
        # the user's community is a suspected ring (false outside any community)
        pa.field("suspected_ring", pa.bool_()),
        pa.field("band", pa.string()),  # allow / review / decline (`scoring.decision`)
    ]
)

TRUTH_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("is_fraud", pa.int8(), nullable=False),
        pa.field("ring_id", pa.string()),  # the planted ring, null for honest users
        pa.field("ring_kind", pa.string()),
    ]
)

QUARANTINE_REASON = "reason"
INPUT_ROW = "input_row"
"""1-based record number of a row in its input file (the header is not counted)."""
INPUT_LINE = "input_line"
"""1-based line of the file on which a CSV record starts (header = line 1); null for Parquet."""
INPUT_TEXT = "input_text"
"""The raw line of a CSV record that could not be split into columns; null otherwise."""


def polars_schema(schema: pa.Schema) -> dict[str, pl.DataType]:
    """The polars dtypes of an Arrow artifact schema, by column name."""
    frame = pl.from_arrow(schema.empty_table())
    assert isinstance(frame, pl.DataFrame)
    return dict(frame.schema)


def conform_frame(frame: pl.DataFrame, schema: pa.Schema) -> pl.DataFrame:
    """Select and cast `frame`'s columns to an artifact schema, in schema order (extras dropped).

    An empty frame missing columns becomes an empty frame of the schema."""
    dtypes = polars_schema(schema)
    if frame.is_empty() and not set(dtypes) <= set(frame.columns):
        return pl.DataFrame(schema=dtypes)
    return frame.select([pl.col(name).cast(dtype) for name, dtype in dtypes.items()])
