"""Ops routes (no key: probes and scrapers run inside the cluster; nothing here is PII)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from graphfraud.service.context import ServiceContext
from graphfraud.service.metrics import CONTENT_TYPE
from graphfraud.service.schemas import HealthResponse, ReadyResponse

_OK = orjson.dumps({"status": "ok"})


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(tags=["ops"])
    holder = ctx.holder

    @router.get("/healthz", response_model=HealthResponse, summary="Liveness: the process answers")
    async def healthz() -> Response:
        return Response(_OK, media_type="application/json")

    @router.get(
        "/readyz",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse, "description": "no snapshot loaded yet"}},
        summary="Readiness: a score snapshot is loaded",
    )
    async def readyz() -> Response:
        status = holder.status()
        if holder.current is None:
            payload = {
                "ready": False,
                "snapshot": None,
                "detail": status.last_error
                or ("loading " + status.loading if status.loading else "not loaded"),
            }
            return Response(orjson.dumps(payload), status_code=503, media_type="application/json")
        info = holder.current.snapshot.info
        return Response(
            orjson.dumps({"ready": True, "snapshot": info.public(), "detail": None}),
            media_type="application/json",
        )

    @router.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    )
    async def metrics() -> Response:
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)

    return router
