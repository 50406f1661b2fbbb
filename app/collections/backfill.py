"""Backfill: a background pass over every point of a collection, for an index that changed while it serves."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
CHUNK = 2_000  # points per step under the write mutex: writers wait at most one chunk


class Backfill:
    """Brings every point into an index that changed (the keyword index's fields, a new payload index), chunk by
    chunk, in a thread of its own.

    `rewrite(slots)` does one chunk (the collection takes its write mutex, so writes interleave, and new writes
    already go into the changed index); `live_slots()` lists what to do; `finish()` records that it is done.
    A `request` while one runs restarts it, so the last change wins. Searches go on throughout.
    """

    def __init__(
        self,
        name: str,
        live_slots: Callable[[], list[int]],
        rewrite: Callable[[list[int]], None],
        finish: Callable[[], None],
    ) -> None:
        self._name, self._live_slots, self._rewrite, self._finish = name, live_slots, rewrite, finish
        self._lock = threading.Lock()
        self._wanted = 0  # rebuilds asked for; the thread runs until it has done the latest
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.done, self.total = 0, 0
        self.failed = False

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def progress(self) -> float:
        return 1.0 if not self.running else self.done / max(self.total, 1)

    def request(self) -> None:
        """Start a rebuild, or restart the one running so that it uses the latest fields."""
        with self._lock:
            self._wanted += 1
            if self.running or self._stopping.is_set():
                return
            self._thread = threading.Thread(target=self._run, name=f"backfill-{self._name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                generation = self._wanted
            try:
                self._rebuild_once()
            except Exception:  # the owner keeps what is owed (a flag in the database) for the next start
                log.exception("backfill %s failed", self._name)
                self.failed = True
                return
            with self._lock:
                if self._stopping.is_set() or generation != self._wanted:
                    continue
                self._finish()
                self.failed = False
                self._thread = None
                return

    def _rebuild_once(self) -> None:
        slots = self._live_slots()
        self.done, self.total = 0, len(slots)
        for start in range(0, len(slots), CHUNK):
            if self._stopping.is_set():
                return
            self._rewrite(slots[start : start + CHUNK])
            self.done = min(start + CHUNK, len(slots))
