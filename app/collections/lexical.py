"""A collection's keyword index: each point's document, and the background rebuild after the fields change."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from app.collections.models import CollectionConfig, Source
from app.index.scan import lookup
from app.index.tokens import document, field_text

log = logging.getLogger(__name__)
REBUILD_CHUNK = 2_000  # points per transaction while rebuilding: writers wait at most one chunk


def documents(
    config: CollectionConfig, payloads: Sequence[dict[str, Any] | None], sources: Sequence[Source | None] | None
) -> list[str]:
    """One keyword document per point: the tokens of its lexical fields, then of its source text if kept."""
    fields, with_source = config.lexical_fields, config.lexical_source
    out = []
    for i, payload in enumerate(payloads):
        texts = [t for key in fields for t in field_text(lookup(payload, key))] if payload else []
        source = sources[i] if sources is not None and with_source else None
        if source is not None and source[0] == "text":
            texts.append(source[1].decode())
        out.append(document(texts))
    return out


class LexicalRebuild:
    """Rewrites every point's keyword document after the lexical fields changed, chunk by chunk, in a thread.

    `rewrite(slots)` rewrites one chunk (the collection takes its write mutex, so writes interleave and
    new writes already use the new fields); `live_slots()` lists what to rewrite; `finish()` records
    that no rebuild is owed. A change while one runs restarts it. Searches go on throughout, finding
    points by their old or new document until it completes.
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
            self._thread = threading.Thread(target=self._run, name=f"lexical-{self._name}", daemon=True)
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
            except Exception:  # the rebuild is owed still (kept in the database): the next start resumes it
                log.exception("rebuilding the keyword index of %s failed", self._name)
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
        for start in range(0, len(slots), REBUILD_CHUNK):
            if self._stopping.is_set():
                return
            self._rewrite(slots[start : start + REBUILD_CHUNK])
            self.done = min(start + REBUILD_CHUNK, len(slots))
