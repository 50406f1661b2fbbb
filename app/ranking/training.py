"""Train a LogisticRanker: epoch-wise SGD per (alpha, class_weight), early stopping on validation log-loss."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from app.ranking.model import LogisticRanker

# sklearn is imported where a ranker trains, not at module level: with scipy it costs every server start
# ~0.7 s and ~60 MiB (benchmarks/restart.py), and most servers never train one.

# A val-loss drop smaller than this is noise, not progress: it must not reset the patience counter.
MIN_DELTA = 1e-4
CLASS_WEIGHTS = (None, "balanced")


@dataclass(frozen=True)
class EpochLoss:
    epoch: int  # 1-based: losses measured after this many passes over the training set
    train_loss: float
    val_loss: float


@dataclass(frozen=True)
class Trial:
    """One (alpha, class_weight) run; best_epoch is the epoch whose coefficients it would keep."""

    alpha: float
    class_weight: str | None
    epochs: tuple[EpochLoss, ...]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "class_weight": self.class_weight,
            "epochs": [{"epoch": e.epoch, "train_loss": e.train_loss, "val_loss": e.val_loss} for e in self.epochs],
            "best_epoch": self.best_epoch,
            "best_val_loss": self.best_val_loss,
            "stopped_early": self.stopped_early,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Trial:
        epochs = tuple(EpochLoss(int(e["epoch"]), float(e["train_loss"]), float(e["val_loss"])) for e in data["epochs"])
        return cls(
            float(data["alpha"]), data["class_weight"], epochs,
            int(data["best_epoch"]), float(data["best_val_loss"]), bool(data["stopped_early"]),
        )  # fmt: skip


@dataclass(frozen=True)
class TrainingReport:
    trials: tuple[Trial, ...]
    chosen: int  # index into trials: the lowest best_val_loss
    model: LogisticRanker
    n_train: int
    n_val: int
    n_train_positive: int
    n_val_positive: int
    seconds: float

    @property
    def chosen_trial(self) -> Trial:
        return self.trials[self.chosen]

    def to_json(self) -> dict[str, Any]:
        return {
            "trials": [t.to_json() for t in self.trials],
            "chosen": self.chosen,
            "model": self.model.to_json(),
            **{k: getattr(self, k) for k in ("n_train", "n_val", "n_train_positive", "n_val_positive", "seconds")},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingReport:
        try:
            trials = tuple(Trial.from_json(t) for t in data["trials"])
            chosen = int(data["chosen"])
            if not 0 <= chosen < len(trials):
                raise ValueError(f"chosen={chosen} but there are {len(trials)} trials")
            counts = {k: int(data[k]) for k in ("n_train", "n_val", "n_train_positive", "n_val_positive")}
            model = LogisticRanker.from_json(data["model"])
            return cls(trials, chosen, model, seconds=float(data["seconds"]), **counts)
        except (KeyError, TypeError) as e:
            raise ValueError(f"training report JSON is malformed: {e!r}") from e


def fit_ranker(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    feature_names: Sequence[str],
    *,
    alphas: Sequence[float] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1),
    class_weights: Sequence[str | None] = CLASS_WEIGHTS,
    max_epochs: int = 60,
    patience: int = 5,
    seed: int = 0,
    eta0: float = 0.1,
) -> TrainingReport:
    """Try every (alpha, class_weight), keep each trial's best epoch, return the trial with the lowest val loss.

    Every trial sees the same scaler (fit on train only) and the same epoch shuffles, so trials differ
    only in alpha and class weight. Val loss is the unweighted log-loss even for "balanced" trials: the
    model must predict the real click rate, and only one scale lets trials be compared.
    """
    start = time.perf_counter()
    X_train, y_train = _check_set("train", X_train, y_train, len(feature_names))
    X_val, y_val = _check_set("val", X_val, y_val, len(feature_names))
    if max_epochs < 1 or patience < 1 or not alphas or not class_weights:
        raise ValueError("max_epochs and patience must be >= 1 and alphas/class_weights non-empty")
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X_train)
    Xt, Xv = scaler.transform(X_train), scaler.transform(X_val)
    runs = [
        _run_trial(Xt, y_train, Xv, y_val, alpha, cw, max_epochs=max_epochs, patience=patience, seed=seed, eta0=eta0)
        for alpha, cw in itertools.product(alphas, class_weights)
    ]
    chosen = min(range(len(runs)), key=lambda i: runs[i][0].best_val_loss)
    _, coef, intercept = runs[chosen]
    model = LogisticRanker(tuple(feature_names), scaler.mean_, scaler.scale_, coef, intercept)
    return TrainingReport(
        trials=tuple(trial for trial, _, _ in runs),
        chosen=chosen,
        model=model,
        n_train=len(y_train),
        n_val=len(y_val),
        n_train_positive=int(y_train.sum()),
        n_val_positive=int(y_val.sum()),
        seconds=time.perf_counter() - start,
    )


def _run_trial(
    Xt: np.ndarray, yt: np.ndarray, Xv: np.ndarray, yv: np.ndarray, alpha: float, class_weight: str | None,
    *, max_epochs: int, patience: int, seed: int, eta0: float,
) -> tuple[Trial, np.ndarray, float]:  # fmt: skip
    """One trial, one epoch per partial_fit; returns the trial and the coefficients of its best epoch."""
    # "invscaling" (eta = eta0 / sqrt(samples seen); sklearn counts them across partial_fit calls): with a
    # constant step the val loss of a 5,000-row set jumped by up to 0.004 from epoch to epoch, which early
    # stopping takes for progress. "adaptive" lowers eta only between epochs inside one fit() call, so under
    # partial_fit it would be constant too. shuffle=False because the epochs are shuffled, seeded, below.
    from sklearn.linear_model import SGDClassifier

    clf = SGDClassifier(
        loss="log_loss", penalty="l2" if alpha > 0 else None, alpha=alpha,
        learning_rate="invscaling", eta0=eta0, power_t=0.5, shuffle=False, random_state=seed,
    )  # fmt: skip
    rng = np.random.default_rng(seed)
    weights = _sample_weights(yt, class_weight)
    epochs: list[EpochLoss] = []
    best_loss, best_epoch, best_coef, best_intercept = np.inf, 0, np.zeros(Xt.shape[1]), 0.0
    for epoch in range(1, max_epochs + 1):
        order = rng.permutation(len(yt))
        clf.partial_fit(Xt[order], yt[order], classes=[0, 1], sample_weight=weights[order])
        coef, intercept = clf.coef_.ravel(), float(clf.intercept_[0])
        val_loss = _log_loss(yv, Xv @ coef + intercept)
        epochs.append(EpochLoss(epoch, _log_loss(yt, Xt @ coef + intercept), val_loss))
        if val_loss < best_loss - MIN_DELTA:
            best_loss, best_epoch = val_loss, epoch
            best_coef, best_intercept = coef.copy(), intercept
        elif epoch - best_epoch >= patience:
            break
    stopped_early = len(epochs) < max_epochs
    trial = Trial(float(alpha), class_weight, tuple(epochs), best_epoch, best_loss, stopped_early)
    return trial, best_coef, best_intercept


def _log_loss(y: np.ndarray, logits: np.ndarray) -> float:
    """metrics.log_loss computed from logits: twice per epoch per trial, where sklearn's input checks cost
    ~10 ms a call and dominated training time; from logits it needs no clipping either."""
    return float(np.mean(np.logaddexp(0.0, logits) - y * logits))


def _sample_weights(y: np.ndarray, class_weight: str | None) -> np.ndarray:
    """'balanced' gives each class the same total weight, n / (2 * n_class), as sklearn's class_weight does."""
    if class_weight is None:
        return np.ones(len(y))
    if class_weight != "balanced":
        raise ValueError(f"class_weight must be None or 'balanced', got {class_weight!r}")
    counts = np.bincount(y, minlength=2)
    return (len(y) / (2 * counts))[y]


