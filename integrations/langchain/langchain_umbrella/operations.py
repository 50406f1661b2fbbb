"""What the store does, each operation once as a flow of SDK and embedding steps (see `steps`)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from umbrella_client import CollectionInfo, errors
from umbrella_client.models import PointId, ScoredPoint

from langchain_umbrella import documents
from langchain_umbrella.scores import mmr_pick
from langchain_umbrella.steps import Flow, call, embed

SEARCH_OPTIONS = frozenset({"ef", "exact", "score_threshold", "mode", "keywords", "fusion"})
"""Search arguments passed through to the server as they are (see the README's search section)."""

IDS_PER_REQUEST = 1_000  # well under the server's 10,000 ids per request (UMBRELLA_MAX_BATCH_POINTS, has_id)
TEXT_EMBEDDERS = ("text", "clip")  # the server embedders that take words


@dataclasses.dataclass
class Target:
    """The collection a store reads and writes, what the store decided about it, and its info once seen."""

    name: str
    embeds: bool  # True: the store embeds and sends vectors; False: the server's embedder gets the texts
    text_key: str | None
    metric: str
    embedder: Mapping[str, Any] | None
    collection_config: Mapping[str, Any]
    batch_size: int
    server_mmr: bool
    info: CollectionInfo | None = None  # cached once found: a collection keeps its dim, metric and embedder

    def creation(self, dim: int | None) -> dict[str, Any]:
        """create_collection's arguments for a collection this store makes itself."""
        if self.embeds:
            return {"dim": dim, "metric": self.metric, **self.collection_config}
        # text_key None: the text lives only as the server's source, so the collection must keep it
        return {
            "embedder": dict(self.embedder or {"kind": "text"}),
            "metric": self.metric,
            "store_source": self.text_key is None,
            **self.collection_config,
        }


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _search_options(options: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(options) - SEARCH_OPTIONS
    if unknown:
        raise TypeError(f"unknown search arguments {sorted(unknown)}; the server takes {sorted(SEARCH_OPTIONS)}")
    return dict(options)


def info(t: Target) -> Flow[CollectionInfo | None]:
    """The collection's info (cached), or None while it does not exist."""
    if t.info is None:
        try:
            t.info = yield call("get_collection", t.name)
        except errors.CollectionNotFound:
            return None
    return t.info


def ensure(t: Target, dim: int | None) -> Flow[CollectionInfo]:
    """The collection, created first if missing (`dim` from the first vectors; the embedder decides it otherwise)."""
    found = yield from info(t)
    if found is None:
        try:
            found = yield call("create_collection", t.name, **t.creation(dim))
        except errors.CollectionExists:  # another writer created it first
            found = yield call("get_collection", t.name)
        t.info = found
    if not t.embeds and (found.embedder or {}).get("kind") not in TEXT_EMBEDDERS:
        raise ValueError(
            f"collection {t.name!r} has no text embedder (embedder {found.embedder}): give the store an Embeddings"
        )
    return found


def add(
    t: Target,
    texts: Sequence[str],
    metadatas: Sequence[Mapping[str, Any] | None] | None,
    ids: Sequence[str | None] | None,
) -> Flow[list[str]]:
    """Upsert texts with their metadata; ids as given (a UUID where none); returns the ids."""
    point_ids = documents.point_ids(ids, len(texts))
    payloads = documents.payloads(texts, metadatas, t.text_key)
    if not texts:
        return []
    if t.embeds:
        vectors = yield embed("embed_documents", list(texts))
        yield from ensure(t, len(vectors[0]))
        columns: dict[str, Any] = {"vectors": vectors}
    else:
        yield from ensure(t, None)
        columns = {"texts": list(texts)}
    # upload batches and retries 429 (the server's embedder queue is full) and 503; an upsert replaces by id,
    # so a retried batch is harmless
    summary = yield call(
        "upload", t.name, ids=point_ids, payloads=payloads, batch_size=t.batch_size, progress=False, **columns
    )
    if summary.failed:
        raise summary.failed[0].error
    return point_ids


def query(t: Target, text: str | None, vector: Sequence[float] | None) -> Flow[dict[str, Any]]:
    """The search's query: a vector (given, or the text embedded here), or the text for the server to embed."""
    if vector is None and t.embeds:
        vector = yield embed("embed_query", text)
    return {"vector": list(vector)} if vector is not None else {"text": text}


def _texts(t: Target, points: Sequence[Any]) -> Flow[dict[PointId, str]]:
    """The source text of the points whose payload lacks it (text_key None, or points written by other tools)."""
    wanted = documents.missing_text(points, t.text_key)
    if not wanted:
        return {}
    found = yield from _fetch(t, wanted, with_payload=False, with_source=True)
    return {p.id: (p.source or {}).get("text", "") for p in found}


def _fetch(t: Target, ids: Sequence[PointId], *, with_payload: bool, with_source: bool) -> Flow[list[Any]]:
    # scroll with has_id, not points/get: get answers 404 for the whole request when one id is unknown
    points: list[Any] = []
    for chunk in _chunks(ids, IDS_PER_REQUEST):
        page = yield call(
            "scroll",
            t.name,
            filter={"must": [{"has_id": chunk}]},
            limit=len(chunk),
            with_payload=with_payload,
            with_source=with_source,
        )
        points.extend(page.points)
    return points


def _documents(t: Target, hits: Sequence[ScoredPoint]) -> Flow[list[tuple[Document, float]]]:
    sources = yield from _texts(t, hits)
    return [(documents.to_document(h.id, h.payload, t.text_key, sources.get(h.id, "")), h.score) for h in hits]


def search(
    t: Target, q: dict[str, Any], k: int, filter: Mapping[str, Any] | None, options: Mapping[str, Any]
) -> Flow[list[tuple[Document, float]]]:
    """The k best hits with the server's scores; nothing while the collection does not exist yet."""
    try:
        result = yield call("search", t.name, **q, k=k, filter=filter, **_search_options(options))
    except errors.CollectionNotFound:
        return []
    return (yield from _documents(t, result.results))


def _refuses_mmr(err: errors.ValidationFailed) -> bool:
    """Whether a 422 says the server does not know the `mmr` option at all (a server from before MMR)."""
    return any(
        e.get("type") == "extra_forbidden" and list(e.get("loc", []))[-1:] == ["mmr"]
        for e in err.details.get("errors", [])
    )


def mmr(
    t: Target,
    q: dict[str, Any],
    k: int,
    fetch_k: int,
    lambda_mult: float,
    filter: Mapping[str, Any] | None,
    options: Mapping[str, Any],
) -> Flow[list[Document]]:
    """k hits by maximal marginal relevance among the best fetch_k: the server's MMR, else LangChain's here."""
    options = _search_options(options)
    if t.server_mmr or "vector" not in q:  # a text query embedded by the server leaves us no query vector
        try:
            result = yield call(
                "search", t.name, **q, k=k, filter=filter, mmr={"lambda": lambda_mult, "candidates": fetch_k}, **options
            )
        except errors.CollectionNotFound:
            return []
        except errors.ValidationFailed as err:
            if "vector" not in q or not _refuses_mmr(err):
                raise
        else:
            return [doc for doc, _ in (yield from _documents(t, result.results))]
    try:
        result = yield call("search", t.name, **q, k=fetch_k, filter=filter, with_vector=True, **options)
    except errors.CollectionNotFound:
        return []
    hits = result.results
    picked = [hits[i] for i in mmr_pick(q["vector"], [h.vector for h in hits], k, lambda_mult)]
    return [doc for doc, _ in (yield from _documents(t, picked))]


def get(t: Target, ids: Sequence[PointId]) -> Flow[list[Document]]:
    """The documents of the ids that exist, in the order asked (an unknown id is left out, never an error)."""
    if not ids:
        return []
    try:
        points = yield from _fetch(t, list(dict.fromkeys(ids)), with_payload=True, with_source=t.text_key is None)
    except errors.CollectionNotFound:
        return []
    order = {pid: n for n, pid in enumerate(ids)}
    points.sort(key=lambda p: order[p.id])
    if t.text_key is None:
        sources = {p.id: (p.source or {}).get("text", "") for p in points}
    else:
        sources = yield from _texts(t, points)
    return [documents.to_document(p.id, p.payload, t.text_key, sources.get(p.id, "")) for p in points]


def delete(t: Target, ids: Sequence[PointId] | None, filter: Mapping[str, Any] | None) -> Flow[bool]:
    """Delete by ids (unknown ones are skipped) or by filter; a collection that does not exist holds nothing."""
    if (ids is None) == (filter is None):
        raise ValueError("pass ids or filter (delete_collection() drops the whole collection)")
    with contextlib.suppress(errors.CollectionNotFound):
        if filter is not None:
            yield call("delete_points", t.name, filter=filter)
        for chunk in _chunks(ids or [], IDS_PER_REQUEST):
            yield call("delete_points", t.name, chunk)
    return True


def drop(t: Target) -> Flow[None]:
    """Drop the collection (if it exists) and forget its info."""
    with contextlib.suppress(errors.CollectionNotFound):
        yield call("drop_collection", t.name)
    t.info = None
