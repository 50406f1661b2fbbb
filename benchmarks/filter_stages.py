"""Filtered searches asked once, in process (no HTTP, no client beside the server): p50 per filter, per source tree.

    python -m benchmarks.filter_stages [--n 399000] [--trees <worktree> .] [--rounds 2] [--data-dir DIR]

The data of benchmarks/filtered.py (N GloVe vectors, `tag` one of 100 keywords, `price` in [0, 100), both
indexed) stored once in DIR, then opened by each tree in turn, in a child process whose `app` is that tree's
(the collection opens from its checkpoint's image, as after a restart); the mask cache is off, so every filter
is made anew, and the recall monitor is off. Each child answers 200 single searches per filter (k 10, ef 150)
with the searcher called directly, and prints each filter's plan, candidates and p50. Rounds alternate the
trees. For a change to how filters are made, this separates the search's own time from what REST and a client
on the same two cores add (benchmarks/RESULTS.md, "Filtered search across the selectivity band").
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._report import log

SELECTIVITIES = (1, 5, 10)


def build(data_dir: Path, n: int) -> None:
    """The collection of benchmarks/filtered.py, written through the local API and checkpointed by its close."""
    from app.collections.models import CollectionConfig
    from app.core.config import Settings
    from app.main import open_registry
    from benchmarks.filtered import payloads
    from benchmarks.glove import load_glove

    base, _ = load_glove(n)
    tags, prices = payloads(len(base))
    registry = open_registry(Settings(data_dir=data_dir, recall_sample_every=0))
    try:
        config = CollectionConfig(
            name="filtered", dim=base.shape[1], payload_indexes={"tag": "keyword", "price": "float"}
        )
        collection = registry.create(config)
        for s in range(0, len(base), 5000):
            end = min(s + 5000, len(base))
            rows = [
                {"tag": f"t{t}", "price": float(p)} for t, p in zip(tags[s:end].tolist(), prices[s:end], strict=True)
            ]
            collection.upsert(list(range(s, end)), base[s:end], rows)
        collection.wait_for_graph(1800)
    finally:
        registry.close()


def measure(data_dir: Path) -> dict[str, list]:
    """In a child: p50 ms, plan and candidates of each filter, asked once each time (mask cache off)."""
    from app.core.config import Settings
    from app.main import open_registry
    from app.search.models import Query
    from app.search.searcher import search, search_inline
    from benchmarks.filtered import filters
    from benchmarks.glove import load_glove

    _, queries = load_glove(1000)
    registry = open_registry(Settings(data_dir=data_dir, mask_cache_mb=0, recall_sample_every=0))
    out: dict[str, list] = {}
    try:
        collection = registry.get("filtered")
        collection.wait_for_graph(600)
        cases = [("none", None), *((f"{kind} {s} %", flt) for s in SELECTIVITIES for kind, flt in filters(s).items())]
        for name, flt in cases:
            asked = [Query(vector=q, k=10, ef=150, with_payload=False, filter=flt) for q in queries[:200]]
            for q in asked[:20]:  # warm-up
                search_inline(collection, q) or search(collection, [q])
            lat = []
            for q in asked:
                t = time.perf_counter()
                result = search_inline(collection, q) or search(collection, [q])[0]
                lat.append(time.perf_counter() - t)
            out[name] = [statistics.median(lat) * 1e3, result.plan, result.candidates]
    finally:
        registry.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=399_000)
    p.add_argument("--trees", type=Path, nargs="+", default=[Path(".")])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--data-dir", type=Path, help="reuse (or keep) the stored collection here")
    p.add_argument("--child", type=Path, help=argparse.SUPPRESS)  # a child's data dir: measure, print JSON
    args = p.parse_args()
    if args.child:
        print(json.dumps(measure(args.child)))
        return
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="umbrella-filter-stages-"))
    if not (data_dir / "filtered").exists():
        log(f"storing {args.n:,} points in {data_dir}")
        build(data_dir, args.n)
    found: dict[tuple[Path, str], list[float]] = {}
    plans: dict[str, str] = {}
    here = str(Path(__file__).resolve().parent.parent)
    for r in range(args.rounds):
        for tree in [t.resolve() for t in args.trees]:
            # the tree's `app`, this file's `benchmarks` (the tree before may not have it)
            code = (
                f"import sys; sys.path.insert(0, {str(tree)!r}); import app; sys.path.insert(0, {here!r}); "
                "from benchmarks.filter_stages import main; main()"
            )
            child = [sys.executable, "-c", code, "--child", str(data_dir)]
            result = json.loads(subprocess.run(child, cwd=tree, capture_output=True, text=True, check=True).stdout)
            for name, (p50, plan, candidates) in result.items():
                found.setdefault((tree, name), []).append(p50)
                plans[name] = f"{plan}, {candidates:,}"
            log(f"round {r + 1}, {tree}: done")
    trees = [t.resolve() for t in args.trees]
    print("| filter | plan, candidates | " + " | ".join(f"p50 ms, {t}" for t in trees) + " |")
    print("|---|---|" + "---|" * len(trees))
    for name in plans:
        cells = [" / ".join(f"{v:.2f}" for v in found[(t, name)]) for t in trees]
        print(f"| {name} | {plans[name]} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
