"""Online scoring under load: POST /v1/score against a real Redis holding today's accounts.

Workload (printed with the numbers):
1. a nightly run of `--users` synthetic users with the newest 5 % withheld (`bench_replay.split`,
   GBM candidate), served by a real `graphfraud serve` process (`--workers` uvicorn workers) on
   127.0.0.1;
2. a real `redis-server` on loopback holding `--accounts` intraday accounts of another synthetic
   population (recorded through `RedisIntradayStore`, each with the index entries and neighbour
   state a scored account stores);
3. open-loop load from a separate process (`bench_service`'s client: latency from each request's
   scheduled send time): the withheld accounts, then new accounts of a third population (every
   POST a new identity), at `--rate` req/s for `--seconds`, each recorded, so later requests
   match earlier ones and the prefilled accounts.
The client, the server and Redis share this machine's cores: numbers are a floor for a dedicated
host.

    PYTHONPATH=. python benchmarks/bench_online_load.py [--rate 200] [--accounts 50000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from _common import out_dir
from bench_replay import bodies, redis_server, settings_for, split
from bench_service import API_KEY_SCORER, free_port, http_json, rss_mb, run_loadgen, wait_ready

from graphfraud.model.registry import ModelRegistry
from graphfraud.pipeline import run_pipeline
from graphfraud.scoring.account import feature_set, pack
from graphfraud.scoring.intraday.base import IntradayAccount
from graphfraud.scoring.intraday.redis_store import RedisIntradayStore
from graphfraud.scoring.online import canonical_identity
from graphfraud.scoring.online_model import load_online_model
from graphfraud.scoring.snapshot import load_snapshot
from graphfraud.scoring.today import handle_of, index_of
from graphfraud.synthetic import generate_population, write_population


def prefill(root: Path, url: str, accounts: int, seed: int) -> float:
    """Record `accounts` intraday accounts of another population; returns records/s."""
    settings = settings_for(root, ["gbm"], url)
    snapshot = load_snapshot(root / "run_batch")
    model = load_online_model(root / "run_batch", snapshot, ModelRegistry(settings.model.registry))
    write_population(generate_population(accounts, seed=seed + 100), root / "prefill")
    users = pl.read_csv(root / "prefill/users.csv", infer_schema_length=0)
    store = RedisIntradayStore(settings.intraday.model_copy(update={"max_accounts": accounts * 2}))
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(snapshot), size=users.height)
    width = model.state.width
    now = time.time()
    t0 = time.perf_counter()
    for i, r in enumerate(users.iter_rows(named=True)):
        raw = {"email": r.get("email"), "phone": r.get("phone"), "upi": r.get("upi")}
        identity, _ = canonical_identity(raw, registry=snapshot.registry)
        values, blocks, numbers = index_of(identity, snapshot.registry)
        row = np.array([rows[i]])
        handles = {
            spec.name: [h[0], h[1]]
            for spec in snapshot.registry.kinds
            if spec.handle_columns and (h := handle_of(spec, identity))
        }
        store.record(
            IntradayAccount(
                user_id=f"pre-{r['user_id']}",
                created_at=now - 3600,
                identifiers=values,
                blocks=blocks,
                numbers=numbers,
                payload=_payload(handles, model, row, width),
            )
        )
    rate = users.height / (time.perf_counter() - t0)
    store.close()
    return rate


def _payload(
    handles: dict[str, list[str]], model: object, row: np.ndarray, width: int
) -> dict[str, object]:
    """What a scored account stores, its state copied from a snapshot row."""
    state = model.state  # type: ignore[attr-defined]
    return {
        "h": handles,
        "ms": 0.05,
        "sc": 0.05,
        "er": None,
        "sr": None,
        "l": [],
        "fs": feature_set(model),  # type: ignore[arg-type]
        "x": pack(state.x(row)[0][:width]),
        "m1": pack(state.m1(row)[0][:width]),
        "s": [0.0, 0.0, 0.0, 0.0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    root = args.workdir or out_dir("online-load")
    if not (root / "run_batch/scores.parquet").exists():
        withheld, _ = split(root, args.users, args.seed, 0.05)
        run_pipeline(
            root / "batch/users.csv",
            root / "batch/devices.csv",
            root / "run_batch",
            settings_for(root, ["gbm"], None),
        )
    users = pl.read_csv(root / "all/users.csv", infer_schema_length=0).with_columns(
        pl.col("created_at").str.to_datetime(time_zone="UTC", strict=False).alias("_t")
    )
    kept = pl.read_csv(root / "batch/users.csv", infer_schema_length=0).select("user_id")
    withheld = users.join(kept, on="user_id", how="anti").sort("_t", "user_id")
    devices = pl.read_csv(root / "all/devices.csv", infer_schema_length=0)
    requests = bodies(withheld, devices)
    # Every POST a new identity (a copy of an earlier body would link to it and grow one giant
    # emerging ring): the withheld accounts, then accounts of another synthetic population.
    needed = int(args.rate * (args.seconds + 5)) - len(requests)
    if needed > 0:
        write_population(generate_population(needed, seed=args.seed + 200), root / "extra")
        extra = pl.read_csv(root / "extra/users.csv", infer_schema_length=0).with_columns(
            pl.col("created_at").str.to_datetime(time_zone="UTC", strict=False).alias("_t")
        )
        extra_devices = pl.read_csv(root / "extra/devices.csv", infer_schema_length=0)
        requests += [{**b, "user_id": f"x-{b['user_id']}"} for b in bodies(extra, extra_devices)]
    stamp = datetime.now(UTC).isoformat()
    lines = [
        json.dumps({**b, "user_id": f"load-{b['user_id']}", "created_at": stamp}) for b in requests
    ]
    (root / "bodies.jsonl").write_text("\n".join(lines))
    with redis_server(root) as url:
        t0 = time.perf_counter()
        record_rate = prefill(root, url, args.accounts, args.seed)
        print(f"prefilled {args.accounts:,} accounts in {time.perf_counter() - t0:.0f} s "
              f"({record_rate:,.0f} records/s, one client)")  # fmt: skip
        port = free_port()
        env = {
            **os.environ,
            "GRAPHFRAUD_SERVICE__API_KEYS": json.dumps([f"{API_KEY_SCORER}:scorer"]),
            "GRAPHFRAUD_SERVICE__AUDIT_LOG": str(root / "audit.log"),
            "GRAPHFRAUD_MODEL__REGISTRY": str(root / "models"),
            "GRAPHFRAUD_INTRADAY__BACKEND": "redis",
            "GRAPHFRAUD_INTRADAY__URL": url,
            "GRAPHFRAUD_INTRADAY__MAX_ACCOUNTS": str(args.accounts * 2),
        }
        graphfraud = Path(sys.executable).parent / "graphfraud"
        log = (root / "server.log").open("wb")
        server = subprocess.Popen(
            [str(graphfraud), "serve", "--run", str(root / "run_batch"), "--port", str(port),
             "--host", "127.0.0.1", "--workers", str(args.workers)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_ready(port, 300)
            time.sleep(3)  # every worker loads its snapshot
            warm = {"kind": "bodies", "bodies_file": str(root / "bodies.jsonl"), "port": port,
                    "users": 0, "rate": 20, "seconds": 3}  # fmt: skip
            run_loadgen(warm)
            result = run_loadgen({**warm, "rate": args.rate, "seconds": args.seconds})
            metrics = http_json(port, "/readyz")
            rss = rss_mb(server.pid)
        finally:
            server.terminate()
            server.wait(30)
    print(
        f"workload: run of {args.users:,} users (seed {args.seed}), {args.accounts:,} accounts "
        f"prefilled in a real redis-server, {len(requests)} new accounts (withheld, then "
        f"another population) POSTed, each recorded, "
        f"at {args.rate:.0f} req/s for {args.seconds:.0f} s, {args.workers} workers"
    )
    print(json.dumps(result, indent=1))
    print(f"server ready: {metrics.get('status')}; parent RSS {rss[0]:.0f} MB")


if __name__ == "__main__":
    main()
