"""Where the partitioned work of the heavy stages runs: in this process (`local`, the default)
or on a `dask.distributed` cluster (`dask`).

An engine maps one existing, module-level function over partitions (pair scoring by block key or
by slices of candidate pairs, exact links by value, Leiden by connected component); the stage
combines the parts as it would its own. The function and its arguments are the same whichever
engine runs them, so the artifacts are too.
"""

from __future__ import annotations

from graphfraud.engine.base import (
    SERIAL,
    Engine,
    LocalEngine,
    hash_partitions,
    map_frames,
    open_engine,
    slices,
)

__all__ = [
    "SERIAL",
    "Engine",
    "LocalEngine",
    "hash_partitions",
    "map_frames",
    "open_engine",
    "slices",
]
