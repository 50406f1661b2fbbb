"""What a fine-tuning run trains and judges against: each item's text for a text model, each photo's stored vector
for CLIP (whose image tower a run leaves as it is), and the recall@10 / MRR of held-out queries ranked against
them."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from app.collections.view import Catalog
from app.embedding import tuning
from app.personalization.feedback import FeedbackPair, Split, normalise, own_words
from app.personalization.items import item_key
from app.ranking.metrics import mrr_at_k, recall_at_k

CATALOGUE_LIMIT = 20_000  # items the test queries are ranked against: every positive, then a sample of the rest
MRR_DEPTH = 100
OWN_WORDS_QUERIES = 200  # held-out runs of the items' own words: the guard against forgetting


class Candidates:
    """The items of a run, each as a pair names it (`known`), and the keys test queries are ranked against."""

    targets: Mapping[str, np.ndarray] | None = None  # fixed item vectors the queries learn to aim at (CLIP)

    def __init__(self, known: Mapping[str, Any], ranked: list[str]) -> None:
        self.known, self.ranked = known, [k for k in ranked if k in known]

    def vectors(self, model: Any) -> np.ndarray:
        """The ranked items' vectors under `model`, in `ranked` order."""
        raise NotImplementedError

    def item(self, key: str) -> str:
        """How a training pair names the item: its text, or its key among `targets`."""
        raise NotImplementedError

    def own_words(self, n: int, seed: int) -> list[tuple[str, str]]:
        """`n` (a run of an item's own words, its key): replayed in training, or held out to catch forgetting."""
        return []

    def pairs(self, feedback: list[FeedbackPair]) -> list[tuning.Pair]:
        """Training pairs of the feedback whose item is still here (deleted since the run began: left out)."""
        return [
            tuning.Pair(p.query, self.item(p.item), next((self.item(k) for k in p.negatives if k in self.known), None))
            for p in feedback
            if p.item in self.known
        ]


class ItemTexts(Candidates):
    """A text model's candidates: the items' stored texts, embedded by the model being trained or judged."""

    def vectors(self, model: Any) -> np.ndarray:
        return tuning.encode(model, [self.known[k] for k in self.ranked])

    def item(self, key: str) -> str:
        return str(self.known[key])

    def own_words(self, n: int, seed: int) -> list[tuple[str, str]]:
        return own_words({key: self.known[key] for key in self.ranked}, n, seed)


class ItemPhotos(Candidates):
    """A CLIP model's candidates: the photos' stored vectors. A run tunes the text tower only, so these stay what
    the image tower made of the photos, under the base model and every tuned one alike."""

    def __init__(self, known: Mapping[str, np.ndarray], ranked: list[str]) -> None:
        super().__init__(known, ranked)
        self.targets = known

    def vectors(self, model: Any) -> np.ndarray:
        return np.stack([self.known[k] for k in self.ranked])

    def item(self, key: str) -> str:
        return key


def gather(collection: Catalog, kind: str, split: Split) -> Candidates:
    """The candidates of a run: every item its pairs name, and up to CATALOGUE_LIMIT items to rank (the test pairs'
    items first, then a sample of the rest), of those kept with a source of `kind` (text, or image for CLIP)."""
    keys = [orjson.dumps(pid).decode() for pid in collection.live_ids()[1]]
    wanted = sorted({p.item for p in split.test})
    others = sorted(set(keys) - set(wanted))
    if len(others) + len(wanted) > CATALOGUE_LIMIT:
        others = random.Random(0).sample(others, CATALOGUE_LIMIT - len(wanted))
    named = {k for part in (split.train, split.validation, split.test) for p in part for k in (p.item, *p.negatives)}
    needed = sorted(named | set(others) | set(wanted))
    if kind == "text":
        found = collection.stored_sources(needed)
        return ItemTexts({key: data.decode() for key, (kept, data) in found.items() if kept == "text"}, wanted + others)
    photos = [orjson.loads(key) for key, kept in collection.source_kinds(needed).items() if kept == kind]
    stored = collection.found(photos, with_payload=False, with_vector=True)  # the vectors the image tower made
    return ItemPhotos({item_key(p.id): np.asarray(p.vector, np.float32) for p in stored}, wanted + others)


def quality(model: Any, test: list[FeedbackPair], items: Candidates, own: list[tuple[str, str]]) -> dict[str, Any]:
    """recall@10 and MRR (first relevant item within the top 100) of the test queries, each ranked by the model
    against the candidates (a query that led to several items in the test counts them all as relevant); and the
    MRR of held-out runs of the items' own words, which a model that forgot what it knew would lose."""
    relevant: dict[str, set[str]] = defaultdict(set)
    asked: dict[str, str] = {}
    for p in (p for p in test if p.item in items.known):
        relevant[normalise(p.query)].add(p.item)
        asked.setdefault(normalise(p.query), p.query)
    catalogue = items.vectors(model)

    def ranked(queries: list[str]) -> list[list[str]]:
        top = np.argsort(-(tuning.encode(model, queries) @ catalogue.T), axis=1)[:, :MRR_DEPTH]
        return [[items.ranked[j] for j in row] for row in top]

    feedback, wanted = ranked([asked[q] for q in relevant]), list(relevant.values())
    return {
        "recall_at_10": recall_at_k(feedback, wanted, 10),
        "mrr": mrr_at_k(feedback, wanted, MRR_DEPTH),
        "own_words_mrr": mrr_at_k(ranked([words for words, _ in own]), [{key} for _, key in own], MRR_DEPTH)
        if own
        else None,
    }
