"""MicroBatcher: coalesces concurrent embed calls (from threads or event loops) into few model calls on one thread.

all-MiniLM-L6-v2 on the 2-core benchmark machine embeds about 35 sentences/s one at a time and about
200/s in batches of 16 to 64 (benchmarks/RESULTS.md), so 64 clients each sending one text should cost
one batch, not 64 calls. One worker thread owns the model, whatever the modality (CLIP embeds texts
and images): torch is never run by two threads at once, which would only fight over cores.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, InvalidStateError
from typing import Any

import numpy as np

from app.core.errors import NotReady, Overloaded

EmbedFn = Callable[[list[Any]], np.ndarray]


class _Request:
    __slots__ = ("arrived", "error", "future", "items", "modality", "result")

    def __init__(self, modality: str, items: list[Any]) -> None:
        self.modality, self.items = modality, items
        self.arrived = time.monotonic()
        self.future: Future[np.ndarray] = Future()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        try:
            if self.error is not None:
                self.future.set_exception(self.error)
            else:
                self.future.set_result(self.result)  # type: ignore[arg-type]
        except InvalidStateError:  # cancelled meanwhile: its caller left, and no one reads it
            pass


class MicroBatcher:
    """Runs `fns[modality](items) -> rows` in one worker thread, on batches gathered from concurrent `submit` calls.

    The worker takes whole requests, oldest first, up to `max_batch` items, and makes one call per
    modality in the batch. It starts a batch once `max_batch` items wait, or once `max_wait_s` has
    passed with no new request since the later of the last arrival and the end of the last batch (so
    a lone caller waits `max_wait_s`; under a stream of arrivals closer than that, the oldest waits at
    most about `max_batch × max_wait_s`, and at such rates the model is busy anyway).
    Why not `max_wait_s` after the oldest request, as before: when many callers wait on a batch, its
    answers go out and their next requests come back one by one over tens of milliseconds of
    event-loop work. Counted from the oldest, the next batch leaves with the first few, the rest
    arrive while it runs, and the split repeats for good (19 + 21 with 64 clients, 40 in flight):
    twice the model calls, each small one running beside that event-loop work at about 1.4× the
    cost per item. Counted from the newest, the 40 stay one batch.
    A request larger than `max_batch` runs alone (the model splits it into its own mini-batches).
    At most `max_queue` items wait, all modalities together; beyond that `submit` raises Overloaded
    at once, so a flood is refused with 429 instead of growing an unbounded backlog.
    """

    def __init__(
        self,
        fns: Mapping[str, EmbedFn],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_queue: int = 1024,
        name: str = "embed",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1 and max_wait_s ≥ 0")
        self.fns = dict(fns)
        self.max_batch, self.max_wait_s, self.max_queue = max_batch, max_wait_s, max_queue
        self._pending: deque[_Request] = deque()
        self._queued = 0  # items in _pending
        self._last_arrival = self._last_done = 0.0  # time.monotonic(): newest request, end of last batch
        self._cond = threading.Condition()
        self._closed = False
        self._seconds_per_item = 0.0  # of the last batch, for Retry-After
        self._worker = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._worker.start()

    def submit(self, modality: str, items: list[Any]) -> np.ndarray:
        """Rows for `items` of `modality`, in order; blocks until the worker has run them. Thread-safe."""
        return self.submit_nowait(modality, items).result()

    def submit_nowait(self, modality: str, items: list[Any]) -> Future[np.ndarray]:
        """`submit` without the wait: the rows come in the future (the model's error too). An event loop awaits it
        (`asyncio.wrap_future`) instead of parking a thread per caller. Overloaded and NotReady are raised here."""
        if modality not in self.fns:
            raise ValueError(f"this batcher embeds {' and '.join(self.fns)}, not {modality}")
        request = _Request(modality, list(items))
        with self._cond:
            if self._closed:
                raise NotReady("the embedder is shutting down")
            # An empty queue admits any size, so a request larger than max_queue is slow, never refused.
            if self._queued and self._queued + len(items) > self.max_queue:
                wait = math.ceil(max(1.0, self._queued * self._seconds_per_item))
                raise Overloaded(
                    f"{self._queued} items are waiting to be embedded (limit {self.max_queue}); retry later",
                    retry_after=wait,
                    queued=self._queued,
                    limit=self.max_queue,
                )
            self._pending.append(request)
            self._queued += len(items)
            self._last_arrival = request.arrived
            self._cond.notify()
        return request.future

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker after the batch it is running; requests still waiting fail with NotReady."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._worker is not threading.current_thread():
            self._worker.join(timeout)

    @property
    def alive(self) -> bool:
        return self._worker.is_alive()

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            while not self._pending and not self._closed:
                self._cond.wait()
            if self._closed:
                for request in self._pending:
                    request.error = NotReady("the embedder is shutting down")
                    request.finish()
                self._pending.clear()
                return None
            while self._queued < self.max_batch and not self._closed:
                left = max(self._last_arrival, self._last_done) + self.max_wait_s - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [self._pending.popleft()]
            size = len(batch[0].items)
            while self._pending and size + len(self._pending[0].items) <= self.max_batch:
                size += len(self._pending[0].items)
                batch.append(self._pending.popleft())
            self._queued -= size
            return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            start = time.perf_counter()
            groups: dict[str, list[_Request]] = {}  # one model call per modality, arrival order within it
            for request in batch:
                groups.setdefault(request.modality, []).append(request)
            for modality, group in groups.items():
                self._run_group(self.fns[modality], group)
            size = sum(len(r.items) for r in batch)
            self._seconds_per_item = (time.perf_counter() - start) / max(1, size)
            self._last_done = time.monotonic()
            for request in batch:
                request.finish()

    def _run_group(self, fn: EmbedFn, group: list[_Request]) -> None:
        try:
            rows = self._call(fn, [item for request in group for item in request.items])
        except Exception as err:
            if len(group) == 1:
                group[0].error = err
                return
            for request in group:  # one caller's bad item must not fail the others: run each alone
                try:
                    request.result = self._call(fn, request.items)
                except Exception as alone:
                    request.error = alone
            return
        at = 0
        for request in group:
            request.result, at = rows[at : at + len(request.items)], at + len(request.items)

    @staticmethod
    def _call(fn: EmbedFn, items: list[Any]) -> np.ndarray:
        rows = np.asarray(fn(items))
        if len(rows) != len(items):
            raise RuntimeError(f"embed function returned {len(rows)} rows for {len(items)} items")
        return rows
