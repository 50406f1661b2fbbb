"""Routes for points: upsert, get, delete, count, scroll."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.access import GuardedRoute, errors, needs
from app.api.codec import decode_image, decode_matrix, decode_vector, json_response, point_json
from app.api.deps import CollectionDep, SettingsDep, check_batch
from app.collections.ingest import PointInput
from app.core.errors import InvalidImage
from app.schemas.points import (
    CountRequest,
    CountResult,
    DeleteRequest,
    GetRequest,
    PointIn,
    PointList,
    ScrollPage,
    ScrollRequest,
    UpsertRequest,
    WriteResult,
)

router = APIRouter(prefix="/collections/{name}/points", tags=["points"], route_class=GuardedRoute)


def to_input(point: PointIn) -> PointInput:
    """The wire point as an upsert input: vector and image decoded, nothing embedded yet."""
    image = None
    if point.image is not None:
        try:
            image = decode_image(point.image)
        except InvalidImage as err:
            raise InvalidImage(f"point {point.id!r}: {err.message}", id=point.id) from None
    return PointInput(
        id=point.id,
        vector=None if point.vector is None else decode_vector(point.vector),
        text=point.text,
        sequence=point.sequence,
        image=image,
        payload=point.payload,
    )


@router.put("", openapi_extra=needs("write"), response_model=WriteResult, responses=errors(429, 503))
async def upsert_points(body: UpsertRequest, collection: CollectionDep, settings: SettingsDep) -> WriteResult:
    """Insert or replace points, all or nothing; answered once the batch is on disk."""
    if body.batch is not None:
        ids = body.batch.ids
        check_batch(len(ids), settings.max_batch_points, "points")
        raw, payloads = body.batch.vectors, body.batch.payloads or [None] * len(ids)
        # decoding 10k vectors takes tens of milliseconds: in the thread, not on the event loop
        seq = await run_in_threadpool(lambda: collection.upsert(ids, decode_matrix(raw, rows=len(ids)), payloads))
        return WriteResult(count=len(ids), seq=seq)
    points = body.points
    assert points is not None
    check_batch(len(points), settings.max_batch_points, "points")
    seq = await run_in_threadpool(lambda: collection.upsert_inputs([to_input(p) for p in points]))
    return WriteResult(count=len(points), seq=seq)


@router.post("/get", openapi_extra=needs("read"), response_model=PointList, responses=errors(503))
async def get_points(body: GetRequest, collection: CollectionDep, settings: SettingsDep) -> Response:
    check_batch(len(body.ids), settings.max_batch_points, "ids")
    points = await run_in_threadpool(
        collection.get,
        body.ids,
        with_payload=body.with_payload,
        with_vector=body.with_vector,
        with_source=body.with_source,
    )
    return json_response({"points": [point_json(p) for p in points]})


@router.post("/delete", openapi_extra=needs("write"), response_model=WriteResult, responses=errors(503))
async def delete_points(body: DeleteRequest, collection: CollectionDep, settings: SettingsDep) -> WriteResult:
    """Delete by ids or by filter; answered once the deletion is on disk."""
    if body.ids is not None:
        check_batch(len(body.ids), settings.max_batch_points, "ids")
        count, seq = await run_in_threadpool(collection.delete, body.ids)
    else:
        assert body.filter is not None
        count, seq = await run_in_threadpool(collection.delete_by_filter, body.filter.as_dict())
    return WriteResult(count=count, seq=seq)


@router.post("/count", openapi_extra=needs("read"), response_model=CountResult, responses=errors(503))
async def count_points(body: CountRequest, collection: CollectionDep) -> CountResult:
    flt = body.filter.as_dict() if body.filter else None
    return CountResult(count=await run_in_threadpool(collection.count_matching, flt))


@router.post("/scroll", openapi_extra=needs("read"), response_model=ScrollPage, responses=errors(503))
async def scroll_points(body: ScrollRequest, collection: CollectionDep) -> Response:
    """Page through points in storage order; pass next_offset back to continue."""
    page = await run_in_threadpool(
        collection.scroll,
        body.filter.as_dict() if body.filter else None,
        body.limit,
        body.offset,
        with_payload=body.with_payload,
        with_vector=body.with_vector,
        with_source=body.with_source,
    )
    return json_response({"points": [point_json(p) for p in page.points], "next_offset": page.next_offset})
