"""Report helpers for benchmarks: progress lines, percentiles, medians over runs, Markdown tables, the machine
line, section replacement."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np


def log(msg: str) -> None:
    """A timestamped progress line on stderr (stdout carries the report)."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def ms(seconds: list[float], pct: float) -> float:
    """The pct-th percentile of durations in seconds, in milliseconds."""
    return float(np.percentile(seconds, pct)) * 1e3


def median_ms(fn: Callable[[], object], runs: int) -> float:
    """The median wall time of `runs` calls of fn, in milliseconds."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key: the median of numbers (an int stays one of the measured values), or the distinct strings."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        vals = [r[key] for r in runs]
        if not all(isinstance(v, (int, float)) for v in vals):
            out[key] = "/".join(sorted({str(v) for v in vals}))
        elif all(isinstance(v, int) for v in vals):
            out[key] = statistics.median_low(vals)
        else:
            out[key] = statistics.median(vals)
    return out


def table(head: list[str], *rows: list[Any]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return [*lines, *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def proc_status_kib(field: str, pid: int | str = "self") -> int:
    """A memory figure of a process from /proc (VmRSS now, VmHWM its peak), in KiB."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(f"{field}:"))
    return int(line.split()[1])


def machine(data_dir: str) -> str:
    """CPUs, CPU model, Python, how hnswlib was compiled (judged from its machine code), data dir filesystem."""
    with open("/proc/cpuinfo") as f:
        cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), platform.processor())
    import hnswlib

    try:
        asm = subprocess.run(["objdump", "-d", hnswlib.__file__], capture_output=True, text=True).stdout
        simd = "AVX-512" if "%zmm" in asm else "AVX/AVX2" if "%ymm" in asm else "no AVX"
    except OSError:
        simd = "unknown SIMD (no objdump)"
    fs = subprocess.run(["stat", "-f", "-c", "%T", data_dir], capture_output=True, text=True).stdout.strip()
    return (
        f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, hnswlib "
        f"{importlib.metadata.version('hnswlib')} compiled from source by pip (-march=native unless "
        f"HNSWLIB_NO_NATIVE was set at install; its machine code uses {simd}), temp/data dir on {fs or '?'}"
    )


