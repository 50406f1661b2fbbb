"""Collections with a server-side embedder: sequences and photos in, neighbours out, bad input refused."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.helpers import error

C = "/collections/genes"
BASES = np.array(list("ACGT"))


def _sequences(n: int, length: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(BASES[rng.integers(0, 4, length)]) for _ in range(n)]


def _genes(client: TestClient) -> list[str]:
    response = client.put(C, json={"embedder": {"kind": "kmer", "k": 4}, "payload_indexes": {"organism": "keyword"}})
    assert response.status_code == 201, response.text
    assert response.json()["dim"] == 256 and response.json()["embedder"] == {"kind": "kmer", "k": 4, "alphabet": "dna"}
    seqs = _sequences(60, 400)
    points = [
        {"id": f"g{i}", "sequence": s, "payload": {"organism": "fly" if i % 2 else "yeast"}} for i, s in enumerate(seqs)
    ]
    assert client.put(f"{C}/points", json={"points": points}).status_code == 200
    return seqs


def test_sequences_in_similar_fragments_out(client: TestClient) -> None:
    seqs = _genes(client)
    fragment = seqs[17][100:300]
    body = client.post(f"{C}/search", json={"sequence": fragment, "k": 3}).json()
    assert body["results"][0]["id"] == "g17"
    flt = {"must": [{"key": "organism", "match": "yeast"}]}
    body = client.post(
        f"{C}/search/batch", json={"searches": [{"sequence": seqs[4][:200], "filter": flt, "k": 1}]}
    ).json()
    assert body["results"][0]["results"][0]["id"] == "g4"


def test_embedder_survives_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        seqs = _genes(c)
    with TestClient(create_app(settings)) as c:
        assert c.post(f"{C}/search", json={"sequence": seqs[5][50:350], "k": 1}).json()["results"][0]["id"] == "g5"


def test_bad_sequences_and_wrong_modalities(client: TestClient) -> None:
    _genes(client)
    batch = [{"id": "ok", "sequence": "ACGTACGTAC"}, {"id": "bad", "sequence": "ACGTXACGT"}]
    err = error(client.put(f"{C}/points", json={"points": batch}), 400, "invalid_input")
    assert "'bad'" in err["message"] and err["details"]["id"] == "bad"
    error(client.post(f"{C}/points/get", json={"ids": ["ok"]}), 404, "point_not_found")  # no half batch
    error(client.put(f"{C}/points", json={"points": [{"id": "e", "sequence": ""}]}), 422, "validation_error")
    error(client.post(f"{C}/search", json={"image": base64.b64encode(b"x").decode()}), 400, "wrong_modality")
    client.put("/collections/raw", json={"dim": 4})
    error(client.post("/collections/raw/search", json={"sequence": "ACGT"}), 400, "wrong_modality")
    assert client.get(C).json()["count"] == 60


def test_embedder_specs_are_checked_when_the_collection_is_created(client: TestClient) -> None:
    error(client.put("/collections/x", json={"embedder": {"kind": "word2vec"}}), 422, "validation_error")
    error(client.put("/collections/x", json={"embedder": {"kind": "kmer", "k": 40}}), 422, "validation_error")
    error(client.put("/collections/x", json={"dim": 8, "embedder": {"kind": "kmer", "k": 4}}), 400, "invalid_input")
    error(client.put("/collections/x", json={}), 422, "validation_error")
    assert client.get("/collections").json() == {"collections": []}


def _photo(colour: tuple[int, int, int], fmt: str = "PNG") -> str:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (120, 120), (240, 240, 240))
    ImageDraw.Draw(image).ellipse((20, 30, 100, 90), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def test_photos_in_near_duplicates_out(client: TestClient) -> None:
    pytest.importorskip("PIL")
    assert client.put("/collections/shop", json={"embedder": {"kind": "image"}}).status_code == 201
    colours = {"red": (200, 30, 30), "green": (30, 160, 60), "blue": (40, 60, 200)}
    points = [{"id": name, "image": _photo(rgb)} for name, rgb in colours.items()]
    assert client.put("/collections/shop/points", json={"points": points}).status_code == 200
    body = client.post("/collections/shop/search", json={"image": _photo((190, 40, 35), "JPEG"), "k": 1}).json()
    assert body["results"][0]["id"] == "red"
    broken = [
        {"id": "fine", "image": _photo((1, 2, 3))},
        {"id": "broken", "image": base64.b64encode(b"\x89PNG nope").decode()},
    ]
    err = error(client.put("/collections/shop/points", json={"points": broken}), 400, "invalid_image")
    assert "'broken'" in err["message"]
    err = error(
        client.put("/collections/shop/points", json={"points": [{"id": "b64", "image": "%%%"}]}), 400, "invalid_image"
    )
    assert client.get("/collections/shop").json()["count"] == 3


def test_search_by_uploaded_photo(client: TestClient) -> None:
    assert (
        client.put(
            "/collections/shop", json={"embedder": {"kind": "image"}, "payload_indexes": {"colour": "keyword"}}
        ).status_code
        == 201
    )
    colours = {"red": (200, 30, 30), "green": (30, 160, 60), "blue": (40, 60, 200)}
    points = [{"id": n, "image": _photo(rgb), "payload": {"colour": n}} for n, rgb in colours.items()]
    assert client.put("/collections/shop/points", json={"points": points}).status_code == 200
    photo = base64.b64decode(_photo((190, 40, 35), "JPEG"))
    files = {"file": ("query.jpg", photo, "image/jpeg")}
    body = client.post("/collections/shop/search/image", files=files, data={"k": "2"}).json()
    assert body["results"][0]["id"] == "red" and len(body["results"]) == 2
    not_red = json.dumps({"must_not": [{"key": "colour", "match": "red"}]})
    body = client.post("/collections/shop/search/image", files=files, data={"k": "3", "filter": not_red}).json()
    assert [r["id"] for r in body["results"]] and "red" not in [r["id"] for r in body["results"]]
    error(client.post("/collections/shop/search/image", files=files, data={"filter": "{bad"}), 422, "validation_error")
    error(
        client.post("/collections/shop/search/image", files={"file": ("x.gif", b"GIF89a....", "image/gif")}),
        400,
        "invalid_image",
    )
    error(client.post("/collections/shop/search/image", data={"k": "2"}), 422, "validation_error")


def test_store_source_keeps_what_points_were_made_from(settings: Settings) -> None:
    pytest.importorskip("PIL")
    photo = _photo((10, 200, 10), "PNG")
    with TestClient(create_app(settings)) as c:
        assert c.put("/collections/kept", json={"embedder": {"kind": "image"}, "store_source": True}).status_code == 201
        assert c.get("/collections/kept").json()["store_source"] is True
        points = [{"id": 1, "image": photo}, {"id": 2, "vector": [0.5] * 576}, {"id": 3, "image": _photo((9, 9, 9))}]
        assert c.put("/collections/kept/points", json={"points": points}).status_code == 200
        assert c.post("/collections/kept/points/delete", json={"ids": [3]}).json()["count"] == 1
    with TestClient(create_app(settings)) as c:  # sources are durable, like the points
        got = c.post("/collections/kept/points/get", json={"ids": [1, 2], "with_source": True}).json()["points"]
        assert got[0]["source"] == {"image": photo}
        assert "source" not in got[1]  # sent as a vector: nothing to keep
        assert "source" not in c.post("/collections/kept/points/get", json={"ids": [1]}).json()["points"][0]
        # replacing a point by a vector drops the source it had; a deleted point's is gone for good
        assert c.put("/collections/kept/points", json={"points": [{"id": 1, "vector": [1.0] * 576}]}).status_code == 200
        page = c.post("/collections/kept/points/scroll", json={"with_source": True}).json()["points"]
        assert all("source" not in p for p in page) and len(page) == 2


def test_sources_are_not_kept_unless_asked(client: TestClient) -> None:
    seqs = _genes(client)  # a kmer collection created without store_source
    got = client.post(f"{C}/points/get", json={"ids": ["g0"], "with_source": True}).json()["points"][0]
    assert "source" not in got and len(seqs[0]) == 400


def test_sequence_sources_come_back_as_strings(client: TestClient) -> None:
    assert client.put("/collections/seqs", json={"embedder": {"kind": "kmer"}, "store_source": True}).status_code == 201
    points = [{"id": "a", "sequence": "ACGTTGCA" * 10}, {"id": "b", "sequence": "TTTTGGGGCCCCAAAA" * 4}]
    assert client.put("/collections/seqs/points", json={"points": points}).status_code == 200
    page = client.post("/collections/seqs/points/scroll", json={"with_source": True}).json()["points"]
    assert {p["id"]: p["source"]["sequence"] for p in page} == {"a": "ACGTTGCA" * 10, "b": "TTTTGGGGCCCCAAAA" * 4}
