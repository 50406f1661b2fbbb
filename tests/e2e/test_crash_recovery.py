"""Crash recovery against the real server process (DESIGN.md §3).

* kill -9 at random moments of a write stream: every acknowledged write survives, acknowledged
  deletes stay deleted, the one request without an answer is applied entirely or not at all,
  and every surviving point is findable through the graph once /readyz says ready;
* SIGTERM writes a checkpoint that the next start loads instead of rebuilding;
* a corrupt checkpoint costs a rebuild of that collection only: it keeps answering meanwhile and
  a healthy neighbour in the same data dir is not disturbed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e

DIM = 16
BATCH = 200
COLL = "c"
SEED = 20240611
# The planner answers exactly below exact_max_floats; 0 forces the graph whenever it is ready, so
# the search checks below test the HNSW graph (and its checkpoint/replay), not the exact matrix.
# A small checkpoint_every makes background checkpoints happen (and get killed) mid-stream.
CRASH_ENV = {"UMBRELLA_EXACT_MAX_FLOATS": "0", "UMBRELLA_CHECKPOINT_EVERY": "1500"}


# ---- helpers --------------------------------------------------------------------------------
def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def b64(vectors: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode()


def create_collection(client: httpx.Client, name: str = COLL, **hnsw: int) -> None:
    body: dict[str, Any] = {"dim": DIM, "metric": "cosine", "payload_indexes": {"batch": "integer"}}
    if hnsw:
        body["hnsw"] = hnsw
    r = client.put(f"/collections/{name}", json=body)
    assert r.status_code == 201, r.text


def upsert(
    client: httpx.Client,
    ids: list[Any],
    vectors: np.ndarray,
    payloads: list[dict],
    *,
    name: str = COLL,
    columnar: bool = True,
) -> httpx.Response:
    if columnar:
        body: dict[str, Any] = {"batch": {"ids": ids, "vectors": b64(vectors), "payloads": payloads}}
    else:
        body = {
            "points": [
                {"id": i, "vector": v.tolist(), "payload": p} for i, v, p in zip(ids, vectors, payloads, strict=True)
            ]
        }
    return client.put(f"/collections/{name}/points", json=body)


def count(client: httpx.Client, flt: dict | None = None, name: str = COLL) -> int:
    r = client.post(f"/collections/{name}/points/count", json={"filter": flt} if flt else {})
    assert r.status_code == 200, r.text
    return int(r.json()["count"])


def batch_filter(b: int) -> dict:
    return {"must": [{"key": "batch", "range": {"gte": b, "lte": b}}]}


def info(client: httpx.Client, name: str = COLL) -> dict:
    r = client.get(f"/collections/{name}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def missing_ids(client: httpx.Client, ids: list[Any], name: str = COLL) -> list[Any]:
    """The ids of `ids` (at most 20, the size of the error's list) that the server does not have."""
    assert len(ids) <= 20
    r = client.post(f"/collections/{name}/points/get", json={"ids": ids, "with_payload": False})
    if r.status_code == 200:
        return []
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "point_not_found", r.text
    return list(r.json()["error"]["details"]["missing"])


def scroll_ids(client: httpx.Client, name: str = COLL) -> list[Any]:
    ids: list[Any] = []
    offset = None
    while True:
        r = client.post(
            f"/collections/{name}/points/scroll", json={"limit": 10_000, "offset": offset, "with_payload": False}
        )
        assert r.status_code == 200, r.text
        page = r.json()
        ids += [p["id"] for p in page["points"]]
        offset = page["next_offset"]
        if offset is None:
            return ids


def search_self(client: httpx.Client, ids: list[Any], vectors: np.ndarray, name: str = COLL) -> list[dict]:
    """Search each vector (graph, not exact) for its nearest point; returns the raw responses."""
    searches = [{"vector": v.tolist(), "k": 1, "exact": False, "ef": 200} for v in vectors]
    r = client.post(f"/collections/{name}/search/batch", json={"searches": searches})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert len(results) == len(ids)
    return results  # type: ignore[no-any-return]


def assert_self_hits(results: list[dict], ids: list[Any], *, plans: set[str]) -> None:
    bad = [
        (pid, res["plan"], res["results"][:1])
        for pid, res in zip(ids, results, strict=True)
        if res["plan"] not in plans
        or not res["results"]
        or res["results"][0]["id"] != pid
        or res["results"][0]["score"] < 0.999
    ]
    assert not bad, f"{len(bad)}/{len(ids)} points not found as their own top-1 (plans {plans}): {bad[:5]}"


def assert_graceful(server: ServerProcess) -> None:
    """SIGTERM: uvicorn runs the shutdown (close → checkpoint), then re-raises the signal, so -15 is clean too."""
    before = server.log_text().count("Application shutdown complete")
    code = server.stop()
    assert code in (0, -signal.SIGTERM), f"exit code {code}\n{server.log_tail()}"
    assert server.log_text().count("Application shutdown complete") == before + 1, server.log_tail()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, server: ServerProcess) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s\n{server.log_tail()}")
        time.sleep(0.05)


