"""The engine seam: map one function over partitions, results in order.

A partitioned stage cuts its work into parts that never need each other (candidate pairs,
blocks of one key, values, connected components), maps an existing module-level function over
them and combines the parts exactly as the whole would have been: concatenated, then sorted or
grouped as the stage already does. `LocalEngine(1)` calls the function once on the whole input,
which is the stage as it ran before there were engines.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import polars as pl

from graphfraud.errors import ConfigError

if TYPE_CHECKING:
    from graphfraud.config import Settings

R = TypeVar("R")


class Engine(Protocol):
    """Runs `fn(item, *shared)` for every item; `shared` is sent to each worker once."""

    name: str

    @property
    def partitions(self) -> int:
        """How many parts a stage should cut its work into (1: keep it whole)."""
        ...

    def map(self, fn: Callable[..., R], items: Sequence[Any], *shared: Any) -> list[R]: ...

    def close(self) -> None: ...


class LocalEngine:
    """This process (`workers=1`), or a pool of `workers` spawned processes.

    Processes, not threads: igraph's Leiden holds the GIL and reads one process-wide RNG.
    Spawned, not forked: polars' thread pool does not survive a fork. The pool starts on the
    first map that has more than one item and lives until `close`."""

    name = "local"

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"engine workers must be at least 1, not {workers}")
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    @property
    def partitions(self) -> int:
        return self.workers

    def map(self, fn: Callable[..., R], items: Sequence[Any], *shared: Any) -> list[R]:
        if self.workers == 1 or len(items) <= 1:
            return [fn(item, *shared) for item in items]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return list(self._pool.map(fn, items, *(itertools.repeat(s) for s in shared)))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


SERIAL: Engine = LocalEngine(1)


@contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """The engine `settings.engine` names, closed (its pool, its own LocalCluster) on exit."""
    engine: Engine
    if settings.engine == "dask":
        from graphfraud.engine.dask import DaskEngine

        engine = DaskEngine.connect(settings.dask_scheduler, settings.engine_workers)
    else:
        engine = LocalEngine(settings.engine_workers or 1)
    try:
        yield engine
    finally:
        engine.close()


def slices(frame: pl.DataFrame, n: int) -> list[pl.DataFrame]:
    """`frame` cut into at most `n` contiguous, nearly equal slices (never an empty one)."""
    if n <= 1 or frame.height <= 1:
        return [frame]
    size = -(-frame.height // n)
    return [frame.slice(start, size) for start in range(0, frame.height, size)]


def hash_partitions(frame: pl.DataFrame, key: str, n: int) -> list[pl.DataFrame]:
    """`frame` in at most `n` parts by a hash of `key`: all rows of one key value in one part
    (so a block, or the holders of a value, is never split). Nulls go with one part."""
    if n <= 1 or frame.height <= 1:
        return [frame]
    part = (pl.col(key).hash(seed=0) % n).alias("_part")
    return [
        p.drop("_part") for p in frame.with_columns(part).partition_by("_part", maintain_order=True)
    ]


def map_frames(
    engine: Engine, fn: Callable[..., pl.DataFrame], parts: list[pl.DataFrame], *shared: Any
) -> pl.DataFrame:
    """`fn` over `parts` on `engine`, the results concatenated in part order (one part: `fn`
    is called here, on it, and its result returned as is)."""
    if len(parts) == 1:
        return fn(parts[0], *shared)
    return pl.concat(engine.map(fn, parts, *shared))
