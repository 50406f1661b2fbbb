"""Fine-tuning a sentence-transformers model on (query, item) pairs, by gradient descent on in-batch negatives
(MultipleNegativesRankingLoss), with per-epoch train and validation loss, early stopping and a small grid of
learning rate × warm-up. A text model learns on both sides of the pairs; a CLIP model learns on its text side
only, against its photos' fixed vectors. The caller chooses the pairs; this module knows only models and data."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str  # the item the query led to: its text, or its key among the fixed vectors (`targets`)
    negative: str | None = None  # an item shown for the query and passed over (a hard negative), the same way


@dataclass(frozen=True)
class Grid:
    learning_rates: tuple[float, ...] = (2e-5, 5e-5)
    warmups: tuple[float, ...] = (0.1,)  # share of the planned steps over which the rate climbs to its value
    max_epochs: int = 4
    patience: int = 1  # epochs without a better validation loss before a trial stops
    batch_size: int = 32
    seed: int = 0

    @property
    def trials(self) -> list[tuple[float, float]]:
        return [(lr, warmup) for lr in self.learning_rates for warmup in self.warmups]


@dataclass
class Epoch:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's batches, with dropout: what the optimiser saw
    val_loss: float  # mean over the validation batches, no dropout, no update
    seconds: float


@dataclass
class Trial:
    learning_rate: float
    warmup: float
    epochs: list[Epoch] = field(default_factory=list)
    best_epoch: int = 0
    best_val_loss: float = math.inf
    stopped_early: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "learning_rate": self.learning_rate,
            "warmup": self.warmup,
            "epochs": [vars(e) for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stopped_early": self.stopped_early,
        }


class Cancelled(Exception):
    """The caller asked the run to stop; raised between two batches."""


Progress = Callable[[int, list[Trial], float], None]  # trial index, the trials so far, share of all steps done
Loss = Callable[[Sequence[Pair]], Any]  # a batch of pairs → the loss tensor to step on


def load(path: Path) -> Any:
    """A fresh copy of the model at `path`, on the CPU, never from the network."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu", local_files_only=True)


