"""Opening a stored collection (a restart) against hnswlib's own `load_index` of the same graph: seconds and RSS.

    python -m benchmarks.restart [--n 399000] [--rounds 3] [--before /tmp/umbrella-before] [--keep DIR]
        [--out benchmarks/RESULTS.md]

Builds once, in process, a collection of N GloVe 6B 50-d vectors (cosine, M 16, ef_construction 200) with a
keyword `tag` (100 values) and a float `price` indexed, as `benchmarks/filtered.py` makes it, and closes it
(which writes the graph checkpoint). Then each round starts fresh child processes, alternating: one that only
imports hnswlib and runs `load_index` on the checkpoint's graph file (the raw figure), one that opens the data
directory with `open_registry` and waits until the graph is up, and, with --before, the same from another
source tree (a `git worktree` of an older commit) on a copy of the data. Each child reports its wall time from
the first line of work to ready, the same from its first line (its imports included), and its VmRSS then
(interpreter and imports included in both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks._report import log, machine, table, write_section
from benchmarks.filtered import payloads
from benchmarks.glove import load_glove

SECTION = "## Opening a collection (restart)"
HEAD = ["", "seconds to ready (each round)", "RSS, MiB (median)", "time vs raw", "with imports, s (vs raw)"]
HEAD += ["RSS vs raw"]
NAME = "restart"

RAW = """
import time
t0 = time.perf_counter()
import json, sys
import hnswlib
t = time.perf_counter()
folder = sys.argv[1]
manifest = json.load(open(folder + "/checkpoint.json"))
index = hnswlib.Index(space="cosine", dim=manifest["dim"])
index.load_index(folder + "/" + manifest["file"])
seconds, started = time.perf_counter() - t, time.perf_counter() - t0
rss = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")][0]
print(json.dumps({"seconds": seconds, "with_imports": started, "rss_mib": rss / 1024}))
"""

OURS = """
import time
t0 = time.perf_counter()
import json, sys
from pathlib import Path
from app.core.config import Settings
from app.main import open_registry
t = time.perf_counter()
registry = open_registry(Settings(data_dir=Path(sys.argv[1]), recall_sample_every=0))
assert registry.wait_ready(600)
seconds, started = time.perf_counter() - t, time.perf_counter() - t0
rss = [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")][0]
print(json.dumps({"seconds": seconds, "with_imports": started, "rss_mib": rss / 1024}))
registry.close()
"""


def build(data: Path, n: int) -> None:
    """The stored collection every round opens (in this process; closed, so its checkpoint is written)."""
    from app.collections.models import CollectionConfig
    from app.core.config import Settings
    from app.main import open_registry

    base, _ = load_glove(n)
    tags, prices = payloads(len(base))
    registry = open_registry(Settings(data_dir=data, recall_sample_every=0, durability="relaxed"))
    config = CollectionConfig(
        name=NAME, dim=base.shape[1], m=16, ef_construction=200, payload_indexes={"tag": "keyword", "price": "float"}
    )
    collection = registry.create(config)
    for s in range(0, len(base), 5_000):
        ids = list(range(s, min(s + 5_000, len(base))))
        rows = [{"tag": f"t{tags[i]}", "price": float(prices[i])} for i in ids]
        collection.upsert(ids, np.ascontiguousarray(base[s : s + 5_000]), rows)  # type: ignore[arg-type]
    registry.wait_ready(1800)
    registry.close()


def child(code: str, arg: Path, tree: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run([sys.executable, "-c", code, str(arg)], cwd=tree, env=env, capture_output=True, check=True)
    return json.loads(out.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=399_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="an older source tree to measure beside this one")
    parser.add_argument("--keep", type=Path, help="build into this folder, or reuse what an earlier run built there")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = parser.parse_args()
    here = Path.cwd()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        data = (args.keep or Path(tmp) / "data").resolve()  # absolute: the children run in their own trees
        if not (data / NAME).exists():
            log(f"building {args.n:,} points")
            started = time.perf_counter()
            build(data, args.n)
            log(f"built in {time.perf_counter() - started:.0f} s")
        folder = data / NAME
        trees = {"after": (here, data)}
        if args.before:
            before = Path(tmp).resolve() / "before"
            shutil.copytree(data, before)  # an older tree may rewrite what it opens
            trees = {"before": (args.before.resolve(), before), **trees}
        runs: dict[str, list[dict[str, float]]] = {"raw": [], **{label: [] for label in trees}}
        for r in range(args.rounds):
            runs["raw"].append(child(RAW, folder, here))
            for label, (tree, folder_of) in trees.items():
                runs[label].append(child(OURS, folder_of, tree))
            log(
                f"round {r}: "
                + ", ".join(f"{k} {v[-1]['seconds']:.2f} s {v[-1]['rss_mib']:.0f} MiB" for k, v in runs.items())
            )
        host = machine(tmp)
    raw_s = statistics.median(x["seconds"] for x in runs["raw"])
    raw_started = statistics.median(x["with_imports"] for x in runs["raw"])
    raw_rss = statistics.median(x["rss_mib"] for x in runs["raw"])
    rows = []
    for label, xs in runs.items():
        seconds = [x["seconds"] for x in xs]
        started = statistics.median(x["with_imports"] for x in xs)
        rss = statistics.median(x["rss_mib"] for x in xs)
        rows.append(
            [
                "raw `load_index`" if label == "raw" else f"Umbrella ({label})",
                " / ".join(f"{s:.2f}" for s in seconds),
                f"{rss:.0f}",
                f"{statistics.median(seconds) / raw_s:.1f}×",
                f"{started:.2f} ({started / raw_started:.1f}×)",
                f"{rss / raw_rss:.1f}×",
            ]
        )
    lines = [
        SECTION,
        "",
        f"- Command: `python -m benchmarks.restart --n {args.n} --rounds {args.rounds}"
        + (" --before <worktree>`" if args.before else "`"),
        f"- Machine: {host}",
        f"- {args.n:,} GloVe 6B 50-d points, cosine, a keyword and a float payload index; each figure a fresh child "
        "process (interpreter and imports included), wall time to ready and VmRSS then; rounds alternate.",
        "",
        *table(HEAD, *rows),
    ]
    print("\n".join(lines))
    write_section(args.out, SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()
