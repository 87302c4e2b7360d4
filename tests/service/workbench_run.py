"""A small real batch run for the workbench tests: 150 device-farm accounts (one shared device, a
run of sequential phones, numbered look-alike emails, one NAT address), a family sharing a
tablet, and honest users. Built directly as input files, then the real pipeline (GBM only)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from graphfraud.config import Settings, load_settings
from graphfraud.pipeline import run_pipeline

FARM = 150
HONEST = 250
FARM_DEVICE = "a3f9c2d18e7b4406"
FARM_IP = "100.64.7.9"
DOMAINS = ("gmail.com", "yahoo.in", "outlook.com")


def farm_id(i: int) -> str:
    return f"f{i:04d}"


def build_inputs(root: Path, *, seed: int = 7) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    t0 = datetime(2026, 3, 1, tzinfo=UTC)
    first = ["asha", "ravi", "meena", "arjun", "kiran", "divya", "sunil", "pooja", "vikram", "neha"]
    last = ["sharma", "patel", "iyer", "reddy", "khan", "das", "nair", "joshi", "gupta", "rao"]
    rows = []
    devices = []
    for i in range(FARM):
        uid = farm_id(i)
        rows.append(
            {
                "user_id": uid,
                "email": f"priya.k{i + 7:03d}@gmail.com",
                "phone": f"+9198450{10000 + i:05d}",
                "name": f"Priya K {i}",
                "created_at": (t0 + timedelta(minutes=7 * i)).isoformat(),
                "label": "1" if i % 25 == 0 else "",
            }
        )
        devices.append({"user_id": uid, "device_id": FARM_DEVICE, "ip": FARM_IP})
    for j in range(HONEST):
        uid = f"h{j:04d}"
        f, s = first[j % 10], last[(j * 7 + j // 10) % 10]
        rows.append(
            {
                "user_id": uid,
                "email": f"{f}.{s}{int(rng.integers(1950, 2005))}{j}@{DOMAINS[j % 3]}",
                "phone": f"+91{int(rng.integers(6_000_000_000, 9_999_999_999))}",
                "name": f"{f.title()} {s.title()}",
                "created_at": (t0 - timedelta(days=int(rng.integers(30, 900)))).isoformat(),
                "label": "0" if j % 10 == 0 else "",
            }
        )
        devices.append(
            {
                "user_id": uid,
                "device_id": f"{int(rng.integers(0, 2**63)):016x}",
                "ip": f"49.{j % 200}.{int(rng.integers(0, 255))}.{int(rng.integers(1, 255))}",
            }
        )
    # a family of three sharing a tablet: a small honest ring-let
    for j in (0, 1, 2):
        devices.append({"user_id": f"h{j:04d}", "device_id": "famtablet0000001", "ip": "49.1.1.1"})
    users_csv = root / "users.csv"
    devices_csv = root / "devices.csv"
    pl.DataFrame(rows).write_csv(users_csv)
    pl.DataFrame(devices).write_csv(devices_csv)
    return users_csv, devices_csv


def settings_for(root: Path) -> Settings:
    settings = load_settings()
    settings.model.registry = root / "models"
    settings.model.candidates = ["gbm"]
    settings.model.folds = 3
    # the farm's device and NAT address (150 holders) link pairwise instead of being hubs
    settings.link.max_share = 200
    return settings


def build_workbench_run(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    users, devices = build_inputs(root)
    run_pipeline(users, devices, root / "run", settings_for(root))
    return root / "run"
