"""Personalization's settings, defined once: event types and weights, profile decay, ranker training options."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from app.core.errors import InvalidInput

EVENT_TYPES = ("view", "click", "cart", "purchase", "rating")
DEFAULT_WEIGHTS = {"view": 0.2, "click": 1.0, "cart": 2.0, "purchase": 4.0, "rating": 2.0}
DEFAULT_HALF_LIFE_DAYS = 30.0  # an interaction this old counts half as much as one just now
DEFAULT_CATEGORY_FIELD = "category"
DEFAULT_PRICE_FIELD = "price"


@dataclass(frozen=True)
class RecommendConfig:
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    category_field: str | None = DEFAULT_CATEGORY_FIELD  # a keyword payload index: category affinity
    price_field: str | None = DEFAULT_PRICE_FIELD  # a float/integer payload index: price against the usual

    @classmethod
    def of(cls, stored: dict[str, Any]) -> RecommendConfig:
        """From a collection config's `recommendation` (empty for collections made before it: defaults);
        InvalidInput for one that a create would have refused (a crafted snapshot)."""
        try:
            config = cls(**stored)
        except TypeError as err:
            raise InvalidInput(f"recommendation settings: {err}") from None
        weights, half_life = config.weights, config.half_life_days
        if not isinstance(weights, dict) or set(weights) != set(EVENT_TYPES):
            raise InvalidInput(f"recommendation weights must name exactly {list(EVENT_TYPES)}")
        numbers = [*weights.values(), half_life]
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in numbers):
            raise InvalidInput("recommendation weights and half_life_days must be finite numbers")
        if half_life <= 0:
            raise InvalidInput("recommendation half_life_days must be positive")
        if not all(f is None or isinstance(f, str) for f in (config.category_field, config.price_field)):
            raise InvalidInput("recommendation category_field and price_field must be field names or null")
        return config

    def weight(self, event_type: str, value: float) -> float:
        """A rating of 5 pulls as hard as weights["rating"], 3 not at all, 1 pushes away."""
        if event_type == "rating":
            return self.weights["rating"] * (value - 3.0) / 2.0
        return self.weights[event_type]


@dataclass(frozen=True)
class TrainOptions:
    """How the ranker is trained; the REST schema takes its defaults from here."""

    validation_fraction: float = 0.2  # the newest events
    label_fraction: float = 0.2  # the events before them
    negatives_per_positive: int = 2  # sampled untouched items
    candidates: int = 100  # per source (taste neighbours, popular items) in the ranking evaluation
    eval_users: int = 1000
    alphas: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
    class_weights: tuple[str | None, ...] = (None, "balanced")
    max_epochs: int = 60
    patience: int = 5
    seed: int = 0
