"""Bulk loading through the SDK and the command line, beside raw hnswlib in the same run.

1. SDK `upload` of GloVe vectors (default all 399k) into a cosine collection with the default HNSW
   settings, timed until the points are on disk and in the graph, against raw `add_items` of the same
   vectors with the same M/ef_construction.
2. `umbrella import` of a JSON Lines file of product titles into a text collection (embedding included),
   against the bare model's `encode(batch_size=64)` of the same titles.

Usage: python -m benchmarks.bulk_load [--n 399000] [--runs 3] [--texts 100000] [--text-runs 1]
The text part is model-bound (~200 sentences/s on 2 cores: ~16 min for 100k rows, import and bare encode),
so it has its own run count; the first `--text-runs` runs do it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hnswlib
import httpx
import numpy as np

from benchmarks._report import log, machine, table, write_section
from benchmarks._server import REPO_ROOT, Server
from benchmarks.glove import load_glove

RESULTS = REPO_ROOT / "benchmarks" / "RESULTS.md"
M, EF_CONSTRUCTION = 16, 200  # the collection defaults
WORDS = [
    *("red", "blue", "black", "white", "green", "leather", "canvas", "cotton", "wool", "steel", "running", "hiking"),
    *("tennis", "travel", "kids", "women", "men", "waterproof", "lightweight", "wireless", "portable", "classic"),
    *("slim", "large", "small", "vintage", "organic"),
]
THINGS = ["shoes", "boots", "bag", "backpack", "wallet", "jacket", "coat", "shirt", "pan", "skillet", "kettle"]


def titles(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        " ".join([*rng.choice(WORDS, 3, replace=False).tolist(), str(rng.choice(THINGS)), f"model {i}"])
        for i in range(n)
    ]


def wait_indexed(client: httpx.Client, name: str, count: int) -> None:
    while True:
        info = client.get(f"/collections/{name}").json()
        if info["index_state"] == "ready" and info["indexed_count"] == count:
            return
        time.sleep(0.05)


def sdk_upload(server: Server, vectors: np.ndarray, run: int) -> dict[str, float]:
    from umbrella_client import Client

    name = f"glove-{run}"
    with Client(server.url, timeout=600) as client, server.client() as http:
        client.create_collection(name, dim=vectors.shape[1])
        t0 = time.perf_counter()
        ids = range(len(vectors))
        summary = client.upload(name, vectors=vectors, ids=ids, batch_size=2000, parallel=2, progress=False)
        acknowledged = time.perf_counter() - t0
        wait_indexed(http, name, len(vectors))
        total = time.perf_counter() - t0
        assert summary.ok and summary.sent == len(vectors), summary
        client.drop_collection(name)
    return {"acknowledged_s": acknowledged, "indexed_s": total}


def raw_add_items(vectors: np.ndarray) -> float:
    index = hnswlib.Index(space="cosine", dim=vectors.shape[1])
    index.init_index(max_elements=len(vectors), M=M, ef_construction=EF_CONSTRUCTION)
    t0 = time.perf_counter()
    index.add_items(vectors, np.arange(len(vectors)))
    return time.perf_counter() - t0


def cli_import(server: Server, path: Path, n: int, run: int) -> float:
    name = f"titles-{run}"
    with server.client() as http:
        assert http.put(f"/collections/{name}", json={"embedder": {"kind": "text"}}).status_code == 201
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "import", str(path), "-c", name, "--url", server.url, "--no-progress",
         "--batch-size", "256", "--restart"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - t0
    assert done.returncode == 0 and f"imported {n} of {n}" in done.stdout, done.stdout + done.stderr
    with server.client() as http:
        http.delete(f"/collections/{name}")
    return seconds


def bare_encode(texts: list[str]) -> float:
    from app.embedding.sentence import SentenceEmbedder

    model = SentenceEmbedder("text", "all-MiniLM-L6-v2")
    model.embed_texts(texts[:64])  # warm up
    t0 = time.perf_counter()
    model.embed_texts(texts)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=399_000, help="GloVe vectors to upload")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--texts", type=int, default=100_000, help="rows in the JSON Lines file of titles")
    ap.add_argument("--text-runs", type=int, default=1, help="how many of the runs also import the titles")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    vectors, _ = load_glove(args.n)
    texts = titles(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        jsonl = tmp_path / "titles.jsonl"
        jsonl.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts)))
        server = Server(tmp_path / "data", tmp_path / "server.log").start()
        try:
            uploads, raws, imports, encodes = [], [], [], []
            for run in range(args.runs):
                log(f"run {run + 1}/{args.runs}: raw add_items of {len(vectors):,}")
                raws.append(raw_add_items(vectors))
                log("SDK upload")
                uploads.append(sdk_upload(server, vectors, run))
                log(f"raw {raws[-1]:.1f}s, sdk {uploads[-1]}")
                if run < args.text_runs:
                    log(f"umbrella import of {len(texts):,} titles")
                    imports.append(cli_import(server, jsonl, len(texts), run))
                    log("bare encode")
                    encodes.append(bare_encode(texts))
                    log(f"import {imports[-1]:.1f}s, encode {encodes[-1]:.1f}s")
        finally:
            server.stop()
        machine_line = machine(str(tmp_path))

    n = len(vectors)
    raw = statistics.median(raws)
    acked = statistics.median(u["acknowledged_s"] for u in uploads)
    indexed = statistics.median(u["indexed_s"] for u in uploads)
    imported, encoded = statistics.median(imports), statistics.median(encodes)
    lines = [
        "## Bulk loading: SDK upload and umbrella import",
        "",
        f"- Command: `python -m benchmarks.bulk_load --n {args.n} --runs {args.runs} --texts {args.texts} "
        f"--text-runs {args.text_runs}`",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine_line}",
        "- Server: `python -m app.cli serve`, default settings (durability fsync). SDK: `Client.upload(batch_size="
        "2000, parallel=2)`, vectors sent as base64 float32; the clock stops when every point is acknowledged "
        "(on disk) and again when the graph holds them all. Raw: `hnswlib.Index.add_items` in this process, "
        f"M={M}, ef_construction={EF_CONSTRUCTION}, all threads. Import: `umbrella import` of a JSON Lines file "
        "of generated product titles (batches of 256) into a text collection (all-MiniLM-L6-v2 on CPU); "
        "bare: `encode(batch_size=64)` of the same titles, in this process. Medians of the runs "
        f"({args.runs} of the vectors, {len(imports)} of the titles).",
        "",
        *table(
            ["measure", "Umbrella", "raw", "ratio"],
            [
                f"SDK upload, {n:,} GloVe 50-d vectors, acknowledged",
                f"{n / acked:,.0f} vectors/s",
                f"{n / raw:,.0f} vectors/s (add_items)",
                f"{raw / acked:.2f}×",
            ],
            [
                f"SDK upload, {n:,} vectors, all in the graph",
                f"{n / indexed:,.0f} vectors/s",
                f"{n / raw:,.0f} vectors/s",
                f"{raw / indexed:.2f}×",
            ],
            [
                f"`umbrella import`, {args.texts:,} titles (JSON Lines, embedded)",
                f"{args.texts / imported:,.0f} rows/s",
                f"{args.texts / encoded:,.0f} sentences/s (bare encode)",
                f"{encoded / imported:.2f}×",
            ],
        ),
        "Runs (seconds): raw "
        + ", ".join(f"{r:.1f}" for r in raws)
        + "; SDK acknowledged "
        + ", ".join(f"{u['acknowledged_s']:.1f}" for u in uploads)
        + "; SDK in graph "
        + ", ".join(f"{u['indexed_s']:.1f}" for u in uploads)
        + "; import "
        + ", ".join(f"{s:.1f}" for s in imports)
        + "; bare encode "
        + ", ".join(f"{s:.1f}" for s in encodes)
        + ".",
    ]
    write_section(args.out, lines[0], "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
