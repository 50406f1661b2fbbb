"""Collections over HTTP: create, list, inspect, drop, probes, auth."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.helpers import create, error, upsert


def test_create_inspect_list_drop(client: TestClient, settings: Settings) -> None:
    info = create(client, "shoes", dim=8, metric="l2", hnsw={"m": 8, "ef_construction": 100, "ef": 32})
    assert info["name"] == "shoes" and info["dim"] == 8 and info["metric"] == "l2"
    assert info["hnsw"] == {"m": 8, "ef_construction": 100, "ef": 32}
    assert info["payload_indexes"] == {"category": "keyword", "price": "float"}
    upsert(client, [{"id": 1, "vector": [1, 2, 3, 4, 5, 6, 7, 8]}], name="shoes")
    got = client.get("/collections/shoes").json()
    assert got["count"] == 1 and got["memory_bytes"] > 0 and got["index_state"] in {"building", "ready"}
    assert [c["name"] for c in client.get("/collections").json()["collections"]] == ["shoes"]
    assert client.delete("/collections/shoes").json() == {"status": "ok"}
    assert client.get("/collections").json() == {"collections": []}
    assert not (Path(settings.data_dir) / "shoes").exists()
    error(client.get("/collections/shoes"), 404, "collection_not_found")


def test_collections_survive_a_restart(settings: Settings) -> None:
    with TestClient(create_app(settings)) as c:
        create(c, "keep")
        upsert(c, [{"id": "a", "vector": [1, 0, 0, 0], "payload": {"category": "x"}}], name="keep")
    with TestClient(create_app(settings)) as c:
        assert c.get("/collections/keep").json()["count"] == 1
        point = c.post("/collections/keep/points/get", json={"ids": ["a"]}).json()["points"][0]
        assert point == {"id": "a", "payload": {"category": "x"}}


def test_probes_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    spec = client.get("/openapi.json").json()
    assert "/collections/{name}/search" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_api_key_is_required_when_set(tmp_path: Path) -> None:
    with TestClient(create_app(Settings(data_dir=tmp_path, api_key="s3cret"))) as c:
        error(c.get("/collections"), 401, "unauthorized")
        error(c.get("/collections", headers={"api-key": "wrong"}), 401, "unauthorized")
        assert c.get("/collections", headers={"api-key": "s3cret"}).status_code == 200
        assert c.get("/collections", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/healthz").status_code == 200  # probes stay open for orchestrators


def test_second_server_on_the_same_data_dir_is_refused(settings: Settings) -> None:
    import pytest

    from app.storage.lockfile import DataDirLocked

    with TestClient(create_app(settings)), pytest.raises(DataDirLocked), TestClient(create_app(settings)):
        pass
