"""Fine-tuning the text model from search feedback, in-process with a tiny BERT the tests build (no download).

The shop is app/demo's: its shoppers search in slang no model knows ("crimson relnal" for a red backpack), and
the truth behind each query is known, so a run must show the tuned model finding what the base one could not.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.demo.catalogue import COLOURS, TYPES
from app.demo.feedback import feedback_clicks, slang_names
from app.demo.shop import shop_items
from app.main import create_app
from tests.api.helpers import error
from tests.support.tiny_text import build_tiny_text

pytestmark = pytest.mark.slow
C = "/collections/shop"
ITEMS = shop_items(120)
FAST = {"learning_rates": [1e-3], "warmups": [0.0], "max_epochs": 6, "patience": 2, "batch_size": 32}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    words = [w for pair in slang_names().values() for w in pair] + [w for s in COLOURS.values() for w in s]
    build_tiny_text(folder, [i.product.text for i in ITEMS] + words + [w for t in TYPES.values() for w in t[1]])
    return folder


@pytest.fixture
def shop(tmp_path: Path, models: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", index_threads=2, models_dir=models)
    with TestClient(create_app(settings)) as client:
        body = {"embedder": {"kind": "text", "model": "tiny-text"}, "store_source": True}
        assert client.put(C, json=body).status_code == 201
        points = [{"id": i.id, "text": i.product.text, "payload": {"category": i.product.type}} for i in ITEMS]
        assert client.put(f"{C}/points", json={"points": points}).status_code == 200
        yield client


def _clicks(client: TestClient, n: int) -> None:
    events = feedback_clicks(ITEMS, n, now=time.time())
    assert client.post(f"{C}/events", json={"events": events}).json()["accepted"] == n


def _finished(client: TestClient, timeout: float = 180) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := client.get(f"{C}/embedder/finetune").json())["state"] == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    return status


def test_tuning_on_the_shops_clicks_teaches_the_model_its_slang(shop: TestClient, tmp_path: Path) -> None:
    _clicks(shop, 300)
    started = shop.post(f"{C}/embedder/finetune", json=FAST)
    assert started.status_code == 202 and started.json()["state"] == "running"
    report = _finished(shop)
    assert report["state"] == "done", report
    assert report["pairs"]["source"] == "feedback" and report["pairs"]["test"] >= 30
    base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
    assert tuned["mrr"] > base["mrr"] + 0.3 and tuned["recall_at_10"] > base["recall_at_10"], report["metrics"]
    (trial,) = report["trials"]
    assert 1 <= trial["best_epoch"] <= len(trial["epochs"]) <= 6
    assert trial["epochs"][-1]["train_loss"] < trial["epochs"][0]["train_loss"]
    assert (tmp_path / "data" / "shop" / "models" / report["model"]["version"] / "modules.json").exists()
    svg = shop.get(f"{C}/embedder/finetune/curves.svg")
    assert svg.headers["content-type"] == "image/svg+xml" and 'class="best-epoch"' in svg.text
    assert report["model"]["base"] == {"kind": "text", "model": "tiny-text"}


def test_too_many_epochs_on_few_pairs_overfit_and_early_stopping_keeps_the_best(shop: TestClient) -> None:
    rng = random.Random(4)  # words that mean nothing: all the model can do with them is memorise
    words = [w for pair in slang_names().values() for w in pair]
    pairs = [{"query": " ".join(rng.sample(words, 2)), "item": rng.choice(ITEMS).id} for _ in range(40)]
    grid = {**FAST, "learning_rates": [5e-3], "max_epochs": 20, "patience": 3, "batch_size": 8}
    shop.post(f"{C}/embedder/finetune", json={**grid, "pairs": pairs, "validation_fraction": 0.2})
    (trial,) = _finished(shop)["trials"]
    epochs, best = trial["epochs"], trial["best_epoch"]
    assert trial["stopped_early"] and best < len(epochs)
    assert epochs[-1]["train_loss"] < epochs[best - 1]["train_loss"]  # training went on improving…
    assert epochs[-1]["val_loss"] > epochs[best - 1]["val_loss"]  # …while validation got worse: over-fitting
    assert epochs[best - 1]["val_loss"] == min(e["val_loss"] for e in epochs)


def test_one_run_at_a_time_and_a_cancel_stops_it(shop: TestClient) -> None:
    _clicks(shop, 300)
    long = {**FAST, "learning_rates": [1e-5, 2e-5, 3e-5, 4e-5], "max_epochs": 50, "patience": 10}
    assert shop.post(f"{C}/embedder/finetune", json=long).status_code == 202
    error(shop.post(f"{C}/embedder/finetune", json=FAST), 409, "finetune_in_progress")
    cancelled = shop.delete(f"{C}/embedder/finetune")
    assert cancelled.json()["state"] == "cancelled" and cancelled.json()["model"]["version"] is None
    assert shop.get(f"{C}/embedder/finetune").json()["state"] == "cancelled"  # kept as the last run's report


def test_logged_searches_give_the_pairs_hard_negatives(shop: TestClient) -> None:
    events = feedback_clicks(ITEMS, 300, now=time.time())
    for event in events[:50]:
        shop.post(f"{C}/search", json={"text": event["query"], "k": 5, "log": True})
    assert shop.post(f"{C}/events", json={"events": events}).json()["accepted"] == 300
    shop.post(f"{C}/embedder/finetune", json={**FAST, "max_epochs": 1})
    report = _finished(shop)
    pairs = report["pairs"]
    assert report["state"] == "done"
    assert 0 < pairs["with_negatives"] < pairs["train"] + pairs["validation"] + pairs["test"]


def test_refusals_say_what_is_missing(shop: TestClient) -> None:
    error(shop.get(f"{C}/embedder/finetune"), 404, "finetune_not_found")
    error(shop.get(f"{C}/embedder/finetune/curves.svg"), 404, "finetune_not_found")
    _clicks(shop, 12)
    few = error(shop.post(f"{C}/embedder/finetune", json=FAST), 409, "not_enough_pairs")
    assert few["details"]["needed"]["train"] == 20 and sum(few["details"]["got"].values()) <= 12
    assert shop.put("/collections/photos", json={"embedder": {"kind": "image"}}).status_code == 201
    error(shop.post("/collections/photos/embedder/finetune", json=FAST), 400, "cannot_finetune")
    plain = {"embedder": {"kind": "text", "model": "tiny-text"}}  # no store_source: nothing to train on
    assert shop.put("/collections/plain", json=plain).status_code == 201
    assert "store_source" in error(shop.post("/collections/plain/embedder/finetune"), 400, "cannot_finetune")["message"]
