"""A real Ray cluster of three nodes on this machine (ray.cluster_utils), each named by a custom resource
(umbrella-a, -b, -c) so copies can be placed on it and come back to it, and the app connected to it."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

ray = pytest.importorskip("ray", reason="sharded collections need Ray (pip install '.[cluster]')")
from ray.cluster_utils import Cluster  # noqa: E402

LABELS = ("umbrella-a", "umbrella-b", "umbrella-c")
# Ray declares a silent node dead after 5 missed health checks 3 s apart (Ray 2.60 defaults); its actors are
# restarted elsewhere only then. A second here keeps a node-loss test within seconds.
FAST_FAILURE_DETECTION = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 2,
}


class LocalCluster:
    """Three Ray nodes in processes of this machine; a node can be removed and started again under its name."""

    def __init__(self) -> None:
        head = {"num_cpus": 1, "resources": {LABELS[0]: 1}, "_system_config": FAST_FAILURE_DETECTION}
        self.cluster = Cluster(initialize_head=True, head_node_args=head)
        self.nodes: dict[str, Any] = {LABELS[0]: self.cluster.head_node}
        for label in LABELS[1:]:
            self.start(label)
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        return str(self.cluster.address)

    def start(self, label: str) -> None:
        self.nodes[label] = self.cluster.add_node(num_cpus=1, resources={label: 1})

    def kill(self, label: str, workers: list[int]) -> None:
        """The node is gone, as when its machine dies: its raylet and the given workers on it (the copies' processes,
        which would otherwise notice their raylet's end only a while later) killed at once."""
        self.cluster.remove_node(self.nodes.pop(label), allow_graceful=False)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def shutdown(self) -> None:
        ray.shutdown()
        self.cluster.shutdown()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[LocalCluster]:
    local = LocalCluster()
    yield local
    local.shutdown()


@pytest.fixture
def cluster_settings(tmp_path: Path, ray_cluster: LocalCluster) -> Settings:
    # exact_max_floats 0: the copies search their graphs (the small test collections would be searched exactly)
    return Settings(
        data_dir=tmp_path / "data",
        index_threads=1,
        ray_address=ray_cluster.address,
        shard_timeout_s=5,
        exact_max_floats=0,
        filtered_exact_max_floats=0,
    )


@pytest.fixture
def cluster_client(cluster_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cluster_settings)) as c:
        yield c


from tests.e2e.conftest import server_factory  # noqa: E402, F401  (real server processes, for test_server.py)
