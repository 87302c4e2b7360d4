"""Session-wide servers, each started once on 127.0.0.1 (free ports) and stopped at the end:
- the Bolt server for the `bolt` tests: ArcadeDB from the arcadedb-embedded wheel; each test
  module asks for its own empty database so modules never see each other's graphs;
- `redis-server` (Debian package) for the `redis` tests of the intraday store; each store in a
  test gets its own key prefix.
No skip when one cannot start: the fixture fails loudly, as CI must."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator

import pytest

BOLT_TEST_PASSWORD = "graphfraud-test-pw"  # local throwaway server only
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def bolt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The running local server (`graphfraud.graph.server.BoltServer`)."""
    from graphfraud.graph.server import free_port, start_server, stop_server

    root = tmp_path_factory.mktemp("arcadedb")
    server = start_server(
        root, BOLT_TEST_PASSWORD, bolt_port=free_port(), http_port=free_port(), heap="512m"
    )
    yield server
    stop_server(root)


@pytest.fixture(scope="session")
def new_bolt_database(bolt_server: object) -> Callable[[str], str]:
    """Create an empty database on the session server and return its name."""
    from graphfraud.graph.server import BoltServer, create_database

    assert isinstance(bolt_server, BoltServer)

    def make(hint: str) -> str:
        name = f"t{next(_db_counter)}_{re.sub(r'[^A-Za-z0-9]', '_', hint)[-30:]}"
        return create_database(bolt_server, BOLT_TEST_PASSWORD, name)

    return make


@pytest.fixture(scope="module")
def bolt_database(new_bolt_database: Callable[[str], str], request: pytest.FixtureRequest) -> str:
    """One empty database per test module."""
    return new_bolt_database(request.module.__name__)


@pytest.fixture(scope="session")
def bolt_driver(bolt_server: object) -> Iterator[object]:
    """One neo4j driver for the session (as production: one driver per process)."""
    from neo4j import GraphDatabase

    from graphfraud.graph.server import BoltServer

    assert isinstance(bolt_server, BoltServer)
    driver = GraphDatabase.driver(
        bolt_server.uri, auth=("root", BOLT_TEST_PASSWORD), max_transaction_retry_time=5.0
    )
    yield driver
    driver.close()


REDIS_TEST_PASSWORD = "graphfraud-redis-test-pw"  # local throwaway server only


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A local `redis-server` (Debian package) for the intraday-store tests: 127.0.0.1, a free
    port, a password, nothing on disk. Fails loudly when redis-server is missing."""
    from graphfraud.scoring.intraday.local_server import start_redis, stop_redis

    server = start_redis(tmp_path_factory.mktemp("redis"), REDIS_TEST_PASSWORD)
    yield server
    stop_redis(server)


@pytest.fixture(scope="session")
def online_run(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A real nightly run with its newest sign-ups withheld (see tests/online_run.py)."""
    from tests.online_run import build_online_run

    return build_online_run(tmp_path_factory.mktemp("online"))


@pytest.fixture(scope="session")
def sample_run_dir(tmp_path_factory: pytest.TempPathFactory) -> object:
    """The committed synthetic sample (data/synthetic, 2,000 users) through the batch, GBM only
    (~5 s): for the public API and the notebooks. Returns the run directory; its registry and
    the sample's truth file are `run.parent / "models"` and `SAMPLE / "truth.csv"`."""
    from pathlib import Path

    from graphfraud.config import load_settings
    from graphfraud.pipeline import run_pipeline

    sample = Path(__file__).resolve().parents[1] / "data" / "synthetic"
    root = tmp_path_factory.mktemp("sample")
    settings = load_settings()
    settings.model.registry = root / "models"
    settings.model.candidates = ["gbm"]
    run_pipeline(sample / "users.csv", sample / "devices.csv", root / "run", settings)
    return root / "run"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A local PostgreSQL (Debian package) for the verdict-store tests: 127.0.0.1, a free port,
    a password. Fails loudly when PostgreSQL is missing."""
    from tests.pg_server import start_postgres, stop_postgres

    server = start_postgres()
    yield server
    stop_postgres(server)


@pytest.fixture(scope="session")
def drift_nights(tmp_path_factory: pytest.TempPathFactory, online_run: object) -> object:
    """Night 1 (the online run) and a drifted night 2 on top of it (see tests/drift_nights.py)."""
    from tests.drift_nights import build_drift_nights
    from tests.online_run import OnlineRun

    assert isinstance(online_run, OnlineRun)
    return build_drift_nights(
        tmp_path_factory.mktemp("nights"), online_run.run_dir, online_run.settings.model.registry
    )
