"""The ranker store: the trained ranker of a collection, kept as JSON beside its database (no pickle)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from app.collections.layout import RANKER_FILE
from app.ranking.model import LogisticRanker
from app.ranking.training import TrainingReport
from app.storage.files import atomic_write_bytes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranker:
    model: LogisticRanker
    report: dict[str, Any]  # everything GET /ranker shows, the model included

    def score(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        return self.model.predict_proba(feature_matrix(columns, self.model.feature_names))


def feature_matrix(columns: dict[str, np.ndarray], names: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.column_stack([columns[name] for name in names]).astype(np.float64)


def load(folder: Path) -> Ranker | None:
    """The saved ranker; a missing or unreadable file means none (it can be trained again from the events)."""
    path = folder / RANKER_FILE
    if not path.exists():
        return None
    try:
        report = orjson.loads(path.read_bytes())
        return Ranker(LogisticRanker.from_json(report["training"]["model"]), report)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        log.warning("%s: ignoring an unreadable ranker (%s); train it again", path, err)
        return None


def save(folder: Path, ranker: Ranker) -> None:
    atomic_write_bytes(folder / RANKER_FILE, orjson.dumps(ranker.report, option=orjson.OPT_SERIALIZE_NUMPY))


def training_report(ranker: Ranker) -> TrainingReport:
    return TrainingReport.from_json(ranker.report["training"])
