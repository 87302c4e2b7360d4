"""The serving state and its atomic swap.

`SnapshotHolder.current` is one reference to an immutable `Serving` (snapshot + graph store).
Request handlers read it once per request; a reload builds the next `Serving` off the event loop
(in a thread, in short GIL-holding chunks) and replaces the reference in one assignment, so a
request sees the old snapshot or the new one, never a mix, and nothing is refused while loading.
The old `Serving` is dropped (freed when the last in-flight request holding it ends); a graph
store the holder opened itself is closed after a grace period.

Run directories may only be named relative to `runs_root` (default: the parent of the first run),
and must resolve inside it: no `..`, no absolute paths, no symlink escapes. Rolling back is
reloading the previous run's name (or writing it to `<runs_root>/CURRENT` when polling).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from graphfraud.errors import ArtifactError, GraphFraudError
from graphfraud.graph.base import GraphStore
from graphfraud.scoring.snapshot import ScoreSnapshot, SnapshotInfo, load_snapshot
from graphfraud.service.errors import BadRequest, Conflict, NotReady
from graphfraud.service.metrics import ServiceMetrics

log = logging.getLogger("graphfraud.service")

CURRENT_FILE = "CURRENT"
STORE_CLOSE_GRACE_S = 30.0
MAX_NAME_CHARS = 255

GraphFactory = Callable[[Path], GraphStore | None]


@dataclass(frozen=True)
class Serving:
    snapshot: ScoreSnapshot
    graph: GraphStore | None
    owns_graph: bool = False


@dataclass(frozen=True)
class ReloadStatus:
    loading: str | None  # run name being loaded
    last_error: str | None
    last_loaded: SnapshotInfo | None


class SnapshotHolder:
    def __init__(
        self,
        *,
        runs_root: Path | None,
        metrics: ServiceMetrics,
        graph_store: GraphStore | None = None,
        graph_factory: GraphFactory | None = None,
    ) -> None:
        self.current: Serving | None = None
        self.runs_root = runs_root.resolve() if runs_root is not None else None
        self._metrics = metrics
        self._fixed_graph = graph_store
        self._graph_factory = graph_factory
        self._reload_lock = threading.Lock()
        self._loading: str | None = None
        self._last_error: str | None = None
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
            self._loading, self._last_error, current.snapshot.info if current else None
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
        another load is running, ArtifactError when the run cannot be loaded (old one kept)."""
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
        try:
            snapshot = load_snapshot(run_dir)
            graph, owns = self._graph_for(run_dir)
        except GraphFraudError as exc:
            self._last_error = str(exc)
            self._metrics.reloads.labels("failed").inc()
            raise
        except Exception as exc:
            self._last_error = f"{type(exc).__name__}: {exc}"
            self._metrics.reloads.labels("failed").inc()
            raise ArtifactError(f"cannot load run {run_dir.name!r}: {exc}") from exc
        old = self.current
        self.current = Serving(snapshot, graph, owns)  # the swap: one reference assignment
        self._last_error = None
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
        if old is not None and old.owns_graph and old.graph is not None and old.graph is not graph:
            timer = threading.Timer(STORE_CLOSE_GRACE_S, old.graph.close)
            timer.daemon = True
            timer.start()
        return snapshot.info

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
        """Reload when CURRENT names a different run than the one served; True when it swapped."""
        target = self.current_pointer()
        current = self.current
        if target is None or (
            current is not None and current.snapshot.info.run_dir.resolve() == target
        ):
            return False
        self.load(target)
        return True

    def _poll(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.poll_once()
            except Conflict:
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
