"""The verdict store: analysts' conclusions about users and rings, append-only.

One seam (`VerdictStore`), two real backends: `SqliteVerdictStore` (one file, the default: beside
the service's audit log) and `PostgresVerdictStore` (a DSN, for several replicas; psycopg 3). Both
keep the same table, refuse UPDATE and DELETE with a trigger, and order verdicts by their id, so
"newest wins" never depends on a clock. A ring verdict stores the ring's members as they were
when it was recorded: the next batch labels those users, whatever the ring is called by then.

Each call opens its own connection: verdicts are rare (a few per analyst per hour), and a store
restarted between two calls costs nothing.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import polars as pl

from graphfraud.errors import ConfigError, VerdictStoreUnavailable

MAX_NOTE_CHARS = 2000
VERDICT_COLUMNS = ("id", "subject", "subject_id", "outcome", "members")


class Outcome(StrEnum):
    CONFIRMED_FRAUD = "confirmed_fraud"
    LEGIT = "legit"
    NEEDS_REVIEW = "needs_review"


class Subject(StrEnum):
    USER = "user"
    RING = "ring"


@dataclass(frozen=True)
class NewVerdict:
    subject: Subject
    subject_id: str
    outcome: Outcome
    note: str
    members: tuple[str, ...]  # a user verdict: (subject_id,); a ring verdict: its members then
    key_id: str  # the analyst's key fingerprint, never the key
    role: str
    run_id: str | None  # the run the analyst was looking at


@dataclass(frozen=True)
class Verdict(NewVerdict):
    id: int
    recorded_at: str  # ISO-8601 UTC


@runtime_checkable
class VerdictStore(Protocol):
    """Append-only verdicts; raises VerdictStoreUnavailable when the database cannot answer."""

    def record(self, verdict: NewVerdict) -> Verdict:
        """Append one verdict and return it with its id and time."""
        ...

    def of(self, subject: Subject, subject_id: str, limit: int = 50) -> tuple[Verdict, ...]:
        """The verdicts on one user or ring, newest first."""
        ...

    def frame(self) -> pl.DataFrame:
        """Every verdict as VERDICT_COLUMNS (members a list of user ids), oldest first: what
        the batch turns into labels."""
        ...

    def close(self) -> None: ...


_OUTCOMES = ", ".join(f"'{o.value}'" for o in Outcome)
_SUBJECTS = ", ".join(f"'{s.value}'" for s in Subject)

# The table's columns after `id` (whose type is the backend's: AUTOINCREMENT / BIGSERIAL), in
# the order `_params` gives them and `_verdict` reads them back; both backends' schema and
# statements are built from this one list.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("subject", f"TEXT NOT NULL CHECK (subject IN ({_SUBJECTS}))"),
    ("subject_id", "TEXT NOT NULL"),
    ("outcome", f"TEXT NOT NULL CHECK (outcome IN ({_OUTCOMES}))"),
    ("note", "TEXT NOT NULL"),
    ("members", "TEXT NOT NULL"),
    ("key_id", "TEXT NOT NULL"),
    ("role", "TEXT NOT NULL"),
    ("run_id", "TEXT"),
    ("recorded_at", "TEXT NOT NULL"),
)
_NAMES = tuple(name for name, _ in _COLUMNS)


def _create_table(id_column: str) -> str:
    """The verdicts table and its lookup index, with the backend's `id` column."""
    columns = ",\n".join(f"    {name} {kind}" for name, kind in (("id", id_column), *_COLUMNS))
    return (
        f"CREATE TABLE IF NOT EXISTS verdicts (\n{columns}\n);\n"
        "CREATE INDEX IF NOT EXISTS verdicts_subject ON verdicts (subject, subject_id, id);\n"
    )


# Written with SQLite's `?` placeholders; PostgreSQL's are `%s` (`_pg`). Values are parameters;
# only the constant column names above are spliced in (hence the S608 waivers).
_INSERT = (
    f"INSERT INTO verdicts ({', '.join(_NAMES)}) "  # noqa: S608 (constant column names)
    f"VALUES ({', '.join('?' for _ in _NAMES)})"
)
_SELECT_OF = (
    f"SELECT id, {', '.join(_NAMES)} FROM verdicts "  # noqa: S608 (constant column names)
    "WHERE subject = ? AND subject_id = ? ORDER BY id DESC LIMIT ?"
)


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


_SELECT_ALL = f"SELECT {', '.join(VERDICT_COLUMNS)} FROM verdicts ORDER BY id"  # noqa: S608


def _check(verdict: NewVerdict) -> None:
    if not verdict.subject_id:
        raise ValueError("a verdict needs a subject id")
    if len(verdict.note) > MAX_NOTE_CHARS:
        raise ValueError(f"a verdict note holds at most {MAX_NOTE_CHARS} characters")


def _params(verdict: NewVerdict, at: str) -> tuple[Any, ...]:
    return (
        verdict.subject.value,
        verdict.subject_id,
        verdict.outcome.value,
        verdict.note,
        json.dumps(list(verdict.members)),
        verdict.key_id,
        verdict.role,
        verdict.run_id,
        at,
    )


def _verdict(row: Sequence[Any]) -> Verdict:
    at = row[9]
    return Verdict(
        id=int(row[0]),
        subject=Subject(row[1]),
        subject_id=str(row[2]),
        outcome=Outcome(row[3]),
        note=str(row[4]),
        members=tuple(json.loads(row[5])),
        key_id=str(row[6]),
        role=str(row[7]),
        run_id=row[8],
        recorded_at=at.isoformat() if isinstance(at, datetime) else str(at),
    )