def calibrate(scores_train: np.ndarray, y_train: np.ndarray, name: str = "score") -> LogisticRanker:
    """Platt scaling: a 1-feature ranker mapping a baseline score (cosine, popularity) to a probability.

    Lightly L2-regularised (C=1 on the standardised score, summed loss) so a score that happens to
    separate the training rows perfectly still gets a finite slope.
    """
    X, y = _check_set("calibration", np.asarray(scores_train, dtype=np.float64).reshape(-1, 1), y_train, 1)
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(X)
    lr = LogisticRegression(C=1.0).fit(scaler.transform(X), y)
    return LogisticRanker((name,), scaler.mean_, scaler.scale_, lr.coef_.ravel(), float(lr.intercept_[0]))


def _check_set(label: str, X: np.ndarray, y: np.ndarray, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != n_features:
        raise ValueError(f"{label} X must have shape (n, {n_features}), got {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"{label} y must have shape ({len(X)},), got {y.shape}")
    if len(y) == 0:
        raise ValueError(f"{label} set is empty")
    if not np.all(np.isin(y, (0, 1))):
        raise ValueError(f"{label} y must hold only 0 and 1")
    if len(np.unique(y)) < 2:
        raise ValueError(f"{label} set has only one class ({int(y[0])}): need positives and negatives")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{label} X holds NaN or infinite values")
    return X, y.astype(np.int64)
