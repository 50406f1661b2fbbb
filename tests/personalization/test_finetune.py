"""Fine-tuning the text model from search feedback, in-process with a tiny BERT and a tiny CLIP the tests build
(no download).

The shop is app/demo's: its shoppers search in slang no model knows ("crimson relnal" for a red backpack), and
the truth behind each query is known, so a run must show the tuned model finding what the base one could not.
"""

from __future__ import annotations

import base64
import contextlib
import json
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
from tests.support.tiny_clip import build_tiny_clip
from tests.support.tiny_text import build_tiny_text

pytestmark = pytest.mark.slow
C = "/collections/shop"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "finetune"
ITEMS = shop_items(120)
FAST = {"learning_rates": [1e-3], "warmups": [0.0], "max_epochs": 6, "patience": 2, "batch_size": 32}


def build_models(folder: Path) -> Path:
    """A tiny BERT that knows the demo shop's words (its slang included) and a tiny CLIP, in `folder`."""
    words = [w for pair in slang_names().values() for w in pair] + [w for s in COLOURS.values() for w in s]
    build_tiny_text(folder, [i.product.text for i in ITEMS] + words + [w for t in TYPES.values() for w in t[1]])
    build_tiny_clip(folder)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_models(tmp_path_factory.mktemp("models"))


@contextlib.contextmanager
def _server(tmp_path: Path, models: Path, *, load: bool) -> Iterator[TestClient]:
    """The app on tmp_path/data (in-process); with `load`, the shop's collection made and filled first."""
    settings = Settings(data_dir=tmp_path / "data", index_threads=2, models_dir=models)
    with TestClient(create_app(settings)) as client:
        if load:
            body = {"embedder": {"kind": "text", "model": "tiny-text"}, "store_source": True}
            assert client.put(C, json=body).status_code == 201
            points = [{"id": i.id, "text": i.product.text, "payload": {"category": i.product.type}} for i in ITEMS]
            assert client.put(f"{C}/points", json={"points": points}).status_code == 200
        yield client


@pytest.fixture
def shop(tmp_path: Path, models: Path) -> Iterator[TestClient]:
    with _server(tmp_path, models, load=True) as client:
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
    svg = shop.get(f"{C}/embedder/finetune/curves.svg").text
    assert svg.count('class="best-epoch"') == 1
    ARTIFACTS.mkdir(parents=True, exist_ok=True)  # the over-fitting picture, to look at
    (ARTIFACTS / "overfitting-curves.svg").write_text(svg)


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


