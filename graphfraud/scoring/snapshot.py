"""The score columns both `ScoreStore` backends answer from, and the in-memory backend.

Layout (chosen for a 1M-user run in well under 1.5 GB and a lookup in about a microsecond):
- `ScoreColumns` holds, per store position, compact numpy columns (scores as float64 rounded to
  6 decimals so JSON shows `0.87`, not `0.8700000047683716`) and small codes into tables of
  distinct values (ring ids, reason lists, model versions), plus the user ids as Arrow strings;
- identifier indexes for the online scorer (`IdentifierIndex`) are sorted Arrow string columns
  with an aligned numpy position array, searched by bisection: no Python object per identifier;
- every array can come from the run's Parquet (`InMemoryScoreStore`, whose `user_id → position`
  is a plain dict) or from the memory-mapped files of `scoring.mapped`.

A snapshot is immutable once built; the service swaps whole snapshots (see
`graphfraud.service.state`). Building one holds the GIL only in short chunks so a server keeps
answering from the old snapshot while the new one loads.

`neutral_score` (what an unknown user gets) is the snapshot's base rate: the mean score over all
scored users, i.e. the expected risk of an account we know nothing about.
"""

from __future__ import annotations

import bisect
import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import orjson
import polars as pl
import pyarrow as pa

from graphfraud import schema
from graphfraud.config import DecisionSettings
from graphfraud.errors import ArtifactError
from graphfraud.identifiers import (
    BUILTIN,
    IdentifierRegistry,
    Linkage,
    Source,
    registry_from_manifest,
)
from graphfraud.linking.keys import handle_stem_expr, local_stem_expr, with_name_key
from graphfraud.linking.lookalike import MIN_HANDLE_LETTERS, SUFFIX, NumberBackground
from graphfraud.model.ego import ids_digest
from graphfraud.rundir import RunDir
from graphfraud.scoring.decision import Bands
from graphfraud.scoring.store import RingRecord, ScoreRecord
from graphfraud.scoring.suspected import RingCut

SCORE_DECIMALS = 6
_CHUNK = 5_000  # rows per GIL-holding step while building the id dict (~1 ms each)
RANGE_CACHE = 4_096  # value ranges remembered per index

Rows = npt.NDArray[np.uint32]
_DEFAULT_BANDS = Bands.of(DecisionSettings())


@dataclass(frozen=True)
class SnapshotInfo:
    """What is loaded: shown by /readyz, /v1/admin/snapshot and the metrics."""

    run_id: str
    run_dir: Path
    model_version: str  # the most common model version among the rows
    scored_at: str  # ISO-8601, from the manifest (else the scores file's mtime)
    loaded_at: float  # epoch seconds
    load_seconds: float
    users: int
    rings: int
    neutral_score: float
    online_ready: bool  # identifier indexes present (users.parquet was in the run)
    # the run's suspected-ring cut (`scoring.suspected`): emerging rings are judged by it too
    ring_cut: float = float("inf")
    # Facts for the swap gate (`graphfraud.service.gate`); not shown to clients.
    status: str | None = None  # the manifest's `status` (None: no manifest or no status)
    null_scores: int = 0  # rows whose score was null or NaN (served as 0.0)
    unversioned: int = 0  # rows without a model version (served the snapshot's)

    def public(self) -> dict[str, Any]:
        """JSON-safe view without the server's filesystem path."""
        return {
            "run_id": self.run_id,
            "model_version": self.model_version,
            "scored_at": self.scored_at,
            "loaded_at": datetime.fromtimestamp(self.loaded_at, UTC).isoformat(),
            "load_seconds": round(self.load_seconds, 3),
            "users": self.users,
            "rings": self.rings,
            "neutral_score": self.neutral_score,
            "online_ready": self.online_ready,
            "ring_cut": None if self.ring_cut == float("inf") else self.ring_cut,
        }


Arrays = dict[str, npt.NDArray[Any]]  # a component's arrays by name (what a store file holds)


def int64_view(offsets: npt.NDArray[Any]) -> memoryview:
    """A memoryview of int64 offsets: indexing it returns a Python int in ~30 ns, a fraction of
    numpy's scalar indexing (a probe makes ~2·log2(n)); zero-copy over a memory-mapped file."""
    return np.ascontiguousarray(offsets, dtype=np.int64).data.cast("B").cast("q")


