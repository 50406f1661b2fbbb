"""Filters on fields without a payload index: what the scan costs against the same filter answered by an index.

    python -m benchmarks.scan_filters [--n 100000] [--runs 7] [--out benchmarks/RESULTS.md]

In process, no HTTP: two collections of the same N points (64-d, a payload of a title, a price and three
keyword fields that say "yes" for 1 %, 10 % and 50 % of the points, uncorrelated with the vectors), one with
payload indexes on those fields, one without. For each selectivity: the median milliseconds of R runs of
count (the filter alone) and of an exact k=10 search with the filter, indexed and scanned; then a range on the
unindexed price (no substring shortcut: every payload is parsed) and a must of the 10 % keyword (indexed)
AND the unindexed price range, where the scan reads only the points the index kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.search import searcher
from app.search.models import Query
from benchmarks._report import log, machine, median_ms, table, write_section

SECTION = "## Filters on fields without an index (scan)"
DIM = 64


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(args.n, DIM)).astype(np.float32)
    draws = rng.random((args.n, 3))
    payloads = [
        {
            "title": f"product {i}",
            "price": round(float(rng.random() * 100), 2),
            **{f"tag{p}": "yes" if draws[i, j] < p / 100 else "no" for j, p in enumerate((1, 10, 50))},
        }
        for i in range(args.n)
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        registry = CollectionRegistry(Settings(data_dir=Path(tmp), durability="relaxed"))
        registry.open()
        try:
            indexes = {"tag1": "keyword", "tag10": "keyword", "tag50": "keyword"}
            made = {}
            for name, schema in (("indexed", indexes), ("scanned", {})):
                collection = registry.create(CollectionConfig(name=name, dim=DIM, payload_indexes=schema))
                for start in range(0, args.n, 10_000):
                    ids = list(range(start, min(start + 10_000, args.n)))
                    collection.upsert(ids, vectors[ids], [payloads[i] for i in ids])
                made[name] = collection
            registry.wait_ready()
            log(f"{args.n} points in each collection")
            query = vectors[0]
            filters = {f"{p} % keyword match": {"must": [{"key": f"tag{p}", "match": "yes"}]} for p in (1, 10, 50)}
            for label, flt in filters.items():
                row = [label]
                for name in ("indexed", "scanned"):
                    row.append(f"{median_ms(lambda c=made[name], f=flt: c.count_matching(f), args.runs):.1f}")
                for name in ("indexed", "scanned"):
                    q = Query(vector=query, k=10, exact=True, filter=flt, with_payload=False)
                    row.append(f"{median_ms(lambda c=made[name], q=q: searcher.search(c, [q]), args.runs):.1f}")
                rows.append(row)
            price = {"must": [{"key": "price", "range": {"lt": 10}}]}
            both = {"must": [{"key": "tag10", "match": "yes"}, {"key": "price", "range": {"lt": 10}}]}
            collection = made["indexed"]  # price is unindexed in both: with tag10 indexed, the scan reads 10 %
            for label, flt in (("price < 10 (10 %), unindexed range", price), ("tag10 AND price < 10 (1 %)", both)):
                q = Query(vector=query, k=10, exact=True, filter=flt, with_payload=False)
                rows.append(
                    [
                        label,
                        "—",
                        f"{median_ms(lambda f=flt: collection.count_matching(f), args.runs):.1f}",
                        "—",
                        f"{median_ms(lambda q=q: searcher.search(collection, [q]), args.runs):.1f}",
                    ]
                )
        finally:
            registry.close()
        host = machine(tmp)
    text = "\n".join(
        [
            SECTION,
            "",
            f"`python -m benchmarks.scan_filters --n {args.n} --runs {args.runs}` "
            f"({time.strftime('%Y-%m-%d')}; {host}).",
            "",
            f"Median ms of {args.runs} runs over {args.n:,} points; the plan of a scanned search says `exact+scan`.",
            "",
            *table(
                ["filter", "count, indexed", "count, scanned", "search k=10, indexed", "search k=10, scanned"],
                *rows,
            ),
        ]
    )
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
