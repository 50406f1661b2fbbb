"""Text and CLIP embedders through the API: the real MiniLM model, and a tiny CLIP built by the test."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.helpers import error
from tests.support.tiny_clip import build_tiny_clip

CATALOGUE = [
    ("shoe-1", "Men's lightweight running shoes, breathable mesh", "shoes"),
    ("shoe-2", "Trail running sneakers with grippy soles", "shoes"),
    ("shoe-3", "Leather ankle boots for winter", "shoes"),
    ("bag-1", "Red leather handbag with gold clasp", "bags"),
    ("bag-2", "Canvas tote bag for groceries", "bags"),
    ("pan-1", "Stainless steel frying pan, 28 cm", "kitchen"),
    ("pan-2", "Non-stick wok for stir fry", "kitchen"),
    ("kettle-1", "Electric kettle, 1.7 litres, auto shut-off", "kitchen"),
    ("phone-1", "Smartphone with 6.1 inch screen and dual camera", "electronics"),
    ("head-1", "Noise cancelling wireless headphones", "electronics"),
    ("tent-1", "Two-person camping tent, waterproof", "outdoor"),
    ("bike-1", "Mountain bike with 21 gears", "outdoor"),
]


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    build_tiny_clip(folder)
    return folder


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[TestClient]:
    """One server for the module, so the real model loads once."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), models_dir=models_dir)
    with TestClient(create_app(settings)) as client:
        body = {"embedder": {"kind": "text"}, "payload_indexes": {"category": "keyword"}}
        assert client.put("/collections/products", json=body).status_code == 201
        points = [{"id": i, "text": t, "payload": {"category": c}} for i, t, c in CATALOGUE]
        assert client.put("/collections/products/points", json={"points": points}).status_code == 200
        yield client


def _top(client: TestClient, text: str, k: int = 3, **extra: object) -> list[str]:
    body = client.post("/collections/products/search", json={"text": text, "k": k, **extra})
    assert body.status_code == 200, body.text
    return [r["id"] for r in body.json()["results"]]


def test_minilm_puts_synonyms_together(shop: TestClient) -> None:
    info = shop.get("/collections/products").json()
    assert info["dim"] == 384 and info["embedder"] == {"kind": "text", "model": "all-MiniLM-L6-v2"}
    shop.put("/collections/words", json={"embedder": {"kind": "text"}})
    words = ["crimson sneakers", "stainless steel frying pan"]
    shop.put("/collections/words/points", json={"points": [{"id": w, "text": w} for w in words]})
    hits = shop.post("/collections/words/search", json={"text": "red running shoes", "k": 2}).json()["results"]
    assert [h["id"] for h in hits] == words and hits[0]["score"] > hits[1]["score"] + 0.2


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("running shoes", {"shoe-1", "shoe-2"}),
        ("something to cook eggs in", {"pan-1", "pan-2"}),
        ("bluetooth earphones", {"head-1"}),
        ("a purse", {"bag-1", "bag-2"}),
    ],
)
def test_typed_queries_find_the_right_products(shop: TestClient, query: str, expected: set[str]) -> None:
    assert expected <= set(_top(shop, query)), _top(shop, query)


def test_filters_and_bad_text(shop: TestClient) -> None:
    assert set(_top(shop, "red", filter={"must": [{"key": "category", "match": "kitchen"}]})) <= {
        "pan-1",
        "pan-2",
        "kettle-1",
    }
    error(shop.post("/collections/products/search", json={"text": ""}), 422, "validation_error")
    error(shop.post("/collections/products/search", json={"text": "   "}), 400, "invalid_input")
    err = error(
        shop.put("/collections/products/points", json={"points": [{"id": "x", "text": " "}]}), 400, "invalid_input"
    )
    assert "'x'" in err["message"]
    error(shop.post("/collections/products/search", json={"sequence": "ACGT"}), 400, "wrong_modality")


def test_missing_model_fails_at_creation_and_says_what_to_do(shop: TestClient, models_dir: Path) -> None:
    err = error(
        shop.put("/collections/m", json={"embedder": {"kind": "text", "model": "nope-v9"}}), 400, "model_not_found"
    )
    assert "UMBRELLA_MODELS_DIR" in err["message"] and "gt-nope-v9" in err["message"]
    assert str(models_dir) not in str(err)  # nothing about the server's disk
    error(shop.get("/collections/m"), 404, "collection_not_found")


@pytest.mark.parametrize(
    "model",
    [
        "/etc",
        "/tmp/tiny-clip",
        "../tiny-clip",
        "a/../../tiny-clip",
        "..",
        "a/b/c",
        "a\\b",
        "~root/x",
        "C:/models/x",
        "",
    ],
)
def test_a_model_is_a_name_never_a_path(shop: TestClient, models_dir: Path, model: str) -> None:
    response = shop.put("/collections/p", json={"embedder": {"kind": "clip", "model": model}})
    err = error(response, 400 if model else 422, "invalid_input" if model else "validation_error")
    assert str(models_dir) not in str(err) and "tiny-clip" not in str(err["details"]).replace(model[:100], "")
    error(shop.get("/collections/p"), 404, "collection_not_found")


