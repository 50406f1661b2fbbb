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
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cluster.copy import ShardCopy
from app.cluster.placement import node_of, place, scheduling
from app.cluster.sharded import Layout, ShardedCollection
from app.collections.layout import MODELS_DIR
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
        self._copy_actor = ray.remote(concurrency_groups={"read": READERS_PER_COPY})(ShardCopy)
        self._collections: dict[str, ShardedCollection] = {}
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._gone_since: dict[str, float] = {}  # node label → when the repair loop first saw it gone
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
        copies = [
            [self._start_copy(config, layout, shard, copy, label) for copy, label in enumerate(labels)]
            for shard, labels in enumerate(layout.nodes)
        ]
        folder = self.root / config.name

        def models(spec: dict[str, Any]) -> Any:  # a tuned version lives in the collection's folder on the router
            return self.embedders.get(spec, folder / MODELS_DIR)

        embedder = models(config.embedder) if config.embedder else None
        collection = ShardedCollection(
            config, layout, copies, embedder, self.settings, folder, self._save, self.parts, models
        )
        collection.start()
        return collection

    def _start_copy(self, config: CollectionConfig, layout: Layout, shard: int, copy: int, label: str) -> Any:
        """The actor of one copy on the node `label` (found again if it runs already: named after its folder)."""
        stored = {**config.to_json(), "embedder": None, "store_source": config.store_source}  # copies never embed
        settings = self.settings.model_dump(mode="json", exclude={"api_key", "read_only_api_key", "ray_address"})
        folder = str(self._copy_folder(config.name, shard, copy, layout.generation(shard, copy)))
        return self._copy_actor.options(
            name=folder,  # one name per server and copy
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,  # whenever its node is back
            max_task_retries=0,  # a write is never applied twice behind the router's back
            num_cpus=0,  # copies share their node's cores; they do not reserve one each
            max_concurrency=1,
            **scheduling(label),
        ).remote(folder, stored, settings)

    def _copy_folder(self, name: str, shard: int, copy: int, generation: int = 0) -> Path:
        made_again = f"-g{generation}" if generation else ""  # a copy made again elsewhere gets a name of its own
        return Path(self.settings.data_dir).resolve() / COPIES_DIR / name / f"shard-{shard}-copy-{copy}{made_again}"

    # ---- copies of nodes gone for good ---------------------------------------------------------------
    def _gone_for_good(self) -> tuple[set[str], set[str]]:
        """(labels of nodes gone for longer than shard_replace_after_s, labels of the nodes alive)."""
        alive = {n.label for n in map(node_of, self._ray.nodes()) if n.alive}
        held = {label for c in self._collections.values() for labels in c.layout.nodes for label in labels}
        now = time.monotonic()
        for label in held - alive:
            self._gone_since.setdefault(label, now)
        for label in set(self._gone_since) - (held - alive):
            del self._gone_since[label]
        after = self.settings.shard_replace_after_s
        return {label for label, since in self._gone_since.items() if after and now - since >= after}, alive

    def _re_place(self) -> None:
        """Make the copies on nodes gone for good again on alive nodes that hold no copy of the same shard (the
        least loaded first), filled from the surviving copies; then end the old copies for good."""
        gone, alive = self._gone_for_good()
        if not gone:
            return
        for collection in list(self._collections.values()):
            for shard, labels in enumerate(collection.layout.nodes):
                for copy, label in enumerate(labels):
                    if label not in gone:
                        continue
                    load = Counter(n for c in self._collections.values() for ls in c.layout.nodes for n in ls)
                    free = sorted(alive - set(collection.layout.nodes[shard]), key=lambda n: (load[n], n))
                    if not free:
                        log.warning("copy %d of shard %d of %s: its node %s is gone and no other node is free",
                                    copy, shard, collection.name, label)  # fmt: skip
                        continue
                    moved = collection.layout.moved(shard, copy, free[0])
                    handle = self._start_copy(collection.config, moved, shard, copy, free[0])
                    old = collection.re_place(shard, copy, handle, free[0])
                    self._ray.kill(old, no_restart=True)

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
            try:
                self._re_place()
            except Exception:  # a node that cannot take a copy now: the next round tries again
                log.exception("making the copies of a lost node again failed")
            for collection in list(self._collections.values()):
                try:
                    collection.repair()
                except Exception:  # a copy that fails mid catch-up stays behind; the next round tries again
                    log.exception("repairing %s failed", collection.name)
