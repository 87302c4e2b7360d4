"""What every route needs, built once per app by `create_app` (no globals).

Graph reads run on a small pool of their own, waited for at most `service.graph_timeout_s`: a
graph database that stops answering (the driver retries for `graph.retry_time_s`, 15 s by
default) costs an analyst request that budget, not the driver's, and a read that overran it
makes every later read fail fast until it has returned, as does `GRAPH_DOWN_BACKOFF_S` after
any unavailable answer. The score routes never touch the graph.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, TypeVar

from starlette.requests import Request

from graphfraud.config import Settings
from graphfraud.errors import GraphStoreError, GraphStoreUnavailable, NotFound
from graphfraud.graph.base import GraphStore
from graphfraud.service.audit import AuditLog
from graphfraud.service.auth import API_KEY_HEADER, KeyRing, Permission, Principal
from graphfraud.service.errors import Forbidden, TooManyAttempts, Unauthenticated, status_of
from graphfraud.service.intraday import IntradayService
from graphfraud.service.metrics import ServiceMetrics
from graphfraud.service.ratelimit import FailedAuthLimiter
from graphfraud.service.state import SnapshotHolder
from graphfraud.service.verdicts import VerdictAccess

log = logging.getLogger("graphfraud.service")
T = TypeVar("T")
GRAPH_DOWN_BACKOFF_S = 2.0  # after an unreachable graph store, fail fast for this long
GRAPH_READERS = 8  # concurrent graph reads; analyst traffic is light, each read takes ms


@dataclass
class ServiceContext:
    settings: Settings
    holder: SnapshotHolder
    keys: KeyRing
    audit: AuditLog
    metrics: ServiceMetrics
    limiter: FailedAuthLimiter
    intraday: IntradayService
    verdicts: VerdictAccess
    graph_down_until: float = field(default=0.0)
    _graph_pool: ThreadPoolExecutor | None = field(default=None, repr=False)
    _overdue: set[Future[Any]] = field(default_factory=set, repr=False)
    _graph_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def authorize(self, request: Request, permission: Permission) -> Principal:
        """The caller's principal; raises TooManyAttempts (a client locked out for unknown keys,
        whatever key it sends now), Unauthenticated or Forbidden. On success this costs the
        limiter one check of an empty dict (a dict probe while someone is locked out)."""
        client = client_address(request)
        refused = self.limiter.refusal(client)
        if refused is not None:
            self.metrics.auth_failures.labels("rate_limited").inc()
            raise TooManyAttempts(
                "too many unknown API keys from this client",
                retry_after_s=refused.retry_after_s,
                first=refused.first,
                hint=f"retry in {refused.retry_after_s} s with a valid key",
            )
        presented = request.headers.get(API_KEY_HEADER)
        try:
            principal = self.keys.authorize(presented, permission)
        except Unauthenticated:
            if not presented:  # not a guess: no budget spent
                self.metrics.auth_failures.labels("missing_key").inc()
                raise
            self.metrics.auth_failures.labels("unknown_key").inc()
            if self.limiter.fail(client):
                self.metrics.auth_lockouts.inc()
                log.warning(
                    "a client spent its budget of unknown API keys and is locked out",
                    extra={"seconds": self.limiter.window_s},
                )
            raise
        request.scope.setdefault("state", {})["key_id"] = principal.key_id
        return principal

    def authorize_audited(
        self, request: Request, permission: Permission, action: str, ids: dict[str, Any]
    ) -> Principal:
        """`authorize`, writing refusals to the audit log too (auditors want failed attempts).
        A lock-out is recorded at its first refused request, not at every one (a flood of
        429s must not fill the disk)."""
        try:
            return self.authorize(request, permission)
        except TooManyAttempts as exc:
            if exc.first:
                self._audit(request, None, action, ids, "rate_limited", 429)
            raise
        except Unauthenticated:
            self._audit(request, None, action, ids, "unauthenticated", 401)
            raise
        except Forbidden:
            key = self.keys.authenticate(request.headers.get(API_KEY_HEADER))
            self._audit(request, key, action, ids, "denied", 403)
            raise

    def read_graph(self, read: Callable[[GraphStore], T]) -> T:
        """`read(store)` within the graph time budget; GraphStoreUnavailable when the store is
        missing, was down moments ago, still owes an overdue read, or overruns the budget."""
        store = self.graph()
        budget = self.settings.service.graph_timeout_s
        with self._graph_lock:
            if self._overdue:
                raise GraphStoreUnavailable(
                    "the graph database has not answered an earlier read yet",
                    hint="retry in a few seconds; scores still work",
                )
            if self._graph_pool is None:
                self._graph_pool = ThreadPoolExecutor(GRAPH_READERS, "graph-read")
            future = self._graph_pool.submit(read, store)
        try:
            return future.result(timeout=budget)
        except FutureTimeout:
            with self._graph_lock:
                self._overdue.add(future)
            future.add_done_callback(self._settled)
            self.graph_down_until = time.monotonic() + GRAPH_DOWN_BACKOFF_S
            raise GraphStoreUnavailable(
                f"the graph database did not answer within {budget:g} s",
                hint="retry in a few seconds; scores still work",
            ) from None
        except GraphStoreUnavailable:
            # Only a real attempt starts the back-off: the fast refusals above must not extend
            # it, or steady analyst traffic would keep a recovered database "down" for ever.
            self.graph_down_until = time.monotonic() + GRAPH_DOWN_BACKOFF_S
            raise

    def _settled(self, future: Future[Any]) -> None:
        with self._graph_lock:
            self._overdue.discard(future)

    def close(self) -> None:
        """Stop the graph reader pool (an overdue read is left to finish on its own)."""
        with self._graph_lock:
            pool, self._graph_pool = self._graph_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def graph(self) -> GraphStore:
        store = self.holder.serving().graph
        if store is None:
            raise GraphStoreUnavailable(
                "no graph store is configured",
                hint="set GRAPHFRAUD_GRAPH__URI, or serve a run directory",
            )
        if time.monotonic() < self.graph_down_until:
            raise GraphStoreUnavailable(
                "the graph database was unreachable moments ago",
                hint="retry in a few seconds; scores still work",
            )
        return store

    def audited(
        self,
        request: Request,
        principal: Principal,
        action: str,
        ids: dict[str, Any],
        read: Callable[[], T],
    ) -> T:
        """Run an analyst/admin action and record its outcome. The record is written before the
        data is returned: if it cannot be written the caller gets 503, not the data."""
        try:
            result = read()
        except NotFound:
            self._audit(request, principal, action, ids, "not_found", 404)
            raise
        except GraphStoreUnavailable:
            self.metrics.graph_unavailable.inc()
            self._audit(request, principal, action, ids, "unavailable", 503)
            raise
        except GraphStoreError:
            self._audit(request, principal, action, ids, "unavailable", 503)
            raise
        except Exception as exc:
            status, _ = status_of(exc)
            self._audit(
                request, principal, action, ids, "rejected" if status < 500 else "error", status
            )
            raise
        self._audit(request, principal, action, ids, "ok", 200)
        return result

    def _audit(
        self,
        request: Request,
        principal: Principal | None,
        action: str,
        ids: dict[str, Any],
        outcome: str,
        status: int,
    ) -> None:
        route = request.scope.get("route")
        self.audit.write(
            key_id=principal.key_id if principal else None,
            role=principal.role.value if principal else None,
            action=action,
            route=str(getattr(route, "path", request.url.path)),
            method=request.method,
            ids=ids,
            outcome=outcome,
            status=status,
            request_id=request.headers.get("x-request-id", "")[:64] or uuid.uuid4().hex[:16],
            client=client_address(request),
        )


def client_address(request: Request) -> str:
    """The peer's address as the server saw it (uvicorn applies trusted proxy headers)."""
    peer = request.scope.get("client")
    return str(peer[0]) if peer else "unknown"
