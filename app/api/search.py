"""Routes for search, one query or many in one call, and the fast lane that serves them."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, File, Form, UploadFile
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.codec import decode_image, decode_vector, json_response, result_json
from app.api.deps import CollectionDep, SettingsDep, check_batch
from app.api.errors import umbrella_error_response, validation_error_response
from app.api.telemetry import ROUTE_KEY
from app.core.config import Settings
from app.core.errors import UmbrellaError
from app.schemas.common import Filter
from app.schemas.search import BatchSearchRequest, BatchSearchResponse, SearchRequest, SearchResponse
from app.services.collection import Collection, WouldBlock
from app.services.models import Query, SearchResult

router = APIRouter(prefix="/collections/{name}/search", tags=["search"])


def to_query(collection: Collection, req: SearchRequest) -> Query:
    """The service's query; sequences and images are embedded here, so call it off the event loop."""
    vector = None
    if req.vector is not None:
        vector = decode_vector(req.vector)
    elif req.text is not None:
        vector = collection.embed("text", [req.text])[0]
    elif req.sequence is not None:
        vector = collection.embed("sequence", [req.sequence])[0]
    elif req.image is not None:
        vector = collection.embed("image", [decode_image(req.image)])[0]
    return Query(
        vector=vector,
        id=req.id,
        k=req.k,
        ef=req.ef,
        exact=req.exact,
        filter=req.filter.as_dict() if req.filter else None,
        score_threshold=req.score_threshold,
        with_payload=req.with_payload,
        with_vector=req.with_vector,
    )


def _search_many(collection: Collection, reqs: list[SearchRequest]) -> list[SearchResult]:
    return collection.search([to_query(collection, r) for r in reqs])


async def answer_search(collection: Collection, body: SearchRequest) -> Response:
    if body.vector is None and body.id is None:  # embedding is CPU work: not on the event loop
        (result,) = await run_in_threadpool(_search_many, collection, [body])
        return json_response(result_json(result))
    queries = [to_query(collection, body)]
    try:
        # A graph query takes a fraction of a millisecond: answering on the event loop saves the
        # thread hop, unless a writer holds the collection, in which case we wait in a thread.
        (result,) = collection.search(queries, blocking=False)
    except WouldBlock:
        (result,) = await run_in_threadpool(collection.search, queries)
    return json_response(result_json(result))


@router.post("", response_model=SearchResponse)
async def search(body: SearchRequest, collection: CollectionDep) -> Response:
    """k nearest points to a vector or to a stored point, optionally filtered by payload."""
    return await answer_search(collection, body)


async def answer_batch(collection: Collection, body: BatchSearchRequest, settings: Settings) -> Response:
    check_batch(len(body.searches), settings.max_batch_queries, "queries")
    results = await run_in_threadpool(_search_many, collection, body.searches)
    return json_response({"results": [result_json(r) for r in results]})


@router.post("/batch", response_model=BatchSearchResponse)
async def search_batch(body: BatchSearchRequest, collection: CollectionDep, settings: SettingsDep) -> Response:
    """Many queries in one call; results come back in the same order."""
    return await answer_batch(collection, body, settings)


@router.post("/image", response_model=SearchResponse)
async def search_by_photo(
    collection: CollectionDep,
    file: Annotated[UploadFile, File(description="The photo: JPEG, PNG or WebP.")],
    k: Annotated[int, Form(ge=1, le=1000, description="Results to return.")] = 10,
    filter: Annotated[str | None, Form(description="A filter as JSON, as in /search.")] = None,
    score_threshold: Annotated[float | None, Form(description="Drop results scoring worse.")] = None,
    with_payload: Annotated[bool, Form(description="Return payloads.")] = True,
) -> Response:
    """Search by an uploaded photo (multipart form: `file`, and optional `k`, `filter`, `score_threshold`)."""
    try:
        flt = Filter.model_validate_json(filter) if filter else None
    except ValidationError as err:
        return validation_error_response(err.errors(), prefix=("body", "filter"))
    data = await file.read()
    query = Query(
        k=k, filter=flt.as_dict() if flt else None, score_threshold=score_threshold, with_payload=with_payload
    )

    def run() -> SearchResult:
        vector = collection.embed("image", [data])[0]
        (result,) = collection.search([dataclasses.replace(query, vector=vector)])
        return result

    return json_response(result_json(await run_in_threadpool(run)))


_SEARCH_PATH = re.compile(r"^/collections/([^/]+)/search(/batch)?$")


class SearchLane:
    """Serves POST /collections/{name}/search and /search/batch straight from ASGI.

    Searching is the hot path, and there FastAPI's routing, dependency solving and stdlib JSON
    parse cost more than the graph search itself: pydantic's own JSON parser validates a batch of
    100 queries about 7× faster (benchmarks/RESULTS.md). Same schemas, same service calls and
    same error envelope as the routes above, which stay for the OpenAPI page.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = _SEARCH_PATH.match(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        scope[ROUTE_KEY] = router.prefix + ("/batch" if match[2] else "")  # routing never runs: name it for /metrics
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        state = scope["app"].state
        try:
            collection = state.registry.get(unquote(match[1]))
            if match[2]:
                batch = BatchSearchRequest.model_validate_json(b"".join(chunks))
                response = await answer_batch(collection, batch, state.settings)
            else:
                response = await answer_search(collection, SearchRequest.model_validate_json(b"".join(chunks)))
        except ValidationError as err:
            response = validation_error_response(err.errors(), prefix=("body",))
        except UmbrellaError as err:
            response = umbrella_error_response(err)
        await response(scope, receive, send)
