"""Snapshot operations: take, list, download, delete, restore."""

from __future__ import annotations

from umbrella_client import models
from umbrella_client.calls import Request, operation


def _content(data: bytes) -> bytes:
    return data


@operation("POST", "/collections/{name}/snapshots", models.Snapshot.from_json)
def create_snapshot(collection: str) -> Request:
    """Take a snapshot of the collection (one file on the server, consistent to a write batch)."""
    return Request(path={"name": collection})


@operation("GET", "/collections/{name}/snapshots", models.snapshot_list)
def list_snapshots(collection: str) -> Request:
    """The collection's snapshots, newest first."""
    return Request(path={"name": collection})


@operation("GET", "/collections/{name}/snapshots/{snapshot}", _content, raw=True)
def download_snapshot(collection: str, snapshot: str) -> Request:
    """The snapshot file's bytes, to keep elsewhere."""
    return Request(path={"name": collection, "snapshot": snapshot})


@operation("DELETE", "/collections/{name}/snapshots/{snapshot}", lambda _: None)
def delete_snapshot(collection: str, snapshot: str) -> Request:
    """Delete a snapshot file."""
    return Request(path={"name": collection, "snapshot": snapshot})


@operation("POST", "/collections/{name}/snapshots/{snapshot}/restore", models.CollectionInfo.from_json)
def restore_snapshot(collection: str, snapshot: str) -> Request:
    """Replace the collection's data with the snapshot's; its graph is rebuilt in the background."""
    return Request(path={"name": collection, "snapshot": snapshot})
