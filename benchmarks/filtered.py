"""Filtered search through REST across the selectivity band: keyword, float range, and both together.

    python -m benchmarks.filtered [--n 399000] [--queries 200] [--runs 3] [--out benchmarks/RESULTS.md]

A real server with N GloVe 6B 50-d vectors (cosine, M 16, ef_construction 200, ef 150); each point has a
`tag` (one of 100 keyword values) and a `price` (uniform in [0, 100)), both drawn at random, so unrelated to
the vectors, and both with a payload index. For each selectivity s in 1, 5, 10, 15, 25 and 50 %, three
filters keep s % of the points: `tag` any of s values, `price < s`, and `tag` any of 50 values AND
`price < 2s`. Each is asked Q single searches (k 10, one request at a time, httpx keep-alive) after the
unfiltered ones; recall@10 is against numpy's exact top 10 among the points the filter keeps. Medians of R
passes over the same server, once as it runs (a repeated filter's mask is kept) and once restarted with the
mask cache off; the target is p50 ≤ 2× the unfiltered p50 with recall@10 ≥ 0.95.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from benchmarks._report import log, machine, table, write_section
from benchmarks._server import Server
from benchmarks.glove import K, exact_top_k, load_glove, recall_at_k, unit

SECTION = "## Filtered search across the selectivity band"
COLL = "/collections/filtered"
SELECTIVITIES = (1, 5, 10, 15, 25, 50)
EF, BATCH = 150, 1000
NP = orjson.OPT_SERIALIZE_NUMPY
HEAD = ["filter", "keeps", "plan", "candidates", "recall@10", "p50 ms, repeated", "× unfiltered"]
HEAD += ["p50 ms, asked once", "× unfiltered"]
JSON = {"content-type": "application/json"}


def payloads(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.integers(0, 100, n), rng.random(n) * 100


def filters(s: int) -> dict[str, dict[str, Any]]:
    return {
        "keyword": {"must": [{"key": "tag", "any": [f"t{v}" for v in range(s)]}]},
        "range": {"must": [{"key": "price", "range": {"lt": s}}]},
        "both": {
            "must": [{"key": "tag", "any": [f"t{v}" for v in range(50)]}, {"key": "price", "range": {"lt": 2 * s}}]
        },
    }


def kept(kind: str, s: int, tags: np.ndarray, prices: np.ndarray) -> np.ndarray:
    if kind == "keyword":
        return np.flatnonzero(tags < s)
    if kind == "range":
        return np.flatnonzero(prices < s)
    return np.flatnonzero((tags < 50) & (prices < 2 * s))


def ingest(client: httpx.Client, server: Server, base: np.ndarray, tags: np.ndarray, prices: np.ndarray) -> None:
    create = {
        "dim": base.shape[1],
        "metric": "cosine",
        "hnsw": {"m": 16, "ef_construction": 200, "ef": EF},
        "payload_indexes": {"tag": "keyword", "price": "float"},
    }
    client.put(COLL, json=create).raise_for_status()
    for s in range(0, len(base), BATCH):
        ids = list(range(s, min(s + BATCH, len(base))))
        batch = {
            "ids": ids,
            "vectors": base64.b64encode(base[s : s + BATCH].astype("<f4").tobytes()).decode(),
            "payloads": [{"tag": f"t{tags[i]}", "price": float(prices[i])} for i in ids],
        }
        client.put(f"{COLL}/points", content=orjson.dumps({"batch": batch}), headers=JSON).raise_for_status()
    server.wait_ready()


def timed(client: httpx.Client, queries: np.ndarray, flt: dict[str, Any] | None) -> tuple[list[float], list[Any]]:
    lat, answers = [], []
    for q in queries:
        body = orjson.dumps({"vector": q, "k": K, "with_payload": False, **({"filter": flt} if flt else {})}, option=NP)
        t = time.perf_counter()
        r = client.post(f"{COLL}/search", content=body, headers=JSON)
        lat.append(time.perf_counter() - t)
        r.raise_for_status()
        answers.append(r.json())
    return lat, answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=399_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    base, queries = load_glove(args.n)
    queries = queries[: args.queries]
    tags, prices = payloads(len(base))
    base_u, queries_u = unit(base), unit(queries)
    cases = [(kind, s, flt) for s in SELECTIVITIES for kind, flt in filters(s).items()]
    truth = {(kind, s): exact_top_k(base_u, queries_u, kept(kind, s, tags, prices)) for kind, s, _ in cases}
    p50s: dict[tuple[str, str, int], list[float]] = {}
    found: dict[tuple[str, int], dict[str, Any]] = {}

    def passes(client: httpx.Client, label: str) -> None:
        timed(client, queries[:50], None)  # warm-up
        for run in range(args.runs):
            lat, _ = timed(client, queries, None)
            p50s.setdefault((label, "none", 100), []).append(statistics.median(lat) * 1e3)
            for kind, s, flt in cases:
                lat, answers = timed(client, queries, flt)
                p50s.setdefault((label, kind, s), []).append(statistics.median(lat) * 1e3)
                found[(kind, s)] = {
                    "recall": recall_at_k([[h["id"] for h in a["results"]] for a in answers], truth[(kind, s)]),
                    "plan": "/".join(sorted({a["plan"] for a in answers})),
                    "candidates": answers[0]["candidates"],
                }
            log(f"{label} run {run}: unfiltered p50 {p50s[(label, 'none', 100)][-1]:.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", Path(tmp) / "server.log").start()
        try:
            with httpx.Client(base_url=server.url, timeout=120) as client:
                log(f"ingesting {len(base):,} points")
                ingest(client, server, base, tags, prices)
                passes(client, "kept")
            server.stop()
            server.env = {"UMBRELLA_MASK_CACHE_MB": "0"}  # every filter's mask made anew: a filter asked once
            server.start().wait_ready()
            with httpx.Client(base_url=server.url, timeout=120) as client:
                passes(client, "made")
        finally:
            server.stop()
        host = machine(tmp)
    rows = []
    for kind, s in [("none", 100), *((kind, s) for kind, s, _ in cases)]:
        f = found.get((kind, s), {"plan": "hnsw", "candidates": len(base)})
        row = [kind, f"{s} %", f["plan"], f"{f['candidates']:,}", f"{f['recall']:.3f}" if "recall" in f else ""]
        for label in ("kept", "made"):
            p50 = statistics.median(p50s[(label, kind, s)])
            row += [f"{p50:.2f}", f"{p50 / statistics.median(p50s[(label, 'none', 100)]):.2f}×"]
        rows.append(row)
    met = {
        label: all(r[4] == "" or (float(r[4]) >= 0.95 and float(r[col][:-1]) <= 2.0) for r in rows)
        for label, col in (("repeated", 6), ("asked once", 8))
    }
    text = "\n".join(
        [
            SECTION,
            "",
            f"`python -m benchmarks.filtered --n {args.n} --queries {args.queries} --runs {args.runs}` "
            f"({time.strftime('%Y-%m-%d')}; {host}).",
            "",
            f"{len(base):,} GloVe vectors, {len(queries)} single searches per filter through REST, p50 the median"
            f" of {args.runs} passes; `both` is tag (50 %) AND price < 2s. *Repeated*: the server as it runs, where"
            " a filter asked again before the next write has its mask kept (each filter is asked 200 times in a"
            " row); *asked once*: the same server restarted with `UMBRELLA_MASK_CACHE_MB=0`, so every mask is"
            " made anew, as for a filter no one asked before. Each ratio is to the unfiltered p50 of its own pass.",
            "",
            *table(HEAD, *rows),
            "",
            "Target (p50 ≤ 2× unfiltered, recall@10 ≥ 0.95 at every point): "
            + "; ".join(f"{label}: {'met' if ok else 'missed'}" for label, ok in met.items())
            + ".",
        ]
    )
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
