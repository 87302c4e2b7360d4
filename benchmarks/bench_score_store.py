"""Score-store benchmark: what a worker of `graphfraud serve` costs per user, how fast the store
opens, the hot path's latency at 1,000 req/s, and max throughput with 1 and 2 workers.

Workload (printed again at the end):
1. two synthetic runs written directly with numpy/polars (`bench_service.synth_run`: scores,
   users, devices, rings, manifest; 2 % of users in rings of 5), not the whole batch: 20k and
   1M users; then the score stage's `write_score_store` on each (timed);
2. open time of each backend on the 1M run, in a fresh process each (median of 3; the
   page cache is warm after the write, as on a replica that has served the run before);
3. per backend (`mapped`, `memory`): `graphfraud serve --workers 2` on the 20k and on the 1M run,
   a warm-up (500 req/s for 4 s, random ids), then each worker's memory from
   /proc/PID/smaps_rollup: private (Private_Clean + Private_Dirty), anonymous (heap) and shared
   (Shared_Clean + Shared_Dirty); bytes per user = (mean per worker at 1M − at 20k) /
   (1M − 20k users);
4. on the 1M run with the mapped store and `--workers 2`: open-loop GET /v1/users/{id}/score at
   1,000 req/s (10 % unknown ids; latency from each request's scheduled send time), then the
   per-worker memory again;
5. max throughput with `wrk` (closed loop, 32 connections, random ids) on the score route and on
   /healthz (the framework's own trivial endpoint) of the same server, `--workers 1` and 2.

Usage: nice python benchmarks/bench_score_store.py [--users 1000000] [--small 20000]
           [--seconds 15] [--workdir DIR] [--backends mapped,memory]
The client and the server share the machine's cores: throughput numbers are a floor.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_service import (
    API_KEY_ADMIN,
    API_KEY_SCORER,
    free_port,
    run_loadgen,
    synth_run,
    wait_ready,
    wrk,
)

KB = 1024


def smaps(pid: int) -> dict[str, int]:
    """Private and shared bytes of one process (smaps_rollup)."""
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[key] = int(parts[0]) * KB
    return {
        "private": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
        "shared": fields.get("Shared_Clean", 0) + fields.get("Shared_Dirty", 0),
        # heap and other anonymous memory: what a worker cannot share or give back; a mapped
        # file's page touched by this worker alone counts as Private_Clean although it is the
        # page cache's (reclaimable, and shared as soon as another worker reads it)
        "anonymous": fields.get("Anonymous", 0),
        "rss": fields.get("Rss", 0),
    }


def workers_of(pid: int) -> list[int]:
    """The serving processes: the server itself with one worker, else uvicorn's children that
    are workers (not its multiprocessing helper)."""
    children = [
        int(c)
        for t in Path(f"/proc/{pid}/task").iterdir()
        for c in (t / "children").read_text().split()
    ]
    kept = [c for c in children if "multiprocessing.resource_tracker" not in _cmdline(c)]
    return kept or [pid]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


class Server:
    """`graphfraud serve` as a subprocess on a free loopback port."""

    def __init__(self, run: Path, backend: str, workers: int, work: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "GRAPHFRAUD_SERVICE__API_KEYS": json.dumps(
                [f"{API_KEY_SCORER}:scorer", f"{API_KEY_ADMIN}:admin"]
            ),
            "GRAPHFRAUD_SERVICE__AUDIT_LOG": str(work / "audit.log"),
            "GRAPHFRAUD_SERVICE__SCORE_STORE": backend,
            "GRAPHFRAUD_SERVICE__ACCESS_LOG": "false",
        }
        graphfraud = Path(sys.executable).parent / "graphfraud"
        self.log = (work / f"server-{backend}-{workers}-{run.name}.log").open("wb")
        cmd = [str(graphfraud), "serve", "--run", str(run), "--port", str(self.port)]
        cmd += ["--host", "127.0.0.1", "--workers", str(workers)]
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.workers = workers

    def ready(self) -> float:
        seconds = wait_ready(self.port, 600)
        if self.workers > 1:  # /readyz answers once one worker is up: wait for every one
            deadline = time.time() + 600
            while len(workers_of(self.proc.pid)) < self.workers and time.time() < deadline:
                time.sleep(0.5)
            for _ in range(4 * self.workers):
                wait_ready(self.port, 600)
        return seconds

    def memory(self) -> list[dict[str, int]]:
        return [smaps(p) for p in workers_of(self.proc.pid)]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def warm(port: int, users: int, seconds: float) -> None:
    run_loadgen({"kind": "get", "port": port, "users": users, "rate": 500, "seconds": seconds})


def open_seconds(run: Path, backend: str) -> float:
    """Median open time of a backend, each in a fresh interpreter (imports not counted)."""
    code = (
        "import sys, time; import graphfraud.scoring.mapped; "
        "from graphfraud.scoring.store import open_score_store; "
        "t = time.perf_counter(); open_score_store(sys.argv[1], sys.argv[2]); "
        "print(time.perf_counter() - t)"
    )
    times = sorted(
        float(
            subprocess.run(
                [sys.executable, "-c", code, str(run), backend],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[-1]
        )
        for _ in range(3)
    )
    return round(times[1], 3)


def max_throughput(port: int, users: int, seconds: int, work: Path) -> dict[str, Any]:
    lua = work / "ids.lua"
    lua.write_text(
        "math.randomseed(7)\nrequest = function()\n"
        "  return wrk.format('GET', string.format('/v1/users/u%07d/score', "
        f"math.random(0, {users - 1})))\nend\n"
    )
    # healthz before and after: on a shared host the gap between the two says how much the
    # machine's other load moved while the score route ran
    before = wrk(port, "/healthz", seconds, 32, None)
    score = wrk(port, "/v1/users/u0000001/score", seconds, 32, lua)
    after = wrk(port, "/healthz", seconds, 32, None)
    trivial = [float(t["rps"]) for t in (before, after) if "rps" in t]
    ratio = (
        round(float(score["rps"]) / (sum(trivial) / len(trivial)), 3)
        if "rps" in score and trivial
        else None
    )
    return {
        "score_route": score,
        "healthz_before": before,
        "healthz_after": after,
        "score_over_healthz": ratio,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=20_000)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--backends", default="mapped,memory")
    ap.add_argument(
        "--keep-stores", action="store_true", help="reuse stores a previous run left in --workdir"
    )
    args = ap.parse_args()
    from graphfraud.scoring.mapped import store_path, write_score_store

    work = args.workdir or Path(tempfile.mkdtemp(prefix="gf-store-bench-"))
    runs = {n: work / "runs" / f"u{n}" for n in (args.small, args.users)}
    results: dict[str, Any] = {"write_store_s": {}, "store_mb": {}}
    for n, run in runs.items():
        if not (run / "scores.parquet").exists():
            synth_run(run, n)
        if not (args.keep_stores and (store_path(run) / "store.json").exists()):
            t0 = time.perf_counter()
            write_score_store(run)
            results["write_store_s"][n] = round(time.perf_counter() - t0, 2)
        size = sum(p.stat().st_size for p in store_path(run).iterdir())
        results["store_mb"][n] = round(size / 2**20, 1)
    big = runs[args.users]
    print(f"workload: runs of {args.small:,} and {args.users:,} synthetic users at {work}")
    backends = args.backends.split(",")
    results["open_s_1M"] = {b: open_seconds(big, b) for b in backends}
    per_user: dict[str, Any] = {}
    added = args.users - args.small
    for backend in backends:
        mems: dict[int, list[dict[str, int]]] = {}
        for n, run in runs.items():
            server = Server(run, backend, 2, work)
            try:
                server.ready()
                warm(server.port, n, 4)
                mems[n] = server.memory()
            finally:
                server.stop()

        def mean(n: int, field: str, of: dict[int, list[dict[str, int]]] = mems) -> float:
            return sum(m[field] for m in of[n]) / len(of[n])

        per_user[backend] = {
            "workers": 2,
            "private_bytes_per_user": round(
                (mean(args.users, "private") - mean(args.small, "private")) / added, 1
            ),
            "anonymous_bytes_per_user": round(
                (mean(args.users, "anonymous") - mean(args.small, "anonymous")) / added, 1
            ),
            **{
                f"worker_{field}_mb": {
                    n: [round(m[field] / 2**20, 1) for m in ms] for n, ms in mems.items()
                }
                for field in ("private", "anonymous", "shared")
            },
        }
    results["per_user"] = per_user
    secs = max(5, int(args.seconds / 2))
    for workers in (1, 2):
        server = Server(big, "mapped", workers, work)
        key = f"mapped_1M_workers_{workers}"
        try:
            server.ready()
            warm(server.port, args.users, 3)
            load = run_loadgen(
                {
                    "kind": "get",
                    "port": server.port,
                    "users": args.users,
                    "rate": 1000,
                    "seconds": args.seconds,
                }
            )
            mems = server.memory()
            results[key] = {
                "get_score_1000rps": load,
                "per_worker_private_mb": [round(m["private"] / 2**20, 1) for m in mems],
                "per_worker_shared_mb": [round(m["shared"] / 2**20, 1) for m in mems],
                "max_throughput": max_throughput(server.port, args.users, secs, work),
            }
        finally:
            server.stop()
    print(json.dumps(results, indent=2))
    one = results["mapped_1M_workers_1"]["max_throughput"]["score_route"].get("rps")
    two = results["mapped_1M_workers_2"]["max_throughput"]["score_route"].get("rps")
    p99 = results["mapped_1M_workers_1"]["get_score_1000rps"].get("p99_ms")
    print(
        f"summary (mapped, {args.users:,} users): "
        f"{per_user.get('mapped', {}).get('private_bytes_per_user')} private B/user per worker; "
        f"open {results['open_s_1M'].get('mapped')} s; p99 {p99} ms at 1,000 req/s; "
        f"wrk {one} req/s with 1 worker, {two} with 2"
    )


if __name__ == "__main__":
    main()
