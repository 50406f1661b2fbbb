"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from app.api.codec import json_response
from app.api.deps import RegistryDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(registry: RegistryDep) -> Response:
    """200 when every collection's graph is loaded; 503 (with each state) while any is building or failed."""
    states = registry.readiness()
    ready = all(state == "ready" for state in states.values())
    return json_response({"status": "ready" if ready else "not_ready", "collections": states}, 200 if ready else 503)
