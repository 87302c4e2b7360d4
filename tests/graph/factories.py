"""Small run directories written by hand (the run-directory contract, without the pipeline).

`write_run` writes a graph with ugly ids (quotes, backslashes, unicode, 300-char ids), two rings,
a 4-hop chain, a bridge between rings and an isolated user. `newer=True` writes the next night's
run: scores change, one ring and some links/identifiers disappear, a user and a ring appear.
`write_bulk_run` writes a larger seeded run (vectorised) for crash and benchmark tests.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from graphfraud.schema import (
    DEVICES_FILE,
    DEVICES_SCHEMA,
    LINKS_FILE,
    LINKS_SCHEMA,
    MANIFEST_FILE,
    MEMBERS_FILE,
    MEMBERS_SCHEMA,
    RING_EVENTS_SCHEMA,
    RING_HISTORY_FILE,
    RING_SCORES_FILE,
    RING_SCORES_SCHEMA,
    RINGS_FILE,
    RINGS_SCHEMA,
    SCORES_FILE,
    SCORES_SCHEMA,
    USERS_FILE,
    USERS_SCHEMA,
)

Q = "alice'o\"brien\\"  # quote, double quote, backslash
U = "bøb-ü-😀-名前"  # unicode, emoji, CJK
LONG = "L" * 300 + "-long"
C = "carol"
D = "dave} RETURN 1 //"  # Cypher-looking text must stay a value
R1 = "ring'1\"\\"
R2 = "ring-2-é"
R3 = "ring-3-new"
CHAIN = ("e1", "e2", "e3", "e4", "e5")
R0 = "old'ring-0"  # retired before run-1: merged into R1
LONELY = "lonely"
NEW_USER = "zed-new"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pl.DataFrame:
    frame = pl.from_arrow(pa.Table.from_pylist(rows, schema=schema))
    assert isinstance(frame, pl.DataFrame)
    return frame


def _link(
    a: str,
    b: str,
    kind: str,
    value: str | None,
    weight: float,
    similarity: float = 1.0,
    value_b: str | None = None,
    support: int = 2,
) -> dict[str, Any]:
    user_a, user_b = sorted((a, b))
    return {
        "user_a": user_a,
        "user_b": user_b,
        "kind": kind,
        "value_a": value,
        "value_b": value_b if value_b is not None else value,
        "similarity": similarity,
        "support": support,
        "weight": weight,
        "evidence": f"share {kind} {value!r}",
    }


def _user(
    uid: str, email: str | None, phone: str | None, label: int | None, day: int
) -> dict[str, Any]:
    return {
        "user_id": uid,
        "email_raw": email,
        "email": email,
        "email_local": email.split("@")[0] if email else None,
        "email_domain": email.split("@")[1] if email else None,
        "phone_raw": phone,
        "phone": phone,
        "name": f"name of {uid}",
        "created_at": T0 + timedelta(days=day, microseconds=day * 7),
        "label": label,
    }


def write_run(
    out: Path, *, run_id: str = "run-1", newer: bool = False, model_version: str = "gbm-1"
) -> Path:
    """The hand-made run (see module docstring). Returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    shared_mail = "ring\"mail'@example.com"
    users = [
        _user(Q, shared_mail, "+911234500001", 1, 1),
        _user(U, shared_mail, "+911234500002", None, 2),
        _user(C, "carol@example.com", "+911234500002", 0, 3),
        _user(LONG, "long\\mail@example.com", None, None, 4),
        _user(D, "dave@example.com", "+911234500009", None, 5),
        _user("d2", "d2@example.com", None, None, 6),
        *[_user(e, f"{e}@chain.example", None, None, 10 + i) for i, e in enumerate(CHAIN)],
        _user(LONELY, None, None, None, 20),
    ]
    devices = [
        {"user_id": Q, "device_id": "dev-1'\\", "ip": "10.0.0.1", "seen_at": T0},
        {"user_id": U, "device_id": "dev-1'\\", "ip": "10.0.0.1", "seen_at": T0},
        {"user_id": U, "device_id": "dev-1'\\", "ip": "10.0.0.1", "seen_at": T0 + timedelta(1)},
        {"user_id": LONG, "device_id": "dev-L", "ip": "fe80::1", "seen_at": None},
        {"user_id": C, "device_id": "dev-c", "ip": "fe80::1", "seen_at": None},
        {"user_id": D, "device_id": "dev-d", "ip": None, "seen_at": None},
        {"user_id": "d2", "device_id": "dev-d", "ip": None, "seen_at": None},
        {"user_id": "e2", "device_id": "dev-e", "ip": None, "seen_at": None},
        {"user_id": "e3", "device_id": "dev-e", "ip": None, "seen_at": None},
    ]
    links = [
        _link(Q, U, "email", shared_mail, 0.9),
        _link(Q, U, "device", "dev-1'\\", 0.8),
        _link(U, C, "phone", "+911234500002", 0.7),
        _link(Q, C, "phone_similar", "+911234500001", 0.4, 0.9, "+911234500002"),
        _link(C, LONG, "ip", "fe80::1", 0.3),
        _link(D, "d2", "device", "dev-d", 0.6),
        _link(LONG, D, "email_similar", "long\\mail", 0.1, 0.5, "dave"),  # bridge between rings
        _link("e1", "e2", "email", "x@chain.example", 0.5),
        _link("e2", "e3", "device", "dev-e", 0.5),
        _link("e3", "e4", "phone", "+910000000001", 0.5),
        _link("e4", "e5", "ip", "10.9.9.9", 0.5),
    ]
    rings = [
        _ring(R1, 4, 0.85, n_links=5),
        _ring(R2, 2, 0.55, n_links=1),
    ]
    members = [{"user_id": u, "ring_id": R1} for u in (Q, U, C, LONG)]
    members += [{"user_id": u, "ring_id": R2} for u in (D, "d2")]
    scores = {u["user_id"]: 0.05 for u in users}
    scores.update({Q: 0.95, U: 0.9, C: 0.6, LONG: 0.6, D: 0.5, "d2": 0.45})
    if newer:
        users.append(_user(NEW_USER, shared_mail, None, None, 30))
        devices = [d for d in devices if d["user_id"] != C]  # C's device and IP edges go away
        links = [x for x in links if x["kind"] not in ("ip", "email_similar")]
        links = [x for x in links if {x["user_a"], x["user_b"]} != {D, "d2"}]
        links.append(_link(NEW_USER, Q, "email", shared_mail, 0.9))
        rings = [_ring(R1, 4, 0.9, n_links=5), _ring(R3, 2, 0.7, n_links=1)]
        members = [{"user_id": u, "ring_id": R1} for u in (Q, U, C, NEW_USER)]
        members += [{"user_id": u, "ring_id": R3} for u in ("e1", "e2")]
        scores.update({Q: 0.97, D: 0.1, "d2": 0.1, NEW_USER: 0.8, LONG: 0.2, "e1": 0.7, "e2": 0.6})
    ring_of = {m["user_id"]: m["ring_id"] for m in members}
    ring_score = {r["ring_id"]: r["ring_score"] for r in rings}
    score_rows = [
        {
            "user_id": uid,
            "score": s,
            "ring_id": ring_of.get(uid),
            "ring_score": ring_score.get(ring_of.get(uid, "")),
            "reasons": ["shared_identifier", 'ring "member"'] if uid in ring_of else [],
            "model_version": model_version,
        }
        for uid, s in scores.items()
    ]
    return _write(out, run_id, model_version, users, devices, links, rings, members, score_rows)