def _png(rgb: tuple[int, int, int]) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), rgb).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_tiny_clip_embeds_photos_and_words_in_one_space(shop: TestClient) -> None:
    response = shop.put("/collections/looks", json={"embedder": {"kind": "clip", "model": "tiny-clip"}})
    assert response.status_code == 201, response.text
    assert response.json()["dim"] == 16
    points = [
        {"id": "red", "image": _png((220, 20, 20))},
        {"id": "blue", "image": _png((20, 20, 220))},
        {"id": "caption", "text": "a red leather handbag"},
    ]
    assert shop.put("/collections/looks/points", json={"points": points}).status_code == 200
    by_photo = shop.post("/collections/looks/search", json={"image": _png((220, 20, 20)), "k": 3}).json()
    assert by_photo["results"][0]["id"] == "red" and by_photo["results"][0]["score"] == pytest.approx(1, abs=1e-4)
    by_words = shop.post("/collections/looks/search", json={"text": "red leather handbag", "k": 3}).json()
    assert len(by_words["results"]) == 3 and np.isfinite([r["score"] for r in by_words["results"]]).all()
    error(shop.post("/collections/looks/search", json={"image": "bm90IGFuIGltYWdl"}), 400, "invalid_image")


def test_a_server_without_model_collections_never_imports_torch(tmp_path: Path) -> None:
    script = f"""
import sys
from fastapi.testclient import TestClient
from app.core.config import Settings
from app.main import create_app
with TestClient(create_app(Settings(data_dir={str(tmp_path)!r}))) as c:
    c.put("/collections/raw", json={{"dim": 3}})
    c.put("/collections/raw/points", json={{"points": [{{"id": 1, "vector": [1, 2, 3]}}]}})
    c.post("/collections/raw/search", json={{"vector": [1, 2, 3]}})
print("torch" in sys.modules, "sentence_transformers" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


COMMANDS = [
    "lock the front door",
    "unlock the front door",
    "turn on the kitchen lights",
    "turn off the kitchen lights",
    "set the thermostat to twenty degrees",
    "play some jazz music",
    "stop the music",
    "what is the weather today",
    "set an alarm for seven am",
    "cancel my alarm",
    "call mom",
    "send a text message to john",
    "open the garage door",
    "close the garage door",
    "start the vacuum cleaner",
    "turn up the volume",
    "turn down the volume",
    "read my new emails",
    "add milk to the shopping list",
    "show me the security camera",
    "dim the bedroom lights",
    "start the coffee machine",
]
# Transcripts as a speech recogniser gets them wrong: misspelt, clipped, or said another way.
NOISY = {
    "plese lock the frunt door": 0,
    "unlok the front dor": 1,
    "turn on kitchin lights": 2,
    "switch off the kitchen light": 3,
    "set thermostat to 20 degrees": 4,
    "play sum jaz": 5,
    "stop music please": 6,
    "whats the wether today": 7,
    "wake me up at seven": 8,
    "cancel the alarm": 9,
    "call my mother": 10,
    "text john": 11,
    "open garage": 12,
    "shut the garage door": 13,
    "start vacum": 14,
    "louder please": 15,
    "make it quieter": 16,
    "read new emails": 17,
    "put milk on my shopping list": 18,
    "show security cam": 19,
    "dim bedroom light": 20,
    "make me a coffee": 21,
}
# Measured with all-MiniLM-L6-v2: right commands score ≥ 0.34, unrelated sentences ≤ 0.19.
NO_MATCH_BELOW = 0.25


def test_speech_commands_match_noisy_transcripts_and_refuse_unrelated_ones(shop: TestClient) -> None:
    assert shop.put("/collections/commands", json={"embedder": {"kind": "text"}}).status_code == 201
    points = [{"id": i, "text": c, "payload": {"command": c}} for i, c in enumerate(COMMANDS)]
    assert shop.put("/collections/commands/points", json={"points": points}).status_code == 200
    searches = [{"text": t, "k": 1, "score_threshold": NO_MATCH_BELOW} for t in NOISY]
    answers = shop.post("/collections/commands/search/batch", json={"searches": searches}).json()["results"]
    got = {t: [r["id"] for r in a["results"]] for t, a in zip(NOISY, answers, strict=True)}
    assert got == {t: [want] for t, want in NOISY.items()}
    unrelated = ["the capital of france is paris", "my cat likes fish", "how tall is mount everest"]
    searches = [{"text": t, "k": 1, "score_threshold": NO_MATCH_BELOW} for t in unrelated]
    answers = shop.post("/collections/commands/search/batch", json={"searches": searches}).json()["results"]
    assert [a["results"] for a in answers] == [[], [], []]
