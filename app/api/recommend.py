"""Routes for recommendation: by examples, interaction events, user profiles, the ranker."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter
from fastapi import Query as QueryParam
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.access import GuardedRoute, errors, needs
from app.api.codec import hit_json, json_response, result_json
from app.api.deps import CollectionDep, SearchWorkersDep, SettingsDep, check_batch, on_search_worker, own_or
from app.api.errors import validation_error_response
from app.collections.collection import Collection
from app.core.errors import RankerNotFound
from app.personalization import ranker, ranker_store
from app.personalization.config import TrainOptions
from app.personalization.service import Personalization
from app.ranking.curves import loss_curves_svg
from app.schemas.common import Filter
from app.schemas.recommend import (
    EventsReport,
    EventsRequest,
    RankerReport,
    RecommendRequest,
    TrainRequest,
    UserProfile,
    UserRecommendations,
)
from app.schemas.search import SearchResponse
from app.search.examples import recommend
from app.search.models import Query

router = APIRouter(prefix="/collections/{name}", tags=["recommendation"], route_class=GuardedRoute)


@router.post("/recommend", openapi_extra=needs("read"), response_model=SearchResponse)
async def recommend_by_examples(
    body: RecommendRequest, collection: CollectionDep, workers: SearchWorkersDep
) -> Response:
    """Items like the positive examples and unlike the negative ones; the examples never come back."""

    def examples(items: list) -> list:
        return [np.asarray(e, np.float32) if isinstance(e, list) else e for e in items]

    query = Query(
        k=body.k,
        ef=body.ef,
        exact=body.exact,
        filter=body.filter.as_dict() if body.filter else None,
        score_threshold=body.score_threshold,
        with_payload=body.with_payload,
        with_vector=body.with_vector,
    )
    run = own_or(collection, "recommend", recommend)
    result = await on_search_worker(
        workers, run, examples(body.positive), examples(body.negative), body.strategy, query
    )
    return json_response(result_json(result))


@router.post("/events", openapi_extra=needs("write"), response_model=EventsReport)
async def add_events(body: EventsRequest, collection: CollectionDep, settings: SettingsDep) -> EventsReport:
    """Store interaction events; answered once they are on disk, with what was kept, dropped and refused."""
    check_batch(len(body.events), settings.max_batch_points, "events")
    events = [e.model_dump() for e in body.events]
    return EventsReport(**await run_in_threadpool(collection.part(Personalization).add_events, events))


@router.get("/users/{user}", openapi_extra=needs("read"), response_model=UserProfile)
async def get_user(user: str, collection: CollectionDep, with_vector: bool = False) -> UserProfile:
    """A user's profile: event counts, activity, top categories, the taste vector on request; 404 if unknown."""
    personalization = collection.part(Personalization)
    return UserProfile(**await run_in_threadpool(personalization.user, user, with_vector=with_vector))


@router.get(
    "/users/{user}/recommendations",
    openapi_extra=needs("read"),
    response_model=UserRecommendations,
    responses=errors(400),  # a filter on a field without an index
)
async def recommend_for_user(
    user: str,
    collection: CollectionDep,
    workers: SearchWorkersDep,
    k: Annotated[int, QueryParam(ge=1, le=1000)] = 10,
    filter: Annotated[str | None, QueryParam(description='A filter as JSON, e.g. {"must": [...]}')] = None,
    exclude_seen: bool = True,
    with_payload: bool = True,
) -> Response:
    """What the user should see next. A user with no events (or unknown) gets popular items: see `path`."""
    try:
        flt = Filter.model_validate_json(filter).as_dict() if filter else None
    except ValidationError as err:
        return validation_error_response(err.errors(), prefix=("query", "filter"))
    recs = await on_search_worker(
        workers,
        collection.part(Personalization).recommend,
        user,
        k,
        flt,
        exclude_seen=exclude_seen,
        with_payload=with_payload,
    )
    return json_response(
        {
            "user": recs.user,
            "path": recs.path,
            "results": [hit_json(h) for h in recs.hits],
            "candidates": recs.candidates,
            "excluded": recs.excluded,
        }
    )


@router.post("/ranker/train", openapi_extra=needs("write"), response_model=RankerReport, responses=errors(409))
async def train_ranker(collection: CollectionDep, body: TrainRequest | None = None) -> RankerReport:
    """Train the logistic-regression ranker on the stored events; 409 when there are too few."""
    body = body or TrainRequest()
    options = TrainOptions(
        **body.model_dump(exclude={"alphas", "class_weights"}),
        alphas=tuple(body.alphas),
        class_weights=tuple(body.class_weights),
    )
    trained = await run_in_threadpool(ranker.train, collection.part(Personalization), options)
    return RankerReport(**trained.report)


def _ranker(collection: Collection) -> ranker_store.Ranker:
    trained = collection.part(Personalization).ranker
    if trained is None:
        raise RankerNotFound(f"no ranker trained for '{collection.name}': POST …/ranker/train first")
    return trained


@router.get("/ranker", openapi_extra=needs("read"), response_model=RankerReport)
async def get_ranker(collection: CollectionDep) -> RankerReport:
    """Hyper-parameters tried and chosen, per-epoch losses, and validation metrics beside the baselines."""
    return RankerReport(**_ranker(collection).report)


@router.get(
    "/ranker/curves.svg",
    openapi_extra=needs("read"),
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def ranker_curves(collection: CollectionDep) -> Response:
    """Train and validation loss per epoch of the chosen setting (the others' validation loss faint)."""
    svg = loss_curves_svg(ranker_store.training_report(_ranker(collection)))
    return Response(svg, media_type="image/svg+xml")
