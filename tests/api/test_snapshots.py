"""Snapshots: take, list, download, delete, restore; consistency under writes; bad names and corrupt files."""

from __future__ import annotations

import io
import json
import sqlite3
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.collections.layout import DB_FILE
from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.main import create_app
from app.storage.snapshots import write_snapshot
from tests.api.helpers import create, error, upsert
from tests.conftest import clustered


def _points(n: int, start: int = 0, seed: int = 0) -> list[dict]:
    vectors = clustered(n, 4, seed=seed, clusters=5)
    return [
        {"id": start + i, "vector": v.tolist(), "payload": {"category": f"c{(start + i) % 3}", "price": float(i)}}
        for i, v in enumerate(vectors)
    ]


def _state(client: TestClient, name: str = "products") -> tuple[list, list]:
    """Every point (id, payload, vector) in order, and a few exact searches: what a restore must bring back."""
    page = client.post(f"/collections/{name}/points/scroll", json={"limit": 1000, "with_vector": True}).json()
    points = sorted(((p["id"], p.get("payload"), p.get("vector")) for p in page["points"]), key=lambda p: str(p[0]))
    searches = []
    for q in ([1, 0, 0, 0], [0, 1, 0.5, 0], [0.2, 0.2, 0.2, 1]):
        r = client.post(f"/collections/{name}/search", json={"vector": q, "k": 5, "exact": True})
        assert r.status_code == 200, r.text
        searches.append([(h["id"], round(h["score"], 5)) for h in r.json()["results"]])
    return points, searches


def _snapshot(client: TestClient, name: str = "products") -> dict:
    r = client.post(f"/collections/{name}/snapshots")
    assert r.status_code == 201, r.text
    return r.json()


def test_restore_brings_back_exactly_what_the_snapshot_held_and_survives_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as client:
        create(client)
        upsert(client, _points(40))
        before = _state(client)
        snap = _snapshot(client)
        assert snap["count"] == 40 and snap["seq"] == 1 and snap["size"] > 0
        assert snap["name"].startswith("products-") and snap["name"].endswith("-1.snapshot")

        upsert(client, _points(15, start=30, seed=1))  # overwrites 10, adds 5
        client.post("/collections/products/points/delete", json={"ids": [0, 1, 2]})
        assert _state(client) != before

        r = client.post(f"/collections/products/snapshots/{snap['name']}/restore")
        assert r.status_code == 200, r.text
        assert r.json()["count"] == 40 and r.json()["seq"] == 1 and r.json()["dim"] == 4
        assert _state(client) == before
        # the graph is rebuilt in the background; once up, graph searches find the same points
        assert client.app.state.registry.wait_ready(30)
        hit = client.post("/collections/products/search", json={"vector": [1, 0, 0, 0], "k": 5}).json()
        assert [h["id"] for h in hit["results"]] == [i for i, _ in before[1][0]]
        # a write after the restore continues from the snapshot's sequence
        assert upsert(client, _points(1, start=100))["seq"] == 2
        after = _state(client)

    with TestClient(create_app(settings)) as client:
        assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["products"]
        assert _state(client) == after
        assert [s["name"] for s in client.get("/collections/products/snapshots").json()["snapshots"]] == [snap["name"]]


