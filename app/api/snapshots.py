"""Routes for snapshots: take, list, download, delete, restore."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from app.api.access import GuardedRoute, needs
from app.api.collections import collection_info
from app.api.deps import RegistryDep
from app.schemas.collections import CollectionInfo
from app.schemas.snapshots import SnapshotInfo, SnapshotList
from app.snapshots import service as snapshots

router = APIRouter(prefix="/collections/{name}/snapshots", tags=["snapshots"], route_class=GuardedRoute)


@router.post("", openapi_extra=needs("write"), status_code=201, response_model=SnapshotInfo)
async def create_snapshot(name: str, registry: RegistryDep) -> SnapshotInfo:
    """A consistent copy of the collection as one file: writers wait for the database copy, readers go on."""
    return SnapshotInfo(**await run_in_threadpool(snapshots.create, registry, name))


@router.get("", openapi_extra=needs("read"), response_model=SnapshotList)
async def list_snapshots(name: str, registry: RegistryDep) -> SnapshotList:
    """The collection's snapshots, newest first (they outlive a drop of the collection)."""
    found = await run_in_threadpool(snapshots.list_snapshots, registry, name)
    return SnapshotList(snapshots=[SnapshotInfo(**s) for s in found])


@router.get(
    "/{snapshot}",
    openapi_extra=needs("read"),
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_snapshot(name: str, snapshot: str, registry: RegistryDep) -> FileResponse:
    """The snapshot file, to keep elsewhere."""
    path = await run_in_threadpool(snapshots.path_of, registry, name, snapshot)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.delete("/{snapshot}", openapi_extra=needs("write"), status_code=200)
async def delete_snapshot(name: str, snapshot: str, registry: RegistryDep) -> dict[str, str]:
    await run_in_threadpool(snapshots.delete, registry, name, snapshot)
    return {"status": "ok"}


@router.post("/{snapshot}/restore", openapi_extra=needs("manage"), response_model=CollectionInfo)
async def restore_snapshot(name: str, snapshot: str, registry: RegistryDep) -> CollectionInfo:
    """Replace the collection's points, payloads, sources, events, ranker and config with the snapshot's
    (or bring a dropped collection back). The graph is rebuilt in the background; exact search serves meanwhile.
    A corrupt snapshot is a 400 and leaves the collection as it was."""
    collection = await run_in_threadpool(snapshots.restore, registry, name, snapshot)
    return await run_in_threadpool(collection_info, collection)
