"""Admin routes: snapshot reload (swap) and status. Audited."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Body, Request
from starlette.responses import Response

from graphfraud.errors import ArtifactError
from graphfraud.service.auth import Permission
from graphfraud.service.context import ServiceContext
from graphfraud.service.errors import BadRequest
from graphfraud.service.routes.score import SECURED
from graphfraud.service.schemas import (
    AdminSnapshotResponse,
    ReloadRequest,
    ReloadResponse,
    error_responses,
)


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(prefix="/v1/admin", tags=["admin"])
    holder = ctx.holder

    @router.post(
        "/reload",
        response_model=ReloadResponse,
        status_code=202,
        responses={
            200: {"model": ReloadResponse, "description": "loaded (wait=true)"},
            **error_responses(401, 403, 409, 413, 422, 429, 503),
        },
        openapi_extra=SECURED,
        summary="Load a run's snapshot and swap it in atomically",
        description=(
            "`run` names a directory under the runs root (no paths outside it). Without "
            "`run`: the run named by `<runs_root>/CURRENT`, else the served run is re-read. "
            "The old snapshot keeps answering until the new one is fully loaded; a failed "
            "load (422) or a run failing the swap checks (409 `snapshot_rejected`: not "
            "complete, too few users, null scores, no model version) keeps the old one. Roll "
            "back by reloading the previous run. Role: admin. Audited."
        ),
    )
    def reload(request: Request, body: ReloadRequest | None = Body(None)) -> Response:
        req = body or ReloadRequest()
        ids: dict[str, Any] = {"run": req.run}
        who = ctx.authorize_audited(request, Permission.ADMIN, "reload", ids)

        def target() -> Any:
            if req.run is not None:
                return holder.resolve(req.run)
            pointer = holder.current_pointer()
            if pointer is not None:
                return pointer
            current = holder.current
            if current is None:
                raise BadRequest(
                    "nothing is loaded yet and no run was named", hint='send {"run": "<name>"}'
                )
            return current.snapshot.info.run_dir

        def run() -> tuple[int, dict[str, Any]]:
            path = target()
            ids["run"] = path.name
            if not req.wait:
                holder.load_in_background(path)
                return 202, {"status": "loading", "run": path.name, "snapshot": None}
            try:
                info = holder.load(path)
            except ArtifactError as exc:
                raise BadRequest(
                    f"run {path.name!r} cannot be loaded: {exc}",
                    hint="the previous snapshot is still served",
                ) from exc
            return 200, {"status": "loaded", "run": path.name, "snapshot": info.public()}

        status, payload = ctx.audited(request, who, "reload", ids, run)
        return Response(orjson.dumps(payload), status_code=status, media_type="application/json")

    @router.get(
        "/snapshot",
        response_model=AdminSnapshotResponse,
        responses=error_responses(401, 403, 429, 503),
        openapi_extra=SECURED,
        summary="The served snapshot and any reload in progress",
        description="Role: admin. Audited.",
    )
    def snapshot(request: Request) -> dict[str, Any]:
        who = ctx.authorize_audited(request, Permission.ADMIN, "read_snapshot_status", {})

        def read() -> dict[str, Any]:
            st = holder.status()
            serving = holder.current
            online = serving.online if serving is not None else None
            return {
                "snapshot": st.last_loaded.public() if st.last_loaded else None,
                "loading": st.loading,
                "last_error": st.last_error,
                "last_rejected": st.last_rejected.public() if st.last_rejected else None,
                "online_model": (
                    {"version": online.version, "kind": online.kind, "part": online.part}
                    if online is not None
                    else None
                ),
                "online_model_error": serving.online_error if serving is not None else None,
            }

        return ctx.audited(request, who, "read_snapshot_status", {}, read)

    return router
