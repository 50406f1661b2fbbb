"""The serving stack under single searches: `umbrella serve` (uvicorn + httptools) against granian, same data.

    pip install granian && python -m benchmarks.serving_stack [--n 100000] [--runs 3] [--profile]

N GloVe 6B 50-d vectors are loaded once through REST (cosine, ef 150); then each run starts uvicorn and
granian in turn on that data directory and drives each with wrk (-t1 -c8, 10 s after 3 s of warm-up) on
single searches (k 10, no payload). Granian is not a dependency: it is measured here only to decide whether
it should become one. `--profile` also samples the uvicorn server with py-spy (pip install py-spy) during
one more wrk run and prints where its CPU time goes, by function.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson

from benchmarks._server import REPO_ROOT, Server
from benchmarks._wrk import LUA, run_wrk
from benchmarks.glove import load_glove

JSON = {"content-type": "application/json"}
FACTORY = """from app.core.config import Settings
from app.main import create_app


def make():
    return create_app(Settings())
"""


def server(kind: str, data: Path, tmp: Path) -> Server:
    """`umbrella serve`, or granian serving the same app on the same data, started and ready."""
    if kind == "uvicorn":
        started = Server(data, tmp / "uvicorn.log").start()
    else:
        env = {"UMBRELLA_DATA_DIR": str(data), "PYTHONPATH": f"{tmp}{os.pathsep}{REPO_ROOT}"}
        started = Server(data, tmp / "granian.log", command=_granian, env=env).start()
    started.wait_ready()
    return started


def _granian(port: int) -> list[str]:
    granian = shutil.which("granian", path=os.path.dirname(sys.executable)) or "granian"
    return [granian, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--no-ws", "--log-level", "warning", "--factory", "umbrella_factory:make"]  # fmt: skip


def load(url: str, n: int) -> None:
    base, _ = load_glove(n)
    with httpx.Client(base_url=url, timeout=120) as client:
        client.put("/collections/g", json={"dim": 50, "metric": "cosine", "hnsw": {"ef": 150}}).raise_for_status()
        for s in range(0, len(base), 1000):
            vectors = base64.b64encode(base[s : s + 1000].astype("<f4").tobytes()).decode()
            batch = {"ids": list(range(s, s + len(base[s : s + 1000]))), "vectors": vectors}
            client.put("/collections/g/points", content=orjson.dumps({"batch": batch}), headers=JSON).raise_for_status()
        while client.get("/readyz").status_code != 200:
            time.sleep(0.5)


def qps(url: str, bodies: Path) -> float:
    run_wrk(url + "/collections/g/search", bodies, 8, 3)
    out = run_wrk(url + "/collections/g/search", bodies, 8, 10)
    return out["requests"] / (out["duration_us"] / 1e6)


def profile(url: str, pid: int, bodies: Path, tmp: Path) -> None:
    """Sample the server with py-spy while wrk loads it; print self time by function (native time counts
    to the Python frame that called it)."""
    cmd = ["wrk", "-t1", "-c8", "-d20s", "-s", str(LUA), url + "/collections/g/search", "--", str(bodies)]
    load_gen = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    time.sleep(3)
    out = tmp / "spy.txt"
    subprocess.run(["py-spy", "record", "-p", str(pid), "-d", "12", "-r", "200", "-f", "raw", "-o", str(out),
                    "--nonblocking"], check=True, capture_output=True)  # fmt: skip
    load_gen.wait()
    counts: Counter[str] = Counter()
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack:
            counts[stack.split(";")[-1].split(" (")[0]] += int(n)
    total = sum(counts.values())
    for name, n in counts.most_common(15):
        print(f"{n / total:6.1%}  {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        (tmp / "umbrella_factory.py").write_text(FACTORY)
        data = tmp / "data"
        _, queries = load_glove(args.n)
        bodies = tmp / "bodies.txt"
        option = orjson.OPT_SERIALIZE_NUMPY
        bodies.write_text(
            "\n".join(
                orjson.dumps({"vector": q, "k": 10, "with_payload": False}, option=option).decode() for q in queries
            )
        )
        loading = server("uvicorn", data, tmp)
        try:
            load(loading.url, args.n)
        finally:
            loading.stop()
        rates: dict[str, list[float]] = {"uvicorn": [], "granian": []}
        for run in range(args.runs):
            for kind in rates:
                running = server(kind, data, tmp)
                try:
                    rates[kind].append(qps(running.url, bodies))
                finally:
                    running.stop()
            print(f"run {run}: " + ", ".join(f"{k} {v[-1]:,.0f} q/s" for k, v in rates.items()), flush=True)
        medians = {k: statistics.median(v) for k, v in rates.items()}
        print(
            ", ".join(f"{k} {v:,.0f} q/s" for k, v in medians.items())
            + f"; granian / uvicorn {medians['granian'] / medians['uvicorn']:.2f}×"
        )
        if args.profile:
            running = server("uvicorn", data, tmp)
            try:
                profile(running.url, running.pid, bodies, tmp)
            finally:
                running.stop()


if __name__ == "__main__":
    main()
