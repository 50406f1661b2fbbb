"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.access import GuardedRoute, needs
from app.api.codec import json_response
from app.api.deps import AccessDep, RegistryDep

router = APIRouter(tags=["health"], route_class=GuardedRoute)


@router.get("/healthz", openapi_extra=needs("open"))
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    openapi_extra=needs("open"),
    responses={503: {"description": "Some collection's graph is being built or failed to build."}},
)
async def readyz(registry: RegistryDep, access: AccessDep) -> Response:
    """200 when every collection's graph is loaded; 503 while any is building or failed. Each state is listed
    for the collections the caller may read (none without a key)."""
    states = registry.readiness()
    ready = all(state == "ready" for state in states.values())
    shown = {name: state for name, state in states.items() if access.can("r", name)}
    return json_response({"status": "ready" if ready else "not_ready", "collections": shown}, 200 if ready else 503)


@router.get("/cluster", openapi_extra=needs("manage"))
async def cluster(registry: RegistryDep) -> Response:
    """The Ray cluster behind sharded collections: its nodes, and for each sharded collection where every copy
    is, whether it answers and holds every write, its last batch number and count. Without UMBRELLA_RAY_ADDRESS
    there is none: no nodes, no collections."""
    if registry.sharded is None:
        return json_response({"ray_address": None, "nodes": [], "collections": []})
    return json_response(await run_in_threadpool(registry.sharded.status))
