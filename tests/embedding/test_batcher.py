"""MicroBatcher: concurrent callers share model calls, get their own rows, and a flood is refused with 429;
one worker per model, whatever the modality."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.api.errors import umbrella_error_response
from app.core.config import Settings
from app.core.errors import InvalidInput, NotReady, Overloaded
from app.embedding import factory
from app.embedding.batcher import MicroBatcher
from app.main import create_app

TIMEOUT = 10.0


class FakeModel:
    """Rows encode their input (item, item²), so each caller can check it got its own rows in order."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.threads: set[int] = set()
        self.gate, self.entered = gate, threading.Event()

    def __call__(self, items: list[Any]) -> np.ndarray:
        self.sizes.append(len(items))
        self.threads.add(threading.get_ident())
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT)
        if any(item < 0 for item in items):
            raise InvalidInput(f"negative item in {items}")
        return np.array([[x, x * x] for x in items], dtype=np.float32).reshape(len(items), 2)


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


def _all_at_once(batcher: MicroBatcher, requests: list[list[int]]) -> list[Any]:
    """Submit every request from its own thread, released together by a barrier; results or exceptions."""
    barrier = threading.Barrier(len(requests))

    def one(items: list[int]) -> Any:
        barrier.wait(TIMEOUT)
        try:
            return batcher.submit("n", items)
        except Exception as err:
            return err

    with ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(one, requests, timeout=TIMEOUT))


def _wait_until_queued(batcher: MicroBatcher, items: int) -> None:
    """Poll (not a fixed sleep) until `items` items wait in the batcher's queue."""
    deadline = time.monotonic() + TIMEOUT
    while batcher._queued < items:
        assert time.monotonic() < deadline, f"{batcher._queued} of {items} items queued"
        time.sleep(0.001)


def test_sixty_four_callers_waiting_on_the_model_share_its_next_call_and_each_gets_its_own_row() -> None:
    model = FakeModel(gate := threading.Event())
    batcher = MicroBatcher({"n": model}, max_batch=64, max_wait_s=0.05)
    pool = ThreadPoolExecutor(65)
    try:
        first = pool.submit(batcher.submit, "n", [1000])
        assert model.entered.wait(TIMEOUT)  # the model is busy: the 64 below queue behind it
        futures = [pool.submit(batcher.submit, "n", [i]) for i in range(64)]
        _wait_until_queued(batcher, 64)
        gate.set()
        np.testing.assert_array_equal(first.result(TIMEOUT), [[1000, 1000**2]])
        for i, future in enumerate(futures):
            np.testing.assert_array_equal(future.result(TIMEOUT), [[i, i * i]])
    finally:
        gate.set()
        batcher.close()
        pool.shutdown()
    assert model.sizes == [1, 64], model.sizes
    assert len(model.threads) == 1  # one worker thread runs the model


def test_requests_that_waited_through_a_batch_do_not_leave_before_its_callers_can_come_back() -> None:
    """Three requests queue while one runs; the next batch still takes the first caller's next request."""
    model = FakeModel(gate := threading.Event())
    batcher = MicroBatcher({"n": model}, max_batch=4, max_wait_s=TIMEOUT)
    pool = ThreadPoolExecutor(4)
    try:
        first = pool.submit(batcher.submit, "n", [100, 200, 300, 400])  # a full batch: it need not wait
        assert model.entered.wait(TIMEOUT)
        queued = [pool.submit(batcher.submit, "n", [i]) for i in range(3)]
        _wait_until_queued(batcher, 3)
        gate.set()
        first.result(TIMEOUT)
        np.testing.assert_array_equal(batcher.submit("n", [101]), [[101, 101**2]])
        for i, future in enumerate(queued):
            np.testing.assert_array_equal(future.result(TIMEOUT), [[i, i * i]])
    finally:
        gate.set()
        batcher.close()
        pool.shutdown()
    assert model.sizes == [4, 4], model.sizes


def test_batches_never_exceed_max_batch_and_multi_item_requests_keep_their_order(model: FakeModel) -> None:
    batcher = MicroBatcher({"n": model}, max_batch=8, max_wait_s=0.05)
    requests = [list(range(10 * i, 10 * i + 1 + i % 4)) for i in range(40)]  # 1 to 4 items each
    try:
        results = _all_at_once(batcher, requests)
        big = batcher.submit("n", list(range(20)))  # larger than max_batch: runs alone, whole
    finally:
        batcher.close()
    for items, rows in zip(requests, results, strict=True):
        np.testing.assert_array_equal(rows[:, 0], items)
    np.testing.assert_array_equal(big[:, 0], range(20))
    assert max(model.sizes[:-1]) <= 8 and model.sizes[-1] == 20, model.sizes


