"""The serving state and its atomic swap.

`SnapshotHolder.current` is one reference to an immutable `Serving` (snapshot + graph store).
Request handlers read it once per request; a reload builds the next `Serving` off the event loop
(in a thread, in short GIL-holding chunks) and replaces the reference in one assignment, so a
request sees the old snapshot or the new one, never a mix, and nothing is refused while loading.
The old `Serving` is dropped (freed when the last in-flight request holding it ends); a graph
store the holder opened itself is closed after a grace period.

Every swap — the first load, a reload, a `CURRENT` change — must pass the sanity checks of
`graphfraud.service.gate` (run complete, enough users, no null scores, a model version): a run
that fails them raises SnapshotRejected, the served snapshot stays, and the refusal is kept for
/v1/admin/snapshot. A refused or unloadable run named by CURRENT is not retried every poll
while its manifest and scores are unchanged.

Run directories may only be named relative to `runs_root` (default: the parent of the first run),
and must resolve inside it: no `..`, no absolute paths, no symlink escapes. Rolling back is
reloading the previous run's name (or writing it to `<runs_root>/CURRENT` when polling).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphfraud import schema
from graphfraud.errors import ArtifactError, GraphFraudError
from graphfraud.graph.base import GraphStore
from graphfraud.model.registry import ModelRegistry
from graphfraud.scoring.online_model import OnlineModel, try_load_online_model
from graphfraud.scoring.snapshot import SnapshotInfo, load_snapshot
from graphfraud.scoring.store import ScoreStore
from graphfraud.service.errors import BadRequest, Conflict, NotReady, SnapshotRejected
from graphfraud.service.gate import Rejection, rejection, swap_problems
from graphfraud.service.metrics import ServiceMetrics

log = logging.getLogger("graphfraud.service")

CURRENT_FILE = schema.CURRENT_FILE
STORE_CLOSE_GRACE_S = 30.0
MAX_NAME_CHARS = 255

GraphFactory = Callable[[Path], GraphStore | None]
ScoreOpener = Callable[[Path], ScoreStore]  # `scoring.store.open_score_store` with a backend
SwapHook = Callable[["Serving"], None]


@dataclass(frozen=True)
class Serving:
    snapshot: ScoreStore
    graph: GraphStore | None
    owns_graph: bool = False
    # The run's model for accounts it has not seen (`scoring.online_model`), or why there is none.
    online: OnlineModel | None = None
    online_error: str | None = None


@dataclass(frozen=True)
class ReloadStatus:
    loading: str | None  # run name being loaded
    last_error: str | None
    last_loaded: SnapshotInfo | None
    last_rejected: Rejection | None = None


def freeze_heap() -> None:
    """Collect once, then move every object alive into the collector's permanent generation.

    A serving worker holds ~450k long-lived objects (the app, its modules, the snapshot's
    tables of ids and reasons). Every full collection walks them all: a 100-400 ms pause on
    whichever request triggers it, the hot path's p999. Frozen, they are never walked again;
    reference counting still frees a swapped-out snapshot when its last request ends. Each
    swap unfreezes first, so the cycles the previous snapshot left are collected here, once,
    rather than frozen for ever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def run_stamp(run_dir: Path) -> tuple[Path, tuple[int, ...]]:
    """A run as of now: its path and the mtimes of its manifest and scores (0 when missing)."""
    stamps = []
    for name in (schema.MANIFEST_FILE, schema.SCORES_FILE):
        try:
            stamps.append(os.stat(run_dir / name).st_mtime_ns)
        except OSError:
            stamps.append(0)
    return run_dir, tuple(stamps)


