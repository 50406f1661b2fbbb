"""HTTP request metrics: a pure-ASGI middleware, the counters it feeds, and Prometheus text helpers."""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"
# Any token is a valid HTTP method; labelling the rest "other" keeps a client from minting label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def sample(name: str, labels: Mapping[str, str], value: float) -> str:
    if not labels:
        return f"{name} {number(value)}"
    inner = ",".join(f'{key}="{escape_label(val)}"' for key, val in labels.items())
    return f"{name}{{{inner}}} {number(value)}"


def family(name: str, kind: str, help_text: str) -> list[str]:
    """The # HELP and # TYPE lines that open a metric family."""
    escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")  # HELP escapes backslash and newline only
    return [f"# HELP {name} {escaped}", f"# TYPE {name} {kind}"]


class HttpMetrics:
    """Request counts and latency histograms, keyed by (method, route template[, status])."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # observe() runs on the event loop, render() may run in a thread
        self._requests: dict[tuple[str, str, str], int] = {}
        # per (method, route): a count per bucket, not cumulative (render adds them up); the last is +Inf
        self._buckets: dict[tuple[str, str], list[int]] = {}
        self._sums: dict[tuple[str, str], float] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key, counter = (method, route), (method, route, str(status))
        slot = bisect_left(BUCKETS, seconds)  # le is inclusive: a value equal to a bound falls in it
        with self._lock:
            self._requests[counter] = self._requests.get(counter, 0) + 1
            counts = self._buckets.get(key)
            if counts is None:
                counts = self._buckets[key] = [0] * (len(BUCKETS) + 1)
            counts[slot] += 1
            self._sums[key] = self._sums.get(key, 0.0) + seconds

    def render(self) -> list[str]:
        with self._lock:
            requests = sorted(self._requests.items())
            histograms = sorted((key, list(counts), self._sums[key]) for key, counts in self._buckets.items())
        name = "umbrella_http_requests_total"
        lines = family(name, "counter", "HTTP requests answered, by route template and status.")
        for (method, route, status), count in requests:
            lines.append(sample(name, {"method": method, "route": route, "status": status}, count))
        name = "umbrella_http_request_duration_seconds"
        lines += family(name, "histogram", "Time from request to the end of the response, by route template.")
        for (method, route), counts, total in histograms:
            cumulative = 0
            for bound, count in zip((*BUCKETS, math.inf), counts, strict=True):
                cumulative += count
                labels = {"method": method, "route": route, "le": number(bound)}
                lines.append(sample(f"{name}_bucket", labels, cumulative))
            lines.append(sample(f"{name}_sum", {"method": method, "route": route}, total))
            lines.append(sample(f"{name}_count", {"method": method, "route": route}, cumulative))
        return lines


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    """The route's path template, never the raw path, so label values stay few."""
    route = scope.get("route")  # set by the router on a full or partial (405) match
    if route is not None:
        return getattr(route, "path_format", None) or UNMATCHED
    # Answered before routing (the guard's 401/413) or by no route (404): find what it was aimed at.
    partial = None
    for candidate in routes:
        match, _ = candidate.matches(scope)
        if match is Match.FULL:
            return getattr(candidate, "path_format", None) or UNMATCHED
        if match is Match.PARTIAL and partial is None:
            partial = getattr(candidate, "path_format", None)
    return partial or UNMATCHED


class Telemetry:
    """Pure ASGI (not BaseHTTPMiddleware): it wraps every request, so it only wraps `send` to see the status."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics, routes: Sequence[BaseRoute]) -> None:
        # `routes` is flat (the routers' own routes; the app's nest included routers): it names the
        # requests that never reach routing.
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the server error handler sends when the app raises before starting a response
        start = time.perf_counter()

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in _METHODS else "other"
            self.metrics.observe(method, route_template(scope, self.routes), status, time.perf_counter() - start)


def render_all(sections: Iterable[list[str]]) -> str:
    return "".join(line + "\n" for section in sections for line in section)
