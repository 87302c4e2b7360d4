"""Stage benchmark on a finished run: link, rings, features and the model recomputed from its
inputs, each in a fresh process, timed, with the process's peak RSS, and checked against the
run's own files.

Workload: the run directory `--run` (e.g. `bench-out/incremental-1000000/day1`, written by
`bench_incremental.py`). Each stage reads what the pipeline's stage reads and recomputes its
artifact in memory; nothing in the run is written. Run it once on a branch and once on its base
to compare two versions of a stage on the very same inputs: the output must be equal
(`DataFrame.equals`), only the time and the memory may move. The `model` stage trains the
candidate that scored the run (out of fold, into a temporary registry, the settings' seed) and
compares every user's model score with the run's. A run written by a version that
links or scores differently (a new link rule) is reported unequal, as it should be.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_stages.py --run bench-out/incremental-100000/day1
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from pathlib import Path
from typing import Any

from _common import machine, peak_rss_mb

STAGES = ("link", "rings", "features", "model")


def _stage(name: str, path: str, queue: Any) -> None:
    """One stage's recomputation in this (fresh) process; puts seconds, peak MB, equality."""
    import polars as pl

    from graphfraud.config import load_settings
    from graphfraud.linking.link import build_links
    from graphfraud.model.dataset import GRAPH_LINK_COLUMNS
    from graphfraud.model.feature_parts import user_features_on
    from graphfraud.pipeline import run_registry
    from graphfraud.rings.detect import RING_LINK_COLUMNS, leiden_communities, strong_pairs
    from graphfraud.rundir import RunDir
    from graphfraud.schema import (
        COMMUNITIES_FILE,
        DEVICES_FILE,
        FEATURES_FILE,
        IDENTIFIERS_FILE,
        LINKS_FILE,
        LOOKALIKES_FILE,
        MANIFEST_FILE,
        MEMBERS_FILE,
        RINGS_FILE,
        USERS_FILE,
    )

    settings, run = load_settings(), RunDir(Path(path))
    registry = run_registry(run)
    t0 = time.perf_counter()
    if name == "link":
        found = build_links(
            run.read(USERS_FILE), run.read(DEVICES_FILE), settings.link, registry=registry
        )
        same = found.links.equals(run.read(LINKS_FILE)) and found.lookalikes.equals(
            run.read(LOOKALIKES_FILE)
        )
    elif name == "rings":  # Leiden's communities, what the rings stage spends its time on
        pairs = strong_pairs(
            run.read(LINKS_FILE, columns=RING_LINK_COLUMNS), settings.rings, registry
        )
        communities = leiden_communities(pairs, settings.rings)
        same = communities.sort("user_id").equals(run.read(COMMUNITIES_FILE).sort("user_id"))
    elif name == "model":
        same = _model_stage(run, settings, registry.link_kinds)
    else:
        from graphfraud.engine import SERIAL
        from graphfraud.rings.detect import pair_strengths

        links = run.read(LINKS_FILE, columns=list(GRAPH_LINK_COLUMNS))
        features = user_features_on(
            SERIAL,
            run.read(USERS_FILE),
            run.read(DEVICES_FILE),
            links,
            run.read(IDENTIFIERS_FILE),
            pair_strengths(links),
            run.read(MEMBERS_FILE),
            run.read(RINGS_FILE),
            max_share=settings.link.max_share,
            strong=settings.rings.min_weight,
            identifiers=run.read_json(MANIFEST_FILE).get("identifiers", []),
        )
        same = features.equals(pl.read_parquet(run.file(FEATURES_FILE)))
    queue.put({"seconds": time.perf_counter() - t0, "peak_mb": peak_rss_mb(), "same": same})


def _model_stage(run: Any, settings: Any, relations: tuple[str, ...]) -> bool:
    """Train the kind that scored `run` as its model stage did; equal to its model scores?"""
    import tempfile

    import numpy as np
    import polars as pl

    from graphfraud.model.dataset import GRAPH_LINK_COLUMNS, build_graph_data
    from graphfraud.model.registry import ModelRegistry
    from graphfraud.model.train import train_and_score
    from graphfraud.schema import (
        FEATURES_FILE,
        LINKS_FILE,
        MANIFEST_FILE,
        MEMBERS_FILE,
        SCORES_FILE,
        USERS_FILE,
    )

    kind = run.read_json(MANIFEST_FILE)["model"]["kind"]
    if kind in ("prior", "promoted"):
        raise SystemExit(f"the run was scored by the {kind}: nothing it trained to compare with")
    settings.model.candidates = [kind]
    data = build_graph_data(
        run.read(FEATURES_FILE),
        run.read(LINKS_FILE, columns=list(GRAPH_LINK_COLUMNS)),
        run.read(USERS_FILE).select("user_id", "label"),
        run.read(MEMBERS_FILE),
        relations=relations,
    )
    with tempfile.TemporaryDirectory() as tmp:
        result = train_and_score(
            data, settings.model, registry=ModelRegistry(tmp), model_params=settings.model.params
        )
    mine = pl.DataFrame({"user_id": data.user_ids.astype(str), "model_score": result.scores})
    theirs = run.read(SCORES_FILE).select("user_id", "model_score")
    joined = mine.join(theirs, on="user_id", suffix="_run")
    return joined.height == theirs.height and bool(
        np.array_equal(joined["model_score"].to_numpy(), joined["model_score_run"].to_numpy())
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--run", type=Path, required=True, help="a finished run directory")
    parser.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated: " + ", ".join(STAGES)
    )
    args = parser.parse_args()
    import polars as pl

    users = pl.scan_parquet(args.run / "users.parquet").select(pl.len()).collect().item()
    links = pl.scan_parquet(args.run / "links.parquet").select(pl.len()).collect().item()
    print(f"workload: run {args.run} ({users:,} users, {links:,} links); machine: {machine()}")
    ctx = multiprocessing.get_context("spawn")
    for name in args.stages.split(","):
        queue = ctx.Queue()
        proc = ctx.Process(target=_stage, args=(name, str(args.run), queue))
        proc.start()
        got = queue.get()
        proc.join()
        print(
            f"{name:<9} {got['seconds']:7.1f} s  peak {got['peak_mb']:7,.0f} MB  "
            f"equal to the run's file: {got['same']}"
        )


if __name__ == "__main__":
    main()
