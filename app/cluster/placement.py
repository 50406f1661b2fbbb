"""Where things live in a cluster: a point's shard (a stable hash of its id) and the nodes of a shard's copies."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from app.collections.models import PointId
from app.core.errors import InvalidInput

# A node started with a custom resource of this prefix (`ray start --resources='{"umbrella-a": 1}'`) is known by
# that name: a copy placed there comes back there when the node returns under the same name, as it does after a
# restart. A node without one is known by its Ray node id, which a restarted node does not keep.
LABEL_PREFIX = "umbrella-"


def shard_of(pid: PointId, shards: int) -> int:
    """The shard of a point id, the same in every process and every run (Python's hash() is salted per process);
    5 and "5" are different ids and may land on different shards."""
    digest = hashlib.blake2b(orjson.dumps(pid), digest_size=8).digest()
    return int.from_bytes(digest, "little") % shards


@dataclass(frozen=True)
class Node:
    label: str  # the umbrella-… resource, or "id:<node id>"
    node_id: str
    alive: bool


def node_of(entry: dict[str, Any]) -> Node:
    """A node as `ray.nodes()` lists it."""
    labels = sorted(r for r in entry.get("Resources", {}) if r.startswith(LABEL_PREFIX))
    node_id = entry["NodeID"]
    return Node(labels[0] if labels else f"id:{node_id}", node_id, bool(entry.get("Alive")))


def place(shards: int, replicas: int, nodes: list[str]) -> list[list[str]]:
    """The node label of every copy: shard i's copies on i, i+1, … (mod the nodes), so the copies of a shard sit
    on different nodes and the shards' first copies spread over all of them."""
    if replicas > len(nodes):
        raise InvalidInput(
            f"{replicas} copies of each shard need {replicas} nodes; the cluster has {len(nodes)} alive",
            replicas=replicas,
            nodes=len(nodes),
        )
    return [[nodes[(shard + copy) % len(nodes)] for copy in range(replicas)] for shard in range(shards)]


def scheduling(label: str) -> dict[str, Any]:
    """Ray actor options that put an actor on the node with this label, and nowhere else."""
    if label.startswith("id:"):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return {"scheduling_strategy": NodeAffinitySchedulingStrategy(label[3:], soft=False)}
    return {"resources": {label: 0.001}}
