"""Health operations: liveness, readiness, and the cluster behind sharded collections."""

from __future__ import annotations

from umbrella_client import models
from umbrella_client.calls import Request, operation


@operation("GET", "/healthz", models.status_of)
def healthz() -> Request:
    """The server is up: returns "ok"."""
    return Request()


@operation("GET", "/readyz", models.Readiness.from_json, answers=(503,))
def readyz() -> Request:
    """Whether every collection's graph is loaded (`ready`), and each collection's state."""
    return Request()


@operation("GET", "/cluster", dict)
def cluster() -> Request:
    """The Ray cluster behind sharded collections: nodes, and where each copy of each shard is, whether it is
    fresh (holds every write), its last batch number and count; no nodes when the server runs alone."""
    return Request()
