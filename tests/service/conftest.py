"""Service test fixtures: two small runs under one runs root, keys for every role, an app client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from graphfraud.config import Settings
from graphfraud.service import create_app

from .factories import make_settings, write_run


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    write_run(root / "r1")
    write_run(root / "r2", score_shift=0.01)
    return root


@pytest.fixture
def settings(tmp_path: Path, runs_root: Path) -> Settings:
    return make_settings(tmp_path, runs_root)


@pytest.fixture
def app(settings: Settings, runs_root: Path) -> FastAPI:
    return create_app(settings, runs_root / "r1")


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        assert app.state.holder.wait_ready(20), "snapshot did not load"
        yield c


@pytest.fixture(scope="session")
def workbench_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real batch run with a 150-member device-farm ring (tests/service/workbench_run.py)."""
    from .workbench_run import build_workbench_run

    return build_workbench_run(tmp_path_factory.mktemp("workbench"))
