"""Queries by text, sequence or image become vector queries here: the embedding of a search happens in one place."""

from __future__ import annotations

from dataclasses import replace

from app.collections.view import Catalog
from app.embedding.base import Modality
from app.search.models import Query


def _modality(query: Query) -> Modality:
    return "text" if query.text is not None else "sequence" if query.sequence is not None else "image"


def _item(query: Query) -> str | bytes | None:
    return query.text if query.text is not None else query.sequence if query.sequence is not None else query.image


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
            out[i] = replace(queries[i], vector=vectors[row], sequence=None, image=None)  # text: for keywords
    return out
