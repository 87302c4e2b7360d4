"""Structured JSON logs and the one ASGI middleware every request passes through.

Access log policy: one JSON line per request with the route *template*
(`/v1/users/{user_id}/score`), method, status, duration and the caller's key fingerprint;
never the raw path, query string or body, so user ids and PII never reach the access log (who
looked at which user is in the audit log, which is access-controlled). The middleware also
enforces the body size limit (413), adds the security headers (`service.headers`) and records
the latency histogram; it is pure ASGI so the hot path pays no BaseHTTPMiddleware cost.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from graphfraud.service.errors import error_body
from graphfraud.service.headers import security_headers
from graphfraud.service.metrics import ServiceMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("graphfraud.access")
_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """`{"ts", "level", "logger", "msg", ...extra}` per line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(payload, default=str).decode()


def configure_logging(level: str = "info") -> None:
    """JSON lines on stderr for graphfraud and uvicorn loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in ("uvicorn", "uvicorn.error"):
        lg = logging.getLogger(name)
        lg.handlers[:] = []
        lg.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


def uvicorn_log_config(level: str = "info") -> dict[str, Any]:
    """A uvicorn `log_config` that routes its logs through JsonFormatter (access log off)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "graphfraud.service.logs.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "graphfraud": {"handlers": ["stderr"], "level": level.upper(), "propagate": False},
        },
    }


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class ServiceMiddleware:
    """Body limit (413), security headers, latency metrics per route template, JSON access log."""

    def __init__(
        self, app: ASGIApp, metrics: ServiceMetrics, *, max_body_bytes: int, log_access: bool
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body = max_body_bytes
        self.log_access = log_access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        method = scope["method"]
        path = scope["path"]

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                present = list(message.get("headers", ()))
                message["headers"] = present + security_headers(path, present)
            await send(message)

        try:
            if method in _BODY_METHODS:
                buffered = await self._read_body(scope, receive, send_status)
                if buffered is None:
                    return
                receive = buffered
            await self.app(scope, receive, send_status)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = str(getattr(route, "path", "")) or "unmatched"
            self.metrics.observe(template, method, status, elapsed)
            if self.log_access and access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "route": template,
                        "method": method,
                        "status": status,
                        "ms": round(elapsed * 1000, 3),
                        "key_id": scope.get("state", {}).get("key_id"),
                    },
                )

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """Read the whole (small) body up front; answer 413 and return None when it is too big."""
        declared = next((v for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        too_big = error_body(
            413,
            "payload_too_large",
            f"request body is over {self.max_body} bytes",
            "send a smaller body",
        )
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await too_big(scope, receive, send)
            return None
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                await too_big(scope, receive, send)
                return None
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay
