"""Fine-tuning a collection's text or CLIP model from its search feedback, in the background: one run at a time,
its progress while it runs, and its report after (losses per epoch, base and tuned recall@10 and MRR on the newest
pairs, the tuned model's version) with the loss curves. The tuned model is saved beside the collection, never
over the model it started from; applying it re-embeds every point kept as text and switches (rolling back does
the same with the base model), one switch at a time, its state kept so a crash in the middle reads as
interrupted. A CLIP run tunes the text tower only: photos keep their vectors through every switch."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from app.collections.layout import FINETUNE_FILE, MODELS_DIR, SWITCH_FILE, VERSION_RE
from app.collections.models import PointId
from app.collections.reembed import Stopped, reembed
from app.collections.view import Catalog
from app.core.errors import CannotFinetune, FinetuneInProgress, FinetuneNotFound, InvalidInput
from app.embedding import tuning
from app.personalization.candidates import OWN_WORDS_QUERIES, gather, quality
from app.personalization.feedback import Split, pairs_from_feedback, pairs_given, split_by_time
from app.personalization.service import Personalization
from app.ranking.curves import curves_svg
from app.ranking.training import EpochLoss
from app.storage.files import atomic_write_bytes

log = logging.getLogger(__name__)
LEARNS_FROM = {"text": "text", "clip": "image"}  # embedder kind → the kind of source its items are tuned on


@dataclass(frozen=True)
class Options:
    pairs: list[tuple[str, PointId]] | None = None  # (query, item id) given by the caller instead of the feedback
    validation_fraction: float = 0.15
    test_fraction: float = 0.15
    replay: float = 0.5  # own-words pairs mixed into training, per feedback pair
    grid: tuning.Grid = field(default_factory=tuning.Grid)

    @classmethod
    def of(cls, fields: dict[str, Any], pairs: list[tuple[str, PointId]] | None) -> Options:
        """From the request's fields: the split's fractions and the replay share, and the grid's (lists become
        tuples)."""
        fractions = {k: fields.pop(k) for k in ("validation_fraction", "test_fraction", "replay")}
        grid = tuning.Grid(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        return cls(pairs=pairs, grid=grid, **fractions)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FineTuner:
    """The part of a collection that tunes its text model and switches it; each runs in a thread this part owns
    and joins."""

    def __init__(self, collection: Catalog) -> None:
        self.collection = collection
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._live: dict[str, Any] | None = None  # the status of the run going on
        self._switcher: threading.Thread | None = None
        self._closing = threading.Event()
        self._switch: dict[str, Any] | None = self._settled_switch()

    @classmethod
    def attach(cls, collection: Catalog) -> FineTuner:
        return cls(collection)

    def close(self) -> None:
        """Stop a run (it ends between two batches, reported as cancelled) and a switch (nothing switched), and
        wait for their threads."""
        self._cancel.set()
        self._closing.set()
        for thread in (self._thread, self._switcher):
            if thread is not None:
                thread.join()

    # ---- the API's calls ------------------------------------------------------------------------
    def start(self, options: Options) -> dict[str, Any]:
        """Check, build the pairs and split them (quick), then train in the background; returns the status."""
        model_path, kind = self._model_path()
        if options.pairs is not None:
            given = [(query, orjson.dumps(item).decode()) for query, item in options.pairs]
            pairs, origin = pairs_given(self.collection, given, kind), "given"
        else:
            pairs, origin = pairs_from_feedback(self.collection, kind), "feedback"
        split = split_by_time(pairs, options.validation_fraction, options.test_fraction)
        replayed = _replayed(options, split, kind)
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise FinetuneInProgress(f"collection '{self.collection.name}' is being fine-tuned already")
            self._cancel.clear()
            self._live = {
                "state": "running",
                "phase": "evaluating the base model",
                "started_at": _now(),
                "finished_at": None,
                "seconds": 0.0,
                "progress": 0.0,
                "eta_seconds": None,
                "model": {"base": self.collection.config.embedder, "version": None},
                "pairs": {
                    **split.counts(),
                    "with_negatives": sum(bool(p.negatives) for p in pairs),
                    "source": origin,
                    "replay": replayed,
                },
                "grid": asdict(options.grid),
                "trials": [],
                "chosen": None,
                "metrics": None,
                "error": None,
            }
            self._thread = threading.Thread(
                target=self._run,
                args=(model_path, kind, split, options, replayed),
                name=f"{self.collection.name}-finetune",
            )
            self._thread.start()
            return dict(self._live)

    def status(self) -> dict[str, Any]:
        with self._lock:
            if self._live is not None:
                return dict(self._live)
        path = self.collection.folder / FINETUNE_FILE
        if not path.exists():
            raise FinetuneNotFound(f"collection '{self.collection.name}' has not been fine-tuned")
        return orjson.loads(path.read_bytes())  # type: ignore[no-any-return]

    def cancel(self) -> dict[str, Any]:
        """Ask a running run to stop; it ends between two batches. Returns the status (as it is, when none runs)."""
        self._cancel.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=30)
        return self.status()

    def curves_svg(self) -> str:
        report = self.status()
        if not report.get("trials") or not any(t["epochs"] for t in report["trials"]):
            raise FinetuneNotFound(f"collection '{self.collection.name}' has no fine-tuning epochs to draw yet")
        trials = [_Curve.of(t) for t in report["trials"] if t["epochs"]]
        chosen = report["chosen"] if report.get("chosen") is not None else len(trials) - 1
        best = trials[chosen]
        title = f"Text model fine-tuning — chosen lr={best.learning_rate:g}, warm-up {best.warmup:g}"
        return curves_svg(trials, chosen, title, "in-batch ranking loss")

    # ---- switching the model: apply a tuned version, or roll back to the base ----------------------
    def embedder_status(self) -> dict[str, Any]:
        with self._lock:
            switch = None if self._switch is None else dict(self._switch)
        return {"embedder": self.collection.config.embedder, "versions": self._versions(), "switch": switch}

    def apply(self, version: str | None) -> dict[str, Any]:
        """Re-embed every point with a tuned version (default: the last run's) and switch to it, in the
        background; searches keep the current model and vectors until the switch."""
        self._model_path()
        versions = self._versions()
        if version is None:
            version = self.status()["model"]["version"]  # 404 when no run was made
            if version is None:
                raise FinetuneNotFound("the last fine-tuning run made no model (it did not finish): run it again")
        if version not in versions:
            raise FinetuneNotFound(f"no tuned model version {version!r} in this collection", versions=versions)
        return self._start_switch({**self._base_spec(), "version": version})

    def rollback(self) -> dict[str, Any]:
        """Re-embed every point with the model the collection was created with, and switch back to it."""
        self._model_path()
        if "version" not in (self.collection.config.embedder or {}):
            raise InvalidInput(f"collection '{self.collection.name}' uses its base model already")
        return self._start_switch(self._base_spec())

    def _base_spec(self) -> dict[str, Any]:
        return {k: v for k, v in (self.collection.config.embedder or {}).items() if k != "version"}

    def _versions(self) -> list[str]:
        folder = self.collection.folder / MODELS_DIR
        return sorted(p.name for p in folder.iterdir() if VERSION_RE.fullmatch(p.name)) if folder.exists() else []

    def _start_switch(self, target: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._switcher is not None and self._switcher.is_alive():
                raise FinetuneInProgress(f"collection '{self.collection.name}' is switching its model already")
            self._switch = {
                "state": "running",
                "previous": self.collection.config.embedder,
                "target": target,
                "progress": 0.0,
                "started_at": _now(),
                "finished_at": None,
                "error": None,
            }
            self._save_switch()  # so a crash before the end reads as interrupted, not as nothing
            self._switcher = threading.Thread(
                target=self._run_switch, args=(target,), name=f"{self.collection.name}-switch"
            )
            self._switcher.start()
        return self.embedder_status()

    def _run_switch(self, target: dict[str, Any]) -> None:
        state, error = "done", None
        try:
            reembed(self.collection, target, progress=self._switch_progress, stopped=self._closing.is_set)
            personalization = self.collection.find_part(Personalization)
            if personalization is not None:
                personalization.reload()  # taste vectors live in the model's space
        except Stopped:
            state = "cancelled"
        except Exception as err:
            log.exception("%s: the switch of model failed", self.collection.name)
            state, error = "failed", f"{type(err).__name__}: {err}"
        with self._lock:
            assert self._switch is not None
            self._switch.update(state=state, error=error, finished_at=_now())
            if state == "done":
                self._switch["progress"] = 1.0
            self._save_switch()
        log.info("%s: switch of model to %s: %s", self.collection.name, target, state)

    def _switch_progress(self, share: float) -> None:
        with self._lock:
            if self._switch is not None:
                self._switch["progress"] = round(share, 4)

    def _save_switch(self) -> None:
        _keep(self.collection.folder / SWITCH_FILE, self._switch)

    def _settled_switch(self) -> dict[str, Any] | None:
        """The last switch as the previous process left it: one it was running when it stopped either committed
        (the collection uses the target now) or changed nothing (interrupted: apply again)."""
        path = self.collection.folder / SWITCH_FILE
        if not path.exists():
            return None
        switch: dict[str, Any] = orjson.loads(path.read_bytes())
        if switch.get("state") == "running":
            landed = self.collection.config.embedder == switch.get("target")
            switch.update(state="done" if landed else "interrupted", finished_at=_now())
            atomic_write_bytes(path, orjson.dumps(switch))
        return switch

    # ---- the run --------------------------------------------------------------------------------
    def _model_path(self) -> tuple[Any, str]:
        """The folder of the model in use, and the kind of source its items are tuned on (CannotFinetune if none)."""
        config = self.collection.config
        kind = (config.embedder or {}).get("kind")
        if kind not in LEARNS_FROM:
            raise CannotFinetune(
                f"collection '{config.name}' has {'no embedder' if kind is None else f'a {kind} embedder'}: only "
                "a text model (embedder kind text) or the text side of a CLIP model (kind clip) can be fine-tuned "
                "from search feedback",
                kind=kind,
            )
        if not config.store_source:
            raise CannotFinetune(
                f"collection '{config.name}' keeps no sources: fine-tuning trains on what each item was embedded "
                "from and re-embeds from it, so create the collection with store_source",
            )
        return self.collection.embedder.path, LEARNS_FROM[kind]  # type: ignore[union-attr]

    def _run(self, model_path: Any, kind: str, split: Split, options: Options, replayed: int) -> None:
        began, grid = time.perf_counter(), options.grid
        try:
            model = tuning.load(model_path)
            items = gather(self.collection, kind, split)
            held_out = items.own_words(OWN_WORDS_QUERIES, seed=grid.seed + 1)
            base = quality(model, split.test, items, held_out)
            self._update(phase="training", metrics={"base": base, "tuned": None})
            replay = [tuning.Pair(words, items.item(key)) for words, key in items.own_words(replayed, seed=grid.seed)]
            trials, chosen = tuning.finetune(
                model,
                items.pairs(split.train) + replay,
                items.pairs(split.validation),
                grid,
                targets=items.targets,
                progress=lambda index, trials, share: self._progress(trials, share, began),
                cancelled=self._cancel.is_set,
            )
            self._update(phase="evaluating the tuned model", trials=[t.to_json() for t in trials], chosen=chosen)
            tuned = quality(model, split.test, items, held_out)
            version = "ft-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            model.save(str(self.collection.folder / MODELS_DIR / version))
            self._finish("done", began, metrics={"base": base, "tuned": tuned}, version=version)
        except tuning.Cancelled:
            self._finish("cancelled", began)
        except Exception as err:  # a failed run is reported, never raised into a thread nobody reads
            log.exception("%s: fine-tuning failed", self.collection.name)
            self._finish("failed", began, error=f"{type(err).__name__}: {err}")

    def _progress(self, trials: list[tuning.Trial], share: float, began: float) -> None:
        elapsed = time.perf_counter() - began
        self._update(
            progress=round(share, 4),
            eta_seconds=round(elapsed / share * (1 - share), 1) if share > 0 else None,
            seconds=round(elapsed, 1),
            trials=[t.to_json() for t in trials],
        )

    def _update(self, **changes: Any) -> None:
        with self._lock:
            if self._live is not None:
                self._live.update(changes)

    def _finish(self, state: str, began: float, *, version: str | None = None, **changes: Any) -> None:
        with self._lock:
            report = dict(self._live or {})
            report.update(changes, state=state, phase=None, finished_at=_now(), eta_seconds=None)
            report["seconds"] = round(time.perf_counter() - began, 1)
            report["model"] = {**report.get("model", {}), "version": version}
            if state == "done":
                report["progress"] = 1.0
            _keep(self.collection.folder / FINETUNE_FILE, report)
            self._live = None
        log.info("%s: fine-tuning %s in %.0f s", self.collection.name, state, report["seconds"])


def _keep(path: Path, report: dict[str, Any] | None) -> None:
    """Write a report beside the collection; a collection dropped meanwhile has no folder left to keep it in."""
    try:
        atomic_write_bytes(path, orjson.dumps(report))
    except FileNotFoundError:
        log.info("%s: not kept, the collection is gone", path.name)


def _replayed(options: Options, split: Split, kind: str) -> int:
    """Own-words pairs to mix into training: none for photos, which have no words of their own."""
    return round(options.replay * len(split.train)) if kind == "text" else 0


@dataclass(frozen=True)
class _Curve:
    """A stored trial, drawn by app/ranking/curves.py."""

    learning_rate: float
    warmup: float
    epochs: tuple[EpochLoss, ...]
    best_epoch: int

    @classmethod
    def of(cls, trial: dict[str, Any]) -> _Curve:
        epochs = tuple(EpochLoss(e["epoch"], e["train_loss"], e["val_loss"]) for e in trial["epochs"])
        return cls(trial["learning_rate"], trial["warmup"], epochs, trial["best_epoch"] or 1)
