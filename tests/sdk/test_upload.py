"""Bulk uploads against the app in-process, through a transport that fails the first upserts on purpose."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from umbrella_client import AsyncClient, Client, RetryPolicy, errors
from umbrella_client.errors import UmbrellaError

from tests.conftest import clustered

Fault = Exception | tuple[int, str, dict[str, str]]  # raise it, or answer (status, code, headers) instead of the app
BUSY: Fault = (429, "overloaded", {"Retry-After": "0.2"})
NOT_READY: Fault = (503, "not_ready", {})


class Faults:
    """Scripted failures for the first upsert requests; the uploader sends from several threads, hence the lock."""

    def __init__(self, *script: Fault) -> None:
        self.script, self.upserts, self.lock = list(script), 0, threading.Lock()

    def next(self, request: httpx.Request) -> httpx.Response | None:
        if request.method != "PUT" or not request.url.path.endswith("/points"):
            return None
        with self.lock:
            self.upserts += 1
            fault = self.script.pop(0) if self.script else None
        if isinstance(fault, Exception):
            raise fault
        if fault is None:
            return None
        status, code, headers = fault
        return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": "scripted"}})


class FlakyTransport(httpx.BaseTransport):
    def __init__(self, app_client: TestClient, faults: Faults) -> None:
        self.app_client, self.faults = app_client, faults

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if (scripted := self.faults.next(request)) is not None:
            return scripted
        # The real app, in-process; re-sent rather than passed on, since TestClient may be another httpx (httpx2).
        answer = self.app_client.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        return httpx.Response(
            answer.status_code, headers={"content-type": answer.headers["content-type"]}, content=answer.content
        )


class AsyncFlakyTransport(httpx.AsyncBaseTransport):
    def __init__(self, app: FastAPI, faults: Faults) -> None:
        self.app, self.faults = httpx.ASGITransport(app), faults

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return self.faults.next(request) or await self.app.handle_async_request(request)


@dataclasses.dataclass(frozen=True)
class Recording(RetryPolicy):
    """The default policy, noting each decision: (error class, seconds to wait or None for giving up)."""

    decisions: list[tuple[str, float | None]] = dataclasses.field(default_factory=list)

    def delay(self, attempt: int, error: UmbrellaError) -> float | None:
        seconds = super().delay(attempt, error)
        self.decisions.append((type(error).__name__, seconds))
        return seconds


@pytest.fixture
def flaky(http: TestClient) -> Iterator[tuple[Client, Faults]]:
    faults = Faults()
    with Client(transport=FlakyTransport(http, faults)) as client:
        client.create_collection("bulk", dim=8, metric="l2")
        yield client, faults


def test_429_503_and_lost_connections_are_retried_until_everything_lands(flaky: tuple[Client, Faults]) -> None:
    sdk, faults = flaky
    faults.script = [BUSY, httpx.ConnectError("refused"), NOT_READY, httpx.ReadTimeout("slow")]
    vectors, policy = clustered(50, 8, seed=4), Recording(backoff=0.01, jitter=0)
    summary = sdk.upload(
        "bulk", vectors=vectors, ids=range(50), batch_size=10, parallel=2, retry=policy, progress=False
    )
    assert summary.ok and (summary.sent, summary.batches, summary.retries) == (50, 5, 4)
    assert faults.upserts == 5 + 4
    waits = dict(policy.decisions)
    assert waits["Overloaded"] == 0.2  # the server's Retry-After, not the backoff
    assert set(waits) == {"Overloaded", "ConnectionFailed", "NotReady"} and waits["NotReady"] in (0.01, 0.02, 0.04)
    points = sdk.get_points("bulk", range(50), with_vector=True)
    np.testing.assert_array_equal(np.stack([p.vector for p in points]), vectors)


def test_a_batch_that_keeps_failing_is_reported_with_its_last_error(flaky: tuple[Client, Faults]) -> None:
    sdk, faults = flaky
    faults.script = [NOT_READY, NOT_READY, NOT_READY]
    retry = RetryPolicy(attempts=3, backoff=0)
    summary = sdk.upload("bulk", vectors=np.ones((30, 8)), ids=range(30), batch_size=10, parallel=1, retry=retry)
    assert not summary.ok and summary.sent == 20 and summary.retries == 2
    (failed,) = summary.failed
    assert failed.index == 0 and failed.ids == list(range(10)) and isinstance(failed.error, errors.NotReady)
    assert summary.failed_ids == list(range(10)) and sdk.count("bulk") == 20


def test_a_bad_batch_fails_at_once_and_the_others_still_land(flaky: tuple[Client, Faults]) -> None:
    sdk, faults = flaky
    rows = (np.full(7 if 20 <= i < 30 else 8, i, np.float32) for i in range(50))  # batch 2 is 7-dimensional
    ids = (f"v{i}" for i in range(50))
    payloads = ({"n": i} for i in range(50))
    summary = sdk.upload("bulk", vectors=rows, ids=ids, payloads=payloads, batch_size=10, progress=False)
    (failed,) = summary.failed
    assert failed.index == 2 and failed.ids == [f"v{i}" for i in range(20, 30)]
    assert isinstance(failed.error, errors.DimensionMismatch) and failed.error.details == {"expected": 8, "got": 7}
    assert summary.retries == 0 and faults.upserts == 5  # a 400 is not worth repeating
    assert summary.sent == 40 and sdk.count("bulk") == 40
    assert sdk.get_points("bulk", ["v49"])[0].payload == {"n": 49}


def test_points_without_ids_get_uuids_and_the_bar_counts_them(
    flaky: tuple[Client, Faults], capsys: pytest.CaptureFixture[str]
) -> None:
    sdk, _ = flaky
    summary = sdk.upload("bulk", vectors=[[float(i)] * 8 for i in range(25)], batch_size=10, progress=True)
    assert summary.ok and summary.sent == 25 and summary.seconds > 0
    assert "25/25" in capsys.readouterr().err
    ids = [p.id for p in sdk.scroll("bulk", limit=100).points]
    assert len(set(ids)) == 25 and all(len(i) == 36 for i in ids)


def test_inconsistent_inputs_are_refused_before_anything_is_sent(flaky: tuple[Client, Faults]) -> None:
    sdk, faults = flaky
    with pytest.raises(ValueError, match="49 ids for 50 vectors"):
        sdk.upload("bulk", vectors=np.zeros((50, 8)), ids=range(49))
    with pytest.raises(ValueError, match="exactly one of"):
        sdk.upload("bulk", vectors=np.zeros((5, 8)), texts=["a"] * 5)
    assert faults.upserts == 0


@pytest.mark.anyio
async def test_the_async_upload_retries_and_reports_the_same_way(app: FastAPI) -> None:
    faults = Faults(BUSY, httpx.ConnectError("refused"))
    async with app.router.lifespan_context(app), AsyncClient(transport=AsyncFlakyTransport(app, faults)) as sdk:
        await sdk.create_collection("bulk", dim=4)
        rows = (np.full(3 if 8 <= i < 16 else 4, i + 1, np.float32) for i in range(40))  # batch 1 is 3-dimensional
        policy = Recording(backoff=0.01, jitter=0)
        summary = await sdk.upload("bulk", vectors=rows, ids=range(40), batch_size=8, parallel=3, retry=policy)
        assert (summary.sent, summary.batches, summary.retries) == (32, 5, 2)
        assert [(f.index, type(f.error)) for f in summary.failed] == [(1, errors.DimensionMismatch)]
        assert ("Overloaded", 0.2) in policy.decisions and await sdk.count("bulk") == 32
        with pytest.raises(ValueError, match="fewer ids"):  # found only when the ids run out: earlier batches land
            await sdk.upload("bulk", vectors=(np.ones(4) for _ in range(20)), ids=iter(range(100, 112)), batch_size=8)
        assert await sdk.count("bulk") == 32 + 8
