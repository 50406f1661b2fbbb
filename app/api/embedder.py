"""Routes for the collection's text or CLIP model: fine-tune it from search feedback, follow the run, see its
curves, put the tuned model in place (every point kept as text re-embedded) or go back to the base."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.api.access import GuardedRoute, errors, needs
from app.api.deps import CollectionDep
from app.personalization.finetune import FineTuner, Options
from app.schemas.finetune import ApplyRequest, EmbedderStatus, FinetuneRequest, FinetuneStatus

router = APIRouter(prefix="/collections/{name}/embedder", tags=["embedder"], route_class=GuardedRoute)


@router.post(
    "/finetune",
    openapi_extra=needs("write"),
    status_code=202,
    response_model=FinetuneStatus,
    responses=errors(409),
)
async def start_finetune(collection: CollectionDep, body: FinetuneRequest | None = None) -> Any:
    """Fine-tune a copy of the model on (query, clicked item) pairs, in the background: a text model on the items'
    texts, a CLIP model's text side on its photos (the image side stays as it is). 409 when a run is going or there
    are too few pairs. Follow it with GET; the tuned model is kept as a new version."""
    body = body or FinetuneRequest()
    given = None if body.pairs is None else [(p.query, p.item) for p in body.pairs]
    options = Options.of(body.model_dump(exclude={"pairs"}), pairs=given)
    return await run_in_threadpool(collection.part(FineTuner).start, options)


@router.get("/finetune", openapi_extra=needs("read"), response_model=FinetuneStatus)
async def finetune_status(collection: CollectionDep) -> Any:
    """The run going on (phase, progress, ETA, losses so far), or the last one's report; 404 before any."""
    return await run_in_threadpool(collection.part(FineTuner).status)


@router.delete("/finetune", openapi_extra=needs("write"), response_model=FinetuneStatus)
async def cancel_finetune(collection: CollectionDep) -> Any:
    """Stop the run going on (between two batches; reported as cancelled) and return its status."""
    return await run_in_threadpool(collection.part(FineTuner).cancel)


@router.get(
    "/finetune/curves.svg",
    openapi_extra=needs("read"),
    response_class=Response,
    responses={200: {"content": {"image/svg+xml": {}}}},
)
async def finetune_curves(collection: CollectionDep) -> Response:
    """Train and validation loss per epoch of the kept trial (the others' validation loss faint), its best epoch
    marked: where training stopped before over-fitting."""
    return Response(await run_in_threadpool(collection.part(FineTuner).curves_svg), media_type="image/svg+xml")


@router.get("", openapi_extra=needs("read"), response_model=EmbedderStatus)
async def embedder_status(collection: CollectionDep) -> Any:
    """The model in use, the tuned versions kept, and the last switch between them."""
    return await run_in_threadpool(collection.part(FineTuner).embedder_status)


@router.post(
    "/finetune/apply",
    openapi_extra=needs("write"),
    status_code=202,
    response_model=EmbedderStatus,
    responses=errors(409),
)
async def apply_finetune(collection: CollectionDep, body: ApplyRequest | None = None) -> Any:
    """Re-embed every point from its stored text with a tuned version and switch to it, in the background (photos
    keep their vectors): searches use the current model and vectors until every new vector is made, then both
    change at once."""
    version = body.version if body else None
    return await run_in_threadpool(collection.part(FineTuner).apply, version)


@router.post(
    "/finetune/rollback",
    openapi_extra=needs("write"),
    status_code=202,
    response_model=EmbedderStatus,
    responses=errors(409),
)
async def rollback_finetune(collection: CollectionDep) -> Any:
    """Re-embed every point with the base model and switch back to it, in the background (as apply does)."""
    return await run_in_threadpool(collection.part(FineTuner).rollback)