class Strings:
    """A string column as Arrow lays it out: int64 offsets and UTF-8 bytes, read by position
    without a Python object per string. Built from a polars column (`of`) or from the arrays of
    a memory-mapped store (`from_arrays`), where every process reading it shares its pages."""

    def __init__(self, offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> None:
        self.offsets, self.data = offsets, data
        self._off = int64_view(offsets)
        self._data = np.ascontiguousarray(data, dtype=np.uint8).data  # zero-copy when mapped
        self._n = len(offsets) - 1

    @classmethod
    def of(cls, column: pl.Series) -> Self:
        return cls(*arrow_strings(column))

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str) -> Self:
        return cls(arrays[f"{prefix}.offsets"], arrays[f"{prefix}.data"])

    def arrays(self, prefix: str) -> Arrays:
        return {f"{prefix}.offsets": self.offsets, f"{prefix}.data": self.data}

    def __len__(self) -> int:
        return self._n

    def to_series(self) -> pl.Series:
        """The column as a polars Series (for batch-side work: sorting, digests)."""
        array = pa.LargeStringArray.from_buffers(
            self._n, pa.py_buffer(np.ascontiguousarray(self.offsets)), pa.py_buffer(self.data)
        )
        series = pl.from_arrow(array)
        assert isinstance(series, pl.Series)
        return series.cast(pl.String)

    def __getitem__(self, i: int) -> bytes:
        return bytes(self._data[self._off[i] : self._off[i + 1]])

    def text(self, i: int) -> str:
        return self[i].decode("utf-8")


class SortedStrings(Strings):
    """A sorted string column searched by bisection over its Arrow buffers (UTF-8 bytes compare
    in code point order, as polars sorts): ~10 µs a probe at 75M keys, no Python object per
    key, where a polars `search_sorted` call costs ~0.2 ms of query planning."""

    def range_of(self, value: str) -> tuple[int, int]:
        """[lo, hi) of `value` (lo == hi when absent: one bisection, not two — most probes, the
        one-deletion variants of a stem, are absent)."""
        probe = value.encode("utf-8")
        lo = bisect.bisect_left(self, probe)
        if lo == self._n or self[lo] != probe:
            return lo, lo
        return lo, bisect.bisect_right(self, probe, lo)

    def starts_with(self, lo: int, hi: int, prefix: str) -> npt.NDArray[np.bool_]:
        head = prefix.encode("utf-8")
        return np.array([self[i].startswith(head) for i in range(lo, hi)], dtype=np.bool_)


def arrow_strings(column: pl.Series) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]:
    """(int64 offsets from 0, UTF-8 bytes) of a string column (nulls read as "")."""
    arrow = column.cast(pl.String).rechunk().to_arrow()
    arrow = arrow.combine_chunks() if hasattr(arrow, "combine_chunks") else arrow
    buffers = arrow.buffers()
    wide = str(arrow.type) in ("large_string", "large_utf8")
    raw_offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)
    offsets: npt.NDArray[np.int64] = raw_offsets[
        arrow.offset : arrow.offset + len(arrow) + 1
    ].astype(np.int64)
    if not len(offsets):
        return np.zeros(1, np.int64), np.zeros(0, np.uint8)
    start, end = int(offsets[0]), int(offsets[-1])
    raw = buffers[2]
    data = (
        np.frombuffer(raw, dtype=np.uint8)[start:end].copy()
        if raw is not None
        else np.zeros(0, np.uint8)
    )
    return offsets - start, data


class RowStrings:
    """One optional string per store position (a fuzzy kind's value, handle, provider), read by
    row without a DataFrame operation: Arrow's offsets and bytes, and its validity."""

    def __init__(self, strings: Strings, valid: npt.NDArray[np.bool_]) -> None:
        self.strings, self.valid = strings, valid

    @classmethod
    def of(cls, column: pl.Series) -> RowStrings:
        return cls(Strings.of(column), column.is_not_null().to_numpy())

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str) -> RowStrings:
        return cls(Strings.from_arrays(arrays, prefix), arrays[f"{prefix}.valid"])

    def arrays(self, prefix: str) -> Arrays:
        return {**self.strings.arrays(prefix), f"{prefix}.valid": self.valid}

    def take(self, rows: npt.NDArray[Any]) -> list[str | None]:
        text, valid = self.strings.text, self.valid
        return [text(r) if valid[r] else None for r in rows.tolist()]


class SortedValues:
    """value → store positions holding it, as a sorted string column plus aligned positions."""

    def __init__(self, keys: SortedStrings, rows: Rows) -> None:
        self.keys = keys
        self.rows = rows
        # One request probes a value up to three times (links, hub bar, feature support), and
        # ring-mates signing up together probe the same ones: remember the latest ranges.
        self._range = functools.lru_cache(maxsize=RANGE_CACHE)(self.keys.range_of)

    @classmethod
    def build(cls, frame: pl.DataFrame, value: str) -> SortedValues:
        """From a frame with columns `row` and `value`; nulls and duplicate (value, row) dropped."""
        pairs = (
            frame.select(pl.col(value).alias("v"), pl.col("row"))
            .drop_nulls()
            .filter(pl.col("v") != "")
            .unique()
            .sort("v", "row")
        )
        return cls(
            SortedStrings.of(pairs.get_column("v")),
            pairs.get_column("row").cast(pl.UInt32).to_numpy(),
        )

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str) -> SortedValues:
        return cls(SortedStrings.from_arrays(arrays, prefix), arrays[f"{prefix}.rows"])

    def arrays(self, prefix: str) -> Arrays:
        return {**self.keys.arrays(prefix), f"{prefix}.rows": self.rows}

    def __len__(self) -> int:
        return len(self.keys)

    def bounds(self, values: list[str]) -> list[tuple[int, int]]:
        """[lo, hi) of each value in one vectorised bisection."""
        if not values or len(self.keys) == 0:
            return [(0, 0)] * len(values)
        return [self._range(v) for v in values]

    def lookup(self, value: str) -> Rows:
        ((lo, hi),) = self.bounds([value])
        return self.rows[lo:hi]


