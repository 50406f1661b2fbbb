"""Recommendation operations: by examples, events, user profiles, the ranker."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from umbrella_client import models
from umbrella_client.calls import Request, given, operation
from umbrella_client.models import Event, Filter, PointId
from umbrella_client.vectors import Vector, vector_list


def _example(item: PointId | Vector) -> PointId | list[float]:
    return item if isinstance(item, int | str) else vector_list(item)


@operation("POST", "/collections/{name}/recommend", models.SearchResult.from_json)
def recommend(
    collection: str,
    positive: Iterable[PointId | Vector],
    negative: Iterable[PointId | Vector] = (),
    *,
    strategy: Literal["average", "best_score"] = "average",
    k: int = 10,
    ef: int | None = None,
    exact: bool = False,
    filter: Filter | None = None,
    score_threshold: float | None = None,
    with_payload: bool = True,
    with_vector: bool = False,
) -> Request:
    """Items like the positive examples and unlike the negative ones (ids or vectors); examples never come back."""
    body = given(ef=ef, filter=filter, score_threshold=score_threshold)
    body.update(
        positive=[_example(p) for p in positive],
        negative=[_example(n) for n in negative],
        strategy=strategy,
        k=k,
        exact=exact,
        with_payload=with_payload,
        with_vector=with_vector,
    )
    return Request(path={"name": collection}, json=body)


@operation("POST", "/collections/{name}/events", models.EventsReport.from_json)
def add_events(collection: str, events: Iterable[Event | Mapping[str, Any]]) -> Request:
    """Store interaction events; the report says what was kept, dropped as duplicate, and refused with why."""
    body = [e.to_json() if isinstance(e, Event) else dict(e) for e in events]
    return Request(path={"name": collection}, json={"events": body})


@operation("GET", "/collections/{name}/users/{user}", models.UserProfile.from_json)
def get_user(collection: str, user: str | int, *, with_vector: bool = False) -> Request:
    """A user's profile: event counts, activity, top categories, and the taste vector with with_vector=True."""
    return Request(path={"name": collection, "user": user}, params={"with_vector": with_vector})


@operation("GET", "/collections/{name}/users/{user}/recommendations", models.UserRecommendations.from_json)
def recommend_for_user(
    collection: str,
    user: str | int,
    *,
    k: int = 10,
    filter: Filter | None = None,
    exclude_seen: bool = True,
    with_payload: bool = True,
) -> Request:
    """What the user should see next; `path` says how the list was made (ranker, similarity or popular)."""
    params = given(k=k, filter=json.dumps(filter) if filter is not None else None)
    params.update(exclude_seen=exclude_seen, with_payload=with_payload)
    return Request(path={"name": collection, "user": user}, params=params)


@operation("POST", "/collections/{name}/ranker/train", models.RankerReport.from_json)
def train_ranker(
    collection: str,
    *,
    validation_fraction: float | None = None,
    label_fraction: float | None = None,
    negatives_per_positive: int | None = None,
    alphas: Sequence[float] | None = None,
    class_weights: Sequence[Literal["balanced"] | None] | None = None,
    max_epochs: int | None = None,
    patience: int | None = None,
    seed: int | None = None,
) -> Request:
    """Train the logistic-regression ranker on the stored events; options left out take the server's defaults."""
    body = given(
        validation_fraction=validation_fraction,
        label_fraction=label_fraction,
        negatives_per_positive=negatives_per_positive,
        alphas=list(alphas) if alphas is not None else None,
        class_weights=list(class_weights) if class_weights is not None else None,
        max_epochs=max_epochs,
        patience=patience,
        seed=seed,
    )
    return Request(path={"name": collection}, json=body)


@operation("GET", "/collections/{name}/ranker", models.RankerReport.from_json)
def get_ranker(collection: str) -> Request:
    """The trained ranker's report: hyper-parameters tried and chosen, losses per epoch, validation metrics."""
    return Request(path={"name": collection})


@operation("GET", "/collections/{name}/ranker/curves.svg", str)
def ranker_curves(collection: str) -> Request:
    """The train and validation loss curves as SVG text."""
    return Request(path={"name": collection})
