"""Replay benchmark: catch the rings forming today, scored by the batch's model online.

Workload, per seed (printed again with the numbers):
1. a synthetic population of `--users` (`graphfraud.synthetic`, recipe varied per seed: fraud
   share and label rate); the newest `--withhold` share by sign-up time is withheld;
2. the nightly batch on the rest (`run_pipeline`, model candidates `--candidates`) → snapshot A;
   and, for comparison, the batch on everyone → the batch's own scores of the withheld accounts;
3. the service on snapshot A (`create_app`, in process, intraday store `--backend`: `memory`, or
   `redis` = a real `redis-server` started on loopback), and every withheld account POSTed to
   `/v1/score` in sign-up order with its sign-up time, so each request sees the earlier ones;
4. the same accounts scored the old way (snapshot only, link evidence: `score_new_user`).
Reported: ROC-AUC and AP of each on the withheld accounts (truth from the generator, never seen
by any model), how many sign-ups into a forming ring its first member crosses the review
threshold (the batch's top `--review-share` of scores), and the in-process POST latency.

    PYTHONPATH=. python benchmarks/bench_replay.py [--users 20000] [--seeds 1 2] [--backend redis]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from _common import out_dir
from fastapi.testclient import TestClient
from sklearn.metrics import average_precision_score, roc_auc_score

from graphfraud.config import Settings, load_settings
from graphfraud.pipeline import run_pipeline
from graphfraud.scoring.online import canonical_identity, score_new_user
from graphfraud.scoring.snapshot import load_snapshot
from graphfraud.service import create_app
from graphfraud.synthetic import generate_population, write_population

SCORER_KEY = "bench-replay-scorer"


def recipe(seed: int) -> dict[str, float]:
    """The generator's recipe for a seed: fraud share varies, so one tuning cannot fit all."""
    shares = (0.04, 0.02, 0.06, 0.03)
    return {"fraud_share": shares[seed % len(shares)]}


def split(root: Path, users_n: int, seed: int, withhold: float) -> tuple[pl.DataFrame, Path]:
    """Write `all/` and `batch/` inputs; return the withheld users (sign-up order)."""
    population = generate_population(users_n, seed=seed, **recipe(seed))
    write_population(population, root / "all")
    users = pl.read_csv(root / "all/users.csv", infer_schema_length=0)
    devices = pl.read_csv(root / "all/devices.csv", infer_schema_length=0)
    users = users.with_columns(
        pl.col("created_at").str.to_datetime(time_zone="UTC", strict=False).alias("_t")
    )
    cut = users.get_column("_t").quantile(1 - withhold)
    late = pl.col("_t") > cut
    (root / "batch").mkdir(parents=True, exist_ok=True)
    kept = users.filter(~late)
    kept.drop("_t").write_csv(root / "batch/users.csv")
    devices.join(kept.select("user_id"), on="user_id").write_csv(root / "batch/devices.csv")
    return users.filter(late).sort("_t", "user_id"), root


def bodies(withheld: pl.DataFrame, devices: pl.DataFrame) -> list[dict[str, Any]]:
    seen = (
        devices.join(withheld.select("user_id"), on="user_id")
        .group_by("user_id", maintain_order=True)
        .agg(pl.col("device_id").drop_nulls(), pl.col("ip").drop_nulls())
    )
    by_user = {r["user_id"]: r for r in seen.iter_rows(named=True)}
    out = []
    for r in withheld.iter_rows(named=True):
        d = by_user.get(r["user_id"], {"device_id": [], "ip": []})
        body: dict[str, Any] = {
            "user_id": r["user_id"],
            "created_at": r["_t"].isoformat(),
            "device_ids": [x for x in d["device_id"] if x][:20],
            "ips": [x for x in d["ip"] if x][:20],
        }
        for field in ("email", "phone", "upi"):
            if r.get(field):
                body[field] = r[field][:320]
        if any(body.get(k) for k in ("email", "phone", "upi", "device_ids", "ips")):
            out.append(body)
    return out


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def settings_for(root: Path, candidates: list[str], store_url: str | None) -> Settings:
    base = load_settings()
    intraday = base.intraday
    if store_url:
        intraday = intraday.model_copy(
            update={"backend": "redis", "url": store_url, "timeout_s": 0.05}
        )
    return base.model_copy(
        update={
            "model": base.model.model_copy(
                update={"candidates": candidates, "registry": root / "models"}
            ),
            "service": base.service.model_copy(
                update={
                    "api_keys": [f"{SCORER_KEY}:scorer"],
                    "audit_log": root / "audit.jsonl",
                }
            ),
            "intraday": intraday,
        }
    )


def first_crossings(
    scored: pl.DataFrame, truth: pl.DataFrame, threshold: float
) -> list[int | None]:
    """Per ring with ≥ 2 withheld members: the sign-up (1-based, within the ring) whose online
    score first reaches `threshold`, None when none does."""
    rings = scored.join(truth, on="user_id").filter(pl.col("ring_id").is_not_null())
    out: list[int | None] = []
    for _, members in rings.group_by("ring_id", maintain_order=True):
        if members.height < 2:
            continue
        hits = np.flatnonzero(members.get_column("online").to_numpy() >= threshold)
        out.append(int(hits[0]) + 1 if len(hits) else None)
    return out