def _frame(rows: Sequence[Sequence[Any]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": [int(r[0]) for r in rows],
            "subject": [str(r[1]) for r in rows],
            "subject_id": [str(r[2]) for r in rows],
            "outcome": [str(r[3]) for r in rows],
            "members": [json.loads(r[4]) for r in rows],
        },
        schema={
            "id": pl.Int64,
            "subject": pl.String,
            "subject_id": pl.String,
            "outcome": pl.String,
            "members": pl.List(pl.String),
        },
    )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


_SQLITE_SCHEMA = (
    _create_table("INTEGER PRIMARY KEY AUTOINCREMENT")
    + """
CREATE TRIGGER IF NOT EXISTS verdicts_no_update BEFORE UPDATE ON verdicts
BEGIN SELECT RAISE(ABORT, 'verdicts are append-only'); END;
CREATE TRIGGER IF NOT EXISTS verdicts_no_delete BEFORE DELETE ON verdicts
BEGIN SELECT RAISE(ABORT, 'verdicts are append-only'); END;
"""
)


class SqliteVerdictStore:
    """Verdicts in one SQLite file (WAL, so the batch can read while the service writes)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise self._unavailable(exc) from exc
        with self._connect() as db:
            db.executescript(_SQLITE_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteVerdictStore({self.path.name!r})"

    def _unavailable(self, exc: Exception) -> VerdictStoreUnavailable:
        return VerdictStoreUnavailable(
            f"cannot use the verdict store {self.path.name!r}: {exc}",
            hint="make GRAPHFRAUD_VERDICTS__PATH a writable file",
        )

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=5.0)
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        try:
            db.execute("PRAGMA journal_mode=WAL")
            with db:  # one transaction, committed on success
                yield db
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            db.close()

    def record(self, verdict: NewVerdict) -> Verdict:
        _check(verdict)
        at = _now()
        with self._connect() as db:
            cur = db.execute(_INSERT, _params(verdict, at))
            new_id = cur.lastrowid
        assert new_id is not None
        return Verdict(**{**verdict.__dict__, "id": int(new_id), "recorded_at": at})

    def of(self, subject: Subject, subject_id: str, limit: int = 50) -> tuple[Verdict, ...]:
        with self._connect() as db:
            rows = db.execute(_SELECT_OF, (subject.value, subject_id, int(limit))).fetchall()
        return tuple(_verdict(r) for r in rows)

    def frame(self) -> pl.DataFrame:
        with self._connect() as db:
            return _frame(db.execute(_SELECT_ALL).fetchall())

    def close(self) -> None:
        """Nothing held between calls."""


_PG_SCHEMA = (
    _create_table("BIGSERIAL PRIMARY KEY")
    + """
CREATE OR REPLACE FUNCTION verdicts_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'verdicts are append-only'; END $$;
DROP TRIGGER IF EXISTS verdicts_append_only ON verdicts;
CREATE TRIGGER verdicts_append_only BEFORE UPDATE OR DELETE ON verdicts
FOR EACH ROW EXECUTE FUNCTION verdicts_append_only();
"""
)
_PG_LOCK = 7_316_004  # advisory lock id: replicas starting together create the schema once


class PostgresVerdictStore:
    """Verdicts in PostgreSQL (psycopg 3). The DSN may carry a password: it is never shown."""

    def __init__(self, dsn: str, *, connect_timeout_s: float = 5.0) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise ConfigError(
                "the PostgreSQL verdict store needs psycopg 3",
                hint="pip install 'graphfraud[postgres]'",
            ) from exc
        self._psycopg = psycopg
        self._dsn = dsn
        self._timeout = max(1, int(connect_timeout_s))
        with self._connect() as db:
            db.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            db.execute(_PG_SCHEMA)

    def __repr__(self) -> str:
        return "PostgresVerdictStore(<dsn>)"

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        psycopg = self._psycopg
        try:
            with psycopg.connect(self._dsn, connect_timeout=self._timeout) as db:
                yield db  # the block is one transaction, committed on success
        except psycopg.Error as exc:
            # psycopg's message names host and port, never the password.
            raise VerdictStoreUnavailable(
                f"the PostgreSQL verdict store failed: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}",
                hint="check GRAPHFRAUD_VERDICTS__DSN and that the server is up",
            ) from None

    def record(self, verdict: NewVerdict) -> Verdict:
        _check(verdict)
        at = _now()
        with self._connect() as db:
            row = db.execute(_pg(_INSERT) + " RETURNING id", _params(verdict, at)).fetchone()
        return Verdict(**{**verdict.__dict__, "id": int(row[0]), "recorded_at": at})

    def of(self, subject: Subject, subject_id: str, limit: int = 50) -> tuple[Verdict, ...]:
        with self._connect() as db:
            rows = db.execute(_pg(_SELECT_OF), (subject.value, subject_id, int(limit))).fetchall()
        return tuple(_verdict(r) for r in rows)

    def frame(self) -> pl.DataFrame:
        with self._connect() as db:
            return _frame(db.execute(_SELECT_ALL).fetchall())

    def close(self) -> None:
        """Nothing held between calls."""


def open_verdict_store(target: str | Path) -> VerdictStore:
    """A `postgresql://…` (or `postgres://…`) DSN opens PostgreSQL; anything else is a SQLite
    file path."""
    text = str(target)
    if text.startswith(("postgresql://", "postgres://")):
        return PostgresVerdictStore(text)
    return SqliteVerdictStore(Path(text))
