"""The ranker: a logistic regression over user–item features, trained from a collection's stored events.

Training follows the classic recipe, each step visible in the report:
1. cleaning — stored events whose item no longer exists are dropped (counted);
2. a time split — events before the history cut build the profiles, events in [history cut, validation cut)
   are the training labels, the newest events are the validation labels; features always come from
   profiles built strictly before the labels they describe, so the future never leaks into the past;
3. labels — clicks, carts, purchases and good ratings are positives; views with no such follow-up
   (shown, not taken) and sampled items the user never touched are negatives;
4. fitting — app.ranking.fit_ranker: per-epoch train/validation loss, early stopping, a search over
   regularisation strength and class weighting;
5. evaluation — AUC and log-loss on the validation pairs, precision/recall/NDCG@10 on each validation
   user's candidate list, for the ranker, plain vector similarity and popularity side by side.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from app.core.errors import InvalidInput, NotEnoughEvents, TrainingInProgress
from app.personalization.config import TrainOptions
from app.personalization.profiles import EventRows, Profiles
from app.personalization.ranker_store import Ranker, feature_matrix, save
from app.personalization.service import Personalization, item_key
from app.ranking.metrics import auc, log_loss, ndcg_at_k, precision_at_k, recall_at_k
from app.ranking.training import calibrate, fit_ranker
from app.search.models import Query

POSITIVE = {"click", "cart", "purchase"}
MIN_TRAIN_POSITIVES = 20
MIN_VALIDATION_POSITIVES = 5
EVAL_K = 10


def train(personalization: Personalization, options: TrainOptions) -> Ranker:
    """Train on the stored events, keep the ranker on disk and start serving with it; one run at a time."""
    if not personalization.training.acquire(blocking=False):
        raise TrainingInProgress("a ranker is being trained for this collection; wait for it to finish")
    try:
        started = time.perf_counter()
        ranker = _Trainer(personalization, options).run()
        ranker.report["seconds"] = round(time.perf_counter() - started, 3)
        save(personalization.collection.folder, ranker)
        personalization.ranker = ranker
        return ranker
    finally:
        personalization.training.release()


class _Trainer:
    def __init__(self, personalization: Personalization, options: TrainOptions) -> None:
        if not 0 < options.validation_fraction < 1 or not 0 < options.label_fraction < 1:
            raise InvalidInput("validation_fraction and label_fraction must be between 0 and 1")
        if options.validation_fraction + options.label_fraction >= 1:
            raise InvalidInput("validation_fraction + label_fraction must leave some events for the history")
        self.personalization, self.collection, self.options = personalization, personalization.collection, options
        self.rng = np.random.default_rng(options.seed)

    def run(self) -> Ranker:
        # A read view is taken per step, never for the whole run: a long training must hold back neither
        # writers nor readers. A point deleted meanwhile just drops out of the rows and candidates.
        rows, dropped = self._clean()
        times = np.array([r[4] for r in rows])
        history_cut = float(np.quantile(times, 1 - self.options.validation_fraction - self.options.label_fraction))
        validation_cut = float(np.quantile(times, 1 - self.options.validation_fraction))
        history = [r for r in rows if r[4] < history_cut]
        labels = [r for r in rows if history_cut <= r[4] < validation_cut]
        validation = [r for r in rows if r[4] >= validation_cut]
        state = Profiles(self.collection.config.dim, self.personalization.config)
        state.apply(self._event_rows(history))
        train_set = self._pairs(state, labels)
        state.apply(self._event_rows(labels))
        val_set = self._pairs(state, validation)
        self._check_enough(train_set, val_set)
        names = list(train_set.columns)
        report = fit_ranker(
            feature_matrix(train_set.columns, names),
            train_set.y,
            feature_matrix(val_set.columns, names),
            val_set.y,
            names,
            alphas=self.options.alphas,
            class_weights=self.options.class_weights,
            max_epochs=self.options.max_epochs,
            patience=self.options.patience,
            seed=self.options.seed,
        )
        ranker = Ranker(report.model, {})
        metrics, evaluated = self._metrics(ranker, state, train_set, val_set, validation)
        chosen = report.chosen_trial
        ranker.report.update(
            {
                "trained_at": datetime.now(UTC).isoformat(),
                "events": {"used": len(rows), "dropped": dropped},
                "split": {
                    "history_until": datetime.fromtimestamp(history_cut, UTC).isoformat(),
                    "validation_from": datetime.fromtimestamp(validation_cut, UTC).isoformat(),
                    "history_events": len(history),
                    "training_events": len(labels),
                    "validation_events": len(validation),
                },
                "features": names,
                "chosen": {"alpha": chosen.alpha, "class_weight": chosen.class_weight, "epoch": chosen.best_epoch},
                "metrics": metrics,
                "evaluation": evaluated,
                "training": report.to_json(),
            }
        )
        return ranker

    def _clean(self) -> tuple[list[tuple[str, str, str, float, float]], dict[str, int]]:
        rows, gone = [], 0
        for chunk in self.collection.stored_events():
            with self.personalization.items() as items:
                present = items.present([row[1] for row in chunk])
            rows += [row for row in chunk if row[1] in present]
            gone += sum(row[1] not in present for row in chunk)
        if not rows:
            raise NotEnoughEvents(
                "no events to learn from: send interactions to /events first",
                needed={"train_positives": MIN_TRAIN_POSITIVES, "validation_positives": MIN_VALIDATION_POSITIVES},
                got={"events": 0},
            )
        return rows, {"item_deleted": gone}

    def _event_rows(self, rows: list[tuple[str, str, str, float, float]]) -> EventRows:
        with self.personalization.items() as items:
            return self.personalization.event_rows(items, rows)

    def _pairs(self, state: Profiles, window: list[tuple[str, str, str, float, float]]) -> _PairSet:
        """Labelled (user, item) pairs of one window, with features from `state` (what was known before)."""
        label: dict[tuple[str, str], int] = {}
        for user, item, kind, value, _ in window:
            positive = kind in POSITIVE or (kind == "rating" and value >= 4)
            if positive or (kind == "view" and (user, item) not in label):
                label[(user, item)] = max(label.get((user, item), 0), int(positive))
        by_user: dict[str, dict[str, int]] = defaultdict(dict)
        for (user, item), y in label.items():
            if state.taste_of(user) is not None:  # a user with no history is served popular items, not ranked
                by_user[user][item] = y
        pairs: list[tuple[str, list[str], list[int]]] = []
        for user, items in by_user.items():
            # Negatives come from what serving would rank for this user, so the ranker learns to order
            # those (similar and popular items), not to tell them from random ones, which similarity does.
            wanted = self.options.negatives_per_positive * sum(items.values())
            pool = [key for key in self._candidates(state, user) if key not in items]
            picked = self.rng.permutation(len(pool))[:wanted].tolist()
            negatives = [pool[j] for j in picked]
            pairs.append((user, list(items) + negatives, list(items.values()) + [0] * len(negatives)))
        return _PairSet.build(self.personalization, state, pairs)

    def _check_enough(self, train_set: _PairSet, val_set: _PairSet) -> None:
        got = {
            "train_positives": int(train_set.y.sum()),
            "validation_positives": int(val_set.y.sum()),
            "train_negatives": int(len(train_set.y) - train_set.y.sum()),
        }
        needed = {
            "train_positives": MIN_TRAIN_POSITIVES,
            "validation_positives": MIN_VALIDATION_POSITIVES,
            "train_negatives": 1,  # a classifier needs both classes
        }
        if any(got[k] < needed[k] for k in needed):
            raise NotEnoughEvents(
                f"too few interactions to train a ranker: need {MIN_TRAIN_POSITIVES} positive training pairs and "
                f"{MIN_VALIDATION_POSITIVES} positive validation pairs (clicks, carts, purchases, ratings ≥ 4 of users "
                f"with earlier history), got {got['train_positives']} and {got['validation_positives']}; and "
                f"negative training pairs (views without a click, or negatives_per_positive ≥ 1), got "
                f"{got['train_negatives']}",
                needed=needed,
                got=got,
            )

    def _metrics(
        self,
        ranker: Ranker,
        state: Profiles,
        train_set: _PairSet,
        val_set: _PairSet,
        validation: list[tuple[str, str, str, float, float]],
    ) -> tuple[dict[str, dict[str, float | None]], dict[str, int]]:
        """The ranker against similarity and popularity alone, each Platt-calibrated on the training pairs
        so that their log-loss means something; ranking metrics on the same candidate lists for all three.
        """
        scorers = {
            "ranker": ranker.model,
            "similarity": calibrate(train_set.columns["similarity"], train_set.y, "similarity"),
            "popularity": calibrate(train_set.columns["popularity"], train_set.y, "popularity"),
        }
        out: dict[str, dict[str, float | None]] = {}
        for name, model in scorers.items():
            p = model.predict_proba(feature_matrix(val_set.columns, model.feature_names))
            out[name] = {"auc": auc(val_set.y, p), "log_loss": log_loss(val_set.y, p)}
        relevant: dict[str, set[str]] = defaultdict(set)
        for user, item, kind, value, _ in validation:
            if (kind in POSITIVE or (kind == "rating" and value >= 4)) and state.taste_of(user) is not None:
                relevant[user].add(item)
        users = sorted(relevant)
        if len(users) > self.options.eval_users:
            users = sorted(self.rng.choice(users, self.options.eval_users, replace=False).tolist())
        ranked: dict[str, list[list[str]]] = {name: [] for name in scorers}
        for user in users:
            keys = self._candidates(state, user)
            if not keys:
                for lists in ranked.values():
                    lists.append([])
                continue
            rows = _PairSet.build(self.personalization, state, [(user, keys, [0] * len(keys))])
            for name, model in scorers.items():
                p = model.predict_proba(feature_matrix(rows.columns, model.feature_names))
                ranked[name].append([rows.keys[j] for j in np.argsort(-p, kind="stable")[:EVAL_K].tolist()])
        truth = [relevant[u] for u in users]
        for name, lists in ranked.items():
            out[name].update(
                {
                    f"precision@{EVAL_K}": precision_at_k(lists, truth, EVAL_K),
                    f"recall@{EVAL_K}": recall_at_k(lists, truth, EVAL_K),
                    f"ndcg@{EVAL_K}": ndcg_at_k(lists, truth, EVAL_K),
                }
            )
        return out, {"users": len(users), "candidates_per_source": self.options.candidates, "k": EVAL_K}

    def _candidates(self, state: Profiles, user: str) -> list[str]:
        """What serving would rank: the taste vector's neighbours and the popular items, minus what was seen."""
        seen = state.seen[state.user_row[user]]
        n = self.options.candidates
        taste = state.taste_of(user)
        wide = min(n + len(seen), self.collection.settings.max_ef)
        query = Query(vector=taste, k=wide, ef=max(wide, self.collection.config.ef), with_payload=False)
        with self.personalization.items() as items:
            hits = items.nearest(query)
            keys = [key for key in (item_key(h.id) for h in hits) if key not in seen][:n]
            keys += [key for key, _ in state.popular(n, items.present, seen | set(keys))]
        return keys


@dataclass(frozen=True)
class _PairSet:
    columns: dict[str, np.ndarray]
    y: np.ndarray
    keys: list[str]  # the item of each row

    @classmethod
    def build(
        cls, personalization: Personalization, state: Profiles, pairs: list[tuple[str, list[str], list[int]]]
    ) -> _PairSet:
        parts: list[dict[str, np.ndarray]] = []
        labels: list[int] = []
        rows: list[str] = []
        for user, keys, y in pairs:
            with personalization.items() as items:
                fields = items.fields(keys)
            stored = set(fields.keys)
            parts.append(state.features(user, fields.vectors, fields.keys, fields.categories, fields.log_prices))
            labels += [label for key, label in zip(keys, y, strict=True) if key in stored]
            rows += fields.keys
        if not parts:
            return cls({name: np.zeros(0) for name in _feature_names(personalization)}, np.zeros(0, np.int64), [])
        columns = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
        return cls(columns, np.array(labels, np.int64), rows)


def _feature_names(personalization: Personalization) -> list[str]:
    """The feature columns this collection's configuration yields (they depend on nothing else)."""
    dim = personalization.collection.config.dim
    return list(Profiles(dim, personalization.config).features("", np.zeros((0, dim)), [], [], np.zeros(0)))