def one_seed(args: argparse.Namespace, seed: int, base: Path) -> dict[str, Any]:
    root = base / f"seed{seed}"
    shutil.rmtree(root, ignore_errors=True)
    withheld, _ = split(root, args.users, seed, args.withhold)
    truth = pl.read_csv(root / "all/truth.csv").select(
        "user_id", "is_fraud", pl.col("ring_id").cast(pl.String)
    )
    devices = pl.read_csv(root / "all/devices.csv", infer_schema_length=0)
    requests = bodies(withheld, devices)
    t0 = time.perf_counter()
    full_settings = settings_for(root / "full", args.candidates, None)
    run_pipeline(root / "all/users.csv", root / "all/devices.csv", root / "run_all", full_settings)
    t_full = time.perf_counter() - t0
    with _store(args, root) as url:
        settings = settings_for(root, args.candidates, url)
        t0 = time.perf_counter()
        run_pipeline(
            root / "batch/users.csv", root / "batch/devices.csv", root / "run_batch", settings
        )
        t_batch = time.perf_counter() - t0
        app = create_app(settings, root / "run_batch")
        headers = {"X-API-Key": SCORER_KEY}
        online: dict[str, float] = {}
        latency: list[float] = []
        degraded: set[str] = set()
        with TestClient(app) as client:
            assert app.state.holder.wait_ready(60), "snapshot did not load"
            serving = app.state.holder.serving()
            if serving.online is None:
                raise SystemExit(f"no online model: {serving.online_error}")
            for body in requests:
                t = time.perf_counter()
                answer = client.post("/v1/score", json=body, headers=headers)
                latency.append(time.perf_counter() - t)
                answer.raise_for_status()
                got = answer.json()
                online[body["user_id"]] = got["score"]
                degraded |= set(got["degraded"])
    snapshot = load_snapshot(root / "run_batch")
    old: dict[str, float] = {}
    for body in requests:
        raw = {"email": body.get("email"), "phone": body.get("phone"), "upi": body.get("upi"),
               "device": body["device_ids"], "ip": body["ips"]}  # fmt: skip
        identity, _ = canonical_identity(raw, registry=snapshot.registry)
        old[body["user_id"]] = score_new_user(
            snapshot, identity, settings.link, ring_min_weight=settings.rings.min_weight
        ).score
    batch_all = pl.read_parquet(root / "run_all/scores.parquet", columns=["user_id", "score"])
    review = float(np.quantile(snapshot.score, 1 - args.review_share))
    scored = (
        pl.DataFrame({"user_id": list(online), "online": list(online.values())})
        .with_columns(pl.col("user_id").replace_strict(old, return_dtype=pl.Float64).alias("old"))
        .join(batch_all.rename({"score": "batch"}), on="user_id", how="left")
        .join(truth, on="user_id")
    )
    y = scored.get_column("is_fraud").to_numpy()
    result: dict[str, Any] = {"seed": seed, "withheld": scored.height, "fraud": int(y.sum())}
    for name in ("online", "old", "batch"):
        s = scored.get_column(name).fill_null(0.0).to_numpy()
        result[f"{name}_roc_auc"] = float(roc_auc_score(y, s))
        result[f"{name}_ap"] = float(average_precision_score(y, s))
    crossings = first_crossings(scored.select("user_id", "online"), truth, review)
    caught = [c for c in crossings if c is not None]
    result |= {
        "rings_forming": len(crossings),
        "rings_flagged": len(caught),
        "median_signups_to_flag": statistics.median(caught) if caught else None,
        "review_threshold": review,
        "post_p50_ms": float(np.percentile(latency, 50) * 1e3),
        "post_p99_ms": float(np.percentile(latency, 99) * 1e3),
        "below_neutral": int((scored.get_column("online") < snapshot.info.neutral_score).sum()),
        "neutral": snapshot.info.neutral_score,
        "batch_s": t_batch,
        "full_batch_s": t_full,
        "degraded": sorted(degraded),
    }
    return result


@contextmanager
def _store(args: argparse.Namespace, root: Path) -> Iterator[str | None]:
    if args.backend == "redis":
        with redis_server(root) as url:
            yield url
    else:
        yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--withhold", type=float, default=0.05)
    parser.add_argument("--backend", choices=("memory", "redis"), default="memory")
    parser.add_argument("--candidates", nargs="+", default=["gbm"])
    parser.add_argument("--review-share", type=float, default=0.05)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    base = args.workdir or Path(tempfile.mkdtemp(dir=out_dir("replay")))
    print(
        f"workload: {args.users:,} users per seed, seeds {args.seeds}, newest "
        f"{args.withhold:.0%} withheld and replayed through POST /v1/score in sign-up order; "
        f"intraday store {args.backend}; candidates {args.candidates}; review threshold = "
        f"the snapshot's top {args.review_share:.0%}"
    )
    rows = [one_seed(args, seed, base) for seed in args.seeds]
    for r in rows:
        print(
            f"seed {r['seed']} (fraud share {recipe(r['seed'])['fraud_share']}): withheld "
            f"{r['withheld']} ({r['fraud']} fraud) | online ROC-AUC {r['online_roc_auc']:.3f} "
            f"AP {r['online_ap']:.3f} | snapshot-only link evidence ROC-AUC "
            f"{r['old_roc_auc']:.3f} AP {r['old_ap']:.3f} | batch incl. them ROC-AUC "
            f"{r['batch_roc_auc']:.3f} AP {r['batch_ap']:.3f}"
        )
        print(
            f"   forming rings {r['rings_forming']}, flagged {r['rings_flagged']} (median "
            f"sign-ups to the first flag {r['median_signups_to_flag']}; threshold "
            f"{r['review_threshold']:.3f}); below neutral ({r['neutral']:.3f}): "
            f"{r['below_neutral']}; POST in process p50 {r['post_p50_ms']:.1f} ms p99 "
            f"{r['post_p99_ms']:.1f} ms; batch {r['batch_s']:.0f} s; degraded {r['degraded']}"
        )


if __name__ == "__main__":
    main()