def write_section(path: Path, heading: str, text: str) -> None:
    """Replace the section that starts with `heading` (up to the next `## `), or append it."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    new = pattern.sub(lambda _: text + "\n", old, count=1) if pattern.search(old) else f"{old.rstrip()}\n\n{text}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new.rstrip("\n") + "\n")


def glove_section(runs: list[dict[str, Any]], n: int, g: ModuleType) -> str:
    """The Markdown section of benchmarks.glove; `g` is that module, for its constants (EFS, TARGETS, ...)."""
    m = median_of(runs)
    ratio = {
        "ingest": m["ingest_rest_vps"] / m["ingest_raw_vps"],
        "single": m["wrk8_qps"] / m["raw1_qps"],
        "batch": m["batch_rest_qps"] / m["batch_raw_qps"],
    }
    met = {t: f"≥ {g.TARGETS[t]}×: **{'met' if ratio[t] >= g.TARGETS[t] else 'missed'}**" for t in g.TARGETS}
    defaults = {"DURABILITY": "fsync (default)", "INDEX_THREADS": "default (all CPUs)"}
    env = {k: os.environ.get(f"UMBRELLA_{k}", d) for k, d in defaults.items()}
    lines = [
        g.SECTION, "",
        f"- Command: `{' '.join(['python -m benchmarks.glove', *sys.argv[1:]])}`",
        f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
        f"- Machine: {machine(tempfile.gettempdir())}",
        f"- Data: {n:,} GloVe 6B 50-d vectors inserted, {g.N_QUERIES:,} held-out queries (the last rows); cosine; "
        f"M={g.M}, ef_construction={g.EF_CONSTRUCTION}. Server: `python -m app.cli serve`, "
        f"UMBRELLA_DURABILITY={env['DURABILITY']}, UMBRELLA_INDEX_THREADS={env['INDEX_THREADS']}.",
        f"- Medians of {len(runs)} run(s); every run repeats every part (fresh server and raw index, ingest, "
        "searches, restart). Ratios are Umbrella / raw, of the medians.", "",
        "### Ingest (batches of 1,000, columnar base64)", "",
        *table(["", "Umbrella (REST)", "raw hnswlib add_items", "ratio", "target"],
               ["vectors/s", f"{m['ingest_rest_vps']:,.0f}", f"{m['ingest_raw_vps']:,.0f}",
                f"{ratio['ingest']:.2f}×", met["ingest"]],
               ["seconds", f"{m['ingest_ack_s']:.1f} to the last ack, {m['ingest_ready_s']:.1f} to /readyz 200",
                f"{m['raw_build_s']:.1f}", "", ""]),
        f"### Recall@10 by ef (raw hnswlib, {g.N_QUERIES:,} queries)", "",
        *table(["ef", *map(str, g.EFS)], ["recall@10", *(f"{m[f'raw_recall_{e}']:.3f}" for e in g.EFS)]),
        f"ef used below: **{m['ef']}** (the smallest with raw recall ≥ {g.TARGET_RECALL}; per run: "
        f"{', '.join(str(r['ef']) for r in runs)}). Umbrella through REST /search/batch at that ef: recall@10 "
        f"**{m['rest_recall']:.3f}** (plan {m['rest_plan']}); after the restart {m['rest_recall_after_restart']:.3f}.",
        "", "### Single queries", "",
        *table(["", "Umbrella (REST, wrk -t1)", "raw hnswlib (1 thread, Python loop)", "ratio", "target"],
               ["queries/s", f"{m['wrk8_qps']:,.0f} (-c8)", f"{m['raw1_qps']:,.0f}", f"{ratio['single']:.2f}×",
                met["single"]],
               ["p50 / p99 ms", f"{m['wrk8_p50']:.2f} / {m['wrk8_p99']:.2f} (-c8)",
                f"{m['raw1_p50']:.3f} / {m['raw1_p99']:.3f}", "", ""],
               ["p50 / p99 ms, one connection", f"{m['wrk1_p50']:.2f} / {m['wrk1_p99']:.2f} "
                f"({m['wrk1_qps']:,.0f} q/s)", "", "", ""]),
        "### Batches of 100 queries", "",
        *table(["", "Umbrella (REST /search/batch, sequential)", "raw knn_query (default threads)", "ratio",
                "target"],
               ["queries/s, vectors as JSON numbers", f"{m['batch_rest_qps']:,.0f}", f"{m['batch_raw_qps']:,.0f}",
                f"{ratio['batch']:.2f}×", met["batch"]],
               ["queries/s, vectors as base64 (as the SDK sends them)", f"{m['batch_b64_rest_qps']:,.0f}",
                f"{m['batch_raw_qps']:,.0f}", f"{m['batch_b64_rest_qps'] / m['batch_raw_qps']:.2f}×", ""]),
        f"### Filtered search (REST via httpx, one request at a time, {g.N_FILTERED} queries, ef {m['ef']})", "",
        *table(["filter", "kept", "plan", "candidates", "recall@10", "p50 ms", "p99 ms"],
               ["none", "100 %", m["rest_plan"], f"{n:,}", f"{m['rest_recall']:.3f}", f"{m['f_none_p50']:.2f}",
                f"{m['f_none_p99']:.2f}"],
               *([f"bucket < {x}", f"{x} %", m[f"f{x}_plan"], f"{m[f'f{x}_candidates']:,}",
                  f"{m[f'f{x}_recall']:.3f}", f"{m[f'f{x}_p50']:.2f}", f"{m[f'f{x}_p99']:.2f}"]
                 for x in g.SELECTIVITIES)),
        "### Restart", "",
        *table(["", "Umbrella", "raw hnswlib", "Umbrella / raw"],
               ["stop (SIGTERM, checkpoint) vs save_index, s", f"{m['stop_s']:.2f}", f"{m['raw_save_s']:.2f}",
                f"{m['stop_s'] / m['raw_save_s']:.1f}×"],
               ["start until /readyz 200 vs load_index, s", f"{m['restart_ready_s']:.2f}", f"{m['raw_load_s']:.2f}",
                f"{m['restart_ready_s'] / m['raw_load_s']:.1f}×"],
               ["RSS after load (vs a process that only loads the index), MiB", f"{m['rss_server_mib']:,.0f}",
                f"{m['rss_raw_mib']:,.0f}", f"{m['rss_server_mib'] / m['rss_raw_mib']:.1f}×"]),
        "### Targets", "",
        *(f"- {t}: {ratio[t]:.2f}× raw, target ≥ {g.TARGETS[t]}×: {'met' if ratio[t] >= g.TARGETS[t] else 'missed'}"
          for t in g.TARGETS),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
