"""The memory-mapped score store: the score stage writes a run's score columns and identifier
index as `.npy` files next to its Parquet (`online/store/`), and every worker process of a
replica maps them read-only, sharing their pages through the page cache.

What a worker adds per user is then only what it touches, and those pages are shared: a user
id is found by bisection over the sorted ids (`sorted_ids.*` and their positions), the rest are
the same arrays `InMemoryScoreStore` builds in memory (one lookup code, `ScoreColumns`).

Integrity (nothing serves from a partial or stale store):
- the files are written into a temporary folder that replaces `online/store/` in one rename, and
  `store.json` (what each file holds, its size and sha256, the scores' sha256) is written last;
- opening checks every file against `store.json` (dtype, shape, byte size, and, with `verify`,
  its sha256) and that `scores.parquet` is the one the store was written from.
Arrays are read with `allow_pickle=False`: nothing on disk is executed.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud import schema
from graphfraud.errors import ArtifactError
from graphfraud.identifiers import registry_from_manifest
from graphfraud.rundir import RunDir
from graphfraud.scoring.snapshot import (
    Arrays,
    IdentifierIndex,
    ScoreColumns,
    SortedStrings,
    Strings,
    build_in_memory,
    open_run,
    snapshot_info,
)

STORE_DIR = "store"  # under the run's online/ folder
META_FILE = "store.json"
STORE_FORMAT = 2  # 2: each look-alike kind's NumberBackground
_HASH_CHUNK = 1 << 22
PREFIX_BYTES = 16  # of each sorted user id, searched first (most ids are shorter)


def store_path(run_dir: Path) -> Path:
    return run_dir / schema.ONLINE_DIR / STORE_DIR


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def store_arrays(store: ScoreColumns) -> Arrays:
    """Every array of a store by file name: its columns, ids in position order and sorted (with
    each sorted id's position), and its identifier index."""
    ids = store.user_ids.to_series()
    order = ids.arg_sort()  # polars sorts strings in UTF-8 byte order: the bisection's order
    sorted_ids = Strings.of(ids.gather(order))
    out: Arrays = {
        "score": store.score,
        "ring_code": store.ring_code,
        "ring_scores": store.ring_scores,
        "ring_suspected": store.ring_suspected,
        "reason_code": store.reason_code,
        "version_code": store.version_code,
        **store.user_ids.arrays("ids"),
        **sorted_ids.arrays("sorted_ids"),
        "sorted_ids.prefix": byte_prefixes(sorted_ids),
        "sorted_ids.positions": order.cast(pl.UInt32).to_numpy(),
    }
    if store.identifiers is not None:
        out.update(store.identifiers.arrays())
    return out


def byte_prefixes(strings: Strings) -> npt.NDArray[np.bytes_]:
    """The first `PREFIX_BYTES` UTF-8 bytes of each string as fixed-width bytes (zero-padded):
    a sorted column's prefixes are sorted too, and numpy bisects them in C."""
    starts, ends = strings.offsets[:-1], strings.offsets[1:]
    out = np.zeros((len(starts), PREFIX_BYTES), dtype=np.uint8)
    if len(strings.data):
        for j in range(PREFIX_BYTES):  # one vectorised pass per byte column
            at = starts + j
            out[:, j] = np.where(at < ends, strings.data[np.minimum(at, len(strings.data) - 1)], 0)
    return out.view(f"S{PREFIX_BYTES}").ravel()


def write_score_store(run_dir: Path | str) -> Path:
    """Write the mapped store of a run whose scores are written (the score stage calls this
    before it marks the run complete); returns the store's folder."""
    run, manifest = open_run(run_dir, finished=False)
    store = build_in_memory(run, manifest, with_identifiers=True, started=time.perf_counter())
    target = store_path(run.path)
    tmp = target.with_name(f".{STORE_DIR}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files: dict[str, dict[str, Any]] = {}
    for name, array in store_arrays(store).items():
        path = tmp / f"{name}.npy"
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        files[name] = {
            "dtype": np.dtype(array.dtype).str,
            "shape": list(array.shape),
            "bytes": path.stat().st_size,
            "sha256": file_sha256(path),
        }
    info = store.info
    meta = {
        "format": STORE_FORMAT,
        "scores_sha256": file_sha256(run.file(schema.SCORES_FILE)),
        "ids_digest": store.ids_digest(),
        "facts": {
            "model_version": info.model_version,
            "users": info.users,
            "rings": info.rings,
            "neutral_score": info.neutral_score,
            "online_ready": info.online_ready,
            "null_scores": info.null_scores,
            "unversioned": info.unversioned,
        },
        "ring_ids": store.ring_ids,
        "reason_sets": [list(r) for r in store.reason_sets],
        "versions": store.versions,
        "files": files,
    }
    (tmp / META_FILE).write_text(json.dumps(meta, sort_keys=True) + "\n", encoding="utf-8")
    old = target.with_name(f".{STORE_DIR}.old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


class MappedScoreStore(ScoreColumns):
    """The memory-mapped backend (open with `open_mapped_store`): a user id's position by a C
    bisection over the sorted ids' 16-byte prefixes, then (ids sharing that prefix) over the
    ids themselves; a few µs, no Python object per user."""

    def __init__(
        self,
        sorted_ids: SortedStrings,
        prefixes: npt.NDArray[np.bytes_],
        positions: npt.NDArray[np.uint32],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._sorted = sorted_ids
        self._prefixes = prefixes
        self._positions = positions

    def position(self, user_id: str) -> int | None:
        probe = user_id.encode("utf-8")
        head = np.bytes_(probe[:PREFIX_BYTES])
        lo = int(self._prefixes.searchsorted(head, "left"))
        hi = int(self._prefixes.searchsorted(head, "right"))
        keys = self._sorted
        if hi - lo > 1:  # longer ids sharing a prefix: bisect their full bytes
            lo = bisect.bisect_left(keys, probe, lo, hi)
        if lo < hi and keys[lo] == probe:
            return int(self._positions[lo])
        return None


def _broken(run: RunDir, why: str) -> ArtifactError:
    return ArtifactError(
        f"the score store of run {run.path.name!r} is {why}",
        hint="rerun the score stage (`graphfraud run --from score`), or serve with "
        "GRAPHFRAUD_SERVICE__SCORE_STORE=memory",
    )


def _read_arrays(run: RunDir, folder: Path, meta: dict[str, Any], verify: bool) -> Arrays:
    arrays: Arrays = {}
    for name, want in dict(meta["files"]).items():
        path = folder / f"{name}.npy"
        try:
            size = path.stat().st_size
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise _broken(run, f"unreadable ({name}: {type(exc).__name__})") from exc
        if (
            size != want["bytes"]
            or array.dtype.str != want["dtype"]
            or list(array.shape) != want["shape"]
        ):
            raise _broken(run, f"partial or altered ({name} is not what {META_FILE} says)")
        if verify and file_sha256(path) != want["sha256"]:
            raise _broken(run, f"corrupt ({name} fails its checksum)")
        # a plain ndarray over the same mapped pages: np.memmap's Python-level indexing costs
        # microseconds per scalar read, on the hot path
        arrays[name] = array.view(np.ndarray)
    return arrays


def open_mapped_store(run_dir: Path | str, *, verify: bool = False) -> MappedScoreStore:
    """Map a finished run's store read-only; ArtifactError when the run is unfinished or the
    store is missing, partial, altered (`verify`: every file's sha256 too) or stale (written
    from other scores than the run's)."""
    started = time.perf_counter()
    run, manifest = open_run(run_dir)
    folder = store_path(run.path)
    try:
        meta: dict[str, Any] = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise _broken(run, "missing") from exc
    except (OSError, ValueError) as exc:
        raise _broken(run, f"unreadable ({type(exc).__name__})") from exc
    if not isinstance(meta, dict) or meta.get("format") != STORE_FORMAT:
        raise _broken(run, f"of another format (expected {STORE_FORMAT})")
    try:
        scores_sha = file_sha256(run.file(schema.SCORES_FILE))
    except OSError as exc:
        raise ArtifactError(f"{schema.SCORES_FILE} in {run.path.name} is unreadable") from exc
    if scores_sha != meta.get("scores_sha256"):
        raise _broken(run, f"stale (written from another {schema.SCORES_FILE})")
    try:
        arrays = _read_arrays(run, folder, meta, verify)
        facts = dict(meta["facts"])
        registry = registry_from_manifest(manifest)
        user_ids = Strings.from_arrays(arrays, "ids")
        identifiers = (
            IdentifierIndex.from_arrays(arrays, user_ids, registry)
            if facts["online_ready"]
            else None
        )
        return MappedScoreStore(
            SortedStrings.from_arrays(arrays, "sorted_ids"),
            arrays["sorted_ids.prefix"],
            arrays["sorted_ids.positions"],
            info=snapshot_info(run, manifest, facts, started),
            user_ids=user_ids,
            score=arrays["score"],
            ring_code=arrays["ring_code"],
            ring_ids=[str(r) for r in meta["ring_ids"]],
            ring_scores=arrays["ring_scores"],
            reason_code=arrays["reason_code"],
            reason_sets=[tuple(str(c) for c in r) for r in meta["reason_sets"]],
            version_code=arrays["version_code"],
            versions=[str(v) for v in meta["versions"]],
            identifiers=identifiers,
            registry=registry,
            ring_suspected=arrays["ring_suspected"],
            digest=str(meta["ids_digest"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _broken(run, f"inconsistent ({type(exc).__name__}: {exc})") from exc
