"""CollectionRegistry: the collections of one data directory, opened, created and dropped."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from app.collections.collection import Collection, PartFactory
from app.collections.layout import (
    DB_FILE,
    INCOMING_PREFIX,
    NAME_RE,
    RESTORING_PREFIX,
    TRASH_PREFIX,
    is_collection,
)
from app.collections.models import CollectionConfig
from app.core.config import Settings
from app.core.errors import CollectionExists, CollectionNotFound, InvalidInput, NotOnShards
from app.embedding.factory import EmbedderPool
from app.storage.lockfile import DataDirLock

log = logging.getLogger(__name__)


def check_name(name: str) -> str:
    """Names are plain folder names, so none can reach outside the data directory."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            "collection names are 1-64 letters, digits, '_' or '-', starting with a letter or digit",
            name=name[:100],
        )
    return name


class Sharded(Protocol):
    """Collections spread over other processes (app/cluster: shards on Ray), offered beside the local ones. Each
    answers what the point and search routes call on a Collection, and a clear 400 for the rest."""

    def find(self, name: str) -> Any | None: ...

    def names(self) -> list[str]: ...

    def create(self, config: CollectionConfig, shards: int, replicas: int, write_quorum: int | None) -> Any: ...

    def drop(self, name: str) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class CollectionRegistry:
    """Owns every open collection of a data directory; `parts` are attached to each collection it opens."""

    def __init__(self, settings: Settings, parts: Sequence[PartFactory] = ()) -> None:
        self.settings = settings
        self.parts = tuple(parts)
        self.root = Path(settings.data_dir)
        self._lock = DataDirLock(self.root)
        self._collections: dict[str, Collection] = {}
        self._mutex = threading.Lock()
        self.failed: dict[str, str] = {}  # collections whose database could not be opened
        self.sharded: Sharded | None = None  # set by the app when a Ray cluster is configured
        self.embedders = EmbedderPool(
            settings.models_dir,
            max_batch=settings.embed_max_batch,
            max_wait_s=settings.embed_max_wait_ms / 1000,
            max_queue=settings.embed_max_queue,
        )

    def open(self) -> None:
        """Lock the data directory and open every collection in it; one broken one spoils no other."""
        self._lock.acquire()
        for trash in [*self.root.glob(f"{TRASH_PREFIX}*"), *self.root.glob(f"{INCOMING_PREFIX}*")]:
            shutil.rmtree(trash, ignore_errors=True)
        self._finish_interrupted_restores()
        for folder in sorted(p for p in self.root.iterdir() if is_collection(p)):
            try:
                self._collections[folder.name] = self._open(folder)
            except Exception as err:  # keep serving the others; the error is on /readyz and in the log
                log.exception("collection %s could not be opened", folder.name)
                self.failed[folder.name] = str(err)

    def _finish_interrupted_restores(self) -> None:
        """A restore cut short by a crash: keep the restored folder if it was moved in whole, else put the old back."""
        for aside in self.root.glob(f"{RESTORING_PREFIX}*"):
            folder = self.root / aside.name.removeprefix(RESTORING_PREFIX)
            if (folder / DB_FILE).exists():
                shutil.rmtree(aside, ignore_errors=True)
            else:
                shutil.rmtree(folder, ignore_errors=True)
                aside.rename(folder)

    def close(self) -> None:
        if self.sharded is not None:
            self.sharded.close()
        with self._mutex:
            for collection in self._collections.values():
                collection.close()
            self._collections.clear()
        self.embedders.close()
        self._lock.release()

    def create_sharded(self, config: CollectionConfig, shards: int, replicas: int, write_quorum: int | None) -> Any:
        """A collection spread over `shards` shards of `replicas` copies each, on the Ray cluster."""
        check_name(config.name)
        if self.sharded is None:
            raise NotOnShards(
                "shards and replicas need a Ray cluster: start the server with UMBRELLA_RAY_ADDRESS set",
                operation="shards",
            )
        if config.name in self._collections or (self.root / config.name).exists():
            raise CollectionExists(f"collection '{config.name}' already exists", name=config.name)
        embedder = self.embedders.get(config.embedder) if config.embedder else None
        if embedder is not None and not config.dim:
            config = dataclasses.replace(config, dim=embedder.dim)
        return self.sharded.create(config, shards, replicas, write_quorum)

    def create(self, config: CollectionConfig) -> Collection:
        """Create a collection; an embedder that cannot be built fails here, not on the first insert."""
        check_name(config.name)
        if self.sharded is not None and self.sharded.find(config.name) is not None:
            raise CollectionExists(f"collection '{config.name}' already exists", name=config.name)
        embedder = self.embedders.get(config.embedder) if config.embedder else None  # a new one has no versions
        if embedder is not None and not config.dim:
            config = dataclasses.replace(config, dim=embedder.dim)
        if embedder is not None and embedder.dim != config.dim:
            raise InvalidInput(
                f"the {embedder.kind} embedder makes {embedder.dim}-dimensional vectors, not {config.dim}",
                expected=embedder.dim,
                got=config.dim,
            )
        with self._mutex:
            folder = self.root / config.name
            if config.name in self._collections or folder.exists():
                raise CollectionExists(f"collection '{config.name}' already exists", name=config.name)
            try:
                collection = Collection.create(folder, config, self.settings, embedder, self.parts, self.embedders)
            except BaseException:  # never acknowledged: leave no folder that would open as a collection later
                shutil.rmtree(folder, ignore_errors=True)
                raise
            self._collections[config.name] = collection
            return collection

    def get(self, name: str) -> Collection:
        """The collection of that name: a local one, or a sharded one that stands in for it."""
        collection = self._collections.get(name)
        if collection is None and self.sharded is not None:
            collection = self.sharded.find(name)
        if collection is None:
            raise CollectionNotFound(f"collection '{name[:100]}' does not exist", name=name[:100])
        return collection  # type: ignore[no-any-return]

    def names(self) -> list[str]:
        return sorted([*self._collections, *(self.sharded.names() if self.sharded is not None else [])])

    def drop(self, name: str) -> None:
        if name not in self._collections and self.sharded is not None and self.sharded.find(name) is not None:
            self.sharded.drop(name)
            return
        with self._mutex:
            collection = self.get(name)
            del self._collections[name]
            collection.close(checkpoint=False)
            # Rename first so a crash mid-delete never leaves a half collection that looks whole.
            trash = self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}"
            collection.folder.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def replace(self, name: str, incoming: Path) -> Collection:
        """Make the complete collection folder `incoming` the collection `name`, replacing the current one if any.

        The current folder is moved aside, not deleted, until the new one has opened; on any failure it is
        moved back and reopened, so the data it held is never lost. A crash midway is settled by `open`.
        """
        check_name(name)
        sharded = self.sharded.find(name) if self.sharded is not None else None
        if sharded is not None:  # its points are spread over the shards again; the shards stay where they are
            return sharded.restore(incoming / DB_FILE)  # type: ignore[no-any-return]
        with self._mutex:
            folder = self.root / name
            aside = self.root / f"{RESTORING_PREFIX}{name}"
            old = self._collections.pop(name, None)
            if old is not None:
                old.close(checkpoint=False)  # its checkpoint on disk stays valid for a rollback
            had_folder = folder.exists()
            if had_folder:
                folder.rename(aside)
            try:
                incoming.rename(folder)
                collection = self._open(folder)
            except BaseException:
                if folder.exists():
                    folder.rename(self.root / f"{TRASH_PREFIX}{uuid.uuid4().hex}")
                if had_folder:
                    aside.rename(folder)
                    if old is not None:
                        self._collections[name] = self._open(folder)
                raise
            self._collections[name] = collection
            self.failed.pop(name, None)
            shutil.rmtree(aside, ignore_errors=True)
            return collection

    def _open(self, folder: Path) -> Collection:
        return Collection.open(folder, self.settings, self.embedders, self.parts)

    def wait_ready(self, timeout: float | None = None) -> bool:
        return all(c.graph.wait(timeout) for c in list(self._collections.values()))

    def readiness(self) -> dict[str, str]:
        states = {name: c.graph.state for name, c in self._collections.items()}
        states.update({name: "failed" for name in self.failed})
        return states
