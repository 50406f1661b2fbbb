"""Keyword and hybrid search: quality per kind of shopper query, and what hybrid costs over dense alone.

    python -m benchmarks.hybrid [--seeds 0,1,2,3] [--products 5000] [--rounds 3] [--out benchmarks/RESULTS.md]

A real server with the real text model (all-MiniLM-L6-v2) per seed: the generated catalogue of
app/demo/catalogue.py (products with brands, model numbers, SKUs) loaded with a keyword index over
the embedded text, the SKU and the brand; 200 typed queries (50 each: exact code, brand + model,
descriptive words, misspelled words). Recall@10 and MRR per kind for dense, lexical, and hybrid with
weighted fusion at alpha 0.3 (the default)/0.4/0.5 and with rrf (k 60). Latency on the first seed: the 200 queries one
by one over HTTP, dense and hybrid alternating query by query, p50/p99 per round, medians of the rounds;
once by text (the server embeds: what a shopper's search costs) and once by a stored product's id plus
the words (no model call: the keyword half's own cost).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from app.demo.catalogue import KINDS, generate_catalogue, typed_queries
from benchmarks._report import log, machine, ms, table, write_section
from benchmarks._server import Server
from tests.support.catalogue import Quality, evaluate, load, ranked

SECTION = "## Keyword and hybrid search"
VARIANTS: dict[str, dict[str, Any]] = {
    "dense": {"mode": "dense"},
    "lexical": {"mode": "lexical"},
    "hybrid weighted 0.3 (default)": {},
    "hybrid weighted 0.4": {"fusion": {"method": "weighted", "alpha": 0.4}},
    "hybrid weighted 0.5": {"fusion": {"method": "weighted", "alpha": 0.5}},
    "hybrid rrf k=60": {"fusion": {"method": "rrf", "k": 60}},
}


def _latency(http: Any, bodies: dict[str, list[dict[str, Any]]], rounds: int) -> dict[str, tuple[float, float]]:
    """(p50, p99) ms per variant: the queries one by one, the variants alternating, medians over rounds."""
    per_round: dict[str, list[tuple[float, float]]] = {name: [] for name in bodies}
    for _ in range(rounds):
        times: dict[str, list[float]] = {name: [] for name in bodies}
        for i in range(len(next(iter(bodies.values())))):
            for name, queries in bodies.items():
                started = time.perf_counter()
                response = http.post("/collections/catalogue/search", json=queries[i])
                times[name].append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
        for name, t in times.items():
            per_round[name].append((ms(t, 50), ms(t, 99)))
    return {
        name: (statistics.median(p for p, _ in rs), statistics.median(p for _, p in rs))
        for name, rs in per_round.items()
    }


def _cell(q: Quality) -> str:
    return f"{q.recall_at_10:.3f} / {q.mrr:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    quality: dict[int, dict[str, dict[str, Quality]]] = {}
    latency: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            products = generate_catalogue(args.products, seed=seed)
            queries = typed_queries(products, per_kind=50, seed=seed + 1)
            server = Server(Path(tmp) / f"data-{seed}", Path(tmp) / f"server-{seed}.log").start()
            try:
                with server.client() as http:
                    started = time.perf_counter()
                    load(http, "catalogue", products)
                    log(f"seed {seed}: {len(products)} products stored in {time.perf_counter() - started:.0f} s")
                    quality[seed] = {
                        name: evaluate(queries, ranked(http, "catalogue", queries, **knobs))
                        for name, knobs in VARIANTS.items()
                    }
                    if seed == seeds[0]:
                        by_text = {
                            "dense": [{"text": q.text, "mode": "dense", "with_payload": False} for q in queries],
                            "hybrid": [{"text": q.text, "with_payload": False} for q in queries],
                        }
                        ids = [p.id for p in products[: len(queries)]]
                        by_id = {
                            "dense": [{"id": i, "mode": "dense", "with_payload": False} for i in ids],
                            "hybrid": [
                                {"id": i, "keywords": q.text, "with_payload": False}
                                for i, q in zip(ids, queries, strict=True)
                            ],
                        }
                        latency = {
                            **{f"{k} by text": v for k, v in _latency(http, by_text, args.rounds).items()},
                            **{f"{k} by id + words": v for k, v in _latency(http, by_id, args.rounds).items()},
                        }
            finally:
                server.stop()
        host = machine(tmp)
    lines = [
        SECTION,
        "",
        f"`python -m benchmarks.hybrid --seeds {args.seeds} --products {args.products} --rounds {args.rounds}` "
        f"({time.strftime('%Y-%m-%d')}; {host}).",
        "",
        f"Recall@10 / MRR per kind of query (50 each), catalogue and queries of seed {seeds[0]}:",
        "",
        *table(
            ["mode", *KINDS, "all"],
            *([name, *(_cell(quality[seeds[0]][name][k]) for k in (*KINDS, "all"))] for name in VARIANTS),
        ),
        "Recall@10 on the mix (all 200 queries) and per kind, every seed: does hybrid keep up with the better of the "
        "two on each kind (≥ best − 0.02) and beat both on the mix?",
        "",
    ]
    rows = []
    for seed in seeds:
        q = quality[seed]
        for name in VARIANTS:
            if not name.startswith("hybrid"):
                continue
            keeps = all(
                q[name][k].recall_at_10 >= max(q["dense"][k].recall_at_10, q["lexical"][k].recall_at_10) - 0.02
                for k in KINDS
            )
            wins = q[name]["all"].recall_at_10 > max(q["dense"]["all"].recall_at_10, q["lexical"]["all"].recall_at_10)
            rows.append(
                [
                    seed,
                    name,
                    _cell(q[name]["all"]),
                    _cell(q["dense"]["all"]),
                    _cell(q["lexical"]["all"]),
                    "yes" if keeps else "no",
                    "yes" if wins else "no",
                ]
            )
    lines += table(
        ["seed", "hybrid", "all", "dense all", "lexical all", "keeps up on every kind", "beats both on the mix"], *rows
    )
    lines += [
        f"Latency over HTTP, one query at a time (seed {seeds[0]}, 200 queries, median of {args.rounds} rounds):",
        "",
        *table(
            ["search", "p50 ms", "p99 ms"],
            *([name, f"{p50:.2f}", f"{p99:.2f}"] for name, (p50, p99) in latency.items()),
        ),
    ]
    text = "\n".join(lines)
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
