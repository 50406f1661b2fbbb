"""RecallMonitor: re-runs a sample of a collection's graph searches exactly, in the background: live recall@k."""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from app.collections.view import Catalog
from app.core.errors import CollectionNotFound

log = logging.getLogger(__name__)
WINDOW = 1000  # the estimate covers the most recent sampled queries
QUEUE = 64  # sampled queries waiting for their exact re-run; more are dropped, never waited for
RECENT = 1000  # unfiltered query vectors kept for /tune: real queries, unlike stored points, are not in the graph
DUTY = 0.05  # the worker rests between re-runs so that it uses at most this share of one core


@dataclass(frozen=True)
class _Sample:
    vector: np.ndarray  # (1, dim), as the graph was asked
    k: int
    candidates: np.ndarray | None  # the filter's matching slots; None: every live point
    found: np.ndarray  # the slots the graph returned
    seq: int  # the collection's data version the graph saw


class RecallMonitor:
    """One graph search in `every`, at random, is re-run exactly on a worker thread; recall@k = shared / exact.

    Why in the background: an exact search over the whole collection costs far more than the graph
    query it checks (≈ 10 ms over 400k × 50-d, 100 ms over 1M × 384-d), so the caller never waits for
    it, the worker rests after each re-run to stay within DUTY of one core, and a full queue drops
    samples rather than slowing searches: a busy server gets fewer samples, never a slower one.
    A sample whose data changed before its re-run (a write landed in between) is dropped too: it
    could not tell the graph's misses from the newer points.
    """

    def __init__(self, collection: Catalog, every: int) -> None:
        self.collection, self.every = collection, every
        self.failures = 0  # re-runs that raised (on /metrics)
        self._random = random.Random()
        self._queue: queue.Queue[_Sample | None] = queue.Queue(QUEUE)
        self._window: deque[tuple[int, int]] = deque(maxlen=WINDOW)  # (shared, exact) hits per sample
        self._recent: deque[np.ndarray] = deque(maxlen=RECENT)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @classmethod
    def attach(cls, collection: Catalog) -> RecallMonitor:
        """The part factory the registry calls for each collection it opens: a monitor with its worker started."""
        monitor = cls(collection, collection.settings.recall_sample_every)
        monitor.start()
        return monitor

    def start(self) -> None:
        if self.every > 0 and self._thread is None:
            self._thread = threading.Thread(target=self._work, name=f"recall-{self.collection.name}", daemon=True)
            self._thread.start()

    def offer(self, vector: np.ndarray, k: int, mask: np.ndarray | None, found: np.ndarray, seq: int) -> None:
        """Called by the searcher (inside its read view, data version `seq`) with what the graph answered."""
        if mask is None:
            with self._lock:  # recent_queries copies the deque: no append may interleave
                self._recent.append(vector[0].copy())
        # at random, not every n-th: periodic traffic (a client cycling through its queries) would
        # otherwise put the same few queries in every sample
        if self._thread is None or (self.every > 1 and self._random.random() * self.every >= 1):
            return
        candidates = None if mask is None else np.flatnonzero(mask)
        sample = _Sample(vector.copy(), k, candidates, found.copy(), seq)
        try:
            self._queue.put_nowait(sample)
        except queue.Full:  # the worker is behind: this sample is not worth a wait
            return

    def estimate(self) -> tuple[float | None, int]:
        """(recall@k over the window, samples in it); None before the first sample."""
        with self._lock:
            shared = sum(s for s, _ in self._window)
            expected = sum(e for _, e in self._window)
            return (shared / expected if expected else None), len(self._window)

    def recent_queries(self) -> np.ndarray:
        """The latest unfiltered query vectors searched through the graph, as the graph was asked; (n, dim)."""
        with self._lock:
            recent = list(self._recent)
        return np.vstack(recent) if recent else np.empty((0, self.collection.config.dim), np.float32)

    def reset(self) -> None:
        """Forget the window (the default ef changed: old samples describe another graph setting)."""
        with self._lock:
            self._window.clear()

    def close(self) -> None:
        """Stop the worker and join it; samples still queued are dropped with it."""
        if self._thread is not None:
            self._stopping.set()  # the worker skips what is still queued and stops resting
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def drain(self) -> None:
        """Wait until every queued sample has been re-run (tests)."""
        self._queue.join()

    def _work(self) -> None:
        while (sample := self._queue.get()) is not None:
            started = time.perf_counter()
            try:
                if not self._stopping.is_set():
                    self._check(sample)
            except CollectionNotFound:  # dropped or closing: nothing left to check against
                pass
            except Exception:  # a bug here must not kill the thread that keeps the estimate alive
                self.failures += 1
                log.exception("collection %s: recall sample failed", self.collection.name)
            finally:
                self._queue.task_done()
            self._stopping.wait((time.perf_counter() - started) * (1 / DUTY - 1))
        self._queue.task_done()

    def _check(self, s: _Sample) -> None:
        with self.collection.reading() as view:
            if view.seq != s.seq:
                return
            truth, _ = view.exact_search(s.vector, s.k, s.candidates)
        exact = set(truth[0][truth[0] >= 0].tolist())
        if exact:
            shared = len(exact & set(s.found[s.found >= 0].tolist()))
            with self._lock:
                self._window.append((shared, len(exact)))
