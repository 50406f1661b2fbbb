"""EmbedderPool: builds embedders from their specs, once per server, shared by every collection.

Model embedders (text, CLIP) are wrapped so that every call, whatever its modality, goes through one
MicroBatcher per model: concurrent requests share model calls, and one thread runs each model (CLIP's
texts and images included). The model-free embedders (k-mer, image features) are not: they are cheap
per item, gain nothing from batching other callers' items, and run in parallel in the callers' threads
(numpy and PIL release the GIL).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import InvalidInput, ModelNotFound
from app.embedding.base import EMBED_METHOD, Embedder, Modality, check_modality
from app.embedding.batcher import MicroBatcher

_BATCHED_KINDS = ("text", "clip")


def _build(spec: dict[str, Any], models_dir: Path | None, versions: Path | None) -> Embedder:
    params = {k: v for k, v in spec.items() if k not in ("kind", "version")}
    kind = spec.get("kind")
    try:
        if kind in ("text", "clip"):
            from app.embedding.sentence import SentenceEmbedder

            return SentenceEmbedder(kind, models_dir=models_dir, path=_version(spec, versions), **params)
        if kind == "kmer":
            from app.embedding.kmer import KmerEmbedder

            return KmerEmbedder(**params)
        if kind == "image":
            from app.embedding.image_features import ImageFeatureEmbedder

            return ImageFeatureEmbedder(**params)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"embedder {kind}: {err}", embedder=spec) from None
    raise InvalidInput(f"unknown embedder kind {kind!r}: use text, clip, kmer or image", embedder=spec)


def _version(spec: dict[str, Any], versions: Path | None) -> Path | None:
    """The folder of a fine-tuned version the spec names (under the collection's `versions`), or None."""
    version = spec.get("version")
    if version is None:
        return None
    path = versions / version if versions is not None else None
    if path is None or not (path / "modules.json").exists():
        raise ModelNotFound(f"fine-tuned model version {version!r} is missing from the collection", version=version)
    return path


class BatchedEmbedder:
    """An embedder whose `embed_<modality>s` calls all go through one MicroBatcher, so one thread runs the model."""

    def __init__(self, inner: Embedder, *, max_batch: int, max_wait_s: float, max_queue: int) -> None:
        self.inner = inner
        self.kind, self.dim, self.modalities = inner.kind, inner.dim, inner.modalities
        self.batcher = MicroBatcher(
            {modality: getattr(inner, EMBED_METHOD[modality]) for modality in inner.modalities},
            name=self.kind,
            max_batch=max_batch,
            max_wait_s=max_wait_s,
            max_queue=max_queue,
        )

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.batcher.submit("text", texts)

    def embed_images(self, images: list[bytes]) -> np.ndarray:
        return self.batcher.submit("image", images)

    def embed_later(self, modality: Modality, items: list[Any]) -> Future[np.ndarray]:
        """The rows of `items`, as `embed` would give them, in a future: a caller on the event loop awaits it."""
        check_modality(self, modality)
        return self.batcher.submit_nowait(modality, items)

    def close(self) -> None:
        self.batcher.close()

    def __getattr__(self, name: str) -> Any:  # model_name, path, ...: the wrapped embedder's
        return getattr(self.inner, name)


class EmbedderPool:
    """One instance per distinct spec; building happens when a collection is created or opened."""

    def __init__(
        self,
        models_dir: Path | None = None,
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.005,
        max_queue: int = 1024,
    ) -> None:
        self.models_dir = models_dir
        self._limits: dict[str, Any] = {"max_batch": max_batch, "max_wait_s": max_wait_s, "max_queue": max_queue}
        self._embedders: dict[str, Embedder] = {}
        self._lock = threading.Lock()

    def get(self, spec: dict[str, Any], versions: Path | None = None) -> Embedder:
        """The embedder for `spec`; a fine-tuned version ("version" in the spec) is a folder in `versions`."""
        key = json.dumps([spec, str(versions) if "version" in spec else None], sort_keys=True)
        with self._lock:
            if key not in self._embedders:
                embedder = _build(spec, self.models_dir, versions)
                if spec.get("kind") in _BATCHED_KINDS:
                    embedder = BatchedEmbedder(embedder, **self._limits)
                self._embedders[key] = embedder
            return self._embedders[key]

    def close(self) -> None:
        """Stop every batcher's worker thread; the server calls this on shutdown."""
        with self._lock:
            embedders, self._embedders = list(self._embedders.values()), {}
        for embedder in embedders:
            if isinstance(embedder, BatchedEmbedder):
                embedder.close()