class SnapshotHolder:
    def __init__(
        self,
        *,
        runs_root: Path | None,
        metrics: ServiceMetrics,
        graph_store: GraphStore | None = None,
        graph_factory: GraphFactory | None = None,
        min_user_ratio: float = 0.5,
        model_registry: ModelRegistry | None = None,
        model_device: str = "auto",
        on_swap: SwapHook | None = None,
        open_scores: ScoreOpener = load_snapshot,
    ) -> None:
        self.current: Serving | None = None
        self.runs_root = runs_root.resolve() if runs_root is not None else None
        self.min_user_ratio = min_user_ratio
        self._metrics = metrics
        self._fixed_graph = graph_store
        self._graph_factory = graph_factory
        self._model_registry = model_registry
        self._model_device = model_device
        self._on_swap = on_swap
        self._open_scores = open_scores
        self._reload_lock = threading.Lock()
        self._loading: str | None = None
        self._last_error: str | None = None
        self._last_rejected: Rejection | None = None
        self._refused: tuple[Path, tuple[int, ...]] | None = None  # run_stamp of the last refusal
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    # ---- reading -------------------------------------------------------------------------
    def serving(self) -> Serving:
        current = self.current
        if current is None:
            raise NotReady(
                "the score snapshot is still loading"
                if self._loading
                else "no score snapshot is loaded",
                hint=self._last_error or "retry in a few seconds; /readyz turns 200 when loaded",
            )
        return current

    def status(self) -> ReloadStatus:
        current = self.current
        return ReloadStatus(
            self._loading,
            self._last_error,
            current.snapshot.info if current else None,
            self._last_rejected,
        )

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout)

    # ---- paths ---------------------------------------------------------------------------
    def resolve(self, name: str) -> Path:
        """A run directory named relative to the runs root; raises BadRequest for anything else."""
        if self.runs_root is None:
            raise BadRequest(
                "no runs root is configured, so reloads cannot name a run",
                hint="set GRAPHFRAUD_SERVICE__RUNS_ROOT or start with --run",
            )
        if (
            not name
            or len(name) > MAX_NAME_CHARS
            or "\x00" in name
            or name.startswith(("/", "\\", "~"))
        ):
            raise BadRequest(
                "run must be a directory name under the runs root",
                hint='e.g. {"run": "2026-01-02"}',
            )
        candidate = (self.runs_root / name).resolve()
        if candidate == self.runs_root or not candidate.is_relative_to(self.runs_root):
            raise BadRequest("run must stay inside the runs root", hint="no '..' or absolute paths")
        if not candidate.is_dir():
            raise BadRequest(f"run {name!r} does not exist under the runs root")
        return candidate

    def current_pointer(self) -> Path | None:
        """The run named by `<runs_root>/CURRENT`, or None when there is no pointer file."""
        if self.runs_root is None:
            return None
        pointer = self.runs_root / CURRENT_FILE
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"cannot read {CURRENT_FILE}: {exc}") from exc
        try:
            return self.resolve(name)
        except BadRequest as exc:
            raise ArtifactError(f"{CURRENT_FILE} names an invalid run: {exc}") from exc

    # ---- loading -------------------------------------------------------------------------
    def load(self, run_dir: Path) -> SnapshotInfo:
        """Load `run_dir` and swap it in (blocking; call from a thread). Raises Conflict when
        another load is running, ArtifactError when the run cannot be loaded, SnapshotRejected
        when it fails the swap checks (the old one is kept either way)."""
        if not self._reload_lock.acquire(blocking=False):
            raise Conflict(
                f"a reload of {self._loading!r} is already running", hint="retry when it finishes"
            )
        try:
            self._loading = run_dir.name
            return self._load_locked(run_dir)
        finally:
            self._loading = None
            self._reload_lock.release()

    def load_in_background(self, run_dir: Path) -> None:
        """Start loading `run_dir` in a daemon thread; raises Conflict at once when a load runs."""
        if not self._reload_lock.acquire(blocking=False):
            raise Conflict(
                f"a reload of {self._loading!r} is already running", hint="retry when it finishes"
            )
        self._loading = run_dir.name  # visible to /readyz and /v1/admin/snapshot at once

        def run() -> None:
            try:
                self._load_locked(run_dir)
            except SnapshotRejected:
                pass  # logged and recorded by _reject
            except GraphFraudError as exc:
                log.warning("snapshot load failed", extra={"run": run_dir.name, "error": str(exc)})
            except Exception:
                log.exception("snapshot load crashed", extra={"run": run_dir.name})
            finally:
                self._loading = None
                self._reload_lock.release()

        try:
            threading.Thread(target=run, name=f"snapshot-load-{run_dir.name}", daemon=True).start()
        except RuntimeError:
            self._loading = None
            self._reload_lock.release()
            raise

    def _load_locked(self, run_dir: Path) -> SnapshotInfo:
        started = time.perf_counter()
        stamp = run_stamp(run_dir)
        old = self.current
        try:
            snapshot = self._open_scores(run_dir)
        except GraphFraudError as exc:
            self._failed(stamp, str(exc))
            raise
        except Exception as exc:
            self._failed(stamp, f"{type(exc).__name__}: {exc}")
            raise ArtifactError(f"cannot load run {run_dir.name!r}: {exc}") from exc
        problems = swap_problems(
            snapshot.info, old.snapshot.info if old else None, min_user_ratio=self.min_user_ratio
        )
        if problems:
            self._reject(stamp, run_dir.name, problems, old)
        try:
            graph, owns = self._graph_for(run_dir)
        except GraphFraudError as exc:
            self._failed(stamp, str(exc))
            raise
        online, online_error = try_load_online_model(
            run_dir, snapshot, self._model_registry, device=self._model_device
        )
        # the swap: one reference assignment
        self.current = Serving(snapshot, graph, owns, online, online_error)
        if self._on_swap is not None:
            self._on_swap(self.current)
        if old is not None and old.owns_graph and old.graph is not None and old.graph is not graph:
            timer = threading.Timer(STORE_CLOSE_GRACE_S, old.graph.close)
            timer.daemon = True
            timer.start()
        del old
        freeze_heap()  # before the swap is announced: a waiter finds the load finished
        self._last_error = None
        self._refused = None
        self._ready.set()
        self._metrics.reloads.labels("ok").inc()
        self._metrics.snapshot_loaded_now(snapshot.info)
        log.info(
            "snapshot loaded",
            extra={
                "run": snapshot.info.run_id,
                "users": snapshot.info.users,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )
        return snapshot.info

    def _failed(self, stamp: tuple[Path, tuple[int, ...]], error: str) -> None:
        self._last_error = error
        self._refused = stamp
        self._metrics.reloads.labels("failed").inc()

    def _reject(
        self,
        stamp: tuple[Path, tuple[int, ...]],
        run: str,
        problems: list[str],
        served: Serving | None,
    ) -> None:
        """Record a refused swap and raise SnapshotRejected (the served snapshot stays)."""
        still = (
            f"still serving {served.snapshot.info.run_id!r}"
            if served is not None
            else "nothing is served until a run passes"
        )
        message = f"run {run!r} was not swapped in: {'; '.join(problems)}"
        self._last_rejected = rejection(run, problems)
        self._last_error = message
        self._refused = stamp
        self._metrics.reloads.labels("rejected").inc()
        log.warning("snapshot swap rejected", extra={"run": run, "reasons": problems})
        raise SnapshotRejected(message, hint=f"{still}; fix or rerun the batch, then reload")

    def _graph_for(self, run_dir: Path) -> tuple[GraphStore | None, bool]:
        if self._fixed_graph is not None:
            return self._fixed_graph, False
        if self._graph_factory is None:
            return None, False
        return self._graph_factory(run_dir), True

    # ---- CURRENT polling -----------------------------------------------------------------
    def start_polling(self, interval_s: float) -> None:
        if interval_s <= 0 or self.runs_root is None or self._poller is not None:
            return
        self._poller = threading.Thread(
            target=self._poll, args=(interval_s,), name="snapshot-poll", daemon=True
        )
        self._poller.start()

    def poll_once(self) -> bool:
        """Reload when CURRENT names a different run than the one served; True when it swapped.
        A run refused before (failed checks or load) is retried only once its files change."""
        target = self.current_pointer()
        current = self.current
        if target is None or (
            current is not None and current.snapshot.info.run_dir.resolve() == target
        ):
            return False
        if self._refused is not None and self._refused == run_stamp(target):
            return False
        self.load(target)
        return True

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll_once()
            except (Conflict, SnapshotRejected):  # busy, or refused (logged by _reject)
                continue
            except GraphFraudError as exc:
                log.warning("CURRENT poll failed", extra={"error": str(exc)})
            except Exception:
                log.exception("CURRENT poll crashed")

    def close(self) -> None:
        self._stop.set()
        current = self.current
        if current is not None and current.owns_graph and current.graph is not None:
            current.graph.close()