def test_a_bad_item_fails_only_its_own_caller(model: FakeModel) -> None:
    batcher = MicroBatcher({"n": model}, max_batch=64, max_wait_s=0.05)
    requests = [[-1] if i == 7 else [i, i + 100] for i in range(16)]
    try:
        results = _all_at_once(batcher, requests)
    finally:
        batcher.close()
    assert isinstance(results[7], InvalidInput) and "negative" in str(results[7])
    for i, rows in enumerate(results):
        if i != 7:
            np.testing.assert_array_equal(rows[:, 0], [i, i + 100])


def test_a_full_queue_refuses_at_once_with_retry_after() -> None:
    gate = threading.Event()
    model = FakeModel(gate)
    batcher = MicroBatcher({"n": model}, max_batch=4, max_wait_s=0, max_queue=6)
    pool = ThreadPoolExecutor(4)
    try:
        running = pool.submit(batcher.submit, "n", [1, 2, 3, 4])
        assert model.entered.wait(TIMEOUT)  # the worker is busy: what follows waits in the queue
        queued = [pool.submit(batcher.submit, "n", [i, i]) for i in (5, 6, 7)]
        _wait_until_queued(batcher, 6)  # the three submits above are in
        start = time.perf_counter()
        with pytest.raises(Overloaded) as caught:
            batcher.submit("n", [8])
        assert time.perf_counter() - start < 1.0
        assert caught.value.retry_after >= 1 and caught.value.details["retry_after"] == caught.value.retry_after
        response = umbrella_error_response(caught.value)
        assert response.status_code == 429 and response.headers["retry-after"] == str(caught.value.retry_after)
        gate.set()
        np.testing.assert_array_equal(running.result(TIMEOUT)[:, 0], [1, 2, 3, 4])
        for i, future in zip((5, 6, 7), queued, strict=True):
            np.testing.assert_array_equal(future.result(TIMEOUT)[:, 0], [i, i])
    finally:
        gate.set()
        batcher.close()
        pool.shutdown()


def test_close_stops_the_worker_and_later_submits_are_refused(model: FakeModel) -> None:
    batcher = MicroBatcher({"n": model})
    np.testing.assert_array_equal(batcher.submit("n", [3]), [[3, 9]])
    batcher.close(timeout=TIMEOUT)
    assert not batcher.alive
    with pytest.raises(NotReady):
        batcher.submit("n", [1])


def test_a_caller_that_does_not_wait_gets_its_rows_or_its_error_in_a_future() -> None:
    model = FakeModel(gate := threading.Event())
    batcher = MicroBatcher({"n": model}, max_wait_s=0)
    try:
        first = batcher.submit_nowait("n", [2])
        assert model.entered.wait(TIMEOUT) and not first.done()  # the model holds it; no thread of ours waits
        left, bad, good = (
            batcher.submit_nowait("n", [5]),
            batcher.submit_nowait("n", [-1]),
            batcher.submit_nowait("n", [3]),
        )
        assert left.cancel()  # its caller went away before the model took it
        gate.set()
        np.testing.assert_array_equal(first.result(TIMEOUT), [[2, 4]])
        with pytest.raises(InvalidInput):
            bad.result(TIMEOUT)
        np.testing.assert_array_equal(good.result(TIMEOUT), [[3, 9]])  # the worker outlived the cancelled one
        np.testing.assert_array_equal(batcher.submit("n", [4]), [[4, 16]])
    finally:
        gate.set()
        batcher.close(timeout=TIMEOUT)


class _TwoModalityModel:
    """A CLIP stand-in: text "t7" → [7, 1], image b"7" → [7, 2]; records its calls and how many overlap."""

    kind, dim, modalities = "clip", 2, ("text", "image")

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.threads: set[int] = set()
        self.running = self.most_running = 0
        self.lock = threading.Lock()
        self.gate, self.entered = gate, threading.Event()

    def _rows(self, modality: str, numbers: list[int], column: float) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
            self.calls.append((modality, len(numbers)))
            self.threads.add(threading.get_ident())
        self.entered.set()
        try:
            if self.gate is not None:
                assert self.gate.wait(TIMEOUT)
            return np.array([[n, column] for n in numbers], dtype=np.float32)
        finally:
            with self.lock:
                self.running -= 1

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self._rows("text", [int(t[1:]) for t in texts], 1.0)

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        return self._rows("image", [int(b) for b in images], 2.0)


def _batched(inner: _TwoModalityModel, **limits: Any) -> factory.BatchedEmbedder:
    return factory.BatchedEmbedder(inner, **{"max_batch": 64, "max_wait_s": 0.05, "max_queue": 1024, **limits})


