"""The collection's text model: fine-tune it from search feedback, follow the run, see its loss curves, apply the
tuned model or roll back to the base."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from umbrella_client import models
from umbrella_client.calls import Request, given, operation
from umbrella_client.models import PointId


@operation("POST", "/collections/{name}/embedder/finetune", models.FinetuneStatus.from_json)
def start_finetune(
    collection: str,
    *,
    pairs: Iterable[tuple[str, PointId]] | None = None,
    learning_rates: Sequence[float] | None = None,
    warmups: Sequence[float] | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    validation_fraction: float | None = None,
    test_fraction: float | None = None,
    replay: float | None = None,
) -> Request:
    """Fine-tune a copy of the text model on (query, item) pairs in the background: the collection's search
    feedback (events with a query), or `pairs` given oldest first. Options left out take the server's defaults."""
    body = given(
        pairs=[{"query": q, "item": item} for q, item in pairs] if pairs is not None else None,
        learning_rates=list(learning_rates) if learning_rates is not None else None,
        warmups=list(warmups) if warmups is not None else None,
        max_epochs=max_epochs,
        patience=patience,
        batch_size=batch_size,
        seed=seed,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        replay=replay,
    )
    return Request(path={"name": collection}, json=body)


@operation("GET", "/collections/{name}/embedder/finetune", models.FinetuneStatus.from_json)
def finetune_status(collection: str) -> Request:
    """The run going on, or the last one's report."""
    return Request(path={"name": collection})


@operation("DELETE", "/collections/{name}/embedder/finetune", models.FinetuneStatus.from_json)
def cancel_finetune(collection: str) -> Request:
    """Stop the run going on; it is reported as cancelled."""
    return Request(path={"name": collection})


@operation("GET", "/collections/{name}/embedder/finetune/curves.svg", str)
def finetune_curves(collection: str) -> Request:
    """The kept trial's train and validation loss per epoch, as SVG text."""
    return Request(path={"name": collection})


@operation("GET", "/collections/{name}/embedder", models.EmbedderStatus.from_json)
def get_embedder(collection: str) -> Request:
    """The model in use, the tuned versions kept, and the last switch between them."""
    return Request(path={"name": collection})


@operation("POST", "/collections/{name}/embedder/finetune/apply", models.EmbedderStatus.from_json)
def apply_finetune(collection: str, version: str | None = None) -> Request:
    """Re-embed every point with a tuned version (default: the last run's) and switch to it, in the background."""
    return Request(path={"name": collection}, json=given(version=version))


@operation("POST", "/collections/{name}/embedder/finetune/rollback", models.EmbedderStatus.from_json)
def rollback_finetune(collection: str) -> Request:
    """Re-embed every point with the base model and switch back to it, in the background."""
    return Request(path={"name": collection})