class NumberIndex:
    """Phone numbers (E.164 digits as int64), sorted, for exact and sequential-gap lookups."""

    def __init__(self, numbers: npt.NDArray[np.int64], rows: Rows) -> None:
        self.numbers = numbers
        self.rows = rows

    @classmethod
    def build(cls, frame: pl.DataFrame, value: str) -> NumberIndex:
        nums = (
            frame.select(
                pl.col(value).str.strip_prefix("+").cast(pl.Int64, strict=False).alias("n"), "row"
            )
            .drop_nulls()
            .unique()
            .sort("n", "row")
        )
        return cls(
            nums.get_column("n").to_numpy().astype(np.int64),
            nums.get_column("row").cast(pl.UInt32).to_numpy(),
        )

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str) -> NumberIndex:
        return cls(arrays[f"{prefix}.numbers"], arrays[f"{prefix}.rows"])

    def arrays(self, prefix: str) -> Arrays:
        return {f"{prefix}.numbers": self.numbers, f"{prefix}.rows": self.rows}

    def window(self, number: int, gap: int) -> tuple[npt.NDArray[np.int64], Rows]:
        """Numbers within ±gap of `number` and their rows."""
        lo = int(np.searchsorted(self.numbers, number - gap, side="left"))
        hi = int(np.searchsorted(self.numbers, number + gap, side="right"))
        return self.numbers[lo:hi], self.rows[lo:hi]


class HandleOrder:
    """A look-alike kind's comparable handles sorted within their provider, forwards and
    reversed: the batch's sorted-neighbourhood pass (`blocking.handle_candidate_pairs`) for one
    new handle is its `window - 1` neighbours on either side in each order."""

    def __init__(self, forward: SortedValues, backward: SortedValues) -> None:
        self.forward = forward
        self.backward = backward

    @classmethod
    def build(cls, frame: pl.DataFrame, local: str, domain: str) -> HandleOrder:
        usable = frame.filter(pl.col(local).str.count_matches(r"[a-z]") >= MIN_HANDLE_LETTERS)

        def keyed(text: pl.Expr) -> pl.DataFrame:
            return usable.select(
                "row", pl.concat_str([pl.col(domain), pl.lit(_SEP), text]).alias("k")
            )

        return cls(
            SortedValues.build(keyed(pl.col(local)), "k"),
            SortedValues.build(keyed(pl.col(local).str.reverse()), "k"),
        )

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str) -> HandleOrder:
        return cls(
            SortedValues.from_arrays(arrays, f"{prefix}.fwd"),
            SortedValues.from_arrays(arrays, f"{prefix}.bwd"),
        )

    def arrays(self, prefix: str) -> Arrays:
        return {**self.forward.arrays(f"{prefix}.fwd"), **self.backward.arrays(f"{prefix}.bwd")}

    def neighbours(self, local: str, domain: str, window: int) -> Rows:
        """Rows within `window - 1` places of the handle in either order, on its provider."""
        parts = []
        for table, text in ((self.forward, local), (self.backward, local[::-1])):
            ((at, _),) = table.bounds([f"{domain}{_SEP}{text}"])
            lo, hi = max(at - (window - 1), 0), min(at + window - 1, len(table))
            same = table.keys.starts_with(lo, hi, f"{domain}{_SEP}")
            parts.append(table.rows[lo:hi][same])
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.uint32)


_SEP = "\x1f"


