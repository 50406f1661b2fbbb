"""Routes for search: one query, many in one call, or an uploaded photo."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated

from anyio import CapacityLimiter
from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.access import GuardedRoute, errors, needs
from app.api.codec import decode_image, decode_vector, json_response, result_json
from app.api.deps import CollectionDep, SearchWorkersDep, check_batch, on_search_worker, own_or
from app.api.errors import validation_error_response
from app.api.openapi import SelfParsingRoute, parse_body
from app.collections.collection import Collection
from app.schemas.common import Filter
from app.schemas.search import BatchSearchRequest, BatchSearchResponse, SearchRequest, SearchResponse
from app.search import searcher
from app.search.models import Fusion, Grouping, Mmr, Query, SearchResult
from app.search.queries import embed_queries, embedded, embedding_later

_FUSION = Fusion()  # the defaults, made once: a frozen dataclass a request would otherwise build (0.5 µs)
router = APIRouter(prefix="/collections/{name}/search", tags=["search"], route_class=GuardedRoute)


def to_query(req: SearchRequest) -> Query:
    """The wire request as a search query: vectors and images decoded, nothing embedded yet."""
    return Query(
        vector=None if req.vector is None else decode_vector(req.vector),
        text=req.text,
        sequence=req.sequence,
        image=None if req.image is None else decode_image(req.image),
        id=req.id,
        k=req.k,
        ef=req.ef,
        exact=req.exact,
        filter=req.filter.as_dict() if req.filter else None,
        score_threshold=req.score_threshold,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
        mode=req.mode,
        keywords=req.keywords,
        fusion=_FUSION if req.fusion is None else Fusion(**req.fusion.model_dump()),
        mmr=None if req.mmr is None else Mmr(req.mmr.lambda_, req.mmr.candidates),
        group_by=None if req.group_by is None else Grouping(req.group_by, req.group_size, req.groups, req.group_offset),
        partial=req.partial,
    )


async def answer(
    collection: Collection, queries_of: Callable[[], list[Query]], workers: CapacityLimiter, *, embed: bool
) -> list[SearchResult]:
    """Decode and embed in the shared threadpool (waiting on the model's micro-batcher: many waiters make
    one batch), then search on a search worker (CPU-bound: at most one per core). `queries_of` decodes the
    wire vectors and images: for a batch of 10k vectors that is ~0.1 s, which must not run on the loop.
    """
    run = own_or(collection, "search", searcher.search)
    if embed:
        queries = await run_in_threadpool(lambda: embed_queries(collection, queries_of()))
        return await on_search_worker(workers, run, queries)
    return await on_search_worker(workers, lambda: run(queries_of()))


def by_content(req: SearchRequest) -> bool:
    """A search by text, sequence or image: it needs embedding (or decoding) first, work for a thread."""
    return req.vector is None and req.id is None


async def _log(collection: Collection, requests: list[SearchRequest], results: list[SearchResult]) -> None:
    """Keep the words and the ids shown of the searches that asked for it ("log"), in a thread: it is a write."""
    pairs = zip(requests, results, strict=True)
    searches = [(req.words, [hit.id for hit in res.hits]) for req, res in pairs if req.log]
    if searches:
        await run_in_threadpool(collection.log_searches, searches)


async def search(request: Request, name: str) -> Response:
    """k nearest points to a vector, a text, a sequence, an image or a stored point, optionally filtered."""
    state = request.app.state
    collection = state.registry.get(name)
    req = parse_body(SearchRequest, await request.body())
    if req.image is not None or req.sequence is not None:  # decoding an image or embedding is work for a thread
        (result,) = await answer(collection, lambda: [to_query(req)], state.search_workers, embed=True)
        await _log(collection, [req], [result])
        return json_response(result_json(result))
    query = to_query(req)  # one vector is quick to decode
    # A text whose model batches callers is awaited here, not in a worker thread: more callers than anyio's 40
    # threads can wait on one model call, and the vector goes on to the inline search with no second hop.
    pending = None if hasattr(collection, "search") else embedding_later(collection, query)  # sharded: its own way
    if pending is not None:
        query = embedded(query, (await asyncio.wrap_future(pending))[0])
    result = None if query.needs_embedding else searcher.search_inline(collection, query)  # no thread hop
    if result is None:
        embed = query.needs_embedding
        (result,) = await answer(collection, lambda: [query], state.search_workers, embed=embed)
    await _log(collection, [req], [result])
    return json_response(result_json(result))


async def search_batch(request: Request, name: str) -> Response:
    """Many queries in one call; results come back in the same order."""
    state = request.app.state
    collection = state.registry.get(name)
    body = parse_body(BatchSearchRequest, await request.body())
    check_batch(len(body.searches), state.settings.max_batch_queries, "queries")
    embed = any(by_content(r) for r in body.searches)
    results = await answer(collection, lambda: [to_query(r) for r in body.searches], state.search_workers, embed=embed)
    await _log(collection, body.searches, results)
    return json_response({"results": [result_json(r) for r in results]})


# The hot path: the app puts these first in its route table (app/main.py), so a search is matched at once.
hot_routes = [
    SelfParsingRoute(
        router.prefix + path,
        endpoint,
        methods=["POST"],
        response_model=response_model,
        body_model=request_model,
        tags=["search"],
        openapi_extra=needs("read"),
        responses=errors(429, 503),
    )
    for path, endpoint, request_model, response_model in (
        ("", search, SearchRequest, SearchResponse),
        ("/batch", search_batch, BatchSearchRequest, BatchSearchResponse),
    )
]


@router.post("/image", openapi_extra=needs("read"), response_model=SearchResponse, responses=errors(429, 503))
async def search_by_photo(
    collection: CollectionDep,
    workers: SearchWorkersDep,
    file: Annotated[UploadFile, File(description="The photo: JPEG, PNG or WebP.")],
    k: Annotated[int, Form(ge=1, le=1000, description="Results to return.")] = 10,
    filter: Annotated[str | None, Form(description="A filter as JSON, as in /search.")] = None,
    score_threshold: Annotated[float | None, Form(description="Drop results scoring worse.")] = None,
    with_payload: Annotated[bool, Form(description="Return payloads.")] = True,
    keywords: Annotated[
        str | None, Form(min_length=1, max_length=8_192, description="Words for the keyword index: a hybrid search.")
    ] = None,
) -> Response:
    """Search by an uploaded photo (multipart form: `file`, and optional `k`, `filter`, `score_threshold`,
    `keywords`)."""
    try:
        flt = Filter.model_validate_json(filter) if filter else None
    except ValidationError as err:
        return validation_error_response(err.errors(), prefix=("body", "filter"))
    query = Query(
        image=await file.read(),
        k=k,
        filter=flt.as_dict() if flt else None,
        score_threshold=score_threshold,
        with_payload=with_payload,
        keywords=keywords,
    )
    (result,) = await answer(collection, lambda: [query], workers, embed=True)
    return json_response(result_json(result))
