"""Prometheus metrics, one registry per app (so tests and several apps in one process never clash).

With `--workers N` each worker process keeps its own numbers; run one worker per container and
scale by replicas (the snapshot is per process anyway), or scrape each worker.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from graphfraud.scoring.snapshot import SnapshotInfo

LATENCY_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CONTENT_TYPE = CONTENT_TYPE_LATEST


def _epoch(iso: str) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return 0.0


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "graphfraud_http_request_duration_seconds",
            "Request latency by route template",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "graphfraud_http_requests",
            "Requests by route template and status",
            ["route", "method", "status"],
            registry=r,
        )
        self.unknown_users = Counter(
            "graphfraud_unknown_users", "Score lookups for users not in the snapshot", registry=r
        )
        self.auth_failures = Counter(
            "graphfraud_auth_failures",
            "Refused authentications: missing_key, unknown_key, rate_limited (429)",
            ["kind"],
            registry=r,
        )
        self.auth_lockouts = Counter(
            "graphfraud_auth_lockouts",
            "Clients locked out for spending their budget of unknown keys",
            registry=r,
        )
        self.online_scores = Counter(
            "graphfraud_online_scores", "POST /v1/score results", ["matched"], registry=r
        )
        self.reloads = Counter(
            "graphfraud_snapshot_reloads", "Snapshot loads", ["outcome"], registry=r
        )
        self.graph_unavailable = Counter(
            "graphfraud_graph_unavailable",
            "Analyst reads refused because the graph store was down",
            registry=r,
        )
        self.snapshot_info = Gauge(
            "graphfraud_snapshot_info",
            "The loaded snapshot (value 1)",
            ["run_id", "model_version"],
            registry=r,
        )
        self.intraday_accounts = Gauge(
            "graphfraud_intraday_accounts",
            "Accounts in the intraday store (scored since the snapshot; NaN when it is down)",
            registry=r,
        )
        self.intraday_unavailable = Counter(
            "graphfraud_intraday_unavailable_total",
            "Online scores answered without the intraday store (server down or slow)",
            registry=r,
        )
        self.snapshot_users = Gauge(
            "graphfraud_snapshot_users", "Users in the loaded snapshot", registry=r
        )
        self.snapshot_loaded = Gauge(
            "graphfraud_snapshot_loaded_timestamp_seconds",
            "When the snapshot was loaded",
            registry=r,
        )
        self.snapshot_scored = Gauge(
            "graphfraud_snapshot_scored_timestamp_seconds",
            "When the snapshot's run scored",
            registry=r,
        )
        self.snapshot_age = Gauge(
            "graphfraud_snapshot_age_seconds", "Seconds since the loaded run was scored", registry=r
        )
        self._scored_epoch = 0.0
        self.snapshot_age.set_function(
            lambda: time.time() - self._scored_epoch if self._scored_epoch else 0.0
        )
        self._children: dict[tuple[str, str], Histogram] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.latency.labels(route, method)
        child.observe(seconds)
        self.requests.labels(route, method, str(status)).inc()

    def snapshot_loaded_now(self, info: SnapshotInfo) -> None:
        self.snapshot_info.clear()
        self.snapshot_info.labels(info.run_id, info.model_version).set(1)
        self.snapshot_users.set(info.users)
        self.snapshot_loaded.set(info.loaded_at)
        self._scored_epoch = _epoch(info.scored_at)
        self.snapshot_scored.set(self._scored_epoch)

    def render(self) -> bytes:
        return generate_latest(self.registry)
