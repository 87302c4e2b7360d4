"""A small, hand-written run directory for service tests (no pipeline needed).

Population (ids are stable, tests refer to them):
- ring `ring-a` (a1..a4): one shared device `dev-ring-a`, gmail addresses john.doe1..4 (canonical
  `johndoe1..4@gmail.com`, one stem block), sequential phones +919876543210..13, scores 0.80..0.95;
- ring `ring-b` (b1..b3): shared device `dev-ring-b` and IP 10.0.0.7, UPI ids cashback1..3@ybl,
  scores ~0.6;
- honest h1..h8: own identifiers, scores 0.02..0.09; h1 and h2 share IP 203.0.113.5 (a weak link,
  no ring); plus one honest user with a unicode id.
`score_shift` moves every score (clipped to 0..1) so two runs are told apart after a swap.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from graphfraud import schema
from graphfraud.config import ServiceSettings, Settings
from graphfraud.scoring.mapped import write_score_store

MODEL_VERSION = "gbm-test-1"
UNICODE_USER = "ü-ユーザー-1"
RING_A = ("a1", "a2", "a3", "a4")
RING_B = ("b1", "b2", "b3")
HONEST = ("h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", UNICODE_USER)


def _user_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, uid in enumerate(RING_A, start=1):
        rows.append(
            {
                "user_id": uid,
                "email_raw": f"john.doe{i}@gmail.com",
                "email": f"johndoe{i}@gmail.com",
                "email_local": f"johndoe{i}",
                "email_domain": "gmail.com",
                "phone_raw": f"98765 4321{i - 1}",
                "phone": f"+91987654321{i - 1}",
                "name": f"John Doe {i}",
                "label": 1 if i == 1 else None,
            }
        )
    for i, uid in enumerate(RING_B, start=1):
        rows.append(
            {
                "user_id": uid,
                "email_raw": f"priya.v{i}@yahoo.com",
                "email": f"priya.v{i}@yahoo.com",
                "email_local": f"priya.v{i}",
                "email_domain": "yahoo.com",
                "phone_raw": f"+44 7700 90012{i}",
                "phone": f"+44770090012{i}",
                "upi_raw": f"CashBack{i}@ybl",
                "upi": f"cashback{i}@ybl",
                "upi_handle": f"cashback{i}",
                "upi_psp": "ybl",
                "name": f"Priya V {i}",
                "label": None,
            }
        )
    for i, uid in enumerate(HONEST, start=1):
        rows.append(
            {
                "user_id": uid,
                "email_raw": f"person{i * 37}@example.org",
                "email": f"person{i * 37}@example.org",
                "email_local": f"person{i * 37}",
                "email_domain": "example.org",
                "phone_raw": f"+1 415 555 {1000 + i * 111}",
                "phone": f"+1415555{1000 + i * 111}",
                "name": f"Honest {i}",
                "label": 0 if i <= 2 else None,
            }
        )
    return rows


def _device_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for uid in RING_A:
        rows.append({"user_id": uid, "device_id": "dev-ring-a", "ip": f"198.51.100.{len(rows)}"})
        rows.append({"user_id": uid, "device_id": f"dev-{uid}", "ip": None})
    for uid in RING_B:
        rows.append({"user_id": uid, "device_id": "dev-ring-b", "ip": "10.0.0.7"})
    for i, uid in enumerate(HONEST, start=1):
        ip = "203.0.113.5" if uid in ("h1", "h2") else f"192.0.2.{i}"
        rows.append({"user_id": uid, "device_id": f"dev-honest-{i}", "ip": ip})
    return rows


def _link(
    a: str, b: str, kind: str, va: str, vb: str, sim: float, support: int, weight: float
) -> dict[str, object]:
    lo, hi = sorted((a, b))
    return {
        "user_a": lo,
        "user_b": hi,
        "kind": kind,
        "value_a": va if lo == a else vb,
        "value_b": vb if lo == a else va,
        "similarity": sim,
        "support": support,
        "weight": weight,
        "evidence": f"{kind}: {va} ~ {vb} (shared by {support})",
    }


def _link_rows() -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i, a in enumerate(RING_A):
        for b in RING_A[i + 1 :]:
            rows.append(_link(a, b, "device", "dev-ring-a", "dev-ring-a", 1.0, 4, 0.45))
    for i in range(len(RING_A) - 1):
        a, b = RING_A[i], RING_A[i + 1]
        rows.append(
            _link(
                a,
                b,
                "email_similar",
                f"johndoe{i + 1}@gmail.com",
                f"johndoe{i + 2}@gmail.com",
                0.88,
                4,
                0.37,
            )
        )
        rows.append(
            _link(a, b, "phone_similar", f"+91987654321{i}", f"+91987654321{i + 1}", 1.0, 4, 0.35)
        )
    for i, a in enumerate(RING_B):
        for b in RING_B[i + 1 :]:
            rows.append(_link(a, b, "device", "dev-ring-b", "dev-ring-b", 1.0, 3, 0.6))
            rows.append(_link(a, b, "ip", "10.0.0.7", "10.0.0.7", 1.0, 3, 0.23))
    rows.append(_link("h1", "h2", "ip", "203.0.113.5", "203.0.113.5", 1.0, 2, 0.35))
    return rows


def write_run(path: Path, *, score_shift: float = 0.0, model_version: str = MODEL_VERSION) -> Path:
    """Write a complete run directory at `path` (created) and return it."""
    path.mkdir(parents=True, exist_ok=True)
    users = pl.DataFrame(_user_rows()).with_columns(
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("created_at"),
        pl.col("label").cast(pl.Int8),
    )
    devices = pl.DataFrame(_device_rows()).with_columns(
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("seen_at")
    )
    links = pl.DataFrame(_link_rows())

    def clip(x: float) -> float:
        return round(min(1.0, max(0.0, x + score_shift)), 4)

    score_rows: list[dict[str, object]] = []
    for i, uid in enumerate(RING_A):
        score_rows.append(
            {
                "user_id": uid,
                "score": clip(0.95 - 0.05 * i),
                "ring_id": "ring-a",
                "ring_score": clip(0.87),
                "suspected_ring": True,
                "reasons": ["RING_LABELLED_FRAUD", "SHARED_DEVICE", "LOOKALIKE_EMAIL"],
            }
        )
    for i, uid in enumerate(RING_B):
        score_rows.append(
            {
                "user_id": uid,
                "score": clip(0.62 - 0.02 * i),
                "ring_id": "ring-b",
                "ring_score": clip(0.6),
                "suspected_ring": False,
                "reasons": ["SHARED_DEVICE", "SHARED_IP"],
            }
        )
    for i, uid in enumerate(HONEST):
        score_rows.append(
            {
                "user_id": uid,
                "score": clip(0.02 + 0.01 * (i % 8)),
                "ring_id": None,
                "ring_score": None,
                "reasons": [],
            }
        )
    scores = pl.DataFrame(
        score_rows, schema_overrides={"reasons": pl.List(pl.String)}
    ).with_columns(pl.lit(model_version).alias("model_version"))
    rings = pl.DataFrame(
        {
            "ring_id": ["ring-a", "ring-b"],
            "size": [4, 3],
            "n_links": [12, 6],
            "density": [1.0, 1.0],
            "mean_link_weight": [0.4, 0.41],
            "shared_device_ratio": [1.0, 1.0],
            "creation_span_hours": [2.0, 30.0],
            "creation_burst": [0.9, 0.2],
            "identifier_similarity": [0.88, 0.5],
            "n_labelled": [1, 0],
            "n_labelled_fraud": [1, 0],
            "label_share": [1.0, 0.0],
            "top_link_kinds": ["device,email_similar,phone_similar", "device,ip"],
        }
    )
    members = pl.DataFrame(
        {"user_id": [*RING_A, *RING_B], "ring_id": ["ring-a"] * 4 + ["ring-b"] * 3}
    )
    frames = {
        schema.USERS_FILE: (users, schema.USERS_SCHEMA),
        schema.DEVICES_FILE: (devices, schema.DEVICES_SCHEMA),
        schema.LINKS_FILE: (links, schema.LINKS_SCHEMA),
        schema.RINGS_FILE: (rings, schema.RINGS_SCHEMA),
        schema.RING_SCORES_FILE: (
            pl.DataFrame(
                {
                    "ring_id": ["ring-a", "ring-b"],
                    "ring_score": [clip(0.87), clip(0.6)],
                    "suspected_ring": [True, False],  # the cut below: 0.7
                }
            ),
            schema.RING_SCORES_SCHEMA,
        ),
        schema.MEMBERS_FILE: (members, schema.MEMBERS_SCHEMA),
        schema.SCORES_FILE: (scores, schema.SCORES_SCHEMA),
        schema.RING_HISTORY_FILE: (_ring_history(), schema.RING_EVENTS_SCHEMA),
    }
    for name, (frame, arrow_schema) in frames.items():
        absent = [pl.lit(None).alias(c) for c in arrow_schema.names if c not in frame.columns]
        table = frame.with_columns(absent).select(arrow_schema.names).to_arrow().cast(arrow_schema)
        pq.write_table(table, path / name)
    manifest = {
        "run_id": path.name,
        "status": "complete",
        "created_at": "2026-01-02T03:04:05+00:00",
        "model_version": model_version,
        "counts": {"users": len(users), "rings": 2},
        "rings_suspected": {"cut": 0.7, "probability": 0.5, "how": "calibrated"},
    }
    (path / schema.MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
    write_score_store(path)  # as the score stage does
    return path


def _ring_history() -> pl.DataFrame:
    """r0: ring-a (2) and ring-old (2) born; r1: ring-old merged into ring-a, ring-b born."""
    names = ("run_id", "at", "ring_id", "event", "other_ring_id", "size_before", "size_after")
    r0, r1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rows = [
        ("r0", r0, "ring-a", "born", None, 0, 2, None),
        ("r0", r0, "ring-old", "born", None, 0, 2, None),
        ("r1", r1, "ring-a", "grew", None, 2, 4, 2),
        ("r1", r1, "ring-old", "merged_into", "ring-a", 2, 0, 2),
        ("r1", r1, "ring-b", "born", None, 0, 3, None),
    ]
    return pl.DataFrame(rows, schema=[*names, "shared"], orient="row")


KEYS = {
    "scorer": "test-scorer-key",
    "analyst": "test-analyst-key",
    "investigator": "test-investigator-key",
    "admin": "test-admin-key",
}


def headers(role: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[role]}


def make_settings(tmp_path: Path, runs_root: Path, **service: object) -> Settings:
    svc = ServiceSettings(
        api_keys=[f"{KEYS[r]}:{r}" for r in ("scorer", "analyst", "investigator")]
        + [f"sha256:{hashlib.sha256(KEYS['admin'].encode()).hexdigest()}:admin"],
        audit_log=tmp_path / "audit.log",
        runs_root=runs_root,
        access_log=False,
        **service,  # type: ignore[arg-type]
    )
    return Settings(service=svc)
