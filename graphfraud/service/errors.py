"""Every error the HTTP layer returns is mapped here, in one place, to a status and a JSON body:

    {"error": "<code>", "detail": "<what went wrong>", "hint": "<what to do>"}

| exception                          | status | error code              |
|------------------------------------|--------|-------------------------|
| Unauthenticated                    | 401    | unauthenticated         |
| Forbidden                          | 403    | forbidden               |
| NotFound                           | 404    | not_found               |
| Conflict                           | 409    | conflict                |
| SnapshotRejected                   | 409    | snapshot_rejected       |
| PayloadTooLarge                    | 413    | payload_too_large       |
| TooManyAttempts                    | 429    | too_many_attempts       |
| BadRequest, InputDataError         | 422    | invalid_request         |
| request validation (FastAPI)       | 422    | invalid_request         |
| NotReady                           | 503    | not_ready               |
| GraphStoreUnavailable              | 503    | graph_unavailable       |
| GraphStoreError (auth, other)      | 503    | graph_error             |
| AuditUnavailable                   | 503    | audit_unavailable       |
| VerdictStoreUnavailable            | 503    | verdicts_unavailable    |
| ArtifactError, ConfigError         | 503    | server_misconfigured    |
| other GraphFraudError              | 500    | internal_error          |
| anything else                      | 500    | internal_error (logged) |
Validation messages never echo the submitted values (they may be PII).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from graphfraud.errors import (
    ArtifactError,
    ConfigError,
    GraphFraudError,
    GraphStoreError,
    GraphStoreUnavailable,
    InputDataError,
    IntradayUnavailable,
    NotFound,
    VerdictStoreUnavailable,
)

log = logging.getLogger("graphfraud.service")


class Unauthenticated(GraphFraudError):
    """No API key, or one the service does not know."""


class Forbidden(GraphFraudError):
    """The key's role may not call this route."""


class Conflict(GraphFraudError):
    """The request clashes with work in progress (a reload already running)."""


class SnapshotRejected(GraphFraudError):
    """A run failed the swap gate (`service.gate`); the served snapshot stays."""


class PayloadTooLarge(GraphFraudError):
    """The request body is over `ServiceSettings.max_body_bytes`."""


class TooManyAttempts(GraphFraudError):
    """This client spent its budget of failed authentications (`service.ratelimit`)."""

    def __init__(self, message: str, *, retry_after_s: int, first: bool, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.retry_after_s = retry_after_s
        self.first = first


class BadRequest(GraphFraudError):
    """Well-formed JSON asking for something invalid (e.g. a path outside the runs root)."""


class NotReady(GraphFraudError):
    """No score snapshot is loaded yet."""


class AuditUnavailable(GraphFraudError):
    """The audit log cannot be written: analyst and admin routes fail closed."""


_MAP: tuple[tuple[type[BaseException], int, str], ...] = (
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (NotFound, 404, "not_found"),
    (Conflict, 409, "conflict"),
    (SnapshotRejected, 409, "snapshot_rejected"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (TooManyAttempts, 429, "too_many_attempts"),
    (BadRequest, 422, "invalid_request"),
    (InputDataError, 422, "invalid_request"),
    (NotReady, 503, "not_ready"),
    (GraphStoreUnavailable, 503, "graph_unavailable"),
    (GraphStoreError, 503, "graph_error"),
    (AuditUnavailable, 503, "audit_unavailable"),
    (IntradayUnavailable, 503, "intraday_unavailable"),
    (VerdictStoreUnavailable, 503, "verdicts_unavailable"),
    (ArtifactError, 503, "server_misconfigured"),
    (ConfigError, 503, "server_misconfigured"),
)

_DEFAULT_HINTS = {
    401: "send a valid key in the X-API-Key header",
    403: "ask for a key with a role that may call this route",
    404: "check the id; ids are case-sensitive",
    413: "send a smaller body",
    429: "wait as long as Retry-After says, then use a valid key",
    422: "fix the request as described and retry",
    503: "retry shortly; the score endpoints keep working",
}


def error_body(
    status: int, code: str, detail: str, hint: str = "", *, retry_after_s: int | None = None
) -> Response:
    headers = {}
    if retry_after_s is not None:
        headers["Retry-After"] = str(retry_after_s)
    if status == 401:
        headers["WWW-Authenticate"] = 'APIKey header="X-API-Key"'
    if status == 503 and retry_after_s is None:
        headers["Retry-After"] = "5"
    payload = {"error": code, "detail": detail, "hint": hint or _DEFAULT_HINTS.get(status, "")}
    return Response(
        orjson.dumps(payload), status_code=status, media_type="application/json", headers=headers
    )


def status_of(exc: BaseException) -> tuple[int, str]:
    for cls, status, code in _MAP:
        if isinstance(exc, cls):
            return status, code
    return 500, "internal_error"


def _message(exc: GraphFraudError) -> str:
    return exc.args[0] if exc.args else type(exc).__name__


async def _graphfraud_error(request: Request, exc: Exception) -> Response:
    status, code = status_of(exc)
    if status >= 500 and status != 503:
        log.error("request failed", extra={"route": _route(request), "error": type(exc).__name__})
    hint = exc.hint if isinstance(exc, GraphFraudError) else ""
    detail = _message(exc) if isinstance(exc, GraphFraudError) else str(exc)
    retry = exc.retry_after_s if isinstance(exc, TooManyAttempts) else None
    return error_body(status, code, detail, hint, retry_after_s=retry)


def _describe(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message plus field errors, without the submitted values."""
    fields = [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]
    parts = [f"{'.'.join(f['loc'][1:] or f['loc']) or 'body'}: {f['msg']}" for f in fields[:5]]
    more = f" (+{len(fields) - 5} more)" if len(fields) > 5 else ""
    return "; ".join(parts) + more, fields


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail, fields = _describe(list(exc.errors()))
    payload = {
        "error": "invalid_request",
        "detail": detail or "invalid request",
        "hint": "see `errors` for each field; the schema is at /docs",
        "errors": fields,
    }
    return Response(orjson.dumps(payload), status_code=422, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        400: "bad_request",
        413: "payload_too_large",
    }
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) else "request failed"
    if status == 400 and "pars" in detail.lower():
        status, detail = 422, "the body is not valid JSON"
    hint = (
        "see /docs for the routes"
        if status in (404, 405) and detail in ("Not Found", "Method Not Allowed")
        else ""
    )
    return error_body(
        status,
        codes.get(status, "invalid_request" if status == 422 else "http_error"),
        detail,
        hint,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"route": _route(request)})
    return error_body(
        500, "internal_error", "internal error", "this is a bug; the request id is in the logs"
    )


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def install_error_handlers(app: FastAPI) -> None:
    """Register the single mapping above on `app`."""
    app.add_exception_handler(GraphFraudError, _graphfraud_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
