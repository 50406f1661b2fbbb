"""EmbedderPool: builds embedders from their specs, once per server, shared by every collection."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from app.core.errors import InvalidInput
from app.embedding.base import Embedder


def _build(spec: dict[str, Any], models_dir: Path | None) -> Embedder:
    params = {k: v for k, v in spec.items() if k != "kind"}
    kind = spec.get("kind")
    try:
        if kind in ("text", "clip"):
            from app.embedding.sentence import SentenceEmbedder

            return SentenceEmbedder(kind, models_dir=models_dir, **params)
        if kind == "kmer":
            from app.embedding.kmer import KmerEmbedder

            return KmerEmbedder(**params)
        if kind == "image":
            from app.embedding.image_features import ImageFeatureEmbedder

            return ImageFeatureEmbedder(**params)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"embedder {kind}: {err}", embedder=spec) from None
    raise InvalidInput(f"unknown embedder kind {kind!r}: use text, clip, kmer or image", embedder=spec)


class EmbedderPool:
    """One instance per distinct spec; building happens when a collection is created or opened."""

    def __init__(self, models_dir: Path | None = None) -> None:
        self.models_dir = models_dir
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def get(self, spec: dict[str, Any]) -> Embedder:
        key = json.dumps(spec, sort_keys=True)
        with self._lock:
            if key not in self._embedders:
                self._embedders[key] = _build(spec, self.models_dir)
            return self._embedders[key]
