"""Re-upserting stored points: fresh inserts against re-sending the same vectors and sending new ones.

    python -m benchmarks.reupsert [--n 10000] [--dim 64] [--runs 3] [--out benchmarks/RESULTS.md]

In process, no HTTP, durability relaxed (the graph is what is measured). Two collections with their graphs
up take N points each in batches of 1,000 (fresh). One then takes N more new ids (fresh, into N stored: its
graph grows from N to 2N nodes). The other takes its N ids again with the same vectors and new payloads (a
price update, an import run again), then with new vectors (its graph also grows from N to 2N nodes: N live,
N dead), which brings the dead nodes to the live count and starts a rebuild without them in the background;
then new vectors once more while that rebuild runs on the same CPUs. The seconds from the end of the first
move until the rebuilt graph is installed are the last figure. Points per second, the median of R runs, each
on new collections.
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from benchmarks._report import log, machine, table, write_section

SECTION = "## Re-upserting stored points"
BATCH = 1000
REBUILD_WAIT_S = 120.0  # a tree without compaction never installs a rebuilt graph


def _rate(collection: object, ids: list[int], vectors: np.ndarray, payloads: list[dict]) -> float:
    started = time.perf_counter()
    for at in range(0, len(ids), BATCH):
        collection.upsert(ids[at : at + BATCH], vectors[at : at + BATCH], payloads[at : at + BATCH])  # type: ignore[attr-defined]
    return len(ids) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    ids = list(range(args.n))
    rates: dict[str, list[float]] = {
        "fresh": [],
        "fresh, into N stored": [],
        "same vectors": [],
        "new vectors": [],
        "new vectors again, during the rebuild": [],
    }
    compaction: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            registry = CollectionRegistry(Settings(data_dir=Path(tmp) / f"run{run}", durability="relaxed"))
            registry.open()
            try:
                grows = registry.create(CollectionConfig(name="grows", dim=args.dim))
                moves = registry.create(CollectionConfig(name="moves", dim=args.dim))
                registry.wait_ready()  # the graphs are up: writes go into them, not into a pending list
                first, more, second, third = rng.normal(size=(4, args.n, args.dim)).astype(np.float32)
                rates["fresh"].append(_rate(grows, ids, first, [{"price": 1.0}] * args.n))
                more_ids = list(range(args.n, 2 * args.n))
                rates["fresh, into N stored"].append(_rate(grows, more_ids, more, [{"price": 1.0}] * args.n))
                _rate(moves, ids, first, [{"price": 1.0}] * args.n)
                rates["same vectors"].append(_rate(moves, ids, first, [{"price": 2.0}] * args.n))
                graph = moves.graph.index
                rates["new vectors"].append(_rate(moves, ids, second, [{"price": 3.0}] * args.n))
                started = time.perf_counter()
                rates["new vectors again, during the rebuild"].append(
                    _rate(moves, ids, third, [{"price": 4.0}] * args.n)
                )
                while moves.graph.index is graph and time.perf_counter() - started < REBUILD_WAIT_S:
                    time.sleep(0.05)
                compaction.append(time.perf_counter() - started if moves.graph.index is not graph else math.nan)
            finally:
                registry.close()
            log(f"run {run}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()))
            log(f"run {run}: compaction installed {compaction[-1]:.2f} s after the last write")
        host = machine(tmp)
    fresh = statistics.median(rates["fresh"])
    rows = [[name, f"{statistics.median(r):,.0f}", f"{statistics.median(r) / fresh:.2f}×"] for name, r in rates.items()]
    text = "\n".join(
        [
            SECTION,
            "",
            f"`python -m benchmarks.reupsert --n {args.n} --dim {args.dim} --runs {args.runs}` "
            f"({time.strftime('%Y-%m-%d')}; {host}).",
            "",
            f"{args.n:,} points of {args.dim} dimensions, batches of {BATCH:,}, graph up, median of {args.runs} runs:",
            "",
            *table(["upsert of", "points/s", "against fresh"], *rows),
            "",
            f"The rebuild without dead nodes was installed {statistics.median(compaction):.2f} s (median) after the"
            " first move's last write.",
        ]
    )
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
