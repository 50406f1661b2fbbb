"""Cluster: a server's sharded collections on a Ray cluster: connect, create, reopen, drop, repair, report.

A sharded collection's config and layout are kept as `_cluster/<name>.json` in the server's data directory
("_" starts no collection name), its events and ranker in `_cluster/<name>/`; its copies are detached Ray actors
named after it, so a restarted server finds them again, and Ray restarts a copy whose node comes back (it opens
what it had on that node's disk).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cluster.copy import ShardCopy
from app.cluster.placement import node_of, place, scheduling
from app.cluster.sharded import Layout, ShardedCollection
from app.collections.models import CollectionConfig
from app.core.config import Settings
from app.core.errors import CollectionExists, InvalidInput
from app.embedding.factory import EmbedderPool
from app.storage.files import atomic_write_bytes

log = logging.getLogger(__name__)
NAMESPACE = "umbrella"
SPEC_DIR = "_cluster"  # in the data directory: one JSON per sharded collection
COPIES_DIR = "_shards"  # in the data directory of each node: a folder per copy
READERS_PER_COPY = 4  # searches and gets a copy runs at once; its writes go one at a time, in order
REPAIR_EVERY_S = 2.0


class Cluster:
    """Owns the connection to Ray and every sharded collection of this server."""

    def __init__(
        self, settings: Settings, embedders: EmbedderPool, parts: tuple[Callable[[Any], Any], ...] = ()
    ) -> None:
        """`parts`: made for each sharded collection when it opens (personalization, from app/main.py)."""
        import ray

        self._ray, self.settings, self.embedders, self.parts = ray, settings, embedders, parts
        if not ray.is_initialized():
            ray.init(address=settings.ray_address, namespace=NAMESPACE, log_to_driver=False)
        self.root = Path(settings.data_dir) / SPEC_DIR
        self._collections: dict[str, ShardedCollection] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._repairer = threading.Thread(target=self._repair_loop, name="umbrella-shard-repair", daemon=True)

    def open(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for spec in sorted(self.root.glob("*.json")):
            stored = json.loads(spec.read_text())
            config, layout = CollectionConfig.from_json(stored["config"]), Layout.from_json(stored["layout"])
            try:
                self._collections[config.name] = self._attach(config, layout)
            except Exception:  # one collection whose copies cannot be reached spoils no other
                log.exception("sharded collection %s could not be opened", config.name)
        self._repairer.start()

    def close(self) -> None:
        """Stop repairing; the copies stay up (detached), holding their data for the next server."""
        self._stop.set()
        if self._repairer.is_alive():
            self._repairer.join()
        for collection in self._collections.values():
            collection.close()

    def nodes(self) -> list[dict[str, Any]]:
        return [node_of(entry).__dict__ for entry in self._ray.nodes()]

    def find(self, name: str) -> ShardedCollection | None:
        return self._collections.get(name)

    def names(self) -> list[str]:
        return list(self._collections)

    def create(
        self, config: CollectionConfig, shards: int, replicas: int, write_quorum: int | None
    ) -> ShardedCollection:
        quorum = write_quorum if write_quorum is not None else replicas // 2 + 1
        if not 1 <= quorum <= replicas:
            raise InvalidInput(f"write_quorum must be 1 to {replicas} (the copies of a shard)", write_quorum=quorum)
        alive = sorted({n["label"] for n in self.nodes() if n["alive"]})
        layout = Layout(shards, replicas, quorum, tuple(map(tuple, place(shards, replicas, alive))))
        with self._mutex:
            if config.name in self._collections:
                raise CollectionExists(f"collection '{config.name}' already exists", name=config.name)
            collection = self._attach(config, layout)
            self._save(config, layout)
            self._collections[config.name] = collection
            return collection

    def _save(self, config: CollectionConfig, layout: Layout) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        spec = {"config": config.to_json(), "layout": layout.to_json()}
        atomic_write_bytes(self.root / f"{config.name}.json", json.dumps(spec).encode())

    def _attach(self, config: CollectionConfig, layout: Layout) -> ShardedCollection:
        """Start (or find) the copies of every shard on their nodes and learn where each shard stands."""
        actor = self._ray.remote(concurrency_groups={"read": READERS_PER_COPY})(ShardCopy)
        stored = {**config.to_json(), "embedder": None, "store_source": config.store_source}  # copies never embed
        settings = self.settings.model_dump(mode="json", exclude={"api_key", "read_only_api_key", "ray_address"})
        copies = [
            [
                actor.options(
                    name=str(self._copy_folder(config.name, shard, copy)),  # one name per server and copy
                    namespace=NAMESPACE,
                    lifetime="detached",
                    get_if_exists=True,
                    max_restarts=-1,  # whenever its node is back
                    max_task_retries=0,  # a write is never applied twice behind the router's back
                    num_cpus=0,  # copies share their node's cores; they do not reserve one each
                    max_concurrency=1,
                    **scheduling(label),
                ).remote(str(self._copy_folder(config.name, shard, copy)), stored, settings)
                for copy, label in enumerate(labels)
            ]
            for shard, labels in enumerate(layout.nodes)
        ]
        embedder = self.embedders.get(config.embedder) if config.embedder else None
        collection = ShardedCollection(
            config,
            layout,
            copies,
            embedder,
            self.settings,
            self.root / config.name,
            lambda changed: self._save(changed, layout),
            self.parts,
        )
        collection.start()
        return collection

    def _copy_folder(self, name: str, shard: int, copy: int) -> Path:
        return Path(self.settings.data_dir).resolve() / COPIES_DIR / name / f"shard-{shard}-copy-{copy}"

    def drop(self, name: str) -> None:
        """Stop the copies for good and delete their folders (a node that is away keeps its folder until it is
        wiped: nothing opens it again)."""
        with self._mutex:
            collection = self._collections.pop(name)
            (self.root / f"{name}.json").unlink(missing_ok=True)
        collection.close()
        shutil.rmtree(self.root / name, ignore_errors=True)  # its events and ranker
        for shard in collection.shards:
            for handle in shard.copies:
                with contextlib.suppress(Exception):  # away or gone: it is killed below all the same
                    self._ray.get(handle.close.remote(), timeout=self.settings.shard_timeout_s)
                self._ray.kill(handle, no_restart=True)
        shutil.rmtree(Path(self.settings.data_dir).resolve() / COPIES_DIR / name, ignore_errors=True)

    def status(self) -> dict[str, Any]:
        return {
            "ray_address": self.settings.ray_address,
            "nodes": self.nodes(),
            "collections": [
                {"name": name, **c.layout.to_json(), "copies": c.copies_state()}
                for name, c in list(self._collections.items())
            ],
        }

    def _repair_loop(self) -> None:
        while not self._stop.wait(REPAIR_EVERY_S):
            for collection in list(self._collections.values()):
                try:
                    collection.repair()
                except Exception:  # a copy that fails mid catch-up stays behind; the next round tries again
                    log.exception("repairing %s failed", collection.name)
