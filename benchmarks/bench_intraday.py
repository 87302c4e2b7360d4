"""Intraday store benchmark: record and lookup latency with the store holding N accounts, on a
real redis-server over loopback (started and stopped here) and in process for comparison.

    .venv/bin/python benchmarks/bench_intraday.py                      # 50k accounts, 2k ops each
    .venv/bin/python benchmarks/bench_intraday.py --accounts 2000 --ops 200   # smoke size
    .venv/bin/python benchmarks/bench_intraday.py --url redis://10.0.0.5:6379/0  # your server
                                                    (password from GRAPHFRAUD_INTRADAY__PASSWORD)

Workload: accounts shaped like sign-ups (an email, its stem block and one-deletion neighbours,
one phone, 1-2 devices and IPs from pools so some are shared, a small payload). The store is
filled to N with max_accounts = N, so every timed record also evicts one account. Each timed
lookup is what `POST /v1/score` asks for one account (exact email / devices / IPs, ~12 stem
blocks, a ±20 phone window, the last 10 minutes of sign-ups, limit 50) in one call; half of
them are look-alikes of stored accounts. Prints the workload, then one line per number.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from graphfraud.config import IntradaySettings
from graphfraud.linking.keys import email_stem
from graphfraud.scoring.intraday import IntradayAccount, IntradayQuery, open_intraday_store
from graphfraud.scoring.intraday.local_server import start_redis, stop_redis

PASSWORD = "bench-intraday-pw"
NAMES = ["priya", "rahul", "amit", "sneha", "john", "anita", "vikram", "neha", "arjun", "kavya"]
SURNAMES = ["sharma", "verma", "patel", "singh", "doe", "iyer", "khan", "reddy", "gupta", "nair"]
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "rediffmail.com"]
T0 = 1_767_000_000.0


def blocks_of(local: str, domain: str) -> tuple[str, ...]:
    """The email stem and its one-deletion neighbours (the batch's blocking keys)."""
    stem = email_stem(local, domain)
    if stem is None:
        return ()
    stem_local = stem.rsplit("@", 1)[0]
    keys = [stem]
    if len(stem_local) >= 4:
        keys += [f"{stem_local[:i]}{stem_local[i + 1 :]}@{domain}" for i in range(len(stem_local))]
    return tuple(dict.fromkeys(keys))


def make_account(
    rng: random.Random, i: int, like: IntradayAccount | None = None
) -> IntradayAccount:
    if like is not None:  # a look-alike of a stored account: next email number, shared device
        local = f"{like.identifiers['email'][0].split('@')[0]}x"
        domain = like.identifiers["email"][0].split("@")[1]
        phone = like.numbers["phone"][0] + rng.randint(1, 5)
        devices = (like.identifiers["device"][0],)
    else:
        local = f"{rng.choice(NAMES)}.{rng.choice(SURNAMES)}{rng.randint(1, 99_999)}"
        domain = rng.choice(DOMAINS)
        phone = 919_000_000_000 + rng.randint(0, 999_999_999)
        devices = tuple(f"dev-{rng.randint(0, 400_000)}" for _ in range(rng.randint(1, 2)))
    n_ips = rng.randint(1, 2)
    ips = tuple(f"10.{rng.randint(0, 255)}.{rng.randint(0, 99)}.1" for _ in range(n_ips))
    return IntradayAccount(
        f"new-{i:08d}",
        T0 + i * 1.7,
        identifiers={"email": (f"{local}@{domain}",), "device": devices, "ip": ips},
        blocks={"email_stem": blocks_of(local, domain)},
        numbers={"phone": (phone,)},
        payload={"score": round(rng.random(), 4), "ring_id": None, "reasons": ["NO_MATCH"]},
    )


def query_for(acc: IntradayAccount) -> IntradayQuery:
    phone = acc.numbers["phone"][0]
    return IntradayQuery(
        values={k: acc.identifiers[k] for k in ("email", "device", "ip")},
        blocks=acc.blocks,
        windows={"phone": (phone - 20, phone + 20)},
        signed_up=(acc.created_at - 600, acc.created_at),
        exclude=acc.user_id,
        limit=50,
    )


def percentiles(samples_ms: list[float]) -> str:
    q = statistics.quantiles(samples_ms, n=100, method="inclusive")
    return f"p50 {q[49]:.3f} ms  p99 {q[98]:.3f} ms  max {max(samples_ms):.3f} ms"


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def bench(label: str, settings: IntradaySettings, accounts: int, ops: int, seed: int) -> None:
    rng = random.Random(seed)
    store = open_intraday_store(settings)
    try:
        stored = [make_account(rng, i) for i in range(accounts)]
        t0 = time.perf_counter()
        for acc in stored:
            store.record(acc)
        fill_s = time.perf_counter() - t0
        assert store.size() == accounts, store.size()
        fresh = [
            make_account(rng, accounts + j, like=stored[rng.randrange(accounts)] if j % 2 else None)
            for j in range(ops)
        ]
        queries = [query_for(acc) for acc in fresh]
        lookups = [timed(lambda q=q: store.lookup(q)) for q in queries]  # type: ignore[misc]
        sample = queries[:200]
        matched = sum(bool(store.lookup(q).accounts) for q in sample)  # found any account
        records = [timed(lambda a=a: store.record(a)) for a in fresh]  # type: ignore[misc]
        # what one POST /v1/score does to the store: look the new account up, then record it
        later = [
            make_account(
                rng, accounts + ops + j, like=stored[rng.randrange(accounts)] if j % 2 else None
            )
            for j in range(ops)
        ]
        both = [
            timed(lambda a=a, q=query_for(a): (store.lookup(q), store.record(a)))  # type: ignore[misc]
            for a in later
        ]
        size = store.size()
        print(f"[{label}] fill {accounts:,} records: {fill_s:.1f} s ({accounts / fill_s:,.0f}/s)")
        print(f"[{label}] record (store at {size:,}, evicting): {percentiles(records)}")
        print(
            f"[{label}] lookup (~{len(queries[0].blocks['email_stem']) + 4} keys + window + "
            f"sign-ups; {matched}/{len(sample)} found an account): {percentiles(lookups)}"
        )
        print(f"[{label}] lookup then record (one POST /v1/score): {percentiles(both)}")
        if settings.backend == "redis":
            import redis

            info = redis.Redis.from_url(
                settings.url, password=settings.password.get_secret_value() or None
            ).info("memory")
            used = int(info["used_memory"])
            per = used / size
            print(f"[{label}] redis used_memory {used / 2**20:.0f} MiB ({per:,.0f} B/account)")
    finally:
        if settings.backend == "redis":  # leave a shared server as it was
            store.forget(list(store.user_ids()))
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--ops", type=int, default=2_000, help="timed records and lookups")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--backends", nargs="+", default=["memory", "redis"])
    parser.add_argument("--url", default="", help="an existing server (default: start one)")
    args = parser.parse_args()
    print(
        f"workload: {args.accounts:,} accounts held, {args.ops:,} timed ops per kind, "
        f"seed {args.seed}, {os.cpu_count()} cores"
    )
    for backend in args.backends:
        if backend == "memory":
            settings = IntradaySettings(max_accounts=args.accounts)
            bench("memory", settings, args.accounts, args.ops, args.seed)
            continue
        server = None
        root = Path(tempfile.mkdtemp(prefix="bench-intraday-"))
        if not args.url:
            server = start_redis(root, PASSWORD)
        try:
            settings = IntradaySettings(
                backend="redis",
                url=args.url or (server.url if server else ""),
                password=os.environ.get("GRAPHFRAUD_INTRADAY__PASSWORD", PASSWORD),
                prefix=f"bench-{os.getpid()}",
                max_accounts=args.accounts,
                timeout_s=1.0,  # measure latency, do not cut it off
            )
            label = "redis loopback" if server else "redis"
            bench(label, settings, args.accounts, args.ops, args.seed)
        finally:
            if server is not None:
                stop_redis(server)


if __name__ == "__main__":
    main()