def _ring(ring_id: str, size: int, score: float, n_links: int) -> dict[str, Any]:
    return {
        "ring_id": ring_id,
        "size": size,
        "ring_score": score,
        "n_links": n_links,
        "density": 0.5,
        "mean_link_weight": 0.6,
        "shared_device_ratio": 0.5,
        "creation_span_hours": 72.0,
        "creation_burst": None,
        "identifier_similarity": 0.8,
        "n_labelled": 1,
        "n_labelled_fraud": 1,
        "label_share": 1.0,
        "top_link_kinds": "email,device",
        "suspected_ring": score >= 0.8,  # the score stage's calibrated cut, here 0.8
    }


def _write(
    out: Path,
    run_id: str,
    model_version: str,
    users: list[dict[str, Any]],
    devices: list[dict[str, Any]],
    links: list[dict[str, Any]],
    rings: list[dict[str, Any]],
    members: list[dict[str, Any]],
    scores: list[dict[str, Any]],
) -> Path:
    _table(users, USERS_SCHEMA).write_parquet(out / USERS_FILE)
    _table(devices, DEVICES_SCHEMA).write_parquet(out / DEVICES_FILE)
    _table(links, LINKS_SCHEMA).write_parquet(out / LINKS_FILE)
    _table(rings, RINGS_SCHEMA).write_parquet(out / RINGS_FILE)
    _table(rings, RING_SCORES_SCHEMA).write_parquet(out / RING_SCORES_FILE)
    _table(members, MEMBERS_SCHEMA).write_parquet(out / MEMBERS_FILE)
    _table(scores, SCORES_SCHEMA).write_parquet(out / SCORES_FILE)
    (out / MANIFEST_FILE).write_text(
        json.dumps(
            {
                "run_id": run_id,
                "status": "complete",
                "created_at": T0.isoformat(),
                "model_version": model_version,
            }
        )
    )
    return out


