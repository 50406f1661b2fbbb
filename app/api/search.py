"""Routes for search: one query, or many in one call."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.codec import decode_vector, json_response, result_json
from app.api.deps import CollectionDep, SettingsDep
from app.core.errors import PayloadTooLarge
from app.schemas.search import BatchSearchRequest, BatchSearchResponse, SearchRequest, SearchResponse
from app.services.collection import WouldBlock
from app.services.models import Query

router = APIRouter(prefix="/collections/{name}/search", tags=["search"])


def to_query(req: SearchRequest) -> Query:
    return Query(
        vector=None if req.vector is None else decode_vector(req.vector),
        id=req.id,
        k=req.k,
        ef=req.ef,
        exact=req.exact,
        filter=req.filter.as_dict() if req.filter else None,
        score_threshold=req.score_threshold,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
    )


@router.post("", response_model=SearchResponse)
async def search(body: SearchRequest, collection: CollectionDep) -> Response:
    """k nearest points to a vector or to a stored point, optionally filtered by payload."""
    queries = [to_query(body)]
    try:
        # A graph query takes a fraction of a millisecond: answering on the event loop saves the
        # thread hop, unless a writer holds the collection, in which case we wait in a thread.
        (result,) = collection.search(queries, blocking=False)
    except WouldBlock:
        (result,) = await run_in_threadpool(collection.search, queries)
    return json_response(result_json(result))


@router.post("/batch", response_model=BatchSearchResponse)
async def search_batch(body: BatchSearchRequest, collection: CollectionDep, settings: SettingsDep) -> Response:
    """Many queries in one call; results come back in the same order."""
    if len(body.searches) > settings.max_batch_queries:
        raise PayloadTooLarge(
            f"{len(body.searches)} queries in one request; the limit is {settings.max_batch_queries}",
            size=len(body.searches),
            limit=settings.max_batch_queries,
        )
    results = await run_in_threadpool(collection.search, [to_query(s) for s in body.searches])
    return json_response({"results": [result_json(r) for r in results]})
