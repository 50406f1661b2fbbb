"""GET /metrics: collection, HTTP and process metrics in the Prometheus text format (0.0.4)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.access import GuardedRoute, needs
from app.api.collections import stats
from app.api.telemetry import CONTENT_TYPE, HttpMetrics, family, render_all, sample
from app.collections.collection import Collection
from app.collections.registry import CollectionRegistry
from app.core.errors import CollectionNotFound
from app.search.recall import RecallMonitor

router = APIRouter(tags=["monitoring"], route_class=GuardedRoute)

_IMPORTED = time.time()
# (name, info key, help); recall_estimate is emitted only when known, the others always.
_GAUGES = (
    ("umbrella_collection_points", "count", "Points stored in the collection."),
    ("umbrella_collection_indexed_points", "indexed_count", "Points in the HNSW graph."),
    ("umbrella_collection_memory_bytes", "memory_bytes", "Memory held by the collection's indexes and payloads."),
    ("umbrella_collection_recall_estimate", "recall_estimate", "Recall@k of sampled live queries re-run exactly."),
    ("umbrella_collection_recall_samples", "recall_samples", "Sampled queries behind the recall estimate."),
    ("umbrella_collection_ready", "ready", "1 when the collection's graph is loaded, else 0."),
)


def _process_start() -> float:
    """From /proc when there is one (the real start, not when this module was imported)."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
        return int(boot.split()[1]) + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return _IMPORTED


_STARTED = _process_start()


def _resident_bytes() -> int | None:
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _collection_lines(registry: CollectionRegistry) -> list[str]:
    rows: dict[str, dict[str, float]] = {}
    failures: list[str] = []
    sharded = {name: "ready" for name in (registry.sharded.names() if registry.sharded is not None else [])}
    for name, state in {**registry.readiness(), **sharded}.items():
        try:
            collection = registry.get(name)
            info = stats(collection)
        except CollectionNotFound:  # failed to open, or dropped since the listing: only its readiness is known
            rows[name] = {"ready": 0} if state == "failed" else {}
            continue
        rows[name] = {
            "count": info["count"],
            "indexed_count": info["indexed_count"],
            "memory_bytes": info["memory_bytes"],
            "recall_samples": info.get("recall_samples") or 0,
            "ready": 1 if info["index_state"] == "ready" else 0,
        }
        if info.get("recall_estimate") is not None:  # absent until the monitor has sampled enough queries
            rows[name]["recall_estimate"] = info["recall_estimate"]
        failures += [
            sample(_FAILURES, {"collection": name, "task": task}, count)
            for task, count in sorted(_background_failures(collection).items())
        ]
    lines: list[str] = []
    for metric, key, help_text in _GAUGES:
        samples = [sample(metric, {"collection": name}, row[key]) for name, row in sorted(rows.items()) if key in row]
        if samples:
            lines += family(metric, "gauge", help_text) + samples
    if failures:
        lines += family(_FAILURES, "counter", "Failures of background work: graph build, checkpoints, recall samples.")
    return lines + failures


_FAILURES = "umbrella_background_failures_total"


def _background_failures(collection: Collection) -> dict[str, int]:
    """Every background task of the collection, with its failure count (0s too, so alerts can rate() them)."""
    monitor = collection.find_part(RecallMonitor)
    return {**collection.failures, "recall": monitor.failures if monitor is not None else 0}


def _process_lines() -> list[str]:
    lines = family("umbrella_process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch.")
    lines.append(sample("umbrella_process_start_time_seconds", {}, _STARTED))
    resident = _resident_bytes()
    if resident is not None:
        lines += family("umbrella_process_resident_memory_bytes", "gauge", "Resident memory of the process.")
        lines.append(sample("umbrella_process_resident_memory_bytes", {}, resident))
    return lines


@router.get(
    "/metrics", openapi_extra=needs("metrics"), include_in_schema=False
)  # a scrape endpoint, not API: the SDK has no method for it
async def metrics(request: Request) -> Response:
    registry: CollectionRegistry = request.app.state.registry
    http: HttpMetrics = request.app.state.http_metrics
    # info() takes each collection's read lock, which a writer may hold: wait in a thread, not on the loop.
    collections = await run_in_threadpool(_collection_lines, registry)
    body = render_all((collections, http.render(), _process_lines()))
    return Response(body, media_type=CONTENT_TYPE)
