"""Search feedback as training pairs: (query words, the item they led to), split by time.

A pair is made by an event that names its query (`"query"` on a click, cart or purchase): the first time a query
led to an item. Items a logged search showed for the same words and that the words never led to are the pair's
hard negatives. Only items kept with a source of the kind the model learns from (a text model: texts; CLIP:
photos) take part, so deleted items and items sent as vectors drop out.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from app.collections.view import Catalog
from app.core.errors import NotEnoughPairs

POSITIVE_TYPES = frozenset({"click", "cart", "purchase"})
MIN_PAIRS = {"train": 20, "validation": 5, "test": 5}


@dataclass(frozen=True)
class FeedbackPair:
    time: float
    query: str
    item: str  # the item's key (its id as JSON)
    negatives: tuple[str, ...] = ()  # keys of items shown for the query and never chosen for it


@dataclass(frozen=True)
class Split:
    train: list[FeedbackPair]
    validation: list[FeedbackPair]
    test: list[FeedbackPair]

    def counts(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def normalise(words: str) -> str:
    return " ".join(words.lower().split())


def pairs_from_feedback(collection: Catalog, kind: str) -> list[FeedbackPair]:
    """The collection's (query, item) pairs, oldest first, from its events and its search log; items with a source
    of `kind` only."""
    first: dict[tuple[str, str], tuple[float, str]] = {}
    for _user, item, event_type, at, query in collection.queried_events():
        key = (normalise(query), item)
        if event_type in POSITIVE_TYPES and (key not in first or at < first[key][0]):
            first[key] = (at, query)
    chosen: dict[str, set[str]] = defaultdict(set)
    for words, item in first:
        chosen[words].add(item)
    shown: dict[str, set[str]] = defaultdict(set)
    for _at, words, ids in collection.search_log():
        if normalise(words) in chosen:
            shown[normalise(words)].update(orjson.dumps(pid).decode() for pid in ids)
    passed_over = {words: shown[words] - items for words, items in chosen.items()}
    usable = _kept_as(collection, {item for _, item in first} | set().union(*passed_over.values()), kind)
    pairs = [
        FeedbackPair(at, query, item, tuple(k for k in sorted(passed_over[words]) if k in usable))
        for (words, item), (at, query) in first.items()
        if item in usable
    ]
    return sorted(pairs, key=lambda p: (p.time, p.query, p.item))


def pairs_given(collection: Catalog, given: Sequence[tuple[str, str]], kind: str) -> list[FeedbackPair]:
    """Pairs the caller sent as (query, item key), in their order; unknown items and items without a source of
    `kind` are left out (the report counts what was used)."""
    usable = _kept_as(collection, {item for _, item in given}, kind)
    return [FeedbackPair(float(n), query, item) for n, (query, item) in enumerate(given) if item in usable]


def split_by_time(pairs: list[FeedbackPair], validation: float, test: float) -> Split:
    """The oldest pairs train, the next validate, the newest test: the model is judged on what came after."""
    n = len(pairs)
    n_test, n_val = round(n * test), round(n * validation)
    split = Split(pairs[: n - n_val - n_test], pairs[n - n_val - n_test : n - n_test], pairs[n - n_test :])
    counts = split.counts()
    if any(counts[part] < needed for part, needed in MIN_PAIRS.items()):
        raise NotEnoughPairs(
            f"too few (query, clicked item) pairs to fine-tune: need {MIN_PAIRS['train']} to train, "
            f"{MIN_PAIRS['validation']} to validate and {MIN_PAIRS['test']} to test; the split gave {counts}. Send "
            'events with "query" (the words a click came from), or pairs',
            needed=MIN_PAIRS,
            got=counts,
        )
    return split


def own_words(items: dict[str, str], n: int, seed: int) -> list[tuple[str, str]]:
    """`n` (a run of 3 to 6 words of an item's text, that item's key): queries any text model answers before
    tuning. Mixed into training they keep it from forgetting them (replay); held out they measure whether it did."""
    rng = random.Random(seed)
    keys = sorted(items)
    out = []
    for key in (rng.choice(keys) for _ in range(n if keys else 0)):
        words = items[key].replace(".", " ").split()
        length = min(len(words), rng.randint(3, 6))
        start = rng.randrange(0, len(words) - length + 1)
        out.append((" ".join(words[start : start + length]), key))
    return out


def _kept_as(collection: Catalog, keys: set[str], kind: str) -> set[str]:
    return {key for key, kept in collection.source_kinds(sorted(keys)).items() if kept == kind}
