"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
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
