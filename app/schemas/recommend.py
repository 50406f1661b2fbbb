"""Recommendation requests and responses: by examples, events, user profiles, the ranker."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictFloat, StrictInt, StrictStr

from app.personalization.config import EVENT_TYPES, TrainOptions
from app.schemas.common import Filter, PointId, Strict
from app.schemas.search import ScoredPoint

Example = PointId | Annotated[list[float], Field(min_length=1, max_length=8192)]
"""A stored point's id, or a vector (a list of numbers)."""


class RecommendRequest(Strict):
    positive: list[Example] = Field(min_length=1, max_length=256, description="Ids or vectors to move toward.")
    negative: list[Example] = Field(default_factory=list, max_length=256, description="Ids or vectors to avoid.")
    strategy: Literal["average", "best_score"] = Field(
        "average",
        description="average: one query, mean of positives pushed away from the mean of negatives. best_score: "
        "each candidate scores its nearest positive, or minus its nearest negative when that one is nearer.",
    )
    k: int = Field(10, ge=1, le=1000, description="Results to return; the examples themselves never come back.")
    ef: int | None = Field(None, ge=1, le=10_000, description="HNSW beam width (default: the collection's).")
    exact: bool = Field(False, description="Scan every candidate instead of walking the graph.")
    filter: Filter | None = Field(None, description="Only points whose payload matches.")
    score_threshold: float | None = Field(None, description="Drop results scoring worse than this.")
    with_payload: bool = Field(True, description="Return payloads.")
    with_vector: bool = Field(False, description="Return vectors.")


class EventIn(Strict):
    user: Annotated[StrictStr, Field(min_length=1, max_length=256)] | Annotated[StrictInt, Field(ge=0)] = Field(
        description="The user's id; an integer is kept as its decimal string."
    )
    item: PointId = Field(description="The id of a point in this collection.")
    type: Literal[EVENT_TYPES]  # type: ignore[valid-type]  # the tuple unpacks: one Literal per event type
    value: StrictFloat | StrictInt | None = Field(None, description="The rating (1–5) for type rating; else ignored.")
    time: StrictFloat | StrictInt | StrictStr | None = Field(
        None, description="ISO 8601 or epoch seconds; now when left out."
    )
    query: Annotated[StrictStr, Field(min_length=1, max_length=1000)] | None = Field(
        None,
        description="The search words that led to this event (a click on a search result): the pairs the text "
        "model is fine-tuned on.",
    )


class EventsRequest(Strict):
    events: list[EventIn] = Field(min_length=1, description="Interactions, in any order.")


class RejectedSample(Strict):
    index: int = Field(description="Position of the event in the request.")
    reason: Literal["unknown_item", "bad_time", "bad_value"]
    message: str


class EventsReport(Strict):
    received: int
    accepted: int = Field(description="New events stored (on disk when this answer is sent).")
    duplicates: int = Field(description="Events dropped because the same one was already stored or sent twice.")
    rejected: int = Field(description="Events refused: unknown or deleted items, bad timestamps, bad values.")
    reasons: dict[str, int] = Field(description="Rejections per reason.")
    samples: list[RejectedSample] = Field(description="Up to 10 rejected events with what was wrong.")


class UserProfile(Strict):
    user: str
    events: int
    counts: dict[str, int] = Field(description="Events per type.")
    first_activity: str | None
    last_activity: str | None
    items: int = Field(description="Distinct items the user interacted with.")
    has_taste: bool = Field(description="False when the user's events cancel out (e.g. only bad ratings).")
    top_categories: list[dict[str, Any]] = Field(description="Share of the user's weighted interactions per category.")
    taste: list[float] | None = Field(None, description="The taste vector, with with_vector=true.")


class UserRecommendations(Strict):
    user: str
    path: Literal["ranker", "similarity", "popular"] = Field(
        description="ranker: taste-vector and popular candidates re-ranked by the trained ranker (score = its "
        "probability); similarity: nearest items to the taste vector (no ranker yet); popular: the user has no "
        "taste vector yet (cold start), items by decayed popularity."
    )
    results: list[ScoredPoint]
    candidates: int = Field(description="Items considered before the cut to k.")
    excluded: int = Field(description="Items the user already interacted with, left out.")


_TRAIN = TrainOptions()  # the defaults, defined once


class TrainRequest(Strict):
    validation_fraction: float = Field(
        _TRAIN.validation_fraction, gt=0, lt=0.5, description="The newest events, held out for validation."
    )
    label_fraction: float = Field(
        _TRAIN.label_fraction, gt=0, lt=0.5, description="The events before them: the training labels."
    )
    negatives_per_positive: int = Field(
        _TRAIN.negatives_per_positive, ge=0, le=20, description="Sampled never-touched items per positive."
    )
    alphas: list[Annotated[float, Field(ge=0, le=10)]] = Field(
        list(_TRAIN.alphas), min_length=1, max_length=10, description="L2 strengths to try (0 = none)."
    )
    class_weights: list[Literal["balanced"] | None] = Field(
        list(_TRAIN.class_weights), min_length=1, max_length=2, description="Class weightings to try."
    )
    max_epochs: int = Field(_TRAIN.max_epochs, ge=1, le=500)
    patience: int = Field(
        _TRAIN.patience, ge=1, le=50, description="Epochs without validation improvement before stopping."
    )
    seed: int = Field(_TRAIN.seed, ge=0, le=2**32 - 1, description="Seeds sampling and SGD (a 32-bit seed).")


class RankerReport(Strict):
    trained_at: str
    seconds: float
    events: dict[str, Any] = Field(description="Events used, and dropped with the reason.")
    split: dict[str, Any] = Field(description="The time cuts and how many events fell on each side.")
    features: list[str]
    chosen: dict[str, Any] = Field(description="The chosen alpha, class weight and (early-stopped) epoch.")
    metrics: dict[str, dict[str, float | None]] = Field(
        description="On the validation events: AUC, log-loss, precision/recall/NDCG@10 for ranker, similarity, "
        "popularity."
    )
    evaluation: dict[str, int] = Field(description="How the ranking metrics were measured.")
    training: dict[str, Any] = Field(
        description="Every trial (alpha, class weight, per-epoch train/validation loss), the model's coefficients."
    )