def encode(model: Any, texts: Sequence[str]) -> np.ndarray:
    vectors = model.encode(list(texts), batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(vectors, dtype=np.float32)


def finetune(
    model: Any,
    train: Sequence[Pair],
    val: Sequence[Pair],
    grid: Grid,
    *,
    targets: Mapping[str, np.ndarray] | None = None,
    progress: Progress = lambda *_: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> tuple[list[Trial], int]:
    """Train `model` once per grid point from its own starting weights; each trial keeps its epoch of lowest
    validation loss. The model ends with the weights of the best trial's best epoch; returns (trials, chosen).

    With `targets` (key → vector, for a CLIP model) the pairs' items are keys: only the text tower learns, aimed
    at the vectors its image tower made of the photos, which stay as they are (and so do the photos' vectors)."""
    import torch

    loss_fn: Loss = InBatchLoss(model) if targets is None else FixedTargetsLoss(model, targets)
    learning = list(model.parameters()) if targets is None else text_tower(model)
    start = _weights(learning)
    best_state: list[Any] | None = None
    trials: list[Trial] = []
    steps_per_epoch = len(_batches(train, grid.batch_size, random.Random(0)))
    total_steps = max(1, len(grid.trials) * grid.max_epochs * steps_per_epoch)
    done = 0
    for index, (rate, warmup) in enumerate(grid.trials):
        torch.manual_seed(grid.seed + index)
        _restore(learning, start)
        optimizer = torch.optim.AdamW(learning, lr=rate)
        planned = grid.max_epochs * steps_per_epoch
        climb = max(1, int(warmup * planned))
        schedule = torch.optim.lr_scheduler.LambdaLR(  # up over the warm-up, then down to zero at the planned end
            optimizer, lambda step, climb=climb, planned=planned: min((step + 1) / climb, (planned - step) / planned)
        )
        trial = Trial(rate, warmup)
        trials.append(trial)
        rng, waited = random.Random(grid.seed + index), 0
        for epoch in range(1, grid.max_epochs + 1):
            began, losses = time.perf_counter(), []
            model.train()
            for batch in _batches(train, grid.batch_size, rng):
                if cancelled():
                    raise Cancelled
                loss = loss_fn(batch)
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                losses.append(float(loss.detach()))
                done += 1
                progress(index, trials, done / total_steps)
            val_loss = evaluate_loss(model, loss_fn, val, grid.batch_size)
            trial.epochs.append(Epoch(epoch, float(np.mean(losses)), val_loss, time.perf_counter() - began))
            if val_loss < trial.best_val_loss:
                trial.best_epoch, trial.best_val_loss, waited = epoch, val_loss, 0
                if val_loss < min((t.best_val_loss for t in trials[:-1]), default=math.inf):  # the best of all trials
                    best_state = _weights(learning)
            else:
                waited += 1
                if waited > grid.patience:
                    trial.stopped_early = True
                    done += (grid.max_epochs - epoch) * steps_per_epoch  # the steps it will not take
                    break
        progress(index, trials, done / total_steps)
    chosen = min(range(len(trials)), key=lambda i: trials[i].best_val_loss)
    _restore(learning, best_state if best_state is not None else start)
    model.eval()
    return trials, chosen


def evaluate_loss(model: Any, loss_fn: Loss, pairs: Sequence[Pair], batch_size: int) -> float:
    """The mean loss over `pairs` in fixed batches (the same for every epoch), without dropout or updates."""
    import torch

    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in _batches(pairs, batch_size, None):
            total += float(loss_fn(batch)) * len(batch)
            count += len(batch)
    return total / max(count, 1)


class InBatchLoss:
    """MultipleNegativesRankingLoss: each query against every item of its batch (and the batch's hard negatives),
    all embedded by the model being trained; cross-entropy on scaled cosine, the query's own item the answer."""

    def __init__(self, model: Any) -> None:
        try:
            from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        except ImportError:  # before sentence-transformers 5.2
            from sentence_transformers.losses import MultipleNegativesRankingLoss

        self.model, self.loss = model, MultipleNegativesRankingLoss(model)

    def __call__(self, batch: Sequence[Pair]) -> Any:
        columns = [[p.query for p in batch], [p.positive for p in batch]]
        if all(p.negative is not None for p in batch):  # a third column: one more candidate per row to push away
            columns.append([p.negative for p in batch])  # type: ignore[misc]
        return self.loss([_prepare(self.model, column) for column in columns], None)


class FixedTargetsLoss:
    """The same loss with the items' side fixed: the queries, embedded by the model being trained, against the
    vectors of the batch's items (and hard negatives) given once. MultipleNegativesRankingLoss's scale (20)."""

    SCALE = 20.0

    def __init__(self, model: Any, targets: Mapping[str, np.ndarray]) -> None:
        self.model, self.targets = model, targets

    def __call__(self, batch: Sequence[Pair]) -> Any:
        import torch
        from torch.nn import functional

        keys = [p.positive for p in batch]
        if all(p.negative is not None for p in batch):
            keys += [p.negative for p in batch]  # type: ignore[misc]
        items = functional.normalize(torch.from_numpy(np.stack([self.targets[k] for k in keys])), dim=-1)
        queries = self.model(_prepare(self.model, [p.query for p in batch]))["sentence_embedding"]
        scores = self.SCALE * functional.normalize(queries, dim=-1) @ items.T
        return functional.cross_entropy(scores, torch.arange(len(batch)))


def _weights(parameters: list[Any]) -> list[Any]:
    """A copy of the weights that learn (only these: a CLIP's frozen image tower is not copied twice)."""
    return [p.detach().clone() for p in parameters]


def _restore(parameters: list[Any], weights: list[Any]) -> None:
    import torch

    with torch.no_grad():
        for p, w in zip(parameters, weights, strict=True):
            p.copy_(w)


def text_tower(model: Any) -> list[Any]:
    """A sentence-transformers CLIP's text encoder and text projection: the weights a CLIP tuning changes."""
    clip = model[0].model
    return [*clip.text_model.parameters(), *clip.text_projection.parameters()]


def _prepare(model: Any, texts: list[str]) -> Any:
    prepare = getattr(model, "preprocess", None) or model.tokenize  # renamed in sentence-transformers 5.2
    return prepare(texts)


def _batches(pairs: Sequence[Pair], size: int, rng: random.Random | None) -> list[list[Pair]]:
    """Batches of at most `size` in which no two pairs share a query or a positive: with in-batch negatives, a
    repeated one would be asked to be both the answer and a wrong answer. Shuffled when `rng` is given."""
    order = list(pairs)
    if rng is not None:
        rng.shuffle(order)
    batches: list[list[Pair]] = []
    open_batches: list[tuple[list[Pair], set[tuple[str, str]]]] = []
    for pair in order:
        keys = {("q", pair.query), ("p", pair.positive)}
        home = next((b for b in open_batches if not keys & b[1]), None)
        if home is None:
            home = ([], set())
            open_batches.append(home)
        home[0].append(pair)
        home[1].update(keys)
        if len(home[0]) == size:
            batches.append(home[0])
            open_batches.remove(home)
    batches += [b for b, _ in open_batches if len(b) > 1]  # a lone pair has no in-batch negative to learn from
    return batches
