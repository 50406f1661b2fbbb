"""A ledger of acknowledged writes against a real server, and the checks that nothing acknowledged was lost.

The write stream (`writer`) upserts batches of sequential ids, even batches with integer ids and odd ones with
strings, and deletes a few acknowledged points every third batch; `resolve_inflight` folds in the one request
a kill left without an answer (applied wholly or not at all); `verify` checks the server against the ledger:
no holes, no phantoms, no resurrected deletes, whole batches only, vectors bit for bit, count = scroll =
filtered counts, and every point finds itself first through the graph. tests/e2e/test_crash_recovery.py and
the crash soak (tests/soak/crasher.py) use them.
"""

from __future__ import annotations

import base64
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np

from tests.e2e.conftest import ServerProcess

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
    body: dict[str, Any] = {
        "dim": DIM,
        "metric": "cosine",
        "payload_indexes": {"batch": "integer"},
        "lexical": {"fields": ["batch"]},  # the keyword index is written in the points' transaction: checked too
    }
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
        np.testing.assert_array_equal(stored, want)  # bit for bit: the server normalises once, as unit() does

    # acknowledged deletes stay deleted
    gone = sorted(ledger.deleted, key=str)
    for at in range(0, len(gone), 20):
        chunk = gone[at : at + 20]
        assert sorted(missing_ids(client, chunk), key=str) == chunk, "an acknowledged delete came back"

    # the payload index agrees with storage, batch by batch (a sample)
    for b in rng.sample(sorted(ledger.batch_ids), min(5, len(ledger.batch_ids))):
        alive = sum(1 for pid in ledger.batch_ids[b] if pid in ledger.points)
        assert count(client, batch_filter(b)) == alive, f"filtered count of batch {b}"
        # ... and so does the keyword index (the batch number is each point's one word)
        words = {"vector": [1.0] * DIM, "keywords": str(b), "mode": "lexical", "k": 1000, "with_payload": False}
        r = client.post(f"/collections/{COLL}/search", json=words)
        assert r.status_code == 200, r.text[:500]
        found = {h["id"] for h in r.json()["results"]}
        assert found == {pid for pid in ledger.batch_ids[b] if pid in ledger.points}, f"keyword hits of batch {b}"

    # every point is findable through the graph: a sample of 50 searches for itself
    sample = rng.sample(ids, min(50, len(ids)))
    vectors = np.stack([ledger.points[pid][1] for pid in sample])
    assert_self_hits(search_self(client, sample, vectors), sample, plans={"hnsw"})
    # ... and deleted points are never answered
    for pid in rng.sample(gone, min(10, len(gone))):
        r = client.post(f"/collections/{COLL}/search", json={"id": pid, "k": 1})
        assert r.status_code == 404, r.text