# ---- the write stream and what it was told ----------------------------------------------------
@dataclass
class Ledger:
    """What the server acknowledged. Only the writer thread changes it while it runs."""

    points: dict[Any, tuple[int, np.ndarray]] = field(default_factory=dict)  # id → (batch, vector)
    batch_ids: dict[int, list[Any]] = field(default_factory=dict)
    deleted: set[Any] = field(default_factory=set)
    committed: int = 0  # write batches the server acknowledged (each is one sequence number)
    inflight: tuple[str, Any, list[Any], np.ndarray | None] | None = None  # kind, batch, ids, vectors
    inflight_error: str = ""
    failures: list[str] = field(default_factory=list)  # non-200 answers: always a bug
    next_batch: int = 0

    def ids_of(self, b: int) -> list[Any]:
        # even batches use integer ids, odd ones strings: both must survive as given
        return [b * 1000 + i for i in range(BATCH)] if b % 2 == 0 else [f"b{b}-{i}" for i in range(BATCH)]


def writer(base_url: str, ledger: Ledger, stop: threading.Event, rng: random.Random) -> None:
    """Upsert batches (and every third time delete a few acknowledged ids) until a request fails."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        while not stop.is_set():
            b = ledger.next_batch
            ledger.next_batch += 1
            ids = ledger.ids_of(b)
            vectors = np.random.default_rng(SEED + b).normal(size=(BATCH, DIM)).astype(np.float32)
            ledger.inflight = ("upsert", b, ids, vectors)
            try:
                r = upsert(client, ids, vectors, [{"batch": b}] * BATCH, columnar=b % 4 != 3)
            except httpx.TransportError as err:
                ledger.inflight_error = repr(err)
                return
            ledger.inflight = None
            if r.status_code != 200:
                ledger.failures.append(f"upsert batch {b}: {r.status_code} {r.text[:300]}")
                return
            ledger.committed += 1
            ledger.batch_ids[b] = ids
            for pid, v in zip(ids, vectors, strict=True):
                ledger.points[pid] = (b, v)
            if b % 3 == 2 and len(ledger.points) > 50:
                doomed = rng.sample(sorted(ledger.points, key=str), 5)
                ledger.inflight = ("delete", None, doomed, None)
                try:
                    r = client.post(f"/collections/{COLL}/points/delete", json={"ids": doomed})
                except httpx.TransportError as err:
                    ledger.inflight_error = repr(err)
                    return
                ledger.inflight = None
                if r.status_code != 200 or r.json()["count"] != len(doomed):
                    ledger.failures.append(f"delete {doomed}: {r.status_code} {r.text[:300]}")
                    return
                ledger.committed += 1
                for pid in doomed:
                    del ledger.points[pid]
                    ledger.deleted.add(pid)


def resolve_inflight(client: httpx.Client, ledger: Ledger) -> str:
    """The request that got no answer is applied entirely or not at all; fold the outcome in."""
    if ledger.inflight is None:
        return "none"
    kind, b, ids, vectors = ledger.inflight
    ledger.inflight = None
    if kind == "upsert":
        n = count(client, batch_filter(b))
        assert n in (0, BATCH), f"in-flight batch {b} is partially present: {n} of {BATCH} points"
        if n == 0:
            assert len(missing_ids(client, ids[:20])) == 20
            return f"upsert {b}: absent"
        assert vectors is not None
        ledger.committed += 1
        ledger.batch_ids[b] = ids
        for pid, v in zip(ids, vectors, strict=True):
            ledger.points[pid] = (b, v)
        return f"upsert {b}: present"
    missing = missing_ids(client, ids)
    assert sorted(missing, key=str) in ([], sorted(ids, key=str)), f"in-flight delete {ids} half applied: {missing}"
    if missing:
        ledger.committed += 1
        for pid in ids:
            del ledger.points[pid]
            ledger.deleted.add(pid)
        return f"delete {len(ids)}: applied"
    return f"delete {len(ids)}: not applied"


def verify(client: httpx.Client, ledger: Ledger, rng: random.Random, cycle: int) -> None:
    """Everything acknowledged is there, and nothing else."""
    # exact set of ids: no acknowledged point lost, no acknowledged delete undone, no phantom
    present = scroll_ids(client)
    assert len(present) == len(set(present)), "scroll returned an id twice"
    expected = set(ledger.points)
    lost, extra = expected - set(present), set(present) - expected
    assert not lost, f"cycle {cycle}: {len(lost)} acknowledged points lost, e.g. {sorted(lost, key=str)[:10]}"
    assert not extra, f"cycle {cycle}: {len(extra)} unexpected points, e.g. {sorted(extra, key=str)[:10]}"
    assert count(client) == len(expected)

    meta = info(client)
    assert meta["count"] == len(expected)
    assert meta["seq"] == ledger.committed, "the sequence number should count exactly the committed batches"
    assert meta["index_state"] == "ready"
    assert meta["indexed_count"] == len(expected)

    # payloads and vectors intact (cosine collections store unit vectors)
    ids = list(ledger.points)
    for at in range(0, len(ids), 5000):
        chunk = ids[at : at + 5000]
        r = client.post(f"/collections/{COLL}/points/get", json={"ids": chunk, "with_vector": True})
        assert r.status_code == 200, r.text[:500]
        got = r.json()["points"]
        assert [p["id"] for p in got] == chunk
        for p in got:
            b = ledger.points[p["id"]][0]
            assert p["payload"] == {"batch": b}, p
        stored = np.asarray([p["vector"] for p in got], np.float32)
        want = unit(np.stack([ledger.points[pid][1] for pid in chunk]))
        np.testing.assert_allclose(stored, want, atol=1e-5)

    # acknowledged deletes stay deleted
    gone = sorted(ledger.deleted, key=str)
    for at in range(0, len(gone), 20):
        chunk = gone[at : at + 20]
        assert sorted(missing_ids(client, chunk), key=str) == chunk, "an acknowledged delete came back"

    # the payload index agrees with storage, batch by batch (a sample)
    for b in rng.sample(sorted(ledger.batch_ids), min(5, len(ledger.batch_ids))):
        alive = sum(1 for pid in ledger.batch_ids[b] if pid in ledger.points)
        assert count(client, batch_filter(b)) == alive, f"filtered count of batch {b}"

    # every point is findable through the graph: a sample of 50 searches for itself
    sample = rng.sample(ids, min(50, len(ids)))
    vectors = np.stack([ledger.points[pid][1] for pid in sample])
    assert_self_hits(search_self(client, sample, vectors), sample, plans={"hnsw"})
    # ... and deleted points are never answered
    for pid in rng.sample(gone, min(10, len(gone))):
        r = client.post(f"/collections/{COLL}/search", json={"id": pid, "k": 1})
        assert r.status_code == 404, r.text


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
