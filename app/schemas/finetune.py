"""Fine-tuning the text or CLIP model from search feedback: the request, and the status and report of a run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictStr

from app.schemas.common import PointId, Strict

Rate = Annotated[float, Field(gt=0, le=0.01)]
Warmup = Annotated[float, Field(ge=0, le=0.5)]
Fraction = Annotated[float, Field(gt=0, le=0.4)]


class PairIn(Strict):
    query: Annotated[StrictStr, Field(min_length=1, max_length=1000)] = Field(description="The words searched.")
    item: PointId = Field(description="The point the words should find (its stored text, or its photo for CLIP).")


class FinetuneRequest(Strict):
    pairs: list[PairIn] | None = Field(
        None,
        min_length=1,
        max_length=200_000,
        description="Train on these (query, item) pairs, oldest first, instead of the collection's feedback "
        "(events that carry a query).",
    )
    learning_rates: list[Rate] = Field([2e-5, 5e-5], min_length=1, max_length=4, description="The grid's rates.")
    warmups: list[Warmup] = Field(
        [0.1], min_length=1, max_length=3, description="The grid's warm-ups: shares of the steps the rate climbs."
    )
    max_epochs: int = Field(4, ge=1, le=50, description="Passes over the training pairs, at most, per trial.")
    patience: int = Field(1, ge=0, le=10, description="Epochs without a better validation loss before stopping.")
    batch_size: int = Field(32, ge=2, le=512, description="Pairs per step; each is the others' negatives.")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    validation_fraction: Fraction = Field(0.15, description="The newer pairs that choose the epoch and the trial.")
    test_fraction: Fraction = Field(0.15, description="The newest pairs, on which base and tuned model are compared.")
    replay: float = Field(
        0.5,
        ge=0,
        le=4,
        description="Pairs made of the items' own words (a few words of an item's text → that item) mixed into "
        "training, per feedback pair: they keep the model from forgetting what it knew. 0: none. A CLIP collection "
        "replays none: its photos have no words.",
    )


class EpochOut(Strict):
    epoch: int
    train_loss: float
    val_loss: float
    seconds: float


class TrialOut(Strict):
    learning_rate: float
    warmup: float
    epochs: list[EpochOut]
    best_epoch: int = Field(description="The epoch whose weights the trial keeps (0 before the first).")
    best_val_loss: float | None
    stopped_early: bool


class Quality(Strict):
    recall_at_10: float | None = Field(description="Share of a test query's items found in its top 10.")
    mrr: float | None = Field(description="Mean of 1 / the rank of a test query's first item (within 100).")
    own_words_mrr: float | None = Field(
        description="MRR of held-out runs of the items' own words: what the model knew; tuning should not lose it."
    )


class QualityPair(Strict):
    base: Quality | None
    tuned: Quality | None


class PairCounts(Strict):
    train: int
    validation: int
    test: int
    with_negatives: int = Field(description="Pairs with an item shown for the query and passed over.")
    replay: int | None = Field(None, description="Own-words pairs mixed into training.")
    source: Literal["feedback", "given"]


class ModelVersions(Strict):
    base: dict[str, Any] | None = Field(description="The embedder the run started from.")
    version: str | None = Field(description="The tuned model's version (under models/), once the run is done.")


class FinetuneStatus(Strict):
    state: Literal["running", "done", "cancelled", "failed"]
    phase: str | None = Field(description="While running: evaluating the base model, training, evaluating the tuned.")
    started_at: str
    finished_at: str | None
    seconds: float
    progress: float = Field(description="Share of the planned training steps done.")
    eta_seconds: float | None
    model: ModelVersions
    pairs: PairCounts
    grid: dict[str, Any]
    trials: list[TrialOut] = Field(description="Per grid point: train and validation loss per epoch.")
    chosen: int | None = Field(description="The trial kept: the lowest validation loss.")
    metrics: QualityPair | None = Field(description="Base and tuned model on the test pairs.")
    error: str | None


class ApplyRequest(Strict):
    version: Annotated[str, Field(pattern=r"^ft-\d{8}T\d{12}Z$")] | None = Field(
        None, description="A tuned model's version (GET …/embedder lists them); default: the last run's."
    )


class SwitchStatus(Strict):
    state: Literal["running", "done", "cancelled", "failed", "interrupted"] = Field(
        description="interrupted: the server stopped mid-way and nothing was switched (apply again)."
    )
    previous: dict[str, Any] | None = Field(description="The embedder before the switch.")
    target: dict[str, Any] = Field(description="The embedder switched to (a tuned version, or the base).")
    progress: float = Field(description="Share of the points embedded with the target model.")
    started_at: str
    finished_at: str | None
    error: str | None


class EmbedderStatus(Strict):
    embedder: dict[str, Any] | None = Field(description="The model in use; a tuned one names its version.")
    versions: list[str] = Field(description="The tuned versions kept for this collection, oldest first.")
    switch: SwitchStatus | None = Field(description="The last apply or rollback: running, or how it ended.")
