"""MicroBatcher: coalesces concurrent embed calls from many threads into few model calls on one thread.

all-MiniLM-L6-v2 on 2 CPU cores embeds about 70 sentences/s one at a time and about 350/s in batches
(DESIGN.md §9), so 64 clients each sending one text should cost one batch, not 64 calls. One worker
thread owns the model: torch is never run by two threads at once, which would only fight over cores.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from app.core.errors import NotReady, Overloaded


class _Request:
    __slots__ = ("arrived", "done", "error", "items", "result")

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.arrived = time.monotonic()
        self.done = threading.Event()
        self.result: np.ndarray | None = None
        self.error: BaseException | None = None


class MicroBatcher:
    """Runs `fn(items) -> rows` in one worker thread, on batches gathered from concurrent `submit` calls.

    The worker takes whole requests, oldest first, up to `max_batch` items, waiting at most `max_wait_s`
    after the oldest one arrived for more to join. A request larger than `max_batch` runs alone (the
    model splits it into its own mini-batches). At most `max_queue` items wait; beyond that `submit`
    raises Overloaded at once, so a flood is refused with 429 instead of growing an unbounded backlog.
    """

    def __init__(
        self,
        fn: Callable[[list[Any]], np.ndarray],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_queue: int = 1024,
        name: str = "embed",
    ) -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be ≥ 1 and max_wait_s ≥ 0")
        self.fn, self.max_batch, self.max_wait_s, self.max_queue = fn, max_batch, max_wait_s, max_queue
        self._pending: deque[_Request] = deque()
        self._queued = 0  # items in _pending
        self._cond = threading.Condition()
        self._closed = False
        self._seconds_per_item = 0.0  # of the last batch, for Retry-After
        self._worker = threading.Thread(target=self._run, name=f"batcher-{name}", daemon=True)
        self._worker.start()

    def submit(self, items: list[Any]) -> np.ndarray:
        """Rows for `items`, in order; blocks until the worker has run them. Thread-safe."""
        request = _Request(list(items))
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
            self._cond.notify()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

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
                    request.done.set()
                self._pending.clear()
                return None
            deadline = self._pending[0].arrived + self.max_wait_s  # under load this has passed: no wait
            while self._queued < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
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
            items = [item for request in batch for item in request.items]
            try:
                rows = self._call(items)
            except Exception as err:
                if len(batch) == 1:
                    batch[0].error = err
                else:  # one caller's bad item must not fail the others: run each alone
                    for request in batch:
                        self._run_alone(request)
            else:
                at = 0
                for request in batch:
                    request.result, at = rows[at : at + len(request.items)], at + len(request.items)
            self._seconds_per_item = (time.perf_counter() - start) / len(items)
            for request in batch:
                request.done.set()

    def _run_alone(self, request: _Request) -> None:
        try:
            request.result = self._call(request.items)
        except Exception as err:
            request.error = err

    def _call(self, items: list[Any]) -> np.ndarray:
        rows = np.asarray(self.fn(items))
        if len(rows) != len(items):
            raise RuntimeError(f"embed function returned {len(rows)} rows for {len(items)} items")
        return rows
