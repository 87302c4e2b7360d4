"""Schema fuzzing over the OpenAPI spec: whatever schemathesis sends, the service never answers 5xx.

Bounded: a few examples per operation (the whole module runs in seconds). The snapshot is loaded
synchronously and the graph store is the embedded one, so a 5xx can only be a bug.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from graphfraud.service import create_app

from .factories import headers, make_settings, write_run

_root = Path(__import__("tempfile").mkdtemp(prefix="gf-fuzz-"))
_run = write_run(_root / "runs" / "r1")
_app = create_app(make_settings(_root, _root / "runs"), _run)
_app.state.holder.load(_run)  # no lifespan under the ASGI loader: load up front
schema = schemathesis.openapi.from_asgi("/openapi.json", _app)


@pytest.mark.parametrize("role", ["scorer", "investigator", "admin"])
@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case: schemathesis.Case, role: str) -> None:
    if case.path == "/v1/admin/reload" and isinstance(case.body, dict):
        case.body.pop(
            "wait", None
        )  # keep reloads in the background: the fuzzer must not block on them
    response = case.call(headers=headers(role))
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
