"""Collection snapshots: take one as of a batch boundary, list, find, delete, and restore one in place."""

from __future__ import annotations

import re
import shutil
import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.collections.collection import Collection
from app.collections.layout import (
    DB_FILE,
    INCOMING_PREFIX,
    MODELS_DIR,
    NAME_RE,
    RANKER_FILE,
    VERSION_RE,
    snapshots_of,
)
from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.errors import InvalidInput, InvalidSnapshot, SnapshotNotFound
from app.storage.snapshots import SUFFIX, CorruptSnapshot, read_manifest, unpack_snapshot, write_snapshot
from app.storage.sqlite_store import PointStore

_STAMP = "%Y%m%dT%H%M%SZ"


def folder_of(registry: CollectionRegistry, name: str) -> Path:
    return snapshots_of(registry.root, name)


def _name_re(name: str) -> re.Pattern[str]:
    return re.compile(rf"{re.escape(name)}-(?P<stamp>\d{{8}}T\d{{6}}Z)-(?P<seq>\d+){re.escape(SUFFIX)}")


def _check_known(registry: CollectionRegistry, name: str) -> None:
    """A collection that exists, or existed and left snapshots (they outlive a drop); else 404."""
    if name in registry.names() or (NAME_RE.fullmatch(name) and folder_of(registry, name).is_dir()):
        return
    registry.get(name)  # raises CollectionNotFound


def create(registry: CollectionRegistry, name: str) -> dict[str, Any]:
    collection = registry.get(name)

    def fill(work: Path) -> dict[str, Any]:
        seq, count, config = collection.backup(work / DB_FILE)
        _pack_model(collection.folder, config, work)
        created = datetime.now(UTC).replace(microsecond=0).isoformat()
        return {"collection": name, "config": config.to_json(), "seq": seq, "count": count, "created_at": created}

    def file_name(manifest: dict[str, Any]) -> str:
        stamp = datetime.fromisoformat(manifest["created_at"]).strftime(_STAMP)
        return f"{name}-{stamp}-{manifest['seq']}{SUFFIX}"

    # The ranker is trained from the events, not derived on open: keep it. The graph is left out: it is
    # rebuilt from the database on restore, while exact search serves.
    extras = {RANKER_FILE: collection.folder / RANKER_FILE}
    path, manifest = write_snapshot(folder_of(registry, name), fill, file_name, extras)
    return _describe(path, manifest)


MODEL_PREFIX = "model--"  # a file of the tuned model in use: "model--" and its path in the model, "/" as "--"


def _pack_model(folder: Path, config: CollectionConfig, work: Path) -> None:
    """The tuned model the collection uses goes in too: the restored config names it, and it cannot be remade."""
    version = (config.embedder or {}).get("version")
    if version is None:
        return
    model = folder / MODELS_DIR / version
    for path in sorted(model.rglob("*")):
        if path.is_file():
            shutil.copyfile(path, work / (MODEL_PREFIX + "--".join(path.relative_to(model).parts)))


def _unpack_model(incoming: Path) -> None:
    """Put the tuned model's files back in their folder, under the version the restored config names."""
    files = sorted(incoming.glob(MODEL_PREFIX + "*"))
    if not files:
        return
    store = PointStore(incoming / DB_FILE)
    try:
        version = (store.get_meta("config").get("embedder") or {}).get("version")
    finally:
        store.close()
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise CorruptSnapshot("the snapshot holds a model its collection config does not name")
    for path in files:
        target = incoming / MODELS_DIR / version / Path(*path.name.removeprefix(MODEL_PREFIX).split("--"))
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)


def _describe(path: Path, manifest: dict[str, Any] | None) -> dict[str, Any]:
    """The API's view of one snapshot file; `count` is None when its manifest cannot be read."""
    stamp, seq = path.name.removesuffix(SUFFIX).rsplit("-", 2)[-2:]
    return {
        "name": path.name,
        "size": path.stat().st_size,
        "created_at": manifest["created_at"]
        if manifest
        else datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC).isoformat(),
        "count": manifest.get("count") if manifest else None,
        "seq": int(seq),
    }


def list_snapshots(registry: CollectionRegistry, name: str) -> list[dict[str, Any]]:
    """Newest first: by the time in the name, then by sequence."""
    _check_known(registry, name)
    folder = folder_of(registry, name)
    pattern = _name_re(name)
    found = []
    for path in folder.glob(f"*{SUFFIX}") if folder.is_dir() else []:
        match = pattern.fullmatch(path.name)
        if not match:
            continue
        try:
            manifest: dict[str, Any] | None = read_manifest(path)
        except CorruptSnapshot:  # still listed, so that it can be seen and deleted (or deleted while listing)
            manifest = None
        try:
            found.append(((match["stamp"], int(match["seq"])), _describe(path, manifest)))
        except FileNotFoundError:  # deleted while listing
            continue
    return [info for _, info in sorted(found, key=lambda pair: pair[0], reverse=True)]


def path_of(registry: CollectionRegistry, name: str, snapshot: str) -> Path:
    """The file of a snapshot the server made for this collection; any other name is a 404, never a path."""
    _check_known(registry, name)
    path = folder_of(registry, name) / snapshot
    if not _name_re(name).fullmatch(snapshot) or not path.is_file():
        raise SnapshotNotFound(
            f"collection '{name}' has no snapshot '{snapshot[:200]}'", collection=name, snapshot=snapshot[:200]
        )
    return path


def delete(registry: CollectionRegistry, name: str, snapshot: str) -> None:
    path_of(registry, name, snapshot).unlink(missing_ok=True)


def restore(registry: CollectionRegistry, name: str, snapshot: str) -> Collection:
    """Replace the collection's data (points, payloads, sources, events, ranker, config) with the snapshot's.

    The snapshot is unpacked and verified before the collection is touched, so a corrupt file changes nothing.
    """
    path = path_of(registry, name, snapshot)
    incoming = registry.root / f"{INCOMING_PREFIX}{uuid.uuid4().hex}"  # removed by the registry on start, if left
    try:
        try:
            manifest = unpack_snapshot(path, incoming)
            if DB_FILE not in manifest["files"]:
                raise CorruptSnapshot(f"{snapshot} holds no database")
            _adopt(incoming / DB_FILE, name)
            _unpack_model(incoming)
        except CorruptSnapshot as err:
            raise InvalidSnapshot(str(err), collection=name, snapshot=snapshot) from None
        try:
            return registry.replace(name, incoming)
        except InvalidInput as err:  # its config names an embedder or settings this server refuses
            raise InvalidSnapshot(
                f"the snapshot's collection cannot open here: {err.message}", collection=name, snapshot=snapshot
            ) from None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)  # gone already when the restore succeeded


def _adopt(db: Path, name: str) -> None:
    """Give the restored database this collection's name: it may come from one dropped and made anew."""
    try:
        store = PointStore(db)
        try:
            stored = store.get_meta("config")
            if not isinstance(stored, dict):
                raise CorruptSnapshot("the snapshot's database holds no collection config")
            try:
                config = CollectionConfig.from_json({**stored, "name": name})
            except (TypeError, ValueError) as err:
                raise CorruptSnapshot(f"the snapshot's collection config is not valid: {err}") from None
            store.set_meta("config", config.to_json())
        finally:
            store.close()
    except sqlite3.DatabaseError as err:
        raise CorruptSnapshot(f"the snapshot's database cannot be read: {err}") from err