def write_ring_history(out: Path, *, newer: bool = False) -> Path:
    """The ring history `write_run`'s run would carry (`rings.lineage`): on run-0 R1 (Q, U) and
    R0 (C, LONG) were born; on run-1 R0 merged into R1 and R2 was born; on run-2 (`newer`)
    LONG left and NEW_USER joined R1, R2 dissolved and R3 was born."""
    nights = {"run-0": T0 - timedelta(days=1), "run-1": T0, "run-2": T0 + timedelta(days=1)}
    rows = [
        ("run-0", R1, "born", None, 0, 2, None),
        ("run-0", R0, "born", None, 0, 2, None),
        ("run-1", R1, "grew", None, 2, 4, 2),
        ("run-1", R0, "merged_into", R1, 2, 0, 2),
        ("run-1", R2, "born", None, 0, 2, None),
    ]
    if newer:
        rows += [
            ("run-2", R1, "grew", None, 4, 4, 3),
            ("run-2", R2, "dissolved", None, 2, 0, None),
            ("run-2", R3, "born", None, 0, 2, None),
        ]
    names = ("run_id", "ring_id", "event", "other_ring_id", "size_before", "size_after", "shared")
    events = [{**dict(zip(names, r, strict=True)), "at": nights[r[0]]} for r in rows]
    _table(events, RING_EVENTS_SCHEMA).write_parquet(out / RING_HISTORY_FILE)
    return out


def write_big_ring_run(out: Path, n_members: int, *, run_id: str = "big-1") -> Path:
    """One ring of `n_members` users linked in a chain plus a hub (for truncation tests)."""
    ids = [f"m{i:04d}" for i in range(n_members)]
    users = [_user(u, f"{u}@x.example", None, None, i % 30) for i, u in enumerate(ids)]
    links = [
        _link(ids[0], u, "device", "hub-device", 0.5 + i / (4 * n_members))
        for i, u in enumerate(ids[1:])
    ]
    links += [_link(a, b, "email_similar", a, 0.3, 0.9, b) for a, b in itertools.pairwise(ids[1:])]
    rings = [_ring("big", n_members, 0.9, n_links=len(links))]
    members = [{"user_id": u, "ring_id": "big"} for u in ids]
    scores = [
        {
            "user_id": u,
            "score": 1.0 - i / (2 * n_members),
            "ring_id": "big",
            "ring_score": 0.9,
            "reasons": ["hub"],
            "model_version": "m",
        }
        for i, u in enumerate(ids)
    ]
    devices = [{"user_id": u, "device_id": "hub-device", "ip": None, "seen_at": None} for u in ids]
    out.mkdir(parents=True, exist_ok=True)
    return _write(out, run_id, "m", users, devices, links, rings, members, scores)