def _switched(client: TestClient, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (status := client.get(f"{C}/embedder").json())["switch"]["state"] == "running":
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    return status


def _found(client: TestClient, words: str, wanted: set[int]) -> int:
    hits = client.post(f"{C}/search", json={"text": words, "k": 5, "with_payload": False}).json()["results"]
    return sum(hit["id"] in wanted for hit in hits)


def test_apply_re_embeds_every_point_and_rollback_goes_back(tmp_path: Path, models: Path) -> None:
    red_backpacks = {i.id for i in ITEMS if (i.product.type, i.product.colour) == ("backpack", "red")}
    words = f"crimson {slang_names()['backpack'][0]}"
    with _server(tmp_path, models, load=True) as shop:
        _clicks(shop, 300)
        shop.post(f"{C}/embedder/finetune", json=FAST)
        version = _finished(shop)["model"]["version"]
        assert shop.get(f"{C}/embedder").json() == {
            "embedder": {"kind": "text", "model": "tiny-text"}, "versions": [version], "switch": None,
        }  # fmt: skip
        before = _found(shop, words, red_backpacks)
        vector_before = _vector(shop, 3)

        assert shop.post(f"{C}/embedder/finetune/apply").status_code == 202
        status = _switched(shop)
        assert status["switch"]["state"] == "done" and status["embedder"]["version"] == version
        assert _found(shop, words, red_backpacks) > before  # queries and points both in the tuned model's space
        assert _vector(shop, 3) != vector_before
        new = {"id": 9999, "text": "crimson backpack with a secret anti-theft pocket"}
        shop.put(f"{C}/points", json={"points": [new]})
        assert shop.post(f"{C}/search", json={"text": new["text"], "k": 1}).json()["results"][0]["id"] == 9999
        shop.post(f"{C}/points/delete", json={"ids": [9999]})

    with _server(tmp_path, models, load=False) as restarted:  # the version is in the stored config: it loads again
        assert restarted.get(f"{C}/embedder").json()["embedder"]["version"] == version
        assert _found(restarted, words, red_backpacks) > before
        assert restarted.post(f"{C}/embedder/finetune/rollback").status_code == 202
        status = _switched(restarted)
        assert status["switch"]["state"] == "done" and status["embedder"] == {"kind": "text", "model": "tiny-text"}
        assert _vector(restarted, 3) == pytest.approx(vector_before, abs=1e-5)
        error(restarted.post(f"{C}/embedder/finetune/rollback"), 400, "invalid_input")  # on the base already
        unknown = {"version": "ft-20000101T000000000000Z"}
        error(restarted.post(f"{C}/embedder/finetune/apply", json=unknown), 404, "finetune_not_found")


def _vector(client: TestClient, pid: int | str) -> list[float]:
    return client.post(f"{C}/points/get", json={"ids": [pid], "with_vector": True}).json()["points"][0]["vector"]


def test_points_written_while_re_embedding_get_the_new_model(shop: TestClient) -> None:
    _clicks(shop, 300)
    shop.post(f"{C}/embedder/finetune", json=FAST)
    version = _finished(shop)["model"]["version"]
    collection = shop.app.state.registry.get("shop")  # type: ignore[attr-defined]
    spec = {"kind": "text", "model": "tiny-text", "version": version}
    tuned = collection.embedder_for(spec)
    as_of = collection.seq  # the re-embedding read every point as of here…
    shop.put(f"{C}/points", json={"points": [{"id": 5000, "text": "olive rain jacket with sealed seams"}]})
    collection.switch_embedder(spec, tuned, {}, as_of)  # …and made no vector for the point written after
    stored = shop.post(f"{C}/points/get", json={"ids": [5000], "with_vector": True}).json()["points"][0]["vector"]
    assert stored == pytest.approx(tuned.embed_texts(["olive rain jacket with sealed seams"])[0].tolist(), abs=1e-5)


def test_a_switch_cut_short_by_a_crash_reads_as_interrupted(tmp_path: Path, models: Path) -> None:
    with _server(tmp_path, models, load=True):
        pass
    target = {"kind": "text", "model": "tiny-text", "version": "ft-20260101T000000000000Z"}
    running = {"state": "running", "previous": None, "target": target, "progress": 0.4, "started_at": "2026-01-01",
               "finished_at": None, "error": None}  # fmt: skip
    (tmp_path / "data" / "shop" / "embedder-switch.json").write_text(json.dumps(running))
    with _server(tmp_path, models, load=False) as client:
        status = client.get(f"{C}/embedder").json()
    assert status["switch"]["state"] == "interrupted" and status["embedder"] == {"kind": "text", "model": "tiny-text"}


def test_a_snapshot_carries_the_tuned_model_it_uses(shop: TestClient, tmp_path: Path) -> None:
    _clicks(shop, 300)
    shop.post(f"{C}/embedder/finetune", json={**FAST, "max_epochs": 2})
    version = _finished(shop)["model"]["version"]
    shop.post(f"{C}/embedder/finetune/apply")
    _switched(shop)
    snapshot = shop.post(f"{C}/snapshots").json()["name"]
    assert shop.delete(C).status_code == 200  # the folder and its models/ are gone; the snapshot stays
    restored = shop.post(f"{C}/snapshots/{snapshot}/restore")
    assert restored.status_code == 200, restored.text
    assert shop.get(f"{C}/embedder").json()["embedder"]["version"] == version
    assert (tmp_path / "data" / "shop" / "models" / version / "modules.json").exists()
    assert shop.post(f"{C}/search", json={"text": "crimson backpack", "k": 3}).status_code == 200


def test_a_clip_collection_aims_its_words_at_its_photos_and_the_photos_keep_their_vectors(
    tmp_path: Path, models: Path
) -> None:
    """CLIP tunes its text tower against the photos' stored vectors: the slang finds its photos after apply, every
    photo keeps the vector it had (no photo is embedded again), and points kept as text move with the new words."""
    photos = [{"id": i.id, "image": base64.b64encode(i.picture()).decode()} for i in ITEMS]
    caption = {"id": "caption", "text": "a red backpack with two pockets"}
    red_backpacks = {i.id for i in ITEMS if (i.product.type, i.product.colour) == ("backpack", "red")}
    words = f"crimson {slang_names()['backpack'][0]}"
    with _server(tmp_path, models, load=False) as shop:
        body = {"embedder": {"kind": "clip", "model": "tiny-clip"}, "store_source": True}
        assert shop.put(C, json=body).status_code == 201
        assert shop.put(f"{C}/points", json={"points": [*photos, caption]}).status_code == 200
        _clicks(shop, 300)
        ids = [i.id for i in ITEMS]
        before = shop.post(f"{C}/points/get", json={"ids": ids, "with_vector": True}).json()["points"]
        found_before, caption_before = _found(shop, words, red_backpacks), _vector(shop, "caption")

        assert shop.post(f"{C}/embedder/finetune", json=FAST).status_code == 202
        report = _finished(shop)
        assert report["state"] == "done", report
        assert report["pairs"]["replay"] == 0 and report["pairs"]["test"] >= 30  # photos have no words to replay
        base, tuned = report["metrics"]["base"], report["metrics"]["tuned"]
        # Four click seeds × two rates: MRR 0.04-0.06 → 0.13-0.24, recall@10 0.11 → 0.32-0.74 (the tiny CLIP's random
        # image tower tells the photos apart only roughly, so its floor is higher than the text model's)
        assert tuned["mrr"] > base["mrr"] + 0.04 and tuned["recall_at_10"] > base["recall_at_10"] + 0.1, report
        assert tuned["own_words_mrr"] is None

        assert shop.post(f"{C}/embedder/finetune/apply").status_code == 202
        assert _switched(shop)["embedder"]["version"] == report["model"]["version"]
        after = shop.post(f"{C}/points/get", json={"ids": ids, "with_vector": True}).json()["points"]
        assert [p["vector"] for p in after] == [p["vector"] for p in before]
        assert _vector(shop, "caption") != pytest.approx(caption_before, abs=1e-4)
        assert _found(shop, words, red_backpacks) > found_before
        again = shop.post(f"{C}/search", json={"image": photos[0]["image"], "k": 1}).json()["results"][0]
        assert again["id"] == ITEMS[0].id and again["score"] == pytest.approx(1, abs=1e-4)  # the same image tower