class StemNumbers:
    """Accounts per local stem (a name across providers) and their handles' suffix numbers, for
    the look-alike rules' support and numbered runs (`linking.lookalike`): rows sorted by
    (local stem, number), -1 for a handle without a number."""

    def __init__(
        self,
        stems: SortedStrings,
        numbers: npt.NDArray[np.int64],
        rows: Rows,
        background: NumberBackground,
    ) -> None:
        self.stems = stems
        self.numbers = numbers
        self.rows = rows
        self.background = background  # every name's numbers, for the sequential support

    @classmethod
    def build(cls, frame: pl.DataFrame, local: str) -> StemNumbers:
        keyed = (
            frame.select(
                local_stem_expr(local).alias("s"),
                pl.col(local).str.extract(SUFFIX, 1).cast(pl.Int64, strict=False).fill_null(-1)
                .alias("n"),
                "row",
            )
            .drop_nulls("s")
            .unique("row")
            .sort("s", "n", "row")
        )  # fmt: skip
        numbers = keyed.get_column("n").to_numpy().astype(np.int64)
        return cls(
            SortedStrings.of(keyed.get_column("s")),
            numbers,
            keyed.get_column("row").cast(pl.UInt32).to_numpy(),
            NumberBackground.of(numbers[numbers >= 0], keyed.height),
        )

    @classmethod
    def from_arrays(cls, arrays: Arrays, prefix: str) -> StemNumbers:
        return cls(
            SortedStrings.from_arrays(arrays, prefix),
            arrays[f"{prefix}.numbers"],
            arrays[f"{prefix}.rows"],
            NumberBackground(
                arrays[f"{prefix}.background"],
                arrays[f"{prefix}.background_cumulative"],
                int(arrays[f"{prefix}.background_handles"][0]),
            ),
        )

    def arrays(self, prefix: str) -> Arrays:
        return {
            **self.stems.arrays(prefix),
            f"{prefix}.numbers": self.numbers,
            f"{prefix}.rows": self.rows,
            f"{prefix}.background": self.background.numbers,
            f"{prefix}.background_cumulative": self.background.cumulative,
            f"{prefix}.background_handles": np.array([self.background.handles], np.int64),
        }

    def _slice(self, stems: list[str]) -> list[tuple[int, int]]:
        if not stems or len(self.stems) == 0:
            return [(0, 0)] * len(stems)
        return [self.stems.range_of(v) for v in stems]

    def counts(self, stems: list[str]) -> list[int]:
        """Accounts on each local stem."""
        return [hi - lo for lo, hi in self._slice(stems)]

    def rows_of(self, stem: str) -> Rows:
        """Every row on the stem."""
        ((a, b),) = self._slice([stem])
        return self.rows[a:b]

    def numbered(self, stem: str, lo: int, hi: int) -> tuple[npt.NDArray[np.int64], Rows]:
        """(numbers, rows) of the stem's handles numbered within [lo, hi]."""
        ((a, b),) = self._slice([stem])
        numbers = self.numbers[a:b]
        i = int(np.searchsorted(numbers, max(lo, 0), side="left"))
        j = int(np.searchsorted(numbers, hi, side="right"))
        return numbers[i:j], self.rows[a + i : a + j]


