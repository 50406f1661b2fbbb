"""Moving a collection to another version of its model: every point kept as text embedded again in the background,
then the model and the vectors switched in one batch (Collection.switch_embedder); until then nothing changes.
Points kept as photos keep their vectors: the versions a collection switches between share one image tower."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from app.collections.models import PointId, Source
from app.collections.view import Catalog
from app.embedding.base import Embedder

CHUNK = 256  # points read and embedded at a time: the progress steps, and the most a cancel waits for


class Stopped(Exception):
    """The caller asked the re-embedding to stop; nothing was switched."""


def reembed(
    collection: Catalog,
    spec: dict[str, Any],
    *,
    progress: Callable[[float], None] = lambda _: None,
    stopped: Callable[[], bool] = lambda: False,
) -> Any:
    """Embed every point that has a text source with the model `spec` names, and switch to it; returns what the
    switch returns (the batch's sequence number). Points written meanwhile are embedded again at the switch;
    searches use the old model and vectors until it."""
    embedder = collection.embedder_for(spec)
    as_of, ids = collection.live_ids()
    vectors: dict[PointId, np.ndarray] = {}
    for start in range(0, len(ids), CHUNK):
        if stopped():
            raise Stopped
        chunk = ids[start : start + CHUNK]
        keys = [orjson.dumps(pid).decode() for pid in chunk]
        kinds = collection.source_kinds(keys)  # photos are not read: a CLIP tuning leaves its image side as it was
        found = collection.stored_sources([key for key in keys if kinds.get(key) == "text"])
        texts = [(pid, found[key][1].decode()) for pid, key in zip(chunk, keys, strict=True) if key in found]
        if texts:
            embedded = embedder.embed_texts([text for _, text in texts])
            vectors.update(zip([pid for pid, _ in texts], embedded, strict=True))
        progress(min(1.0, (start + len(chunk)) / len(ids)))
    return collection.switch_embedder(spec, embedder, vectors, as_of)


def brought_up_to_date(
    vectors: dict[PointId, np.ndarray],
    since: list[str],
    kinds_of: Callable[[list[str]], dict[str, str]],
    sources_of: Callable[[list[str]], dict[str, Source]],
    embedder: Embedder,
) -> dict[PointId, np.ndarray]:
    """Vectors made as of some batch, as of now: the points written since (keys `since`) lose theirs, their
    sources having changed, and those kept as text are embedded again; photos keep their stored vectors."""
    vectors = dict(vectors)
    for key in since:
        vectors.pop(orjson.loads(key), None)
    texts = [key for key, kind in kinds_of(since).items() if kind == "text"]
    fresh = [(orjson.loads(key), data.decode()) for key, (_, data) in sources_of(texts).items()]
    if fresh:
        vectors.update(zip([pid for pid, _ in fresh], embedder.embed_texts([t for _, t in fresh]), strict=True))
    return vectors
