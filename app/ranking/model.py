"""LogisticRanker: standardise, dot, sigmoid — a trained ranker that serves with numpy alone and stores as JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)  # eq on numpy arrays is ambiguous; compare to_json() instead
class LogisticRanker:
    """p(positive | x) = sigmoid(((x - mean) / scale) · coef + intercept), one weight per named feature."""

    feature_names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    n_features: int = field(init=False)

    def __post_init__(self) -> None:
        # Validated here, not only in from_json, so no code path can build a ranker that serves garbage.
        if isinstance(self.feature_names, str):
            raise ValueError("feature_names must be a list of names, not one string")
        names = tuple(self.feature_names)
        if len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
            raise ValueError("feature_names must be distinct strings")
        object.__setattr__(self, "feature_names", names)
        object.__setattr__(self, "n_features", len(names))
        for key in ("mean", "scale", "coef"):
            object.__setattr__(self, key, _vector(key, getattr(self, key), len(names)))
        if not np.all(self.scale > 0):
            raise ValueError("scale must be positive (StandardScaler uses 1 for constant features)")
        intercept = float(self.intercept)
        if not np.isfinite(intercept):
            raise ValueError(f"intercept must be finite, got {intercept}")
        object.__setattr__(self, "intercept", intercept)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Log-odds per row; ranks exactly like predict_proba and never saturates."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X must have shape (n, {self.n_features}), got {X.shape}")
        return ((X - self.mean) / self.scale) @ self.coef + self.intercept

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Probability of the positive class per row, shape (n,)."""
        z = self.decision_function(X)
        return np.exp(-np.logaddexp(0.0, -z))  # sigmoid without overflow for large |z|

    def to_json(self) -> dict[str, Any]:
        return {
            "feature_names": list(self.feature_names),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LogisticRanker:
        keys = ("feature_names", "mean", "scale", "coef", "intercept")
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"ranker JSON lacks {missing}")
        try:
            return cls(**{k: data[k] for k in keys})
        except TypeError as e:  # e.g. a string where a number belongs
            raise ValueError(f"ranker JSON is malformed: {e}") from e


def _vector(name: str, values: Any, length: int) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)  # a copy: the frozen ranker must not share the caller's buffer
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a list of numbers: {e}") from e
    if array.shape != (length,):
        raise ValueError(f"{name} must have one value per feature ({length}), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite")
    array.flags.writeable = False
    return array
