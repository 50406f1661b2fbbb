"""Queries by text, sequence or image become vector queries here: the embedding of a search happens in one place."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace

import numpy as np

from app.collections.view import Catalog
from app.embedding.base import Modality
from app.search.models import Query


def _modality(query: Query) -> Modality:
    return "text" if query.text is not None else "sequence" if query.sequence is not None else "image"


def _item(query: Query) -> str | bytes | None:
    return query.text if query.text is not None else query.sequence if query.sequence is not None else query.image


def embedding_later(collection: Catalog, query: Query) -> Future[np.ndarray] | None:
    """The vector of a query by text on its way from a model that batches callers (awaited on an event loop, with
    no thread parked on it); None for any other query, or an embedder that embeds in the caller's thread."""
    later = getattr(collection.embedder, "embed_later", None)
    if query.text is None or not query.needs_embedding or later is None:
        return None
    return later("text", [query.text])  # type: ignore[no-any-return]


def embedded(query: Query, vector: np.ndarray) -> Query:
    """The query by its vector; a text stays, for the keyword half of a hybrid search."""
    return replace(query, vector=vector, sequence=None, image=None)


def embed_queries(collection: Catalog, queries: list[Query]) -> list[Query]:
    """Every query with a vector or an id; the others embedded by the collection's model, one call per
    modality, so a batch of 100 texts costs one model call. CPU work: call it off the event loop.
    """
    by_modality: dict[Modality, list[int]] = {}
    for i, query in enumerate(queries):
        if query.needs_embedding:
            by_modality.setdefault(_modality(query), []).append(i)
    if not by_modality:
        return queries
    out = list(queries)
    for modality, rows in by_modality.items():
        items = [_item(queries[i]) for i in rows]
        vectors = collection.embed(modality, items)
        for row, i in enumerate(rows):
            out[i] = embedded(queries[i], vectors[row])
    return out
