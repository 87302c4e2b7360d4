"""A real nightly run for the online scorer's tests (scoring and service): a synthetic
population, its newest sign-ups withheld (the accounts the batch has not seen), the batch (GBM
candidate) on the rest."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from graphfraud.config import Settings, load_settings
from graphfraud.pipeline import run_pipeline
from graphfraud.synthetic import generate_population, write_population

USERS = 3000
WITHHELD_SHARE = 0.05


@dataclass(frozen=True)
class OnlineRun:
    run_dir: Path
    settings: Settings
    withheld: pl.DataFrame  # users rows (raw, as typed) in sign-up order, with `_t`
    devices: pl.DataFrame  # raw device sightings of everyone
    truth: pl.DataFrame


def settings_for(root: Path) -> Settings:
    base = load_settings()
    return base.model_copy(
        update={
            "model": base.model.model_copy(
                update={"candidates": ["gbm"], "registry": root / "models"}
            )
        }
    )


def build_online_run(root: Path, users: int = USERS) -> OnlineRun:
    write_population(generate_population(users, seed=11, fraud_share=0.05), root / "all")
    users = pl.read_csv(root / "all/users.csv", infer_schema_length=0).with_columns(
        pl.col("created_at").str.to_datetime(time_zone="UTC", strict=False).alias("_t")
    )
    devices = pl.read_csv(root / "all/devices.csv", infer_schema_length=0)
    late = pl.col("_t") > users.get_column("_t").quantile(1 - WITHHELD_SHARE)
    kept = users.filter(~late)
    (root / "batch").mkdir()
    kept.drop("_t").write_csv(root / "batch/users.csv")
    devices.join(kept.select("user_id"), on="user_id").write_csv(root / "batch/devices.csv")
    settings = settings_for(root)
    run_pipeline(root / "batch/users.csv", root / "batch/devices.csv", root / "run", settings)
    return OnlineRun(
        run_dir=root / "run",
        settings=settings,
        withheld=users.filter(late).sort("_t", "user_id"),
        devices=devices,
        truth=pl.read_csv(root / "all/truth.csv"),
    )
