"""app.ranking: metrics against hand-computed values and sklearn, the numpy ranker, training, early stopping, SVG."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from app.ranking.curves import loss_curves_svg
from app.ranking.metrics import auc, log_loss, ndcg_at_k, precision_at_k, recall_at_k
from app.ranking.model import LogisticRanker
from app.ranking.training import TrainingReport, calibrate, fit_ranker

SVG = "{http://www.w3.org/2000/svg}"
OVERFIT_SEED = 0  # checked for seeds 0-11: every one passes the over-fitting tests


def _logistic_data(rng: np.random.Generator, n: int, weights: np.ndarray, bias: float = 0.0):
    """Rows of standard-normal features whose label is Bernoulli(sigmoid(x · weights + bias))."""
    X = rng.normal(size=(n, len(weights)))
    y = (rng.random(n) < 1 / (1 + np.exp(-(X @ weights + bias)))).astype(int)
    return X, y


# --- metrics ---------------------------------------------------------------------------------------------------

RANKED = [["a", "b", "c", "d"], ["e", "f"], ["x"]]
RELEVANT = [{"a", "c"}, {"f", "g", "h"}, set()]  # the third user has nothing relevant: skipped by every metric


def test_precision_and_recall_at_k_by_hand() -> None:
    # user 1: top-2 [a, b] holds a (1 of 2 relevant); user 2: top-2 [e, f] holds f (1 of 3 relevant)
    assert precision_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert recall_at_k(RANKED, RELEVANT, 2) == pytest.approx((1 / 2 + 1 / 3) / 2)
    assert precision_at_k(RANKED, RELEVANT, 4) == pytest.approx((2 / 4 + 1 / 4) / 2)  # short list still / k
    assert recall_at_k(RANKED, RELEVANT, 4) == pytest.approx((2 / 2 + 1 / 3) / 2)


def test_ndcg_at_k_by_hand() -> None:
    # user 1 at k=3: hits at ranks 1 and 3; ideal has 2 hits (|relevant| = 2 < k)
    user1 = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    # user 2 at k=3: hit at rank 2 only; ideal has min(3, 3) = 3 hits
    user2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert ndcg_at_k(RANKED, RELEVANT, 3) == pytest.approx((user1 + user2) / 2)
    assert ndcg_at_k([["a", "c", "b"]], [{"a", "c"}], 3) == pytest.approx(1.0)
    assert ndcg_at_k([["b", "d"]], [{"a"}], 2) == 0.0


def test_ranking_metrics_undefined_or_bad_input() -> None:
    assert ndcg_at_k([["a"]], [set()], 5) is None
    with pytest.raises(ValueError, match="k must be"):
        precision_at_k(RANKED, RELEVANT, 0)
    with pytest.raises(ValueError, match="users"):
        recall_at_k(RANKED, RELEVANT[:2], 2)


def test_auc_and_log_loss_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + 0.7 * rng.random(200), 0.01, 0.99)
    assert auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, p))
    assert auc(np.ones(5), rng.random(5)) is None
    assert math.isfinite(log_loss(np.array([1, 0]), np.array([0.0, 1.0])))  # clipped, not infinite


# --- model -----------------------------------------------------------------------------------------------------


def _ranker_and_pipeline(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(loc=3.0, scale=[1, 5, 0.1, 20], size=(300, 4))
    y = (X[:, 0] + 0.1 * X[:, 1] + rng.normal(size=300) > 3.5).astype(int)
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    scaler, lr = pipe[0], pipe[1]
    ranker = LogisticRanker(("a", "b", "c", "d"), scaler.mean_, scaler.scale_, lr.coef_[0], lr.intercept_[0])
    return ranker, pipe, X


def test_predict_proba_equals_sklearn_pipeline() -> None:
    ranker, pipe, _ = _ranker_and_pipeline()
    X_new = np.random.default_rng(9).normal(loc=3.0, scale=10, size=(50, 4))
    np.testing.assert_allclose(ranker.predict_proba(X_new), pipe.predict_proba(X_new)[:, 1], rtol=1e-10)
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        ranker.predict_proba(X_new[:, :3])


def test_json_round_trip() -> None:
    ranker, _, X = _ranker_and_pipeline()
    restored = LogisticRanker.from_json(json.loads(json.dumps(ranker.to_json(), allow_nan=False)))
    assert restored.to_json() == ranker.to_json()
    np.testing.assert_array_equal(restored.predict_proba(X), ranker.predict_proba(X))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("coef", [1.0, 2.0, 3.0], "one value per feature"),
        ("mean", [0.0, float("nan"), 0.0, 0.0], "finite"),
        ("scale", [1.0, 0.0, 1.0, 1.0], "positive"),
        ("intercept", float("inf"), "finite"),
        ("intercept", None, "malformed"),
        ("feature_names", ["a", "a", "c", "d"], "distinct"),
        ("coef", "abcd", "list of numbers"),
    ],
)
def test_bad_json_is_refused(field: str, value: object, message: str) -> None:
    data = _ranker_and_pipeline()[0].to_json()
    data[field] = value
    with pytest.raises(ValueError, match=message):
        LogisticRanker.from_json(data)
    del data[field]
    with pytest.raises(ValueError, match="lacks"):
        LogisticRanker.from_json(data)


# --- training --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def learnable_report() -> tuple[TrainingReport, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    weights = np.array([1.5, -1.0, 0.8, 0, 0, 0, 0, 0])
    X_train, y_train = _logistic_data(rng, 1500, weights, bias=-1.5)  # ~25 % positives
    X_val, y_val = _logistic_data(rng, 800, weights, bias=-1.5)
    report = fit_ranker(
        X_train, y_train, X_val, y_val, [f"f{i}" for i in range(8)], alphas=(0.0, 1e-2), max_epochs=25, seed=1
    )
    return report, X_val, y_val


def test_learnable_problem_is_learnt(learnable_report) -> None:
    report, X_val, y_val = learnable_report
    assert auc(y_val, report.model.predict_proba(X_val)) > 0.8
    assert len(report.trials) == 4  # 2 alphas x 2 class weights
    chosen = report.chosen_trial
    assert chosen.best_val_loss == min(t.best_val_loss for t in report.trials)
    # the stored model is the best epoch's, not the last one's
    assert log_loss(y_val, report.model.predict_proba(X_val)) == pytest.approx(chosen.best_val_loss)
    assert (report.n_train, report.n_val) == (1500, 800)
    assert 0 < report.n_train_positive < 1500 and 0 < report.n_val_positive < 800


def test_report_json_round_trip(learnable_report) -> None:
    report = learnable_report[0]
    text = json.dumps(report.to_json(), allow_nan=False)
    restored = TrainingReport.from_json(json.loads(text))
    assert restored.to_json() == report.to_json()
    with pytest.raises(ValueError, match="malformed"):
        TrainingReport.from_json({**report.to_json(), "trials": [{"alpha": 0.0}]})


def test_one_class_or_empty_sets_are_refused() -> None:
    X, y = _logistic_data(np.random.default_rng(0), 50, np.array([1.0, 1.0]))
    with pytest.raises(ValueError, match="val set has only one class"):
        fit_ranker(X, y, X, np.zeros(50, dtype=int), ["a", "b"])
    with pytest.raises(ValueError, match="train set is empty"):
        fit_ranker(X[:0], y[:0], X, y, ["a", "b"])
    with pytest.raises(ValueError, match="only one class"):
        calibrate(X[:, 0], np.ones(50, dtype=int))


def test_calibrate_turns_a_score_into_probabilities() -> None:
    rng = np.random.default_rng(4)
    score = rng.uniform(-1, 1, 4000)  # e.g. cosine similarity
    p_true = 1 / (1 + np.exp(-(4 * score - 1)))
    y = (rng.random(4000) < p_true).astype(int)
    calibrated = calibrate(score[:3000], y[:3000], name="cosine")
    p = calibrated.predict_proba(score[3000:, None])
    assert calibrated.feature_names == ("cosine",)
    assert np.abs(p - p_true[3000:]).max() < 0.05
    assert log_loss(y[3000:], p) < log_loss(y[3000:], (score[3000:] + 1) / 2)  # raw score is no probability


# --- over-fitting and early stopping ---------------------------------------------------------------------------


def _overfit_data(seed: int):
    """40 training rows, 60 features of which 2 carry signal, judged on 4,000 validation rows."""
    rng = np.random.default_rng(seed)
    weights = np.zeros(60)
    weights[:2] = [3.0, -3.0]
    return (*_logistic_data(rng, 40, weights), *_logistic_data(rng, 4000, weights)), [f"f{i}" for i in range(60)]


def test_unregularised_sgd_overfits_a_tiny_training_set() -> None:
    (X_train, y_train, X_val, y_val), names = _overfit_data(OVERFIT_SEED)
    report = fit_ranker(
        X_train, y_train, X_val, y_val, names, alphas=(0.0, 0.1), class_weights=(None,), patience=60, seed=0
    )
    free, ridge = report.trials
    train = np.array([e.train_loss for e in free.epochs])
    val = np.array([e.val_loss for e in free.epochs])
    assert len(val) == 60  # patience=60: no early stop, the whole curve
    best = int(val.argmin())
    assert best < 20
    assert np.all(np.diff(train) < 0)  # training loss falls every epoch ...
    assert val[-1] > val[best] + 0.03  # ... while validation loss climbs away from its minimum
    assert train[-1] < 0.6 * train[best]
    assert ridge.epochs[-1].val_loss < val[-1] - 0.03  # L2 holds the climb back


def test_early_stopping_and_alpha_search_fight_overfitting() -> None:
    (X_train, y_train, X_val, y_val), names = _overfit_data(OVERFIT_SEED)
    report = fit_ranker(X_train, y_train, X_val, y_val, names, class_weights=(None,), seed=0)
    free = report.trials[0]
    assert free.alpha == 0.0
    assert free.stopped_early
    assert free.best_epoch == len(free.epochs) - 5 < 60  # patience=5 epochs past the best one, then stop
    assert report.chosen_trial.alpha > 0
    assert report.chosen_trial.best_val_loss < free.best_val_loss


# --- curves ----------------------------------------------------------------------------------------------------


def test_loss_curves_svg_is_xml_with_the_chosen_curves(learnable_report) -> None:
    report = learnable_report[0]
    root = ET.fromstring(loss_curves_svg(report))
    assert root.tag == f"{SVG}svg"
    lines = root.findall(f"{SVG}polyline")
    chosen = [p for p in lines if p.get("class") in ("chosen-train", "chosen-val")]
    assert len(chosen) == 2
    assert all(len(p.get("points", "").split()) == len(report.chosen_trial.epochs) for p in chosen)
    assert len([p for p in lines if p.get("class") == "other-val"]) == len(report.trials) - 1
    assert root.find(f"{SVG}line[@class='best-epoch']") is not None
    title = "".join(root.find(f"{SVG}text").itertext())
    assert f"class_weight={report.chosen_trial.class_weight}" in title
