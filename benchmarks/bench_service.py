"""Serving benchmark: a real `graphfraud serve` process on 127.0.0.1 driven over loopback.

Workload (printed again at the end):
1. a synthetic 1M-user run (scores, users, devices, rings, manifest) written with numpy/polars,
   plus a second run that hard-links the same files under another run id (for the swap);
2. `graphfraud serve --run A` as a subprocess (one worker, JSON access log on, as in production);
3. open-loop load at a fixed rate from a separate process (asyncio, raw HTTP/1.1 keep-alive,
   latency measured from each request's *scheduled* send time, so queueing is not hidden):
   GET /v1/users/{random id}/score at 1,000 req/s (10 % unknown ids), with a snapshot swap
   (POST /v1/admin/reload → run B) in the middle: zero non-200 answers allowed;
4. POST /v1/score at 100 req/s (half the bodies hit ring identifiers);
5. max throughput with `wrk` (closed loop, random ids via Lua) on the score route and on
   /healthz of the same server, same run;
6. server RSS after load (VmRSS) and its peak (VmHWM, includes the swap's two snapshots).

Usage: nice python benchmarks/bench_service.py [--users 1000000] [--workdir DIR] [--seconds 20]
The client and the server share the machine's cores: numbers are a floor for a dedicated host.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import polars as pl

API_KEY_SCORER = "bench-scorer"
API_KEY_ADMIN = "bench-admin"
RING_SIZE = 5
RING_SHARE = 0.02


# ---- data -------------------------------------------------------------------------------------
def synth_run(path: Path, n: int, seed: int = 7) -> Path:
    """A run with n users; 2 % of them in rings of 5 sharing a device and an email stem."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    idx = np.arange(n)
    uid = pl.Series("user_id", idx).cast(pl.String).str.zfill(7)
    uid = ("u" + uid).alias("user_id")
    n_ring_users = int(n * RING_SHARE) // RING_SIZE * RING_SIZE
    ring_no = np.full(n, -1)
    ring_no[:n_ring_users] = idx[:n_ring_users] // RING_SIZE
    ring_id = pl.Series("ring_id", ring_no).cast(pl.String).str.zfill(6)
    ring_id = pl.when(pl.Series(ring_no) >= 0).then("R" + ring_id).otherwise(None)
    domains = np.array(["gmail.com", "yahoo.com", "outlook.com", "proton.me", "example.org"])
    dom = domains[rng.integers(0, len(domains), n)]
    local = pl.Series(rng.integers(0, 10**9, n)).cast(pl.String)
    frame = pl.DataFrame({"user_id": uid, "dom": dom, "loc": local, "ring_no": ring_no})
    frame = frame.with_columns(
        ring_id=pl.when(pl.col("ring_no") >= 0).then(
            pl.lit("R") + pl.col("ring_no").cast(pl.String).str.zfill(6)
        ),
        email_local=pl.when(pl.col("ring_no") >= 0)
        .then(
            pl.lit("ringstem")
            + pl.col("ring_no").cast(pl.String)
            + pl.lit("x")
            + (pl.int_range(pl.len()) % RING_SIZE).cast(pl.String)
        )
        .otherwise(pl.lit("user") + pl.col("loc")),
        phone=pl.lit("+91") + (9_000_000_000 + pl.int_range(pl.len()) * 7).cast(pl.String),
    ).with_columns(
        email_domain=pl.col("dom"),
        email=pl.col("email_local") + "@" + pl.col("dom"),
    )
    users = frame.select(
        "user_id",
        pl.col("email").alias("email_raw"),
        "email",
        "email_local",
        "email_domain",
        pl.col("phone").alias("phone_raw"),
        "phone",
        pl.lit(None, dtype=pl.String).alias("name"),
        pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("created_at"),
        pl.lit(None, dtype=pl.Int8).alias("label"),
    )
    users.write_parquet(path / "users.parquet")
    # devices: each user 1 own device (+ 20 % a second); ring members share one device per ring
    dev_own = frame.select(
        "user_id", device_id=pl.lit("d") + pl.int_range(pl.len()).cast(pl.String)
    )
    extra = frame.sample(fraction=0.2, seed=seed).select(
        "user_id", device_id=pl.lit("e") + pl.int_range(pl.len()).cast(pl.String)
    )
    ring_dev = frame.filter(pl.col("ring_no") >= 0).select(
        "user_id", device_id=pl.lit("ringdev") + pl.col("ring_no").cast(pl.String)
    )
    devices = pl.concat([dev_own, extra, ring_dev]).with_columns(
        ip=pl.lit("10.")
        + (pl.int_range(pl.len()) % 250).cast(pl.String)
        + "."
        + ((pl.int_range(pl.len()) // 250) % 250).cast(pl.String)
        + ".1",
        seen_at=pl.lit(None, dtype=pl.Datetime("us", "UTC")),
    )
    devices.write_parquet(path / "devices.parquet")
    score = np.where(ring_no >= 0, rng.beta(8, 2, n), rng.beta(1, 30, n)).astype(np.float32)
    reasons_pool = [
        ["SHARED_DEVICE", "LOOKALIKE_EMAIL"],
        ["SHARED_IP"],
        [],
        ["SIGNUP_BURST", "DENSE_RING"],
    ]
    reason_idx = np.where(ring_no >= 0, rng.choice([0, 3], n), rng.choice([1, 2, 2, 2], n))
    scores = pl.DataFrame(
        {
            "user_id": uid,
            "score": score,
            "ring_id": frame["ring_id"],
            "ring_score": np.where(ring_no >= 0, 0.85, np.nan).astype(np.float32),
            "reasons": pl.Series(reason_idx).replace_strict(
                dict(enumerate(reasons_pool)), return_dtype=pl.List(pl.String)
            ),
            "model_version": ["gbm-bench-1"] * n,
        }
    ).with_columns(pl.col("ring_score").fill_nan(None))
    scores.write_parquet(path / "scores.parquet")
    members = scores.filter(pl.col("ring_id").is_not_null()).select("user_id", "ring_id")
    members.write_parquet(path / "ring_members.parquet")
    rings = (
        members.group_by("ring_id")
        .agg(pl.len().cast(pl.Int32).alias("size"))
        .with_columns(ring_score=pl.lit(0.85, dtype=pl.Float32))
    )
    rings.write_parquet(path / "rings.parquet")
    (path / "manifest.json").write_text(
        json.dumps(
            {
                "run_id": path.name,
                "status": "complete",  # the service refuses to swap in anything else
                "created_at": "2026-01-02T03:04:05+00:00",
                "model_version": "gbm-bench-1",
            }
        )
    )
    return path


def link_run(src: Path, dst: Path) -> Path:
    """A second run sharing the Parquet files (hard links) with its own manifest."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in src.glob("*.parquet"):
        target = dst / f.name
        if not target.exists():
            os.link(f, target)
    (dst / "manifest.json").write_text(
        json.dumps(
            {
                "run_id": dst.name,
                "status": "complete",
                "created_at": "2026-01-03T03:04:05+00:00",
                "model_version": "gbm-bench-1",
            }
        )
    )
    return dst


# ---- load generator (runs in its own process) -------------------------------------------------
async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _open_loop(
    port: int,
    rate: float,
    seconds: float,
    requests: list[bytes],
    conns: int,
    reload_at: float | None,
    reload_req: bytes | None,
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(conns):
        pool.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    reload_result: dict[str, object] = {}

    async def one(scheduled: float, req: bytes) -> None:
        nonlocal errors
        conn = await pool.get()
        try:
            conn[1].write(req)
            status = await _read_response(conn[0])
            statuses[status] = statuses.get(status, 0) + 1
            latencies.append(loop.time() - scheduled)
        except Exception:
            errors += 1
            conn = await asyncio.open_connection("127.0.0.1", port)
        finally:
            pool.put_nowait(conn)

    async def do_reload() -> None:
        assert reload_req is not None
        assert reload_at is not None
        await asyncio.sleep(reload_at)
        r, w = await asyncio.open_connection("127.0.0.1", port)
        t0 = loop.time()
        w.write(reload_req)
        reload_result["status"] = await _read_response(r)
        reload_result["sent_at_s"] = round(reload_at, 1)
        reload_result["answered_ms"] = round((loop.time() - t0) * 1000, 1)
        w.close()

    tasks = []
    if reload_req is not None:
        tasks.append(asyncio.create_task(do_reload()))
    total = int(rate * seconds)
    start = loop.time() + 0.05
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled, requests[i % len(requests)])))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    lat = np.array(latencies) * 1000
    return {
        "sent": total,
        "answered": len(latencies),
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "transport_errors": errors,
        "p50_ms": round(float(np.percentile(lat, 50)), 3) if len(lat) else None,
        "p90_ms": round(float(np.percentile(lat, 90)), 3) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 3) if len(lat) else None,
        "p999_ms": round(float(np.percentile(lat, 99.9)), 3) if len(lat) else None,
        "max_ms": round(float(lat.max()), 3) if len(lat) else None,
        "reload": reload_result,
    }


def _get(path: str, key: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n\r\n".encode()


def _post(path: str, key: str, body: dict[str, object]) -> bytes:
    data = json.dumps(body).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode() + data


def loadgen_main(spec: dict[str, object]) -> None:
    """Entry of the load-generator process: spec in, JSON result on stdout."""
    rng = random.Random(11)
    n = int(spec["users"])  # type: ignore[arg-type]
    if spec["kind"] == "bodies":  # POST /v1/score with the bodies of a JSON-lines file
        lines = Path(str(spec["bodies_file"])).read_text().splitlines()
        reqs = [_post("/v1/score", API_KEY_SCORER, json.loads(line)) for line in lines]
    elif spec["kind"] == "get":
        reqs = [
            _get(
                f"/v1/users/u{rng.randrange(n):07d}/score"
                if rng.random() > 0.1
                else f"/v1/users/ghost{i}/score",
                API_KEY_SCORER,
            )
            for i in range(50_000)
        ]
    else:
        ring_users = int(n * RING_SHARE) // RING_SIZE
        reqs = []
        for i in range(5_000):
            if i % 2 == 0 and ring_users:
                ring = rng.randrange(ring_users)
                body = {
                    "email": f"ringstem{ring}x9@gmail.com",
                    "device_ids": [f"ringdev{ring}"],
                    "phone": f"+91{9_000_000_000 + rng.randrange(n) * 7 + 3}",
                }
            else:
                body = {
                    "email": f"fresh{rng.randrange(10**9)}@example.org",
                    "ips": [f"192.0.2.{rng.randrange(250)}"],
                }
            reqs.append(_post("/v1/score", API_KEY_SCORER, body))
    reload_req = None
    # the client's own full collections (its prebuilt requests are ~100k objects) would show
    # up as the server's latency: freeze what is built, so only the server's pauses count
    gc.collect()
    gc.freeze()
    if spec.get("reload_run"):
        reload_req = _post("/v1/admin/reload", API_KEY_ADMIN, {"run": spec["reload_run"]})
    result = asyncio.run(
        _open_loop(
            int(spec["port"]),
            float(spec["rate"]),
            float(spec["seconds"]),
            reqs,  # type: ignore[arg-type]
            int(spec.get("conns", 32)),
            spec.get("reload_at"),
            reload_req,
        )  # type: ignore[arg-type]
    )
    print(json.dumps(result))


def run_loadgen(spec: dict[str, object]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--loadgen", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# ---- server ------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        fields[k] = v.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def http_json(
    port: int, path: str, key: str | None = None, body: dict[str, object] | None = None
) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method="POST" if body is not None else "GET"
    )
    if key:
        req.add_header("X-API-Key", key)
    data = json.dumps(body).encode() if body is not None else None
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, data=data, timeout=10) as resp:  # loopback only
        return json.loads(resp.read())  # type: ignore[no-any-return]


def wait_ready(port: int, timeout: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if http_json(port, "/readyz").get("ready"):
                return time.perf_counter() - t0
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def wrk(port: int, path: str, seconds: int, conns: int, lua: Path | None) -> dict[str, object]:
    if shutil.which("wrk") is None:
        return {"skipped": "wrk not installed (apt-get install -y wrk)"}
    cmd = [
        "wrk",
        "-t1",
        f"-c{conns}",
        f"-d{seconds}s",
        "--latency",
        "-H",
        f"X-API-Key: {API_KEY_SCORER}",
    ]
    if lua is not None:
        cmd += ["-s", str(lua)]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, object] = {}
    for line in out.splitlines():
        s = line.strip()
        if s.startswith("Requests/sec:"):
            result["rps"] = float(s.split()[1])
        elif s.startswith(("50%", "99%")):
            result[f"p{s.split()[0][:-1]}"] = s.split()[1]
        elif "Non-2xx" in s or "Socket errors" in s:
            result.setdefault("errors", []).append(s)  # type: ignore[union-attr]
    return result


def server_side_latency(port: int, route: str) -> dict[str, object]:
    """Share of requests the server itself answered within each histogram bucket (from /metrics)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    with urllib.request.urlopen(req, timeout=10) as resp:  # loopback only
        text = resp.read().decode()
    buckets: dict[str, float] = {}
    for line in text.splitlines():
        if (
            line.startswith("graphfraud_http_request_duration_seconds_bucket")
            and f'route="{route}"' in line
        ):
            le = line.split('le="')[1].split('"')[0]
            buckets[le] = float(line.rsplit(" ", 1)[1])
    total = buckets.get("+Inf", 0.0)
    return {
        "requests": int(total),
        **{
            f"share_le_{le}s": round(v / total, 4)
            for le, v in buckets.items()
            if le in ("0.0005", "0.001", "0.002", "0.005")
        },
    }


def in_process_lookup_us(run: Path, n_users: int) -> float:
    """Mean cost of the in-memory store's `score_json` (dict probe + orjson) in-process, in µs."""
    from graphfraud.scoring.snapshot import load_snapshot

    snap = load_snapshot(run, with_identifiers=False)
    rng = random.Random(3)
    ids = [f"u{rng.randrange(n_users):07d}" for _ in range(100_000)]
    t0 = time.perf_counter()
    for uid in ids:
        snap.score_json(uid)
    return round((time.perf_counter() - t0) / len(ids) * 1e6, 2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--loadgen", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.loadgen:
        loadgen_main(json.loads(args.loadgen))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="gf-bench-"))
    runs = work / "runs"
    a, b = runs / "snap-a", runs / "snap-b"
    t0 = time.perf_counter()
    if not (a / "scores.parquet").exists():
        synth_run(a, args.users)
    link_run(a, b)
    print(
        f"workload: {args.users:,} users, {int(args.users * RING_SHARE) // RING_SIZE:,} rings "
        f"of {RING_SIZE}; "
        f"run written in {time.perf_counter() - t0:.1f}s at {runs}"
    )
    port = free_port()
    env = {
        **os.environ,
        "GRAPHFRAUD_SERVICE__API_KEYS": json.dumps(
            [f"{API_KEY_SCORER}:scorer", f"{API_KEY_ADMIN}:admin"]
        ),
        "GRAPHFRAUD_SERVICE__AUDIT_LOG": str(work / "audit.log"),
    }
    log = (work / "server.log").open("wb")
    graphfraud = Path(sys.executable).parent / "graphfraud"
    server = subprocess.Popen(
        [str(graphfraud), "serve", "--run", str(a), "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    results: dict[str, object] = {}
    try:
        ready_s = wait_ready(port, 300)
        info = http_json(port, "/readyz")["snapshot"]
        results["startup_to_ready_s"] = round(ready_s, 2)
        results["snapshot_load_s"] = info["load_seconds"]  # type: ignore[index]
        results["rss_after_load_mb"] = round(rss_mb(server.pid)[0])
        # warm-up
        run_loadgen({"kind": "get", "port": port, "users": args.users, "rate": 500, "seconds": 2})
        results["get_score_1000rps_with_swap"] = run_loadgen(
            {
                "kind": "get",
                "port": port,
                "users": args.users,
                "rate": 1000,
                "seconds": args.seconds,
                "reload_run": "snap-b",
                "reload_at": args.seconds / 3,
            }
        )
        for _ in range(600):
            status = http_json(port, "/v1/admin/snapshot", API_KEY_ADMIN)
            if status["loading"] is None:
                break
            time.sleep(0.5)
        results["after_swap"] = {
            "snapshot": status["snapshot"]["run_id"],
            "last_error": status["last_error"],
        }  # type: ignore[index]
        results["rss_after_swap_mb"], results["rss_peak_mb"] = (
            round(x) for x in rss_mb(server.pid)
        )
        results["get_score_1000rps_steady"] = run_loadgen(
            {
                "kind": "get",
                "port": port,
                "users": args.users,
                "rate": 1000,
                "seconds": args.seconds / 2,
            }
        )
        results["post_score_100rps"] = run_loadgen(
            {
                "kind": "post",
                "port": port,
                "users": args.users,
                "rate": 100,
                "seconds": args.seconds,
            }
        )
        lua = work / "ids.lua"
        lua.write_text(
            f"math.randomseed(7)\nrequest = function()\n"
            "  return wrk.format('GET', string.format('/v1/users/u%07d/score', "
            f"math.random(0, {args.users - 1})))\nend\n"
        )
        secs = max(5, int(args.seconds / 2))
        results["max_throughput_score_wrk"] = wrk(port, "/v1/users/u0000001/score", secs, 32, lua)
        results["max_throughput_healthz_wrk"] = wrk(port, "/healthz", secs, 32, None)
        results["rss_final_mb"], results["rss_peak_mb"] = (round(x) for x in rss_mb(server.pid))
        results["server_side_score_latency"] = server_side_latency(
            port, "/v1/users/{user_id}/score"
        )
        results["server_side_post_score_latency"] = server_side_latency(port, "/v1/score")
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    results["in_process_score_json_us"] = in_process_lookup_us(a, args.users)
    print(json.dumps(results, indent=2))
    swap = results["get_score_1000rps_with_swap"]
    ok = (
        isinstance(swap, dict)
        and swap["transport_errors"] == 0
        and set(swap["statuses"]) == {"200"}  # type: ignore[arg-type]
        and results["after_swap"]["snapshot"] == "snap-b"  # type: ignore[index]
    )
    print(f"swap under load with zero failed requests: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