@dataclass(frozen=True)
class IdentifierIndex:
    """Canonical identifiers of the snapshot's users, per kind of the run's registry, for the
    online scorer (`scoring.online`): exact values for every kind, handle stems for look-alike
    kinds, sorted numbers for sequence kinds, and the value (and handle) of each row for the
    fuzzy kinds (one value per user).

    Its arrays hold store positions; `holders_of` turns them into user ids, so no position
    leaves the matching (`scoring.online`). Both store backends hold the same arrays: built
    here from the run's Parquet, or memory-mapped from the run's score store
    (`scoring.mapped`)."""

    registry: IdentifierRegistry
    user_ids: Strings  # user id by store position
    exact: dict[str, SortedValues]
    stems: dict[str, SortedValues]
    numbers: dict[str, NumberIndex]
    value_of_row: dict[str, RowStrings]
    handle_of_row: dict[str, RowStrings]
    domain_of_row: dict[str, RowStrings] = field(default_factory=dict)
    stem_numbers: dict[str, StemNumbers] = field(default_factory=dict)
    handle_order: dict[str, HandleOrder] = field(default_factory=dict)
    # look-alike kinds: name key (`keys.name_key`) → rows of the comparable handles holding it
    names: dict[str, SortedValues] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        users: pl.DataFrame,
        devices: pl.DataFrame | None,
        user_ids: Strings,
        registry: IdentifierRegistry = BUILTIN,
    ) -> IdentifierIndex:
        """`users` and `devices` carry a `row` column (the store position of their user_id) and
        the canonical columns of the registry's kinds (absent columns index nothing)."""
        n_rows = len(user_ids)
        exact: dict[str, SortedValues] = {}
        stems: dict[str, SortedValues] = {}
        numbers: dict[str, NumberIndex] = {}
        value_of_row: dict[str, RowStrings] = {}
        handle_of_row: dict[str, RowStrings] = {}
        domain_of_row: dict[str, RowStrings] = {}
        stem_numbers: dict[str, StemNumbers] = {}
        handle_order: dict[str, HandleOrder] = {}
        names: dict[str, SortedValues] = {}
        rows = pl.DataFrame({"row": pl.arange(0, n_rows, dtype=pl.UInt32, eager=True)})
        for spec in registry.kinds:
            frame = users if spec.source == Source.USERS else devices
            columns = list(spec.normaliser.columns)
            frame = _with_columns(frame, columns)
            exact[spec.name] = SortedValues.build(frame, spec.value_column)
            if all(r.match == Linkage.EXACT for r in spec.links):
                continue
            per_row = rows.join(
                frame.select("row", *columns).unique("row"), on="row", how="left"
            ).sort("row")
            value_of_row[spec.name] = RowStrings.of(per_row.get_column(spec.value_column))
            if spec.rule(Linkage.LOOKALIKE) is not None and spec.handle_columns is not None:
                local, domain = spec.handle_columns
                stems[spec.name] = SortedValues.build(
                    frame.with_columns(handle_stem_expr(local, domain).alias("_stem")), "_stem"
                )
                handle_of_row[spec.name] = RowStrings.of(per_row.get_column(local))
                domain_of_row[spec.name] = RowStrings.of(per_row.get_column(domain))
                stem_numbers[spec.name] = StemNumbers.build(frame, local)
                handle_order[spec.name] = HandleOrder.build(frame, local, domain)
                names[spec.name] = _name_keys(frame, local, domain)
            if spec.rule(Linkage.SEQUENCE) is not None:
                numbers[spec.name] = NumberIndex.build(frame, spec.value_column)
        return cls(
            registry, user_ids, exact, stems, numbers, value_of_row, handle_of_row,
            domain_of_row, stem_numbers, handle_order, names,
        )  # fmt: skip

    def holders_of(self, rows: npt.NDArray[Any]) -> list[str]:
        """The user ids at these store positions."""
        text = self.user_ids.text
        return [text(r) for r in rows.tolist()]

    def arrays(self) -> Arrays:
        """Every array of the index, named by part and kind (what `from_arrays` reads back)."""
        out: Arrays = {}
        parts: list[tuple[str, dict[str, Any]]] = [
            ("exact", self.exact), ("stems", self.stems), ("numbers", self.numbers),
            ("value", self.value_of_row), ("handle", self.handle_of_row),
            ("domain", self.domain_of_row), ("stem_numbers", self.stem_numbers),
            ("order", self.handle_order), ("names", self.names),
        ]  # fmt: skip
        for part, tables in parts:
            for kind, table in tables.items():
                out.update(table.arrays(f"ix.{part}.{kind}"))
        return out

    @classmethod
    def from_arrays(
        cls, arrays: Arrays, user_ids: Strings, registry: IdentifierRegistry
    ) -> IdentifierIndex:
        """The index over `arrays` (memory-mapped), for the kinds of `registry` they hold."""

        def kinds(part: str, suffix: str) -> list[str]:
            head = f"ix.{part}."
            return [
                name[len(head) : -len(suffix)]
                for name in arrays
                if name.startswith(head)
                and name.endswith(suffix)
                and "." not in name[len(head) : -len(suffix)]
            ]

        def each(part: str, suffix: str, read: Any) -> dict[str, Any]:
            return {k: read(arrays, f"ix.{part}.{k}") for k in kinds(part, suffix)}

        return cls(
            registry=registry,
            user_ids=user_ids,
            exact=each("exact", ".rows", SortedValues.from_arrays),
            stems=each("stems", ".rows", SortedValues.from_arrays),
            numbers=each("numbers", ".rows", NumberIndex.from_arrays),
            value_of_row=each("value", ".valid", RowStrings.from_arrays),
            handle_of_row=each("handle", ".valid", RowStrings.from_arrays),
            domain_of_row=each("domain", ".valid", RowStrings.from_arrays),
            stem_numbers=each("stem_numbers", ".rows", StemNumbers.from_arrays),
            handle_order=each("order", ".fwd.rows", HandleOrder.from_arrays),
            names=each("names", ".rows", SortedValues.from_arrays),
        )


def _name_keys(frame: pl.DataFrame, local: str, domain: str) -> SortedValues:
    """Name key → rows, over the handles the batch compares (`link.handle_frame`), so a key's
    rows are the crowd the batch counts on it."""
    usable = frame.filter(
        pl.col(local).is_not_null()
        & pl.col(domain).is_not_null()
        & (pl.col(local).str.count_matches(r"[a-z]") >= MIN_HANDLE_LETTERS)
    )
    return SortedValues.build(with_name_key(usable, local, "_name"), "_name")


def _with_columns(frame: pl.DataFrame | None, columns: list[str]) -> pl.DataFrame:
    """`row` + `columns` of `frame`, absent ones as nulls (a run without that kind's column)."""
    if frame is None:
        frame = pl.DataFrame(schema={"row": pl.UInt32})
    missing = [pl.lit(None, dtype=pl.String).alias(c) for c in columns if c not in frame.columns]
    return frame.with_columns(missing).select("row", *columns)