def write_bulk_run(
    out: Path,
    n_users: int,
    *,
    seed: int = 1,
    run_id: str = "bulk-1",
    ring_size: int = 5,
    ring_share: float = 0.2,
) -> Path:
    """A seeded run with `n_users` users; `ring_share` of them in rings of `ring_size` whose
    members share a device and link pairwise (clique). Built column-wise with numpy."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"u{i:07d}" for i in range(n_users)])
    n_ring_users = int(n_users * ring_share) // ring_size * ring_size
    ring_of = np.full(n_users, -1)
    ring_of[:n_ring_users] = np.arange(n_ring_users) // ring_size
    users = pl.DataFrame(
        {
            "user_id": ids,
            "email_raw": [f"{u}@mail.example" for u in ids],
            "phone_raw": [f"+9198{i:08d}" for i in range(n_users)],
        }
    ).with_columns(
        email=pl.col("email_raw"),
        email_local=pl.col("email_raw").str.split("@").list.first(),
        email_domain=pl.lit("mail.example"),
        phone=pl.col("phone_raw"),
        name=pl.lit("n"),
        created_at=pl.lit(T0).dt.cast_time_unit("us")
        + pl.duration(minutes=pl.Series(rng.integers(0, 100_000, n_users))),
        label=pl.lit(None, pl.Int8),
    )
    dev = np.where(ring_of >= 0, np.char.add("rdev", ring_of.astype(str)), np.char.add("dev", ids))
    devices = pl.DataFrame(
        {
            "user_id": ids,
            "device_id": dev,
            "ip": [f"10.{i % 250}.{(i // 250) % 250}.1" for i in range(n_users)],
        }
    ).with_columns(seen_at=pl.lit(None, pl.Datetime("us", "UTC")))
    k = ring_size
    local_a, local_b = np.triu_indices(k, 1)
    base = np.arange(0, n_ring_users, k)
    a = (base[:, None] + local_a[None, :]).ravel()
    b = (base[:, None] + local_b[None, :]).ravel()
    links = pl.DataFrame({"user_a": ids[a], "user_b": ids[b]}).with_columns(
        kind=pl.lit("device"),
        value_a=pl.Series(dev[a]),
        value_b=pl.Series(dev[a]),
        similarity=pl.lit(1.0, pl.Float32),
        support=pl.lit(k, pl.Int32),
        weight=pl.Series(rng.uniform(0.3, 1.0, len(a)).astype(np.float32)),
        evidence=pl.lit("same device"),
    )
    n_rings = n_ring_users // k
    ring_ids = np.array([f"ring-{r:06d}" for r in range(n_rings)])
    ring_scores = rng.uniform(0.3, 1.0, n_rings).astype(np.float32)
    rings = pl.DataFrame(
        {"ring_id": ring_ids, "size": np.full(n_rings, k, np.int32), "ring_score": ring_scores}
    )
    members = pl.DataFrame(
        {"user_id": ids[:n_ring_users], "ring_id": ring_ids[ring_of[:n_ring_users]]}
    )
    in_ring = ring_of >= 0
    scores = pl.DataFrame(
        {
            "user_id": ids,
            "score": rng.uniform(0, 1, n_users).astype(np.float32),
            "ring_id": np.where(in_ring, ring_ids[np.maximum(ring_of, 0)], None)
            if n_rings
            else None,
            "ring_score": np.where(in_ring, ring_scores[np.maximum(ring_of, 0)], np.nan)
            if n_rings
            else None,
        }
    ).with_columns(
        pl.col("ring_score").fill_nan(None),
        reasons=pl.lit(["shared_device"]),
        model_version=pl.lit("gbm-bulk"),
    )
    out.mkdir(parents=True, exist_ok=True)
    for name, frame, schema in (
        (USERS_FILE, users, USERS_SCHEMA),
        (DEVICES_FILE, devices, DEVICES_SCHEMA),
        (LINKS_FILE, links, LINKS_SCHEMA),
        (RINGS_FILE, rings, RINGS_SCHEMA),
        (RING_SCORES_FILE, rings, RING_SCORES_SCHEMA),
        (MEMBERS_FILE, members, MEMBERS_SCHEMA),
        (SCORES_FILE, scores, SCORES_SCHEMA),
    ):
        table = frame.to_arrow()
        cols = [
            table.column(f.name).cast(f.type)
            if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type)
            for f in schema
        ]
        pq.write_table(pa.Table.from_arrays(cols, schema=schema), out / name)
    (out / MANIFEST_FILE).write_text(
        json.dumps(
            {
                "run_id": run_id,
                "status": "complete",
                "created_at": T0.isoformat(),
                "model_version": "gbm-bulk",
            }
        )
    )
    return out
