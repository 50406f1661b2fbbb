"""Routes for points: upsert, get, delete, count, scroll."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.codec import decode_image, decode_matrix, decode_vector, json_response, point_json
from app.api.deps import CollectionDep, SettingsDep, check_batch
from app.core.errors import DimensionMismatch, InvalidImage
from app.embedding.base import Modality
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
from app.services.collection import Collection
from app.services.models import Source

router = APIRouter(prefix="/collections/{name}/points", tags=["points"])


def points_to_vectors(
    collection: Collection, points: list[PointIn], sources: list[Source | None] | None = None
) -> np.ndarray:
    """One vector per point: given ones decoded, texts, sequences and images embedded a modality at a time.

    With `sources` (one None per point), fills in what each embedded point was made from.
    """
    dim = collection.config.dim
    vectors = np.empty((len(points), dim), np.float32)
    to_embed: dict[Modality, list[int]] = {}
    for i, point in enumerate(points):
        if point.vector is None:
            modality: Modality = "text" if point.text is not None else "sequence" if point.sequence else "image"
            to_embed.setdefault(modality, []).append(i)
            continue
        row = decode_vector(point.vector)
        if len(row) != dim:
            raise DimensionMismatch(
                f"point {point.id!r}: this collection holds {dim}-dimensional vectors, got {len(row)}",
                id=point.id,
                expected=dim,
                got=len(row),
            )
        vectors[i] = row
    for modality, rows in to_embed.items():
        items = [_image(points[i]) if modality == "image" else points[i].text or points[i].sequence for i in rows]
        vectors[rows] = collection.embed(modality, items, ids=[points[i].id for i in rows])
        if sources is not None:
            for i, item in zip(rows, items, strict=True):
                sources[i] = (modality, item if isinstance(item, bytes) else item.encode())
    return vectors


def _image(point: PointIn) -> bytes:
    try:
        return decode_image(point.image or "")
    except InvalidImage as err:
        raise InvalidImage(f"point {point.id!r}: {err.message}", id=point.id) from None


@router.put("", response_model=WriteResult)
async def upsert_points(body: UpsertRequest, collection: CollectionDep, settings: SettingsDep) -> WriteResult:
    """Insert or replace points, all or nothing; answered once the batch is on disk."""
    sources: list[Source | None] | None = None
    if body.batch is not None:
        ids = body.batch.ids
        check_batch(len(ids), settings.max_batch_points, "points")
        vectors = decode_matrix(body.batch.vectors, rows=len(ids))
        payloads = body.batch.payloads or [None] * len(ids)
    else:
        assert body.points is not None
        check_batch(len(body.points), settings.max_batch_points, "points")
        ids = [p.id for p in body.points]
        if collection.config.store_source:
            sources = [None] * len(ids)
        vectors = await run_in_threadpool(points_to_vectors, collection, body.points, sources)
        payloads = [p.payload for p in body.points]
    seq = await run_in_threadpool(collection.upsert, ids, vectors, payloads, sources)
    return WriteResult(count=len(ids), seq=seq)


@router.post("/get", response_model=PointList)
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


@router.post("/delete", response_model=WriteResult)
async def delete_points(body: DeleteRequest, collection: CollectionDep, settings: SettingsDep) -> WriteResult:
    """Delete by ids or by filter; answered once the deletion is on disk."""
    if body.ids is not None:
        check_batch(len(body.ids), settings.max_batch_points, "ids")
        count, seq = await run_in_threadpool(collection.delete, body.ids)
    else:
        assert body.filter is not None
        count, seq = await run_in_threadpool(collection.delete_by_filter, body.filter.as_dict())
    return WriteResult(count=count, seq=seq)


@router.post("/count", response_model=CountResult)
async def count_points(body: CountRequest, collection: CollectionDep) -> CountResult:
    flt = body.filter.as_dict() if body.filter else None
    return CountResult(count=await run_in_threadpool(collection.count_matching, flt))


@router.post("/scroll", response_model=ScrollPage)
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
