"""create_app(settings): wires settings, registry, routers and error handling; the lifespan owns the data."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from app.api import collections, embedder, health, metrics, points, recommend, search, snapshots
from app.api.access import GuardedRoute, Keys
from app.api.docs import ASSET_PATHS, install_docs
from app.api.errors import install_error_handlers
from app.api.fast_search import FastSearch
from app.api.guard import DOCS_PATHS, Guard
from app.api.openapi import install_documented_bodies
from app.api.telemetry import HttpMetrics, Telemetry
from app.collections.collection import PartFactory
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.personalization.finetune import FineTuner
from app.personalization.service import Personalization
from app.search.recall import RecallMonitor
from app.web import PAGE_PATHS, install_page

VERSION = "0.1.0"
# What each collection carries besides its points, attached when it opens and closed with it.
PARTS: tuple[PartFactory, ...] = (RecallMonitor.attach, Personalization.attach, FineTuner.attach)
SHARDED_PARTS = (Personalization.attach_to_shards, FineTuner.attach)  # a sharded collection's, on its router


ROUTED = (health, collections, points, search, recommend, embedder, snapshots, metrics)


def api_routes() -> list[GuardedRoute]:
    """Every route of the API (the hot search routes first), each with the access rule it declared."""
    routes = [*search.hot_routes, *(route for module in ROUTED for route in module.router.routes)]
    assert all(isinstance(route, GuardedRoute) for route in routes), "every router uses route_class=GuardedRoute"
    return routes  # type: ignore[return-value]


def open_registry(settings: Settings) -> CollectionRegistry:
    """The registry with every part wired in, opened (tests that skip the HTTP layer use it too)."""
    registry = CollectionRegistry(settings, PARTS)
    registry.open()
    if settings.ray_address:  # only then is Ray imported
        from app.cluster.cluster import Cluster

        try:
            registry.sharded = Cluster(settings, registry.embedders, SHARDED_PARTS)
            registry.sharded.open()
        except BaseException:
            registry.close()
            raise
    return registry


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One BLAS thread per call: searches already run in parallel, one per worker thread, and on two
        # cores numpy's default of one BLAS thread per core made concurrent exact searches several times
        # slower (and a lone one slower too: 46 vs 95 searches/s on 200k × 128).
        blas = threadpool_limits(limits=1, user_api="blas")
        app.state.search_workers = CapacityLimiter(settings.search_threads)
        registry = open_registry(settings)
        app.state.registry = registry
        try:
            yield
        finally:
            registry.close()
            blas.restore_original_limits()

    app = FastAPI(
        title="Umbrella",
        version=VERSION,
        summary="Vector similarity search: HNSW with an exact fallback, durable in SQLite.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load their scripts from a CDN: app/api/docs.py serves local copies
        redoc_url=None,
        **_fastapi_telemetry(),
    )
    app.state.settings = settings
    app.state.http_metrics = HttpMetrics()  # per app, so two apps in one process (tests) count apart
    routes = api_routes()
    open_paths = {route.path for route in routes if route.rule == "open"}
    app.add_middleware(FastSearch, route=search.hot_routes[0])  # inside the guard: the caller is known
    app.add_middleware(
        Guard,
        max_body_bytes=settings.max_body_bytes,
        keys=Keys(settings.api_key, settings.read_only_api_key),
        open_paths=open_paths | PAGE_PATHS | (DOCS_PATHS | ASSET_PATHS if settings.public_docs else set()),
    )
    app.add_middleware(Telemetry, metrics=app.state.http_metrics, routes=routes)  # outermost: sees the guard's 401s
    install_error_handlers(app)
    app.router.routes[:0] = search.hot_routes
    for module in ROUTED:
        app.include_router(module.router)
    install_documented_bodies(app)
    install_docs(app)
    install_page(app)
    return app


def _fastapi_telemetry() -> dict[str, Any]:
    """FastAPI's own OpenTelemetry (new releases have it) for what was configured when the app is made, as
    `opentelemetry-instrument` does before it: FastAPI otherwise asks on every request whether a provider was
    configured since, 15 µs of a 300 µs search (benchmarks/RESULTS.md, "Serving stack"). Nothing configured: off."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    try:
        from fastapi.telemetry._api import _unconfigured  # FastAPI's own test, the one it makes per request
        from opentelemetry import _logs, metrics, trace
    except ImportError:  # moved in a later release: keep FastAPI's default
        return {}
    providers = {
        "tracing": trace.get_tracer_provider(),
        "metrics": metrics.get_meter_provider(),
        "logs": _logs.get_logger_provider(),
    }
    return {"telemetry": {signal: not _unconfigured(provider) for signal, provider in providers.items()}}


def __getattr__(name: str) -> Any:
    """`app.main:app` for ASGI servers, built on first access rather than at import."""
    if name == "app":
        return create_app()
    raise AttributeError(name)
