"""Routes for collections: create, list, inspect, drop, tune, the keyword index's fields, facet counts."""

from __future__ import annotations

import dataclasses
import functools
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Path
from starlette.concurrency import run_in_threadpool

from app.api.access import GuardedRoute, errors, needs
from app.api.deps import AccessDep, CollectionDep, RegistryDep, own_or
from app.collections.collection import Collection
from app.collections.models import CollectionConfig
from app.core.errors import CollectionNotFound, DimensionMismatch, InvalidInput
from app.schemas.collections import (
    CollectionCreate,
    CollectionInfo,
    CollectionList,
    LexicalSpec,
    PayloadIndexSpec,
    RecommendationSettings,
    TuneReport,
    TuneRequest,
)
from app.schemas.search import FacetRequest, FacetResponse, FacetValue
from app.search.facets import facets
from app.search.recall import RecallMonitor
from app.search.tune import tune

FieldPath = Annotated[str, Path(min_length=1, max_length=256, description="The payload field (dotted: nested).")]
router = APIRouter(prefix="/collections", tags=["collections"], route_class=GuardedRoute)


def stats(collection: Collection) -> dict[str, Any]:
    """`Collection.info()` with the live recall estimate of its monitor (blocking: takes a read view)."""
    monitor = collection.find_part(RecallMonitor)
    recall, samples = monitor.estimate() if monitor is not None else (None, 0)
    return {**collection.info(), "recall_estimate": recall, "recall_samples": samples}


def collection_info(collection: Collection) -> CollectionInfo:
    """The wire shape of a collection's stats (also what a snapshot restore answers); blocking."""
    raw = stats(collection)
    hnsw = {"m": raw.pop("m"), "ef_construction": raw.pop("ef_construction"), "ef": raw.pop("ef")}
    raw["recommendation"] = RecommendationSettings(**raw["recommendation"])  # collections made before it: defaults
    return CollectionInfo(hnsw=hnsw, **raw)


@router.put(
    "/{name}", openapi_extra=needs("manage"), status_code=201, response_model=CollectionInfo, responses=errors(409)
)
async def create_collection(name: str, body: CollectionCreate, registry: RegistryDep) -> CollectionInfo:
    """Create a collection; 409 if the name is taken."""
    config = CollectionConfig(
        name=name,
        dim=body.dim or 0,  # 0: the registry takes the embedder's
        embedder=body.embedder.model_dump(exclude_none=True) if body.embedder else None,
        metric=body.metric,
        payload_indexes=dict(body.payload_indexes),
        store_source=body.store_source,
        strict=body.strict,
        recommendation=body.recommendation.model_dump(),
        lexical=_lexical(body.lexical, body.store_source, body.embedder.kind if body.embedder else None),
        **body.hnsw.model_dump(),
    )
    if body.shards is not None:
        shards, replicas, quorum = body.shards, body.replicas, body.write_quorum
        collection = await run_in_threadpool(registry.create_sharded, config, shards, replicas, quorum)
    else:
        collection = await run_in_threadpool(registry.create, config)
    return await run_in_threadpool(collection_info, collection)


def _lexical(spec: LexicalSpec | None, store_source: bool, embedder_kind: str | None) -> dict[str, Any] | None:
    """The stored form of a keyword index spec: fields once each, and whether sources go in (defaulted)."""
    if spec is None:
        return None
    keeps_text = store_source and embedder_kind in ("text", "clip")
    source = keeps_text if spec.source is None else spec.source
    if source and not store_source:
        raise InvalidInput("lexical source needs store_source: the collection must keep what it embedded")
    if not spec.fields and not source:
        raise InvalidInput("a keyword index needs fields, or the sources of a text collection that keeps them")
    return {"fields": list(dict.fromkeys(spec.fields)), "source": source}


@router.put("/{name}/lexical", openapi_extra=needs("write"), response_model=CollectionInfo, responses=errors(400, 404))
async def set_lexical(body: LexicalSpec, collection: CollectionDep) -> CollectionInfo:
    """Keep a keyword index on these fields (and sources), or change its fields: every point's words are
    rewritten in the background (`lexical_state` building, `lexical_progress`); searches go on meanwhile."""
    config = collection.config
    lexical = _lexical(body, config.store_source, (config.embedder or {}).get("kind"))
    await run_in_threadpool(collection.set_lexical, lexical)
    return await run_in_threadpool(collection_info, collection)