def test_a_two_modality_model_has_one_worker_and_never_runs_two_calls_at_once() -> None:
    inner = _TwoModalityModel()
    embedder = _batched(inner, max_batch=8)
    barrier = threading.Barrier(48)

    def one(i: int) -> np.ndarray:
        barrier.wait(TIMEOUT)
        return embedder.embed_texts([f"t{i}"]) if i % 2 else embedder.embed_images([str(i).encode()])

    try:
        with ThreadPoolExecutor(48) as pool:
            results = list(pool.map(one, range(48), timeout=TIMEOUT))
    finally:
        embedder.close()
    for i, rows in enumerate(results):
        np.testing.assert_array_equal(rows, [[i, 1.0 if i % 2 else 2.0]])
    assert inner.most_running == 1 and len(inner.threads) == 1, (inner.most_running, inner.threads)
    assert {modality for modality, _ in inner.calls} == {"text", "image"}


def test_a_mixed_batch_makes_one_call_per_modality_and_keeps_each_callers_rows() -> None:
    gate = threading.Event()
    inner = _TwoModalityModel(gate)
    embedder = _batched(inner, max_wait_s=0)
    pool = ThreadPoolExecutor(6)
    try:
        running = pool.submit(embedder.embed_texts, ["t0"])
        assert inner.entered.wait(TIMEOUT)  # the worker is busy: the next five wait and leave as one batch
        queued = [
            pool.submit(embedder.embed_texts, ["t1", "t2"]),
            pool.submit(embedder.embed_images, [b"3"]),
            pool.submit(embedder.embed_texts, ["t4"]),
            pool.submit(embedder.embed_images, [b"5", b"6"]),
        ]
        _wait_until_queued(embedder.batcher, 6)
        gate.set()
        np.testing.assert_array_equal(running.result(TIMEOUT), [[0, 1]])
        expected = [[[1, 1], [2, 1]], [[3, 2]], [[4, 1]], [[5, 2], [6, 2]]]
        for future, rows in zip(queued, expected, strict=True):
            np.testing.assert_array_equal(future.result(TIMEOUT), rows)
    finally:
        gate.set()
        embedder.close()
        pool.shutdown()
    assert inner.calls == [("text", 1), ("text", 3), ("image", 3)], inner.calls
    with pytest.raises(NotReady):
        embedder.embed_images([b"7"])


class _BlockingTextEmbedder:
    kind, dim, modalities = "text", 2, ("text",)

    def __init__(self) -> None:
        self.gate, self.entered = threading.Event(), threading.Event()

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        self.entered.set()
        assert self.gate.wait(TIMEOUT)
        return np.tile(np.array([[0.6, 0.8]], np.float32), (len(texts), 1))


@pytest.fixture
def blocked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestClient, _BlockingTextEmbedder]]:
    fake = _BlockingTextEmbedder()
    monkeypatch.setattr(factory, "_build", lambda spec, models_dir, versions: fake)
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, embed_max_queue=1, embed_max_wait_ms=0)
    with TestClient(create_app(settings)) as client:
        assert client.put("/collections/c", json={"embedder": {"kind": "text"}}).status_code == 201
        yield client, fake
        fake.gate.set()


def test_the_api_answers_429_with_retry_after_when_the_embed_queue_is_full(
    blocked: tuple[TestClient, _BlockingTextEmbedder],
) -> None:
    client, fake = blocked
    batcher = client.app.state.registry.get("c").embedder.batcher  # type: ignore[attr-defined]
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(client.post, "/collections/c/search", json={"text": "running", "k": 1})
        assert fake.entered.wait(TIMEOUT)
        second = pool.submit(client.post, "/collections/c/search", json={"text": "queued", "k": 1})
        _wait_until_queued(batcher, 1)
        refused = client.post("/collections/c/search", json={"text": "refused", "k": 1})
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "overloaded"
        assert int(refused.headers["retry-after"]) >= 1
        fake.gate.set()
        assert first.result(TIMEOUT).status_code == 200 and second.result(TIMEOUT).status_code == 200


def test_text_searches_wait_on_the_model_without_a_thread_each(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More text searches wait for the model at once than the server has threads to park them in (anyio's 40):
    each is awaited on the event loop, and each gets its answer."""
    fake = _BlockingTextEmbedder()
    monkeypatch.setattr(factory, "_build", lambda spec, models_dir, versions: fake)
    settings = Settings(data_dir=tmp_path / "data", index_threads=1, embed_max_wait_ms=0)
    waiting = 60
    with TestClient(create_app(settings)) as client, ThreadPoolExecutor(waiting) as pool:
        assert client.put("/collections/c", json={"embedder": {"kind": "text"}}).status_code == 201
        batcher = client.app.state.registry.get("c").embedder.batcher  # type: ignore[attr-defined]
        try:
            first = pool.submit(client.post, "/collections/c/search", json={"text": "first", "k": 1})
            assert fake.entered.wait(TIMEOUT)
            rest = [
                pool.submit(client.post, "/collections/c/search", json={"text": f"t{i}", "k": 1})
                for i in range(waiting - 1)
            ]
            _wait_until_queued(batcher, waiting - 1)
        finally:
            fake.gate.set()
        for future in [first, *rest]:
            response = future.result(TIMEOUT)
            assert response.status_code == 200 and response.json()["results"] == [], response.text