def _codes(column: pl.Series) -> tuple[npt.NDArray[np.int32], list[Any]]:
    """Dictionary-encode a column: (code per row, distinct values); null → code -1."""
    frame = pl.DataFrame({"v": column})
    distinct = frame.drop_nulls().unique(maintain_order=True).with_row_index("code")
    coded = frame.join(distinct, on="v", how="left", maintain_order="left")
    codes = coded.get_column("code").fill_null(-1).cast(pl.Int32).to_numpy()
    return codes, distinct.get_column("v").to_list()


def _scored_at(manifest: dict[str, Any], scores_file: Path) -> str:
    for key in ("scored_at", "finished_at", "created_at", "started_at"):
        value = manifest.get(key)
        if isinstance(value, str) and value:
            return value
    return datetime.fromtimestamp(scores_file.stat().st_mtime, UTC).isoformat()


class ScoreColumns:
    """One run's scores as columns by store position, and every lookup of the `ScoreStore`
    seam over them; a backend supplies how a user id finds its position (`position`).

    Per position: the score (float64 rounded to 6 decimals so JSON shows `0.87`, not
    `0.8700000047683716`) and small codes into tables of distinct values (ring ids, reason
    lists, model versions)."""

    def __init__(
        self,
        info: SnapshotInfo,
        user_ids: Strings,
        score: npt.NDArray[np.float64],
        ring_code: npt.NDArray[np.int32],
        ring_ids: list[str],
        ring_scores: npt.NDArray[np.float64],
        reason_code: npt.NDArray[np.int32],
        reason_sets: list[tuple[str, ...]],
        version_code: npt.NDArray[np.int32],
        versions: list[str],
        identifiers: IdentifierIndex | None,
        registry: IdentifierRegistry,
        ring_suspected: npt.NDArray[np.bool_],
        digest: str | None = None,
    ) -> None:
        self.info = info
        self.registry = registry  # the run's identifier kinds (masking, vocabulary, online)
        self.user_ids = user_ids
        self.score = score
        self.ring_code = ring_code
        self.ring_ids = ring_ids
        self.ring_scores = ring_scores  # per ring code
        self.reason_code = reason_code
        self.reason_sets = reason_sets
        self.version_code = version_code
        self.versions = versions
        self.identifiers = identifiers
        self.ring_suspected = ring_suspected  # per ring code: the community is a suspected ring
        self._ring_index = {rid: i for i, rid in enumerate(ring_ids)}
        self._digest = digest

    def __len__(self) -> int:
        return len(self.user_ids)

    def position(self, user_id: str) -> int | None:
        raise NotImplementedError

    def knows(self, user_id: str) -> bool:
        return self.position(user_id) is not None

    def ids_digest(self) -> str:
        if self._digest is None:
            self._digest = ids_digest(self.user_ids.to_series().to_list())
        return self._digest

    def positions(self, user_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        found = [self.position(u) for u in user_ids]
        return np.array([-1 if p is None else p for p in found], dtype=np.int64)

    def node_rings(self) -> tuple[npt.NDArray[np.int32], Sequence[str]]:
        return self.ring_code, self.ring_ids

    @functools.cached_property
    def _ring_sizes(self) -> npt.NDArray[np.int64]:
        codes = self.ring_code[self.ring_code >= 0]
        return np.bincount(codes, minlength=len(self.ring_ids)).astype(np.int64)

    def _ring_score(self, code: int) -> float | None:
        value = float(self.ring_scores[code])
        return None if np.isnan(value) else value

    def ring(self, ring_id: str) -> RingRecord | None:
        code = self._ring_index.get(ring_id)
        if code is None:
            return None
        return RingRecord(
            ring_id=ring_id,
            score=self._ring_score(code),
            suspected=bool(self.ring_suspected[code]),
            size=int(self._ring_sizes[code]),
        )

    def ring_members(self, ring_id: str) -> tuple[str, ...]:
        code = self._ring_index.get(ring_id)
        if code is None:
            return ()
        rows = np.flatnonzero(np.asarray(self.ring_code) == code)
        return tuple(sorted(self.user_ids.text(int(i)) for i in rows))

    def holders(self, kind: str, value: str) -> tuple[str, ...]:
        index = self.identifiers
        table = index.exact.get(kind) if index is not None else None
        if index is None or table is None:
            return ()
        return tuple(sorted(index.holders_of(table.lookup(value))))

    def user(self, user_id: str) -> ScoreRecord | None:
        row = self.position(user_id)
        if row is None:
            return None
        code = int(self.ring_code[row])
        vcode = int(self.version_code[row])
        rcode = int(self.reason_code[row])
        return ScoreRecord(
            user_id=user_id,
            score=float(self.score[row]),
            ring_id=self.ring_ids[code] if code >= 0 else None,
            ring_score=self._ring_score(code) if code >= 0 else None,
            reasons=self.reason_sets[rcode] if rcode >= 0 else (),
            model_version=self.versions[vcode] if vcode >= 0 else self.info.model_version,
            suspected_ring=code >= 0 and bool(self.ring_suspected[code]),
        )

    def score_json(self, user_id: str, bands: Bands | None = None) -> tuple[bytes, bool]:
        """The hot path: the `GET /v1/users/{id}/score` body and whether the user is known;
        `band` by `bands` (the service's operating point; default: the settings' defaults)."""
        record = self.user(user_id)
        info = self.info
        bands = bands or _DEFAULT_BANDS
        if record is None:
            score, ring_id, suspected, ring_score = info.neutral_score, None, False, None
            reasons: tuple[str, ...] = ("UNKNOWN_USER",)
            version = info.model_version
        else:
            score, ring_id, suspected = record.score, record.ring_id, record.suspected_ring
            ring_score, reasons, version = record.ring_score, record.reasons, record.model_version
        body = {
            "user_id": user_id,
            "known": record is not None,
            "score": score,
            "band": bands.of_score(score),
            "ring_id": ring_id,
            "suspected_ring": suspected,
            "ring_score": ring_score,
            "reasons": reasons,
            "model_version": version,
            "scored_at": info.scored_at,
            "snapshot": info.run_id,
        }
        return orjson.dumps(body), record is not None


class InMemoryScoreStore(ScoreColumns):
    """The in-memory backend (build with `load_snapshot`): user id → position is a plain dict
    (one probe, ~900 bytes per user, private to the process)."""

    def __init__(self, index: dict[str, int], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index = index

    def position(self, user_id: str) -> int | None:
        return self._index.get(user_id)


def _build_index(ids: pl.Series) -> dict[str, int]:
    """user_id → row, in short GIL-holding chunks (a reload must not stall the serving thread)."""
    index: dict[str, int] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids.slice(start, _CHUNK).to_list()
        index.update(zip(chunk, range(start, start + len(chunk)), strict=True))
        time.sleep(0)  # let the event loop thread take the GIL between chunks
    return index


def _read_kinds(
    run: RunDir, name: str, registry: IdentifierRegistry, source: Source
) -> pl.DataFrame:
    """`user_id` and the canonical columns of `source`'s kinds that the file has."""
    wanted = [c for spec in registry.of_source(source) for c in spec.normaliser.columns]
    present = set(pl.read_parquet_schema(run.file(name)))
    return run.read(name, columns=["user_id", *[c for c in dict.fromkeys(wanted) if c in present]])


def open_run(run_dir: Path | str, *, finished: bool = True) -> tuple[RunDir, dict[str, Any]]:
    """The run and its manifest ({} when absent or unreadable); ArtifactError for a missing
    directory or, with `finished`, a run its manifest says is not complete."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise ArtifactError(
            f"run directory {run.path.name!r} does not exist",
            hint="check --run / the reload path",
        )
    try:
        manifest = run.manifest() if run.exists(schema.MANIFEST_FILE) else {}
    except ArtifactError:
        manifest = {}
    if finished:
        run.check_finished(manifest)
    return run, manifest


def snapshot_info(
    run: RunDir, manifest: dict[str, Any], facts: dict[str, Any], started: float
) -> SnapshotInfo:
    """What is served: the manifest's (run id, time, status, ring cut) and the scores' `facts`
    (model_version, users, rings, neutral_score, online_ready, null_scores, unversioned)."""
    status = manifest.get("status")
    return SnapshotInfo(
        run_id=str(manifest.get("run_id") or run.path.name),
        run_dir=run.path,
        scored_at=_scored_at(manifest, run.file(schema.SCORES_FILE)),
        loaded_at=time.time(),
        load_seconds=time.perf_counter() - started,
        status=status if isinstance(status, str) else None,
        ring_cut=RingCut.from_manifest(manifest.get("rings_suspected"), float("inf")).cut,
        model_version=str(facts["model_version"]),
        users=int(facts["users"]),
        rings=int(facts["rings"]),
        neutral_score=float(facts["neutral_score"]),
        online_ready=bool(facts["online_ready"]),
        null_scores=int(facts["null_scores"]),
        unversioned=int(facts["unversioned"]),
    )


def load_snapshot(run_dir: Path | str, *, with_identifiers: bool = True) -> InMemoryScoreStore:
    """Load a finished run's scores into memory (and, when present, users/devices for the
    online scorer).

    Raises ArtifactError when scores.parquet is missing, lacks a contract column, or has
    duplicate or null user ids.
    """
    started = time.perf_counter()
    run, manifest = open_run(run_dir)
    return build_in_memory(run, manifest, with_identifiers=with_identifiers, started=started)


def build_in_memory(
    run: RunDir, manifest: dict[str, Any], *, with_identifiers: bool, started: float
) -> InMemoryScoreStore:
    """The in-memory store of `run`'s Parquet (the score stage builds one to write the mapped
    store before the run is marked complete)."""
    path = run.path
    scores = run.read(schema.SCORES_FILE)
    missing = [c for c in ("user_id", "score") if c not in scores.columns]
    if missing:
        raise ArtifactError(f"{schema.SCORES_FILE} in {path.name} lacks column(s) {missing}")
    for optional, dtype in (
        ("ring_id", pl.String),
        ("ring_score", pl.Float32),
        ("reasons", pl.List(pl.String)),
        ("model_version", pl.String),
        ("suspected_ring", pl.Boolean),
    ):
        if optional not in scores.columns:
            scores = scores.with_columns(pl.lit(None, dtype=dtype).alias(optional))
    ids = scores.get_column("user_id").cast(pl.String)
    if ids.null_count():
        raise ArtifactError(f"{schema.SCORES_FILE} in {path.name} has null user ids")
    if ids.n_unique() != len(ids):
        raise ArtifactError(f"{schema.SCORES_FILE} in {path.name} has duplicate user ids")

    raw_score = scores.get_column("score").cast(pl.Float64)
    null_scores = int(raw_score.is_null().sum()) + int(raw_score.is_nan().fill_null(False).sum())
    score = np.round(
        raw_score.fill_nan(None).fill_null(0.0).clip(0.0, 1.0).to_numpy(), SCORE_DECIMALS
    )
    ring_code, ring_ids = _codes(scores.get_column("ring_id").cast(pl.String))
    ring_table = (
        pl.DataFrame({"ring_id": ring_ids}, schema={"ring_id": pl.String})
        .join(
            scores.select("ring_id", pl.col("ring_score").cast(pl.Float64))
            .drop_nulls("ring_id")
            .group_by("ring_id")
            .agg(pl.col("ring_score").max()),
            on="ring_id",
            how="left",
            maintain_order="left",
        )
        .get_column("ring_score")
    )
    ring_scores = np.round(
        ring_table.fill_null(float("nan")).to_numpy().astype(np.float64), SCORE_DECIMALS
    )
    flagged = scores.filter(pl.col("suspected_ring").fill_null(False)).get_column("ring_id")
    ring_suspected = (
        pl.Series(ring_ids, dtype=pl.String).is_in(flagged.drop_nulls().implode()).to_numpy()
    )
    reason_code, reason_lists = _codes(
        scores.get_column("reasons").cast(pl.List(pl.String)).list.join("\x1f")
    )
    reason_sets = [tuple(r.split("\x1f")) if r else () for r in reason_lists]
    version_code, versions = _codes(
        scores.get_column("model_version").cast(pl.String).replace("", None)
    )
    counts = (
        np.bincount(version_code[version_code >= 0], minlength=len(versions)) if versions else None
    )
    model_version = (
        versions[int(np.argmax(counts))]
        if versions and counts is not None
        else str(manifest.get("model_version") or "unknown")
    )
    index = _build_index(ids)
    user_ids = Strings.of(ids)

    registry = registry_from_manifest(manifest)
    identifiers: IdentifierIndex | None = None
    if with_identifiers and run.exists(schema.USERS_FILE):
        rows = pl.DataFrame({"user_id": ids}).with_row_index("row")
        users = _read_kinds(run, schema.USERS_FILE, registry, Source.USERS)
        devices = (
            _read_kinds(run, schema.DEVICES_FILE, registry, Source.SIGHTINGS)
            if run.exists(schema.DEVICES_FILE)
            else None
        )
        identifiers = IdentifierIndex.build(
            users.join(rows, on="user_id", how="inner"),
            None if devices is None else devices.join(rows, on="user_id", how="inner"),
            user_ids,
            registry,
        )

    facts = {
        "model_version": model_version,
        "users": len(ids),
        "rings": len(ring_ids),
        "neutral_score": round(float(score.mean()) if len(score) else 0.0, SCORE_DECIMALS),
        "online_ready": identifiers is not None,
        "null_scores": null_scores,
        "unversioned": int(np.count_nonzero(version_code < 0)),
    }
    return InMemoryScoreStore(
        index,
        info=snapshot_info(run, manifest, facts, started),
        user_ids=user_ids,
        score=score,
        ring_code=ring_code,
        ring_ids=ring_ids,
        ring_scores=ring_scores,
        reason_code=reason_code,
        reason_sets=reason_sets,
        version_code=version_code,
        versions=versions,
        identifiers=identifiers,
        registry=registry,
        ring_suspected=ring_suspected,
    )
