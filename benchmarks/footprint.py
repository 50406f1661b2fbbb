"""Bytes per vector of one collection, in memory and on disk, at several dimensions: what docs/scale.md rests on.

    python -m benchmarks.footprint [--n 50000] [--dims 64,384,768] [--out benchmarks/out/footprint.md]

For each dimension, a child process (so its memory is its own) opens an empty data directory, notes its RSS,
creates a cosine collection (M 16, ef_construction 200) with one keyword and one float payload field indexed,
upserts N/2 random points in batches of 5,000 with a small payload each, waits for the graph, notes its RSS,
does the same with N/2 more, and notes it again; it then closes the collection (which writes the graph
checkpoint) and counts the bytes of every file in the collection's folder. Memory per vector: the whole growth
divided by N (fixed costs included), and the growth of the second half divided by N/2 (what one more vector
costs: the capacity plan's figure). A fit of bytes = a + b × dim over the dimensions gives the per-vector and
per-dimension costs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import log, machine, proc_status_kib, table, write_section

HERE = Path(__file__).resolve().parent
SECTION = "## Bytes per vector (the capacity plan's numbers)"


def rss_bytes() -> int:
    return proc_status_kib("VmRSS") * 1024


def one(n: int, dim: int) -> dict[str, Any]:
    """In a child process: memory and disk per vector at this dimension."""
    from app.collections.models import CollectionConfig
    from app.core.config import Settings
    from app.main import open_registry

    rng = np.random.default_rng(dim)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        registry = open_registry(Settings(data_dir=Path(tmp), recall_sample_every=0, durability="relaxed"))
        before = rss_bytes()
        config = CollectionConfig(name="c", dim=dim, payload_indexes={"colour": "keyword", "price": "float"})
        collection = registry.create(config)
        colours = ["red", "green", "blue", "black", "white"]
        seen, started = [], time.perf_counter()
        for half in (0, n // 2):  # the second half's growth is the cost of a vector beyond the fixed ones
            for s in range(half, half + n // 2, 5_000):
                rows = rng.normal(size=(min(5_000, half + n // 2 - s), dim)).astype(np.float32)
                payloads = [{"colour": colours[i % 5], "price": float(i % 997)} for i in range(s, s + len(rows))]
                collection.upsert(list(range(s, s + len(rows))), rows, payloads)  # type: ignore[arg-type]
            while collection.graph.state != "ready":
                time.sleep(0.2)
            seen.append(rss_bytes())
        memory, marginal, seconds = seen[1] - before, seen[1] - seen[0], time.perf_counter() - started
        registry.close()
        files = {f.name: f.stat().st_size for f in (Path(tmp) / "c").rglob("*") if f.is_file()}
    sqlite = sum(size for name, size in files.items() if name.startswith("points.db"))
    return {
        "dim": dim,
        "memory": memory / n,
        "marginal": marginal / (n - n // 2),
        "sqlite": sqlite / n,
        "disk": sum(files.values()) / n,
        "rate": n / seconds,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=50_000)
    p.add_argument("--dims", default="64,384,768")
    p.add_argument("--out", type=Path, default=HERE / "out" / "footprint.md")
    p.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        print(json.dumps(one(args.n, args.child)))
        return
    rows = []
    for dim in map(int, args.dims.split(",")):
        log(f"{args.n:,} points of {dim} dimensions")
        child = [sys.executable, "-m", "benchmarks.footprint", "--n", str(args.n), "--child", str(dim)]
        done = subprocess.run(child, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        log(json.dumps(rows[-1]))
    dims = np.array([r["dim"] for r in rows], float)
    fits = {key: np.polyfit(dims, [r[key] for r in rows], 1) for key in ("marginal", "disk")}
    text = "\n".join([
        SECTION,
        "",
        f"- Command: `python -m benchmarks.footprint --n {args.n} --dims {args.dims}`",
        f"- Machine: {machine('.')}",
        f"- {args.n:,} random points per dimension, cosine, M 16, ef_construction 200, a keyword and a float "
        "payload field indexed; memory is the growth of the process's RSS, disk every file of the collection "
        "after a clean stop (database and graph checkpoint).",
        "",
        *table(
            ["dim", "memory, growth / N", "memory, one more vector", "SQLite", "disk in all", "load + graph, points/s"],
            *[
                [r["dim"], *(f"{r[k]:,.0f}" for k in ("memory", "marginal", "sqlite", "disk", "rate"))]
                for r in rows
            ],
        ),
        "Bytes per vector; the last column is how fast a collection of that many points is built on 2 cores "
        "(upserts with durability relaxed, graph included): the rate of a rebuild.",
        "",
        f"Fit: memory ≈ {fits['marginal'][1]:,.0f} + {fits['marginal'][0]:.1f} × dim bytes per vector; "
        f"disk ≈ {fits['disk'][1]:,.0f} + {fits['disk'][0]:.1f} × dim.",
    ])  # fmt: skip
    print(text)
    write_section(args.out, SECTION, text)
    log(f"wrote the section to {args.out}")


if __name__ == "__main__":
    main()
