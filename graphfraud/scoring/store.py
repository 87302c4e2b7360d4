"""The score-store seam: what the service and the online scorer read of a run's scores, keyed by
business ids (user ids, identifier values, ring ids).

Two backends answer it from the same columns and the same lookup code
(`scoring.snapshot.ScoreColumns`):
- `InMemoryScoreStore` (`scoring.snapshot`): built from the run's Parquet when the service
  loads a run; a dict from user id to position, ~900 bytes per user, private to each worker;
- `MappedScoreStore` (`scoring.mapped`): the files the score stage writes next to the Parquet
  (`online/store/`), memory-mapped read-only, so every worker process of a replica shares their
  pages through the page cache; a user id is found by bisection over its sorted ids.

`service.score_store` (GRAPHFRAUD_SERVICE__SCORE_STORE) picks one. Positions in the store (the
run's node order) cross the seam only towards the run's model (`positions`, `node_rings`),
whose node-state arrays share that order, checked by `ids_digest`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from graphfraud.identifiers import IdentifierRegistry
    from graphfraud.scoring.decision import Bands
    from graphfraud.scoring.snapshot import IdentifierIndex, SnapshotInfo


class StoreBackend(StrEnum):
    MAPPED = "mapped"
    MEMORY = "memory"


@dataclass(frozen=True)
class ScoreRecord:
    """One user's precomputed score."""

    user_id: str
    score: float
    ring_id: str | None
    ring_score: float | None
    reasons: tuple[str, ...]
    model_version: str
    suspected_ring: bool = False


@dataclass(frozen=True)
class RingRecord:
    """One ring of the run as the store knows it."""

    ring_id: str
    score: float | None  # None: the ring has no score (no scored member)
    suspected: bool
    size: int  # members in the store


class ScoreStore(Protocol):
    """A run's scores, read by business id; immutable once opened."""

    @property
    def info(self) -> SnapshotInfo: ...

    @property
    def registry(self) -> IdentifierRegistry: ...

    @property
    def identifiers(self) -> IdentifierIndex | None:
        """The identifier index the online scorer matches against (None: the run had no
        users.parquet); it answers with user ids (`IdentifierIndex.holders_of`)."""

    def __len__(self) -> int: ...

    def knows(self, user_id: str) -> bool: ...

    def user(self, user_id: str) -> ScoreRecord | None: ...

    def score_json(self, user_id: str, bands: Bands | None = None) -> tuple[bytes, bool]:
        """The hot path: the `GET /v1/users/{id}/score` body and whether the user is known."""

    def ring(self, ring_id: str) -> RingRecord | None: ...

    def ring_members(self, ring_id: str) -> tuple[str, ...]:
        """The ring's members in the store, sorted (empty for an unknown ring)."""

    def holders(self, kind: str, value: str) -> tuple[str, ...]:
        """Users holding this canonical value of an identifier kind, sorted (empty when none
        or when the kind is not indexed)."""

    def ids_digest(self) -> str:
        """`model.ego.ids_digest` of the store's node order."""

    def positions(self, user_ids: Sequence[str]) -> npt.NDArray[np.int64]:
        """Node positions of these users for the run's model arrays (-1: not in the store)."""

    def node_rings(self) -> tuple[npt.NDArray[np.int32], Sequence[str]]:
        """(ring index per node position, -1 for none; ring ids by index), for the model."""


def open_score_store(
    run_dir: Path | str, backend: StoreBackend | str = StoreBackend.MAPPED, *, verify: bool = False
) -> ScoreStore:
    """Open a run's scores with the chosen backend; ArtifactError for a run (or a store) that is
    missing, unfinished, broken or stale: nothing serves from a partial store. `verify`: check
    the mapped store's files' checksums too."""
    if StoreBackend(backend) == StoreBackend.MAPPED:
        from graphfraud.scoring.mapped import open_mapped_store

        return open_mapped_store(run_dir, verify=verify)
    from graphfraud.scoring.snapshot import load_snapshot

    return load_snapshot(run_dir)
