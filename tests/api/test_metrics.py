"""GET /metrics: Prometheus text with collection gauges, per-route request counts and latency histograms."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.telemetry import number, sample
from app.core.config import Settings
from app.main import create_app
from app.search.recall import RecallMonitor
from tests.api.helpers import create, error, upsert

SEARCH = "/collections/{name}/search"
LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(client: TestClient, **headers: str) -> dict[tuple[str, frozenset], float]:
    """{(name, labels): value}; also checks every sample's family was announced by # TYPE first."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples: dict[tuple[str, frozenset], float] = {}
    typed: dict[str, str] = {}
    for line in response.text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            typed[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        match = LINE.match(line)
        assert match, f"not an exposition line: {line!r}"
        name, labels, value = match.groups()
        if name not in typed:  # a histogram's series carry a suffix on the family name
            assert typed.get(re.sub(r"_(bucket|sum|count)$", "", name)) == "histogram", f"{name} has no # TYPE line"
        key = (name, frozenset(LABEL.findall(labels or "")))
        assert key not in samples, f"duplicate sample {line!r}"
        samples[key] = float(value)
    return samples


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def test_metrics_count_points_searches_and_latency(client: TestClient) -> None:
    create(client)
    upsert(client, [{"id": i, "vector": [1, i, 0, 0], "payload": {"category": "x"}} for i in range(5)])
    for _ in range(3):
        assert client.post("/collections/products/search", json={"vector": [1, 0, 0, 0], "k": 2}).status_code == 200
    batch = {"searches": [{"vector": [1, 0, 0, 0]}]}
    assert client.post("/collections/products/search/batch", json=batch).status_code == 200
    error(client.post("/collections/products/search", json={"vector": [1, 0]}), 400, "dimension_mismatch")
    assert client.get("/no/such/place").status_code == 404

    samples = scrape(client)
    assert value(samples, "umbrella_collection_points", collection="products") == 5
    assert value(samples, "umbrella_collection_recall_samples", collection="products") == 0
    assert value(samples, "umbrella_collection_memory_bytes", collection="products") > 0
    assert value(samples, "umbrella_collection_ready", collection="products") in (0, 1)
    assert not any(name == "umbrella_collection_recall_estimate" for name, _ in samples)  # no estimate yet

    assert value(samples, "umbrella_http_requests_total", method="POST", route=SEARCH, status="200") == 3
    assert value(samples, "umbrella_http_requests_total", method="POST", route=SEARCH, status="400") == 1
    assert value(samples, "umbrella_http_requests_total", method="POST", route=SEARCH + "/batch", status="200") == 1
    assert value(samples, "umbrella_http_requests_total", method="PUT", route="/collections/{name}", status="201") == 1
    assert value(samples, "umbrella_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert not any("products" in dict(labels).get("route", "") for _, labels in samples)  # templates, not paths

    hist = "umbrella_http_request_duration_seconds"
    count = value(samples, f"{hist}_count", method="POST", route=SEARCH)
    assert count == 4  # three answered, one refused
    buckets = sorted(
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == f"{hist}_bucket" and dict(labels)["route"] == SEARCH
    )
    assert [le for le, _ in buckets][-1] == float("inf") and len(buckets) == 12
    assert all(a <= b for (_, a), (_, b) in pairwise(buckets))  # cumulative
    assert buckets[-1][1] == count
    assert 0 < value(samples, f"{hist}_sum", method="POST", route=SEARCH) < 60

    assert value(samples, "umbrella_process_start_time_seconds") > 1.6e9
    if Path("/proc/self/statm").exists():
        assert value(samples, "umbrella_process_resident_memory_bytes") > 1 << 20


def test_scrapes_see_later_requests_and_drops(client: TestClient) -> None:
    create(client, name="a")
    create(client, name="b")
    assert {labels for name, labels in scrape(client) if name == "umbrella_collection_points"} == {
        frozenset({("collection", "a")}),
        frozenset({("collection", "b")}),
    }
    assert client.delete("/collections/a").status_code == 200
    samples = scrape(client)
    assert ("umbrella_collection_points", frozenset({("collection", "a")})) not in samples
    # the first scrape itself is counted by the second
    assert value(samples, "umbrella_http_requests_total", method="GET", route="/metrics", status="200") == 1


def test_metrics_need_the_api_key_when_one_is_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, api_key="s3cret")
    with TestClient(create_app(settings)) as client:
        error(client.get("/metrics"), 401, "unauthorized")
        error(client.post("/collections/x/search", json={}), 401, "unauthorized")
        samples = scrape(client, **{"api-key": "s3cret"})
    assert value(samples, "umbrella_http_requests_total", method="GET", route="/metrics", status="401") == 1
    # a refused request is still filed under the route it was aimed at
    assert value(samples, "umbrella_http_requests_total", method="POST", route=SEARCH, status="401") == 1


def test_metrics_stay_out_of_the_openapi_schema(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_a_known_recall_estimate_is_exported(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    create(client)
    collection = client.app.state.registry.get("products")  # type: ignore[attr-defined]
    monkeypatch.setattr(collection.part(RecallMonitor), "estimate", lambda: (0.975, 40))
    samples = scrape(client)
    assert value(samples, "umbrella_collection_recall_estimate", collection="products") == 0.975
    assert value(samples, "umbrella_collection_recall_samples", collection="products") == 40


def test_label_values_and_numbers_follow_the_text_format() -> None:
    assert sample("m", {"a": 'say "hi"\\\n'}, 2.0) == 'm{a="say \\"hi\\"\\\\\\n"} 2'
    assert sample("m", {}, 0.25) == "m 0.25"
    assert [number(v) for v in (float("inf"), float("-inf"), 3, 1e20)] == ["+Inf", "-Inf", "3", "1e+20"]
    assert number(float("nan")) == "NaN"


def test_fastapi_opentelemetry_follows_the_providers_configured_before_the_app(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("fastapi.telemetry._api")  # FastAPI's own OpenTelemetry: new releases only
    from opentelemetry import trace

    unconfigured = create_app(settings)
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.NoOpTracerProvider())  # as if configured
    configured = create_app(settings)
    # `_native_telemetry` is FastAPI's per-request switch: what it says is whether spans are made
    assert configured._native_telemetry.enabled()
    assert not unconfigured._native_telemetry.enabled()  # decided when it was made: no per-request lookups
