"""Snapshots through the SDK against a real server process: take, download, modify, restore, restart."""

from __future__ import annotations

import io
import tarfile

import pytest
from umbrella_client import Client, Snapshot, errors

from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e


def test_snapshot_download_restore_through_the_sdk(server: ServerProcess) -> None:
    with Client(server.url) as client:
        client.create_collection("shop", dim=3, payload_indexes={"color": "keyword"})
        ids = list(range(20))
        client.upsert("shop", ids, vectors=[[1.0, i, 0.5] for i in ids], payloads=[{"color": f"c{i}"} for i in ids])
        snap = client.create_snapshot("shop")
        assert isinstance(snap, Snapshot) and snap.count == 20 and snap.seq == 1
        assert client.list_snapshots("shop") == [snap]

        data = client.download_snapshot("shop", snap.name)
        assert isinstance(data, bytes) and len(data) == snap.size
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            assert {"manifest.json", "points.db"} <= set(tar.getnames())

        client.delete_points("shop", ids[:10])
        client.upsert("shop", [99], vectors=[[0.0, 1.0, 0.0]])
        assert client.count("shop") == 11

        info = client.restore_snapshot("shop", snap.name)
        assert info.count == 20 and info.dim == 3
        points = client.get_points("shop", ids)
        assert [p.payload for p in points] == [{"color": f"c{i}"} for i in ids]
        with pytest.raises(errors.PointNotFound):
            client.get_points("shop", [99])
        with pytest.raises(errors.SnapshotNotFound):
            client.download_snapshot("shop", "shop-20000101T000000Z-1.snapshot")

    server.restart(wait_ready=True)
    with Client(server.url) as client:
        assert client.count("shop") == 20
        assert [s.name for s in client.list_snapshots("shop")] == [snap.name]
        client.delete_snapshot("shop", snap.name)
        assert client.list_snapshots("shop") == []