def test_list_download_delete(client: TestClient, settings: Settings) -> None:
    create(client)
    upsert(client, _points(5))
    first = _snapshot(client)
    upsert(client, _points(5, start=5))
    second = _snapshot(client)
    listed = client.get("/collections/products/snapshots").json()["snapshots"]
    assert listed == [second, first]  # newest first

    r = client.get(f"/collections/products/snapshots/{second['name']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert second["name"] in r.headers["content-disposition"]
    assert len(r.content) == second["size"]
    on_disk = Path(settings.data_dir) / ".snapshots" / "products" / second["name"]
    assert r.content == on_disk.read_bytes()
    with tarfile.open(fileobj=io.BytesIO(r.content)) as tar:
        assert tar.getnames()[0] == "manifest.json" and "points.db" in tar.getnames()
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["count"] == 10 and manifest["seq"] == 2 and manifest["config"]["dim"] == 4
    assert set(manifest["files"]) == {"points.db"} and manifest["created_at"] == second["created_at"]

    assert client.delete(f"/collections/products/snapshots/{first['name']}").json() == {"status": "ok"}
    assert client.get("/collections/products/snapshots").json()["snapshots"] == [second]
    error(client.get(f"/collections/products/snapshots/{first['name']}"), 404, "snapshot_not_found")
    error(client.delete(f"/collections/products/snapshots/{first['name']}"), 404, "snapshot_not_found")


def test_bad_and_unknown_names_are_404(client: TestClient) -> None:
    create(client)
    create(client, "other")
    snap = _snapshot(client, "other")
    for bad in (
        "...snapshot",
        "products-..-1.snapshot",
        "products-20240101T000000Z-1.snapshot",
        "x",
        snap["name"],
        "points.db",
    ):
        for method, suffix in (("GET", ""), ("DELETE", ""), ("POST", "/restore")):
            r = client.request(method, f"/collections/products/snapshots/{bad}{suffix}")
            error(r, 404, "snapshot_not_found")
    for traversal in ("../x", "..%2F..%2Fproducts%2Fpoints.db", "%2E%2E"):
        r = client.get(f"/collections/products/snapshots/{traversal}")
        assert r.status_code == 404, r.text
    error(client.post("/collections/nope/snapshots"), 404, "collection_not_found")
    error(client.get("/collections/nope/snapshots"), 404, "collection_not_found")
    error(client.get(f"/collections/nope/snapshots/{snap['name']}"), 404, "collection_not_found")


def test_a_corrupt_snapshot_is_refused_and_the_collection_is_untouched(client: TestClient, settings: Settings) -> None:
    create(client)
    upsert(client, _points(30))
    snap = _snapshot(client)
    upsert(client, _points(5, start=30))
    before = _state(client)
    path = Path(settings.data_dir) / ".snapshots" / "products" / snap["name"]
    good = path.read_bytes()
    for corrupt in (
        good[: len(good) // 2],  # truncated
        good[:3000] + bytes(b ^ 0xFF for b in good[3000:3100]) + good[3100:],  # flipped bytes in the database
        b"not a tar at all" * 100,
    ):
        path.write_bytes(corrupt)
        r = client.post(f"/collections/products/snapshots/{snap['name']}/restore")
        error(r, 400, "invalid_snapshot")
        assert _state(client) == before
        info = client.get("/collections/products").json()
        assert info["count"] == 35 and info["seq"] == 2
    listed = client.get("/collections/products/snapshots").json()["snapshots"]
    assert [s["name"] for s in listed] == [snap["name"]] and listed[0]["count"] is None  # listed, to be deleted
    assert not list(Path(settings.data_dir).glob(".incoming-*"))


def test_a_snapshot_never_holds_half_a_batch(client: TestClient, settings: Settings) -> None:
    create(client)
    batch, stop = 20, threading.Event()
    failures: list[str] = []

    def writer() -> None:
        start = 0
        while not stop.is_set():
            r = client.put("/collections/products/points", json={"points": _points(batch, start=start)})
            if r.status_code != 200:
                failures.append(r.text)
            start += batch

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        snaps = [_snapshot(client) for _ in range(8)]
    finally:
        stop.set()
        thread.join(30)
    assert not failures
    assert any(s["count"] for s in snaps)
    for snap in snaps:
        assert snap["count"] % batch == 0 and snap["count"] == snap["seq"] * batch, snap
        with tarfile.open(Path(settings.data_dir) / ".snapshots" / "products" / snap["name"]) as tar:
            tar.extract("points.db", Path(settings.data_dir).parent / snap["name"], filter="data")
        db = sqlite3.connect(Path(settings.data_dir).parent / snap["name"] / "points.db")
        rows = db.execute("SELECT count(*) FROM points").fetchone()[0]
        seq = json.loads(db.execute("SELECT value FROM meta WHERE key = 'seq'").fetchone()[0])
        db.close()
        assert (rows, int(seq)) == (snap["count"], snap["seq"])


def test_restore_replaces_the_config_and_brings_back_a_dropped_collection(client: TestClient) -> None:
    create(client)
    upsert(client, _points(10))
    before = _state(client)
    snap = _snapshot(client)
    assert client.delete("/collections/products").status_code == 200
    assert client.get("/collections/products/snapshots").json()["snapshots"][0]["name"] == snap["name"]

    create(client, dim=8)  # the same name, another shape
    upsert(client, [{"id": "x", "vector": [1.0] * 8}])
    r = client.post(f"/collections/products/snapshots/{snap['name']}/restore")
    assert r.status_code == 200 and r.json()["dim"] == 4 and r.json()["count"] == 10, r.text
    assert _state(client) == before

    assert client.delete("/collections/products").status_code == 200  # gone, but its snapshots are not
    r = client.post(f"/collections/products/snapshots/{snap['name']}/restore")
    assert r.status_code == 200 and r.json()["name"] == "products", r.text
    assert _state(client) == before


def test_a_restore_cut_short_is_settled_on_start(settings: Settings) -> None:
    """A crash after the old folder was moved aside and before the new one arrived: the old one comes back."""
    registry = CollectionRegistry(settings)
    registry.open()
    registry.create(CollectionConfig(name="products", dim=4))
    registry.get("products").upsert([1], np.ones((1, 4), np.float32), [None])
    registry.close()
    root = Path(settings.data_dir)
    (root / "products").rename(root / ".restoring-products")
    (root / ".incoming-abc").mkdir()
    registry = CollectionRegistry(settings)
    registry.open()
    try:
        assert registry.names() == ["products"] and registry.get("products").count == 1
        assert not list(root.glob(".restoring-*")) and not list(root.glob(".incoming-*"))
    finally:
        registry.close()


def _crafted(settings: Settings, snap: dict, name: str, **config_changes: object) -> str:
    """A well-formed snapshot (valid checksums) whose stored collection config is changed as given."""
    folder = Path(settings.data_dir) / ".snapshots" / "products"
    with tarfile.open(folder / snap["name"]) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        db = tar.extractfile(DB_FILE).read()  # type: ignore[union-attr]

    def fill(work: Path) -> dict:
        (work / DB_FILE).write_bytes(db)
        with sqlite3.connect(work / DB_FILE) as conn:
            (raw,) = conn.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
            conn.execute(
                "UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps({**json.loads(raw), **config_changes}),)
            )
        conn.close()
        return {k: v for k, v in manifest.items() if k not in ("format", "files")}

    path, _ = write_snapshot(folder, fill, lambda _: f"{name}.snapshot")
    return path.name


@pytest.mark.parametrize(
    "changes",
    [
        {"dim": -1},
        {"dim": 9000},
        {"dim": "4"},
        {"metric": "evil"},
        {"m": 0},
        {"ef": 10**9},
        {"payload_indexes": {"price": "vector"}},
        {"embedder": {"kind": "evil"}},
        {"embedder": {"kind": "text", "model": "/etc"}},
        {"embedder": "text"},
        {"recommendation": {"half_life_days": -1}},
        {"recommendation": {"weights": {"view": "x"}}},
        {"recommendation": {"nope": 1}},
        {"extra_field": 1},
    ],
)
def test_a_snapshot_with_a_crafted_config_is_refused_and_the_collection_is_untouched(
    client: TestClient, settings: Settings, changes: dict
) -> None:
    create(client)
    upsert(client, _points(20))
    snap = _snapshot(client)
    before = _state(client)
    crafted = _crafted(settings, snap, "products-20990101T000000Z-1", **changes)
    err = error(client.post(f"/collections/products/snapshots/{crafted}/restore"), 400, "invalid_snapshot")
    assert "config" in err["message"] or "cannot open" in err["message"]
    assert _state(client) == before
    assert client.get("/collections/products").json()["count"] == 20
    assert client.post(f"/collections/products/snapshots/{snap['name']}/restore").status_code == 200
