"""The audit log while serving: rotated or deleted files are followed, an unwritable one fails
closed (503 on audited routes), and no record ever goes to a file nobody can read."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from fastapi.testclient import TestClient

from graphfraud.config import Settings

from .factories import headers


def records(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def read_ring(client: TestClient) -> int:
    return client.get("/v1/rings/ring-a", headers=headers("analyst")).status_code


def test_deleted_audit_log_is_recreated_on_the_next_record(
    client: TestClient, settings: Settings
) -> None:
    log = settings.service.audit_log
    assert read_ring(client) == 200
    log.unlink()  # an operator (or a cleanup job) deletes it while serving
    assert read_ring(client) == 200
    assert client.get("/v1/users/a1/ring", headers=headers("analyst")).status_code == 200
    got = records(log)
    assert [r["action"] for r in got] == ["read_ring", "read_user_ring"]  # nothing went astray
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_rotation_by_rename_loses_nothing_under_concurrent_reads(
    client: TestClient, settings: Settings
) -> None:
    log = settings.service.audit_log
    ok = 0
    lock = threading.Lock()
    stop = threading.Event()

    def hammer() -> None:
        nonlocal ok
        while not stop.is_set():
            if read_ring(client) == 200:
                with lock:
                    ok += 1

    def wait_for(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, "no audited reads are being answered"
            time.sleep(0.005)

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    for t in threads:
        t.start()
    rotated: list[Path] = []
    try:
        for i in range(1, 6):
            wait_for(lambda: ok >= 8 * len(rotated) + 8 and log.exists())  # writes in flight
            target = log.with_name(f"{log.name}.{i}")
            os.replace(log, target)  # logrotate without copytruncate
            rotated.append(target)
        wait_for(lambda: ok >= 8 * len(rotated) + 8 and log.exists())
    finally:
        stop.set()
        for t in threads:
            t.join()
    total = sum(len(records(p)) for p in [*rotated, log])
    assert total == ok  # every answered read has its record in some file
    assert all(records(p) for p in rotated)
    assert records(log), "after the last rotation records land in the new file"


def test_unwritable_audit_log_fails_closed_then_recovers(
    client: TestClient, settings: Settings
) -> None:
    log = settings.service.audit_log
    assert read_ring(client) == 200
    log.unlink()
    log.mkdir()  # the path can no longer be opened as a file (works as root too)
    try:
        r = client.get("/v1/rings/ring-a", headers=headers("analyst"))
        assert r.status_code == 503
        body = r.json()
        assert body["error"] == "audit_unavailable"
        assert "audit log" in body["detail"]
        assert body["hint"]
        r = client.get("/v1/admin/snapshot", headers=headers("admin"))  # admin actions too
        assert r.status_code == 503
        assert client.get("/v1/users/a1/score", headers=headers("scorer")).status_code == 200
    finally:
        log.rmdir()
    assert read_ring(client) == 200  # fixed: audited reads work again, into a fresh file
    assert [r["action"] for r in records(log)] == ["read_ring"]