@router.put(
    "/{name}/payload_indexes/{field}",
    openapi_extra=needs("write"),
    response_model=CollectionInfo,
    responses=errors(400, 404),
)
async def index_field(field: FieldPath, body: PayloadIndexSpec, collection: CollectionDep) -> CollectionInfo:
    """Index a payload field (a dotted key reaches into nested objects): new writes at once, stored points in the
    background (`payload_index_builds` in the info); filters on it scan until then and never fail. Points whose
    value has another type are left out of the index; later writes of another type are a 400."""
    await run_in_threadpool(collection.index_field, field, body.type)
    return await run_in_threadpool(collection_info, collection)


@router.delete(
    "/{name}/payload_indexes/{field}",
    openapi_extra=needs("write"),
    response_model=CollectionInfo,
    responses=errors(400, 404),
)
async def drop_field_index(field: FieldPath, collection: CollectionDep) -> CollectionInfo:
    """Stop indexing a payload field: filters on it scan the payloads from now on (a strict collection refuses
    them). 400 when the field has no index or feeds the recommendation settings."""
    await run_in_threadpool(collection.drop_field_index, field)
    return await run_in_threadpool(collection_info, collection)


@router.delete("/{name}/lexical", openapi_extra=needs("write"), response_model=CollectionInfo)
async def drop_lexical(collection: CollectionDep) -> CollectionInfo:
    """Stop keeping a keyword index: its rows are deleted; lexical and hybrid searches become 400s."""
    await run_in_threadpool(collection.set_lexical, None)
    return await run_in_threadpool(collection_info, collection)


@router.get("", openapi_extra=needs("listed"), response_model=CollectionList)
async def list_collections(registry: RegistryDep, access: AccessDep) -> CollectionList:
    """The collections the caller may read."""

    def gather() -> list[CollectionInfo]:
        infos = []
        for name in filter(functools.partial(access.can, "r"), registry.names()):
            try:
                infos.append(collection_info(registry.get(name)))
            except CollectionNotFound:  # dropped between the listing and the lookup
                continue
        return infos

    return CollectionList(collections=await run_in_threadpool(gather))


@router.get("/{name}", openapi_extra=needs("read"), response_model=CollectionInfo)
async def get_collection(collection: CollectionDep) -> CollectionInfo:
    return await run_in_threadpool(collection_info, collection)


@router.post("/{name}/facets", openapi_extra=needs("read"), response_model=FacetResponse, responses=errors(400))
async def count_facets(body: FacetRequest, collection: CollectionDep) -> FacetResponse:
    """How many points (of those matching `filter`) hold each value of an indexed field; 400 for a field
    without an index."""
    flt = body.filter.as_dict() if body.filter else None
    found = await run_in_threadpool(own_or(collection, "facets", facets), body.key, flt, body.limit)
    values = [FacetValue(value=value, count=count) for value, count in found.values]
    return FacetResponse(key=found.key, values=values, candidates=found.candidates)


@router.delete("/{name}", openapi_extra=needs("manage"), status_code=200)
async def drop_collection(name: str, registry: RegistryDep) -> dict[str, str]:
    """Drop a collection and delete its files."""
    await run_in_threadpool(registry.drop, name)
    return {"status": "ok"}


@router.post("/{name}/tune", openapi_extra=needs("write"), response_model=TuneReport, responses=errors(503))
async def tune_collection(body: TuneRequest, collection: CollectionDep) -> TuneReport:
    """The smallest search ef whose recall@k reaches the target, on recent searches, stored points or the
    vectors sent; `apply` makes it the default. A graph being built is waited for up to 30 s, then 503;
    400 when the collection holds k points or fewer, or a vector is bad."""
    report = await run_in_threadpool(
        own_or(collection, "tune", tune),
        target_recall=body.target_recall,
        k=body.k,
        queries=body.queries,
        seed=body.seed,
        apply=body.apply,
        source=body.source,
        vectors=None if body.vectors is None else _matrix(body.vectors, collection.config.dim),
    )
    return TuneReport.model_validate(dataclasses.asdict(report))


def _matrix(rows: list[list[float]], dim: int) -> np.ndarray:
    lengths = {len(row) for row in rows}
    if lengths != {dim}:
        raise DimensionMismatch(
            f"collection holds {dim}-dimensional vectors, got lengths {sorted(lengths)[:5]}", expected=dim
        )
    return np.asarray(rows, dtype=np.float32)
