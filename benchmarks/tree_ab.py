"""Two source trees' servers side by side, measured in alternating rounds: single-query q/s and ingest vectors/s.

    git worktree add /tmp/umbrella-before ea8cb1c
    python -m benchmarks.tree_ab /tmp/umbrella-before . [--measure single|batch|ingest] [--rounds R] [--n N]

For regressions that a whole benchmark run cannot separate from the machine's drift: both servers run at
once (each from its own tree: cwd and PYTHONPATH point at it), and each round measures one, then the other.
single: N GloVe vectors (default 50,000), `wrk -t1 -c8` for 8 s per round on POST /search (k 10, ef 150).
batch: the same collection, 5 passes over the 1,000 queries per round in POST /search/batch calls of 100 (JSON
numbers, k 10, ef 150, no payload), as the core benchmark sends them (benchmarks/glove.py `rest_batch`), q/s.
ingest: a fresh server per round, N vectors (default 100,000) in REST batches of 1,000 (base64, fsync),
vectors/s to the last acknowledgement. Prints each round and the medians; writes nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks._report import log
from benchmarks._wrk import run_wrk
from benchmarks.glove import load_glove, rest_batch


def start(tree: Path, port: int, data_dir: str) -> tuple[subprocess.Popen[bytes], httpx.Client]:
    env = {**os.environ, "PYTHONPATH": str(tree), "UMBRELLA_DATA_DIR": data_dir}
    cmd = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
    for _ in range(600):
        try:
            if client.get("/healthz").status_code == 200:
                return proc, client
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the server of {tree} did not start")


def upload(client: httpx.Client, data: np.ndarray) -> float:
    """Vectors/s of the upload, to the last acknowledgement."""
    client.put("/collections/glove", json={"dim": data.shape[1]}).raise_for_status()
    bodies = [
        {"batch": {"ids": list(range(s, s + 1000)), "vectors": base64.b64encode(data[s : s + 1000].tobytes()).decode()}}
        for s in range(0, len(data), 1000)
    ]
    started = time.perf_counter()
    for body in bodies:
        client.put("/collections/glove/points", json=body).raise_for_status()
    return len(data) / (time.perf_counter() - started)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("trees", type=Path, nargs=2)
    p.add_argument("--measure", choices=["single", "batch", "ingest"], default="single")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--n", type=int)
    args = p.parse_args()
    trees = [t.resolve() for t in args.trees]
    n = args.n or (100_000 if args.measure == "ingest" else 50_000)
    data, queries = load_glove(n)
    data = data.astype("<f4")
    found: dict[Path, list[float]] = {t: [] for t in trees}
    if args.measure in ("single", "batch"):
        bodies = Path(tempfile.mkdtemp()) / "bodies.jsonl"
        lines = (json.dumps({"vector": q.tolist(), "k": 10, "ef": 150, "with_payload": False}) for q in queries)
        bodies.write_text("\n".join(lines) + "\n")
        servers = [start(t, 9100 + i, tempfile.mkdtemp()) for i, t in enumerate(trees)]
        for _, client in servers:
            upload(client, data)
            while client.get("/readyz").status_code != 200:
                time.sleep(0.2)
        for r in range(args.rounds):
            for i, t in enumerate(trees):
                if args.measure == "single":
                    f = run_wrk(f"http://127.0.0.1:{9100 + i}/collections/glove/search", bodies, 8, 8)
                    found[t].append(f["requests"] / f["duration_us"] * 1e6)
                else:
                    found[t].append(rest_batch(servers[i][1], queries, ef=150))
                log(f"round {r + 1}, {t}: {found[t][-1]:,.0f} q/s")
        for proc, _ in servers:
            proc.terminate()
    else:
        for r in range(args.rounds):
            for i, t in enumerate(trees):
                proc, client = start(t, 9100 + i, tempfile.mkdtemp())
                found[t].append(upload(client, data))
                proc.terminate()
                proc.wait()
                log(f"round {r + 1}, {t}: {found[t][-1]:,.0f} vectors/s")
    for t, values in found.items():
        print(f"{t}: {[round(v) for v in values]} median {np.median(values):,.0f}")


if __name__ == "__main__":
    main()
