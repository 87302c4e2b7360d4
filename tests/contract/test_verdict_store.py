"""One VerdictStore contract over both backends: a SQLite file and a real PostgreSQL server
(tests/pg_server.py, started once per session)."""

from __future__ import annotations

import itertools
import sqlite3
import threading
from pathlib import Path

import polars as pl
import pytest

from graphfraud.errors import VerdictStoreUnavailable
from graphfraud.verdicts.store import (
    NewVerdict,
    Outcome,
    PostgresVerdictStore,
    SqliteVerdictStore,
    Subject,
    VerdictStore,
    open_verdict_store,
)

_dbs = itertools.count()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> VerdictStore:
    if request.param == "sqlite":
        return open_verdict_store(tmp_path / "verdicts.sqlite3")
    import psycopg

    from tests.pg_server import PgServer

    server = request.getfixturevalue("postgres_server")
    assert isinstance(server, PgServer)
    name = f"verdicts_{next(_dbs)}"
    with psycopg.connect(server.dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return open_verdict_store(server.dsn.rsplit("/", 1)[0] + f"/{name}")


def verdict(
    subject_id: str = "u1",
    outcome: Outcome = Outcome.CONFIRMED_FRAUD,
    *,
    subject: Subject = Subject.USER,
    members: tuple[str, ...] | None = None,
    note: str = "chargebacks on 3 cards",
) -> NewVerdict:
    return NewVerdict(
        subject=subject,
        subject_id=subject_id,
        outcome=outcome,
        note=note,
        members=members if members is not None else (subject_id,),
        key_id="abc123def456",
        role="investigator",
        run_id="run-1",
    )


def test_is_a_verdict_store(store: VerdictStore) -> None:
    assert isinstance(store, VerdictStore)
    assert store.of(Subject.USER, "nobody") == ()
    assert store.frame().height == 0


def test_record_then_read_back_newest_first(store: VerdictStore) -> None:
    first = store.record(verdict("u1", Outcome.NEEDS_REVIEW, note="odd sign-up hour"))
    second = store.record(verdict("u1", Outcome.LEGIT, note="called the customer: genuine ✓"))
    store.record(verdict("u2"))
    ring = store.record(
        verdict("ring'1", subject=Subject.RING, members=("u1", "u3", "u4"), note="")
    )
    assert second.id > first.id
    got = store.of(Subject.USER, "u1")
    assert [v.id for v in got] == [second.id, first.id]
    assert got[0] == second
    assert (got[0].outcome, got[0].note, got[0].role) == (
        Outcome.LEGIT,
        "called the customer: genuine ✓",
        "investigator",
    )
    assert got[0].recorded_at.endswith("+00:00")
    assert store.of(Subject.RING, "ring'1")[0].members == ("u1", "u3", "u4")
    assert store.of(Subject.RING, "u1") == ()  # a user id is not a ring id
    assert len(store.of(Subject.USER, "u1", limit=1)) == 1
    frame = store.frame()
    assert frame["id"].to_list() == sorted(frame["id"].to_list())
    assert frame.filter(pl.col("id") == ring.id)["members"].to_list() == [["u1", "u3", "u4"]]


def test_values_stay_values(store: VerdictStore) -> None:
    nasty = "x'); DROP TABLE verdicts; --"
    store.record(verdict(nasty, note=nasty))
    assert store.of(Subject.USER, nasty)[0].note == nasty
    assert store.frame().height == 1


def test_rejects_bad_verdicts_and_keeps_the_rest(store: VerdictStore) -> None:
    store.record(verdict("u1"))
    with pytest.raises(ValueError, match="at most"):
        store.record(verdict("u1", note="x" * 5000))
    with pytest.raises(ValueError, match="subject id"):
        store.record(verdict(""))
    assert store.frame().height == 1


def test_concurrent_writers_lose_nothing(store: VerdictStore) -> None:
    def write(i: int) -> None:
        for j in range(5):
            store.record(verdict(f"u{i}-{j}"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frame = store.frame()
    assert frame.height == 20
    assert frame["id"].n_unique() == 20


def test_sqlite_file_is_append_only(tmp_path: Path) -> None:
    path = tmp_path / "v.sqlite3"
    store = SqliteVerdictStore(path)
    store.record(verdict("u1"))
    db = sqlite3.connect(path)
    for sql in ("UPDATE verdicts SET outcome = 'legit'", "DELETE FROM verdicts"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    db.close()
    assert store.of(Subject.USER, "u1")[0].outcome == Outcome.CONFIRMED_FRAUD


@pytest.mark.postgres
def test_postgres_table_is_append_only(postgres_server: object) -> None:
    import psycopg

    from tests.pg_server import PgServer

    assert isinstance(postgres_server, PgServer)
    with psycopg.connect(postgres_server.dsn, autocommit=True) as admin:
        admin.execute("CREATE DATABASE verdicts_append_only")
    dsn = postgres_server.dsn.rsplit("/", 1)[0] + "/verdicts_append_only"
    store = PostgresVerdictStore(dsn)
    PostgresVerdictStore(dsn)  # a second replica starting up: schema creation is idempotent
    store.record(verdict("u1"))
    with psycopg.connect(dsn, autocommit=True) as db:
        for sql in ("UPDATE verdicts SET outcome = 'legit'", "DELETE FROM verdicts"):
            with pytest.raises(psycopg.Error, match="append-only"):
                db.execute(sql)
    assert store.of(Subject.USER, "u1")[0].outcome == Outcome.CONFIRMED_FRAUD


def test_unreachable_stores_say_so_without_the_password(tmp_path: Path) -> None:
    from tests.pg_server import _free_port

    secret = "s3cret-pw"
    with pytest.raises(VerdictStoreUnavailable) as caught:
        PostgresVerdictStore(f"postgresql://u:{secret}@127.0.0.1:{_free_port()}/x")
    assert secret not in str(caught.value)
    (tmp_path / "dir").mkdir()
    with pytest.raises(VerdictStoreUnavailable):
        SqliteVerdictStore(tmp_path / "dir")  # a directory is not a database file
