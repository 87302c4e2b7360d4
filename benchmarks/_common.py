"""Shared helpers for the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    sink[label] = time.perf_counter() - t0


def out_dir(name: str) -> Path:
    root = Path(os.environ.get("GRAPHFRAUD_BENCH_OUT", "bench-out")) / name
    root.mkdir(parents=True, exist_ok=True)
    return root


def machine() -> str:
    return f"{os.cpu_count()} cores, python {os.sys.version.split()[0]}"  # type: ignore[attr-defined]
