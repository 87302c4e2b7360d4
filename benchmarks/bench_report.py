"""The run report's cost at scale: PSI over every feature, the report, the page.

Workload: two nights of `--users` users (default 1,000,000) × `--features` float32 feature
columns (default 59, as the batch writes; a mix of continuous, skewed counts, binary flags and
columns with 5 % nulls), night 2 shifted on a third of them; scores, 8 link kinds, ring sizes
and 10 hubs beside them. Reported: seconds for `column_psi` over all features, for
`build_report` (which includes it), for `render_html`, the page's size, and the process's peak
RSS. The artifacts are built in memory: this measures the report, not Parquet reads.

    .venv/bin/python benchmarks/bench_report.py [--users 1000000] [--features 59]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import polars as pl

from graphfraud.config import ReportSettings
from graphfraud.report.contents import RunArtifacts, build_report
from graphfraud.report.drift import column_psi
from graphfraud.report.html import render_html


def night(n: int, features: int, seed: int, shift: float) -> RunArtifacts:
    rng = np.random.default_rng(seed)
    cols: dict[str, np.ndarray] = {"user_id": np.arange(n).astype(str)}
    for j in range(features):
        moved = shift if j % 3 == 0 else 0.0
        kind = j % 4
        if kind == 0:
            v = rng.normal(moved, 1, n)
        elif kind == 1:
            v = rng.poisson(1 + moved, n).astype(float)
        elif kind == 2:
            v = (rng.random(n) < 0.2 + moved / 10).astype(float)
        else:
            v = rng.exponential(1 + moved, n)
            v[rng.random(n) < 0.05] = np.nan
        cols[f"f{j:02d}"] = v.astype(np.float32)
    frame = pl.DataFrame(cols).with_columns(pl.col(pl.Float32).fill_nan(None))
    manifest = {
        "run_id": f"night-{seed}",
        "status": "complete",
        "counts": {"users": {"input": n, "accepted": n, "quarantined": 0}},
        "stages": {"link": {"seconds": 1.0, "peak_rss_mb": 1.0}},
    }
    return RunArtifacts(
        manifest=manifest,
        scores=rng.beta(0.3 + shift, 3, n),
        features=frame,
        links_by_kind={f"kind{k}": int(n * (k + 1) * (1 + shift)) for k in range(8)},
        ring_sizes=rng.integers(2, 60, n // 50),
        hubs=pl.DataFrame(
            {"kind": ["ip"] * 10, "value": [f"10.0.0.{i}" for i in range(10)], "support": [50] * 10}
        ),
        quarantine={"users": {"bad email": 12}},
        ring_events=None,
        labelled=n // 20,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=59)
    args = parser.parse_args()
    print(f"workload: 2 nights × {args.users:,} users × {args.features} features (in memory)")
    before, after = (
        night(args.users, args.features, 1, 0.0),
        night(args.users, args.features, 2, 0.3),
    )
    assert before.features is not None
    assert after.features is not None
    t = time.perf_counter()
    table = column_psi(before.features, after.features, after.features.columns[1:])
    psi_s = time.perf_counter() - t
    t = time.perf_counter()
    report = build_report(after, before, ReportSettings())
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    page = render_html(report)
    render_s = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    top = max(table.values())
    print(f"column_psi over {len(table)} features: {psi_s:.2f} s (max PSI {top:.3f})")
    print(f"build_report (PSI included): {build_s:.2f} s · {len(report.warnings)} warnings")
    print(f"render_html: {render_s * 1000:.1f} ms · page {len(page.encode()) / 1024:.0f} KiB")
    print(f"peak RSS {peak:,.0f} MB (both nights' features in memory)")


if __name__ == "__main__":
    main()
