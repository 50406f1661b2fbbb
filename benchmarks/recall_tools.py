"""Recall tools on GloVe 6B 50-d: does /tune's ef hold on new queries, does the live estimate match, its cost.

    python -m benchmarks.recall_tools [--n 100000] [--runs 3] [--wrk-seconds 10] [--out benchmarks/RESULTS.md]

The last 1,000 GloVe rows are never inserted: half (A) play the users' traffic, half (B) judge. Per run:
1. raw hnswlib (M=16, efC=200) built in this process: for each target, the smallest ef of /tune's ladder
   whose recall@10 on B reaches it;
2. a fresh server (`python -m app.cli serve`, UMBRELLA_RECALL_SAMPLE_EVERY=100) gets the first N rows over
   REST; A is searched 10 times over in batches at the default ef (64); once no sample is pending,
   `recall_estimate` beside A's recall@10 measured directly;
3. POST /tune per target (k=10, 200 queries) on stored points and on the recent searches (A), then B's
   recall@10 through REST at each ef it picked (B is searched only after every tune call);
4. the sampling's cost: single queries through wrk at ef 64, the server restarted with sampling every
   100 and off (0), alternating, twice each.
Medians over the runs replace the section "## Recall tools" of --out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from app.search.tune import LADDER
from benchmarks import glove as g
from benchmarks._report import log, machine, table, write_section
from benchmarks._server import Server

SECTION = "## Recall tools"
TARGETS = (0.9, 0.95, 0.99)
DEFAULT_EF = 64
HEAD = ["target recall@10", "tuned on", "ef picked", "recall /tune saw", "B's recall at that ef",
        "smallest ef reaching the target on B (raw hnswlib, per run)", "tune took"]  # fmt: skip


def raw_smallest_ef(index: Any, queries: np.ndarray, truth: np.ndarray) -> dict[float, int | None]:
    recall = {}
    for ef in (e for e in LADDER if e > g.K):  # /tune starts above k too
        index.set_ef(ef)
        recall[ef] = g.recall_at_k(index.knn_query(queries, k=g.K)[0], truth)
        if recall[ef] >= max(TARGETS):
            break
    return {t: next((e for e, r in recall.items() if r >= t), None) for t in TARGETS}


def wait_samples(client: httpx.Client, settle_s: float = 3.0, timeout: float = 300.0) -> dict[str, Any]:
    """Poll the collection until recall_samples has not moved for settle_s."""
    deadline, last, since = time.monotonic() + timeout, -1, time.monotonic()
    while time.monotonic() < deadline:
        info = client.get(g.COLL).json()
        if info["recall_samples"] != last:
            last, since = info["recall_samples"], time.monotonic()
        elif time.monotonic() - since >= settle_s:
            return info
        time.sleep(0.5)
    raise RuntimeError("recall samples kept arriving")


def restart(server: Server, every: int) -> None:
    server.stop()
    os.environ["UMBRELLA_RECALL_SAMPLE_EVERY"] = str(every)
    server.start()
    server.wait_ready()


def one_run(args: argparse.Namespace, base: np.ndarray, queries: np.ndarray, truth: np.ndarray, tmp: Path) -> dict:
    half = len(queries) // 2
    (qa, ta), (qb, tb) = (queries[:half], truth[:half]), (queries[half:], truth[half:])
    r: dict[str, Any] = {}
    log(f"raw hnswlib build of {len(base):,}")
    index, _ = g.raw_build(base)
    r["raw_ef"] = raw_smallest_ef(index, qb, tb)
    del index
    bodies = tmp / "bodies.jsonl"
    bodies.write_bytes(b"\n".join(orjson.dumps(g.search_body(q, DEFAULT_EF), option=g.NP) for q in qa) + b"\n")
    os.environ["UMBRELLA_RECALL_SAMPLE_EVERY"] = "100"
    server = Server(tmp / "data", tmp / "server.log")
    try:
        server.start()
        with server.client() as client:
            log("REST ingest")
            g.rest_ingest(server, client, base, DEFAULT_EF)
            log("live estimate")
            r["recall_a"], _ = g.rest_recall(client, qa, ta, DEFAULT_EF)
            for _ in range(9):
                g.rest_recall(client, qa, ta, DEFAULT_EF)
            info = wait_samples(client)
            r["estimate"], r["samples"] = info["recall_estimate"], info["recall_samples"]
            log(f"estimate {r['estimate']} over {r['samples']} samples; A measured {r['recall_a']}")
            chosen = {}
            for source in ("points", "searches"):
                for target in TARGETS:
                    body = orjson.dumps({"target_recall": target, "k": g.K, "source": source})
                    t0 = time.perf_counter()
                    rep = g.post(client, f"{g.COLL}/tune", body)
                    chosen[source, target] = rep["chosen_ef"], rep["trials"][-1]["recall"], time.perf_counter() - t0
            for (source, target), (ef, own, seconds) in chosen.items():  # B only now: it must not be in the sample
                held_out, _ = g.rest_recall(client, qb, tb, ef)
                r[f"{source}_{target}"] = {"ef": ef, "tune_recall": own, "seconds": seconds, "held_out": held_out}
                log(f"{source} {target}: {r[f'{source}_{target}']}")
        for label, every in (("on", 100), ("off", 0), ("on", 100), ("off", 0)):
            restart(server, every)
            run = g.wrk_single(server.url, bodies, 8, args.wrk_seconds)
            r.setdefault(f"qps_{label}", []).append(run["qps"])
            log(f"sampling {label}: {run['qps']:.0f} q/s")
    except Exception:
        log(server.log_tail())
        raise
    finally:
        server.stop()
    return r


def report(args: argparse.Namespace, runs: list[dict[str, Any]], machine_line: str) -> str:
    def med(f: Any) -> float:
        return statistics.median(f(run) for run in runs)

    rows = []
    for target in TARGETS:
        raw = "/".join(str(run["raw_ef"][target]) for run in runs)
        for source, label in (("points", "stored points"), ("searches", "recent searches (A)")):
            key = f"{source}_{target}"
            rows.append(
                [f"{target}", label, f"{med(lambda x, key=key: x[key]['ef']):.0f}",
                 f"{med(lambda x, key=key: x[key]['tune_recall']):.3f}",
                 f"{med(lambda x, key=key: x[key]['held_out']):.3f}", raw,
                 f"{med(lambda x, key=key: x[key]['seconds']):.1f} s"]
            )  # fmt: skip
    on, off = med(lambda x: statistics.median(x["qps_on"])), med(lambda x: statistics.median(x["qps_off"]))
    ratios = [statistics.median(x["qps_on"]) / statistics.median(x["qps_off"]) for x in runs]
    per_run = ", ".join(f"{r:.2f}" for r in ratios)
    command = f"python -m benchmarks.recall_tools --n {args.n} --runs {args.runs} --wrk-seconds {args.wrk_seconds}"
    lines = [
        SECTION,
        "",
        f"- Command: `{command}`",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine_line}",
        f"- Data: the first {args.n:,} GloVe 6B 50-d rows (cosine, M=16, ef_construction=200); the last 1,000 rows "
        "never inserted: 500 (A) as the users' searches, 500 (B) to judge; exact top-10 by numpy as the truth. "
        "Medians of the runs.",
        "",
        f"Live estimate (1 in 100 searches re-run exactly; A searched 10 times at ef {DEFAULT_EF}): "
        f"**{med(lambda x: x['estimate']):.3f}** over a median of {med(lambda x: x['samples']):.0f} samples; "
        f"A's recall@10 measured directly: **{med(lambda x: x['recall_a']):.3f}**.",
        "",
        "`POST /tune` (k=10, 200 queries) on each source, judged on B, which it never saw:",
        "",
        *table(HEAD, *rows),
        f"The sampling's cost, single queries through wrk (8 connections, ef {DEFAULT_EF}, {args.wrk_seconds} s, "
        f"server restarted between): on {on:,.0f} q/s, off {off:,.0f} q/s (medians over the runs); on / off in "
        f"the same run: **{statistics.median(ratios):.2f}×** (median; per run: {per_run}).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--wrk-seconds", type=int, default=10)
    p.add_argument("--out", type=Path, default=g.HERE / "RESULTS.md")
    args = p.parse_args(argv)
    base, queries = g.load_glove(args.n)
    truth = g.exact_top_k(g.unit(base), g.unit(queries))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            log(f"run {i + 1}/{args.runs}")
            run_dir = Path(tmp) / f"run{i}"
            run_dir.mkdir()
            runs.append(one_run(args, base, queries, truth, run_dir))
        machine_line = machine(tmp)
    text = report(args, runs, machine_line)
    write_section(args.out, SECTION, text)
    print(text)


if __name__ == "__main__":
    main()
