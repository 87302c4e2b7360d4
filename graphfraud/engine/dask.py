"""The Dask engine: the same partition functions as tasks on a `dask.distributed` cluster.

With a scheduler address (`tcp://scheduler:8786`, a dask-kubernetes cluster's, …) the run is a
client of that cluster; without one it starts a `LocalCluster` of worker processes on loopback
and stops it at the end. Workers need this very graphfraud and its dependencies installed (the
tasks are its functions, sent by reference); the partitions travel by Dask's own serialisation,
in memory, never through files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from graphfraud.config import available_cpus
from graphfraud.errors import ConfigError

R = TypeVar("R")

CONNECT_TIMEOUT_S = 30


class DaskEngine:
    """Maps over a Dask client's workers; owns (and closes) a LocalCluster it started."""

    name = "dask"

    def __init__(self, client: Any, cluster: Any = None) -> None:
        self._client = client
        self._cluster = cluster

    @classmethod
    def connect(cls, scheduler: str | None, workers: int | None = None) -> DaskEngine:
        """A client of `scheduler`, or of a new LocalCluster of `workers` single-threaded worker
        processes (default: one per CPU this process may use)."""
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError(
                "the dask engine needs dask.distributed",
                hint="pip install 'graphfraud[dask]', or set GRAPHFRAUD_ENGINE=local",
            ) from exc
        if scheduler:
            try:
                return cls(Client(scheduler, timeout=CONNECT_TIMEOUT_S))  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise ConfigError(
                    f"cannot reach the Dask scheduler at {scheduler}",
                    hint="check --dask-scheduler / GRAPHFRAUD_DASK_SCHEDULER, or leave it "
                    "empty for a LocalCluster",
                ) from exc
        cluster = LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers or available_cpus(),
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        )
        return cls(Client(cluster), cluster)  # type: ignore[no-untyped-call]

    @property
    def partitions(self) -> int:
        threads = self._client.nthreads()
        return max(1, int(sum(threads.values())))

    def map(self, fn: Callable[..., R], items: Sequence[Any], *shared: Any) -> list[R]:
        if not items:
            return []
        # Shared arguments go to every worker once, not once per task (the handle texts of
        # every user, …); the parts go straight to workers, not inside the task graph. Under
        # keys of their own (hash=False): a content-hashed key (`int-…` for max_share) is the
        # same on the next call, and the previous call's futures, released late, would delete
        # the data the new tasks depend on ("lost dependencies").
        sent = [self._client.scatter([s], broadcast=True, hash=False)[0] for s in shared]
        parts = self._client.scatter(list(items), hash=False)
        futures = self._client.map(fn, parts, *([f] * len(items) for f in sent), pure=False)
        results: list[R] = self._client.gather(futures)
        return results

    def close(self) -> None:
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
