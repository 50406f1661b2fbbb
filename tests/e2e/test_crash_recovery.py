"""Crash recovery against the real server process (DESIGN.md §3).

* kill -9 at random moments of a write stream: every acknowledged write survives, acknowledged
  deletes stay deleted, the one request without an answer is applied entirely or not at all,
  and every surviving point is findable through the graph once /readyz says ready;
* SIGTERM writes a checkpoint that the next start loads instead of rebuilding;
* a corrupt checkpoint costs a rebuild of that collection only: it keeps answering meanwhile and
  a healthy neighbour in the same data dir is not disturbed.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import ServerProcess
from tests.soak.ledger import (
    COLL,
    CRASH_ENV,
    DIM,
    SEED,
    Ledger,
    assert_graceful,
    assert_self_hits,
    create_collection,
    info,
    resolve_inflight,
    search_self,
    upsert,
    verify,
    wait_for,
    writer,
)

pytestmark = pytest.mark.e2e


# ---- tests ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_kill_9_mid_write_stream_loses_no_acknowledged_write(
    server_factory: Callable[..., ServerProcess],
) -> None:
    # separate generators: the kill moments must not depend on how far the writer got
    delays = [random.Random(SEED + cycle).uniform(0.3, 1.5) for cycle in range(3)]
    writer_rng, check_rng = random.Random(SEED + 10), random.Random(SEED + 20)
    server = server_factory(env=CRASH_ENV).start(wait_ready=True)
    with server.client() as client:
        create_collection(client)
    ledger = Ledger()
    report = []
    for cycle, delay in enumerate(delays):
        stop = threading.Event()
        thread = threading.Thread(target=writer, args=(server.url, ledger, stop, writer_rng), daemon=True)
        acked_before = ledger.committed
        thread.start()
        time.sleep(delay)  # not a readiness wait: the moment of the crash is the point of the test
        server.kill()  # SIGKILL
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "writer thread hung after the kill"
        assert not ledger.failures, ledger.failures
        assert ledger.committed > acked_before, f"cycle {cycle}: nothing was acknowledged before the kill"

        t1 = time.monotonic()
        server.start(wait_ready=True)
        with server.client() as client:
            outcome = resolve_inflight(client, ledger)
            verify(client, ledger, check_rng, cycle)
        report.append(
            f"cycle {cycle}: kill after {delay:.2f}s, {ledger.committed - acked_before} acked writes, "
            f"in flight: {outcome} ({ledger.inflight_error[:60]}), restart+verify {time.monotonic() - t1:.1f}s, "
            f"total {len(ledger.points)} points, {len(ledger.deleted)} deleted"
        )
        ledger.inflight_error = ""
    print("\n".join(report))
    assert_graceful(server)


def _fill(client: httpx.Client, name: str, n: int, seed: int) -> tuple[list[int], np.ndarray]:
    vectors = np.random.default_rng(seed).normal(size=(n, DIM)).astype(np.float32)
    ids = list(range(n))
    for at in range(0, n, 5000):
        part = ids[at : at + 5000]
        r = upsert(client, part, vectors[at : at + 5000], [{"batch": i // 1000} for i in part], name=name)
        assert r.status_code == 200, r.text
    return ids, vectors


def test_graceful_restart_loads_checkpoint(server_factory: Callable[..., ServerProcess], tmp_path: Path) -> None:
    server = server_factory(env=CRASH_ENV).start()
    with server.client() as client:
        create_collection(client)
        ids, vectors = _fill(client, COLL, 3000, seed=1)
        r = client.post(f"/collections/{COLL}/points/delete", json={"ids": ids[:10]})
        assert r.status_code == 200 and r.json()["count"] == 10, r.text
        r = upsert(client, [10_000 + i for i in range(5)], vectors[:5], [{"batch": 99}] * 5)  # reuses freed slots
        assert r.status_code == 200, r.text
        server.wait_ready()  # close() does not wait for a graph still building, so make sure it is built
    assert_graceful(server)

    folder = tmp_path / "data" / COLL
    manifest = json.loads((folder / "checkpoint.json").read_bytes())
    graph_file = folder / manifest["file"]
    assert manifest["seq"] == 3, manifest  # one sequence number per batch: 1 upsert, 1 delete, 1 upsert
    assert manifest["count"] == 2995
    assert hashlib.sha256(graph_file.read_bytes()).hexdigest() == manifest["sha256"]
    assert sorted(p.name for p in folder.glob("hnsw-*")) == [graph_file.name], "stale or temp graph files left"

    server.start(wait_ready=True)
    with server.client() as client:
        meta = info(client)
        assert (meta["index_state"], meta["count"], meta["indexed_count"], meta["seq"]) == ("ready", 2995, 2995, 3)
        assert "graph ready, 2995 points, loaded from its checkpoint" in server.log_text(), server.log_tail()
        assert "rebuilding" not in server.log_text()
        live = ids[10:60]
        assert_self_hits(search_self(client, live, vectors[10:60]), live, plans={"hnsw"})
        reused = [10_000 + i for i in range(5)]
        assert_self_hits(search_self(client, reused, vectors[:5]), reused, plans={"hnsw"})
    assert_graceful(server)


def _corrupt(folder: Path, how: str) -> None:
    manifest_path = folder / "checkpoint.json"
    graph_file = folder / json.loads(manifest_path.read_bytes())["file"]
    if how == "graph-bytes":
        data = bytearray(graph_file.read_bytes())
        mid = len(data) // 2
        data[mid : mid + 64] = bytes(b ^ 0xFF for b in data[mid : mid + 64])
        graph_file.write_bytes(bytes(data))
    elif how == "graph-truncated":
        graph_file.write_bytes(graph_file.read_bytes()[: graph_file.stat().st_size // 3])
    elif how == "manifest-garbage":
        manifest_path.write_bytes(manifest_path.read_bytes()[:40])
    else:
        raise AssertionError(how)


@pytest.mark.parametrize("how", ["graph-bytes", "graph-truncated", "manifest-garbage"])
def test_corrupt_checkpoint_rebuilds_one_collection(
    server_factory: Callable[..., ServerProcess], tmp_path: Path, how: str
) -> None:
    n = 10_000  # big enough that the rebuild is usually still running when the first requests arrive
    server = server_factory(env=CRASH_ENV).start()
    with server.client() as client:
        # a narrower build beam keeps the 10k-point fill and rebuild quick on a 2-core machine
        create_collection(client, "c", ef_construction=64)
        create_collection(client, "d", ef_construction=64)
        ids, vectors = _fill(client, "c", n, seed=2)
        d_ids, d_vectors = _fill(client, "d", 2000, seed=3)
        server.wait_ready()
    assert_graceful(server)
    data = tmp_path / "data"
    d_manifest = (data / "d" / "checkpoint.json").read_bytes()
    _corrupt(data / "c", how)

    server.start()  # healthy, not necessarily ready: c is rebuilding
    rng = random.Random(7)
    with server.client() as client:
        meta = info(client, "c")
        assert meta["count"] == n and meta["index_state"] in ("building", "ready"), meta
        states_seen = {meta["index_state"]}
        # writes during the rebuild go to the pending set and are replayed into the new graph
        extra_ids = [100_000 + i for i in range(100)]
        extra = np.random.default_rng(4).normal(size=(100, DIM)).astype(np.float32)
        assert upsert(client, extra_ids, extra, [{"batch": 500}] * 100, name="c").status_code == 200
        r = client.post("/collections/c/points/delete", json={"ids": ids[:10]})
        assert r.status_code == 200 and r.json()["count"] == 10, r.text

        sample = rng.sample(ids[10:], 30)
        results = search_self(client, sample, vectors[sample], name="c")
        assert_self_hits(results, sample, plans={"exact", "hnsw"})  # exact while building, graph after
        states_seen.add(info(client, "c")["index_state"])

        # the healthy neighbour loads its checkpoint and serves from its graph meanwhile
        wait_for(lambda: info(client, "d")["index_state"] == "ready", 20, "d ready", server)
        d_sample = d_ids[:30]
        assert_self_hits(search_self(client, d_sample, d_vectors[:30], name="d"), d_sample, plans={"hnsw"})
        assert info(client, "d")["count"] == 2000

        server.wait_ready()
        meta = info(client, "c")
        assert (meta["index_state"], meta["count"], meta["indexed_count"]) == ("ready", n + 90, n + 90), meta
        sample = rng.sample(ids[10:], 30) + extra_ids[:20]
        want = np.concatenate([vectors[sample[:30]], extra[:20]])
        assert_self_hits(search_self(client, sample, want, name="c"), sample, plans={"hnsw"})
        for pid in ids[:3]:
            r = client.post("/collections/c/search", json={"vector": vectors[pid].tolist(), "k": 1})
            assert r.json()["results"][0]["id"] != pid, "a deleted point came back from the rebuilt graph"

        log = server.log_text()
        assert "rebuilding the graph from the database" in log, server.log_tail()
        assert f"graph ready, {n} points, built" in log or f"graph ready, {n + 90} points, built" in log, (
            server.log_tail()
        )
        assert "graph ready, 2000 points, loaded from its checkpoint" in log, (
            "the healthy collection should load, not rebuild"
        )

    # the rebuilt graph is checkpointed again, and that checkpoint verifies
    def repaired() -> bool:
        try:
            manifest = json.loads((data / "c" / "checkpoint.json").read_bytes())
            digest = hashlib.sha256((data / "c" / manifest["file"]).read_bytes()).hexdigest()
        except (OSError, ValueError, KeyError):
            return False
        return digest == manifest["sha256"]

    wait_for(repaired, 20, "a valid checkpoint for c after the rebuild", server)
    assert (data / "d" / "checkpoint.json").read_bytes() == d_manifest, "d's checkpoint should be untouched"
    print(f"{how}: states seen on c right after start: {sorted(states_seen)}")
    assert_graceful(server)
