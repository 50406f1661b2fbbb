"""Facet counts: PayloadIndex.facet against a plain Counter over the selected points' payload values.

    python -m benchmarks.facets [--n N] [--runs R]

In process, no HTTP: N points with a keyword field of 200 values (brands), one of N/2 values (SKU-like,
about two points each) and an integer field of 50 values; facet counts (limit 20) among all points, a
random 10 % and a random 1 %, median milliseconds of R runs. The reference counts the same points' values
from a Python list with collections.Counter, what a client holding the payloads would do.
"""

from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from app.index.payload import PayloadIndex
from benchmarks._report import median_ms, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    n, rng = args.n, np.random.default_rng(0)
    payloads = [
        {"brand": f"b{rng.integers(200)}", "sku": f"s{rng.integers(n // 2)}", "stock": int(rng.integers(50))}
        for _ in range(n)
    ]
    index = PayloadIndex({"brand": "keyword", "sku": "keyword", "stock": "integer"})
    for slot, payload in enumerate(payloads):
        index.set(slot, payload)
    rows = []
    for share in (1.0, 0.1, 0.01):
        selected = rng.random(n) < share
        chosen = np.flatnonzero(selected).tolist()
        for key in ("brand", "sku", "stock"):
            ours = median_ms(lambda key=key, selected=selected: index.facet(key, selected, 20), args.runs)
            bare = median_ms(
                lambda key=key, chosen=chosen: Counter(payloads[i][key] for i in chosen).most_common(20), args.runs
            )
            rows.append([key, f"{share:.0%}", f"{ours:.2f}", f"{bare:.2f}", f"{bare / ours:.1f}×"])
    print("\n".join(table(["field", "selected", "facet ms", "Counter ms", "speed-up"], *rows)))


if __name__ == "__main__":
    main()
