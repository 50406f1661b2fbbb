"""Recommendation through REST on a synthetic shop: event ingest, per-user latency by path, ranker training.

    python -m benchmarks.recommend [--items N] [--users U] [--dim D] [--seed S] [--batch B]
                                   [--latency-users L] [--runs R] [--out benchmarks/RESULTS.md]

Data: tests.support.synthetic_shop.generate_shop(N, U, dim=D, seed=S) with its other defaults (12 categories,
60 days, ~8 sessions per user, slates of 10: about 90 events per user). One server (`python -m app.cli serve`,
temporary data dir, stopped with SIGTERM) and, in order:

1. items: one collection {dim, payload_indexes {category: keyword, price: float}}, the items upserted in
   columnar base64 batches of 5,000, until /readyz;
2. events: the log, oldest first, POST /events in batches of B — the first half from one client, the second
   half from two clients taking alternate batches; beside it, in this process, the same rows into a bare
   SQLite file with the server's events table and pragmas (WAL, synchronous=FULL): once with executemany
   INSERT OR IGNORE per batch (what storage alone costs), once row by row with rowcount, as
   PointStore.add_events stores them;
3. latency: GET /users/{u}/recommendations?k=10 for L random users with events, one client, one request
   at a time, R passes (path "similarity": no ranker yet), and L unknown users (path "popular");
4. training: POST /ranker/train with the defaults (wall time, the report's own seconds, what it chose,
   its validation metrics);
5. latency again for the same users (path "ranker");
6. restart: SIGTERM, start, /readyz (the profiles are rebuilt by replaying every stored event).

Latency figures are medians over the R passes of each pass's p50/p99/req/s. Ingest, training and the
restart run once. A sampler reads /proc every 2 s and the report names any other process that used the
CPUs meanwhile. The section "## Recommendation" of --out is replaced (or appended).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from benchmarks._report import log, machine, median_of, ms, table, write_section
from benchmarks._server import Server, vm_rss_kb

SECTION = "## Recommendation"
HERE = Path(__file__).resolve().parent
COLL = "/collections/shop"
ITEM_BATCH, K, WARMUP = 5_000, 10, 100
Run = dict[str, Any]
# The server's events table and pragmas (app/storage/sqlite_store.py), for the bare-SQLite reference.
EVENTS_DDL = """CREATE TABLE events (user TEXT NOT NULL, item TEXT NOT NULL, type TEXT NOT NULL, value REAL NOT NULL,
    time REAL NOT NULL, UNIQUE (user, item, type, time, value))"""


def check(r: httpx.Response, status: int = 200) -> Any:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}")
    return orjson.loads(r.content)


# ---- what else runs ----------------------------------------------------------------------------
class CpuWatch(threading.Thread):
    """Every `interval` s, CPU time of each process other than this one, the server and their children."""

    def __init__(self, interval: float = 2.0) -> None:
        super().__init__(daemon=True)
        self.interval, self.own = interval, {os.getpid()}
        self.cpu_s: Counter[str] = Counter()
        self.started = time.monotonic()
        self._stop_event = threading.Event()
        self._tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> dict[int, tuple[int, int, str]]:
        out = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
                rest = stat[stat.rfind(")") + 2 :].split()
                cmd = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            cmd = cmd.strip() or stat[stat.find("(") : stat.rfind(")") + 1]
            out[int(entry.name)] = (int(rest[1]), int(rest[11]) + int(rest[12]), cmd[:90])
        return out

    def run(self) -> None:
        prev = self._sample()
        while not self._stop_event.wait(self.interval):
            cur = self._sample()
            for pid, (ppid, ticks, cmd) in cur.items():
                if pid in self.own or ppid in self.own:
                    continue
                used = ticks - prev[pid][1] if pid in prev else ticks
                if used > 0:
                    self.cpu_s[cmd] += used / self._tick
            prev = cur

    def stop(self) -> tuple[float, list[tuple[str, float]]]:
        """Seconds watched, and the other processes that used ≥ 2 CPU-seconds, busiest first."""
        self._stop_event.set()
        self.join()
        return time.monotonic() - self.started, [(c, s) for c, s in self.cpu_s.most_common() if s >= 2.0]


# ---- 1. items ----------------------------------------------------------------------------------
def load_items(server: Server, client: httpx.Client, shop: Any) -> Run:
    body = {"dim": shop.vectors.shape[1], "payload_indexes": {"category": "keyword", "price": "float"}}
    check(client.put(COLL, json=body), 201)
    bodies = []
    for s in range(0, len(shop.item_ids), ITEM_BATCH):
        vectors = base64.b64encode(shop.vectors[s : s + ITEM_BATCH].astype("<f4").tobytes()).decode()
        batch = {
            "ids": shop.item_ids[s : s + ITEM_BATCH],
            "vectors": vectors,
            "payloads": shop.payloads[s : s + ITEM_BATCH],
        }
        bodies.append(orjson.dumps({"batch": batch}))
    t0 = time.perf_counter()
    for b in bodies:
        check(client.put(f"{COLL}/points", content=b, headers={"content-type": "application/json"}))
    server.wait_ready()
    ready = time.perf_counter() - t0
    info = check(client.get(COLL))
    if info["count"] != len(shop.item_ids):
        raise RuntimeError(f"after the item upload the collection says {info}")
    return {"items_s": ready, "items_pps": len(shop.item_ids) / ready, "rss_items_mib": vm_rss_kb(server.pid) / 1024}


# ---- 2. events ---------------------------------------------------------------------------------
def event_bodies(shop: Any, batch: int) -> tuple[list[bytes], list[int]]:
    bodies, sizes = [], []
    for events in shop.event_batches(batch):
        bodies.append(orjson.dumps({"events": events}))
        sizes.append(len(events))
    return bodies, sizes


def post_events(client: httpx.Client, body: bytes) -> dict[str, Any]:
    return check(client.post(f"{COLL}/events", content=body, headers={"content-type": "application/json"}))


def ingest_events(server: Server, bodies: list[bytes], sizes: list[int]) -> Run:
    half = len(bodies) // 2
    reports: list[dict[str, Any]] = []
    with server.client() as client:
        t0 = time.perf_counter()
        reports += [post_events(client, b) for b in bodies[:half]]
        one_s = time.perf_counter() - t0
    second = bodies[half:]
    with server.client() as c0, server.client() as c1:

        def lane(n: int) -> list[dict[str, Any]]:
            client = (c0, c1)[n]
            return [post_events(client, b) for b in second[n::2]]

        with ThreadPoolExecutor(2) as pool:
            t0 = time.perf_counter()
            lanes = list(pool.map(lane, (0, 1)))
            two_s = time.perf_counter() - t0
    reports += lanes[0] + lanes[1]
    accepted = sum(r["accepted"] for r in reports)
    if accepted != sum(sizes) or any(r["rejected"] or r["duplicates"] for r in reports):
        bad = [r for r in reports if r["rejected"] or r["duplicates"]][:3]
        raise RuntimeError(f"{accepted:,} of {sum(sizes):,} events accepted; e.g. {bad}")
    n1, n2 = sum(sizes[:half]), sum(sizes[half:])
    return {
        "ev1_n": n1, "ev1_s": one_s, "ev1_eps": n1 / one_s, "ev2_n": n2, "ev2_s": two_s, "ev2_eps": n2 / two_s,
        "ev_eps": (n1 + n2) / (one_s + two_s), "rss_events_mib": vm_rss_kb(server.pid) / 1024,
    }  # fmt: skip


def store_rows(shop: Any) -> list[tuple[str, str, str, float, float]]:
    """The log as the server stores it: (user, item id as JSON, type, value, time)."""
    from tests.support.synthetic_shop import KINDS, RATING

    lg = shop.log
    values = np.where(lg.kind == RATING, lg.value, 1).astype(np.float64).tolist()
    item_keys = [orjson.dumps(i).decode() for i in shop.item_ids]
    return [
        (shop.user_ids[u], item_keys[i], KINDS[k], v, t)
        for u, i, k, v, t in zip(lg.user.tolist(), lg.item.tolist(), lg.kind.tolist(), values, lg.time.tolist(),
                                 strict=True)
    ]  # fmt: skip


def raw_sqlite(path: Path, rows: list[tuple[str, str, str, float, float]], batch: int, *, per_row: bool) -> float:
    """Seconds to store `rows` in batches, one transaction each, on a fresh file with the server's pragmas."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(EVENTS_DDL)
    t0 = time.perf_counter()
    new = 0
    for s in range(0, len(rows), batch):
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        if per_row:
            for row in rows[s : s + batch]:
                cur.execute("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)", row)
                new += cur.rowcount == 1
        else:
            cur.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?)", rows[s : s + batch])
            new += cur.rowcount
        cur.execute("COMMIT")
    seconds = time.perf_counter() - t0
    conn.close()
    if new != len(rows):
        raise RuntimeError(f"bare SQLite stored {new:,} of {len(rows):,} rows")
    return seconds


# ---- 3. latency --------------------------------------------------------------------------------
def latency(client: httpx.Client, users: list[str], path: str) -> Run:
    """One pass: every user once, one request at a time."""
    lat, candidates, excluded, paths = [], [], [], Counter()
    t0 = time.perf_counter()
    for u in users:
        t = time.perf_counter()
        r = client.get(f"{COLL}/users/{u}/recommendations", params={"k": K})
        lat.append(time.perf_counter() - t)
        body = check(r)
        paths[body["path"]] += 1
        candidates.append(body["candidates"])
        excluded.append(body["excluded"])
        if len(body["results"]) != K:
            raise RuntimeError(f"{u}: {len(body['results'])} results, not {K}")
    total = time.perf_counter() - t0
    if set(paths) != {path}:
        raise RuntimeError(f"expected path {path!r} for every user, got {dict(paths)}")
    return {
        "p50": ms(lat, 50), "p99": ms(lat, 99), "rps": len(users) / total,
        "candidates": int(np.median(candidates)), "excluded": int(np.median(excluded)),
    }  # fmt: skip


def floor(client: httpx.Client, urls: list[str]) -> Run:
    """One pass of plain GETs, one at a time: what HTTP, routing and the thread hop cost alone."""
    lat = []
    t0 = time.perf_counter()
    for url in urls:
        t = time.perf_counter()
        check(client.get(url))
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    return {"p50": ms(lat, 50), "p99": ms(lat, 99), "rps": len(urls) / total, "candidates": "–", "excluded": "–"}


def floor_runs(server: Server, urls: list[str], runs: int) -> tuple[Run, list[Run]]:
    with server.client() as client:
        floor(client, urls[:WARMUP])
        passes = [floor(client, urls) for _ in range(runs)]
    return median_of(passes), passes


def latency_runs(server: Server, users: list[str], path: str, runs: int) -> tuple[Run, list[Run]]:
    with server.client() as client:
        latency(client, users[:WARMUP], path)
        passes = [latency(client, users, path) for _ in range(runs)]
    return median_of(passes), passes


# ---- 4. training -------------------------------------------------------------------------------
def train(server: Server) -> tuple[float, dict[str, Any]]:
    with httpx.Client(base_url=server.url, timeout=7200.0) as client:
        t0 = time.perf_counter()
        report = check(client.post(f"{COLL}/ranker/train", json={}))
        return time.perf_counter() - t0, report


# ---- the run -----------------------------------------------------------------------------------
def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from tests.support.synthetic_shop import KINDS, generate_shop

    out: dict[str, Any] = {}
    log(f"generate_shop({args.items:,}, {args.users:,}, dim={args.dim}, seed={args.seed})")
    t0 = time.perf_counter()
    shop = generate_shop(args.items, args.users, dim=args.dim, seed=args.seed)
    out["gen_s"] = time.perf_counter() - t0
    out["kinds"] = {KINDS[k]: int(n) for k, n in enumerate(np.bincount(shop.log.kind, minlength=len(KINDS)))}
    out["n_events"] = len(shop.log)
    log(f"{len(shop.log):,} events in {out['gen_s']:.1f} s; request bodies and store rows")
    t0 = time.perf_counter()
    bodies, sizes = event_bodies(shop, args.batch)
    rows = store_rows(shop)
    out["prep_s"] = time.perf_counter() - t0

    log("bare SQLite: executemany, then row by row")
    out["raw_many_s"] = raw_sqlite(tmp / "raw-many.db", rows, args.batch, per_row=False)
    out["raw_row_s"] = raw_sqlite(tmp / "raw-row.db", rows, args.batch, per_row=True)
    del rows

    rng = np.random.default_rng(args.seed + 1)
    active = np.unique(shop.log.user)
    picked = rng.choice(active, size=min(args.latency_users, len(active)), replace=False)
    users = [shop.user_ids[u] for u in picked.tolist()]
    strangers = [f"stranger-{n}" for n in range(args.latency_users)]
    out["n_users_active"], out["n_latency_users"] = len(active), len(users)

    server = Server(tmp / "data", tmp / "server.log")
    try:
        server.start()
        watch.own.add(server.pid)
        out["rss_start_mib"] = vm_rss_kb(server.pid) / 1024
        log(f"upload {len(shop.item_ids):,} items")
        with server.client() as client:
            out |= load_items(server, client, shop)
        log(f"POST /events: {len(bodies)} batches of {args.batch:,} (first half one client, then two)")
        out |= ingest_events(server, bodies, sizes)
        del bodies
        log(f"latency, path similarity: {len(users):,} users × {args.runs}")
        out["sim"], out["sim_runs"] = latency_runs(server, users, "similarity", args.runs)
        log(f"latency, path popular: {len(strangers):,} unknown users × {args.runs}")
        out["pop"], out["pop_runs"] = latency_runs(server, strangers, "popular", args.runs)
        log("HTTP floor: GET /healthz, GET /users/{u}")
        out["health"], out["health_runs"] = floor_runs(server, ["/healthz"] * len(users), args.runs)
        profile_urls = [f"{COLL}/users/{u}" for u in users]
        out["profile"], out["profile_runs"] = floor_runs(server, profile_urls, args.runs)
        log("POST /ranker/train")
        out["train_wall_s"], out["report"] = train(server)
        out["rss_trained_mib"] = vm_rss_kb(server.pid) / 1024
        log(f"trained in {out['train_wall_s']:.1f} s; latency, path ranker")
        out["rank"], out["rank_runs"] = latency_runs(server, users, "ranker", args.runs)
        out["rss_end_mib"] = vm_rss_kb(server.pid) / 1024
        log("restart")
        out["stop_s"] = server.stop()
        server.start()
        watch.own.add(server.pid)
        out["restart_s"] = server.wait_ready()
        out["rss_restart_mib"] = vm_rss_kb(server.pid) / 1024
        out["replay_line"] = next(
            (ln.split(": ", 1)[-1] for ln in reversed(server.log_path.read_text().splitlines()) if "replayed in" in ln),
            "",
        )
        with server.client() as client:
            body = check(client.get(f"{COLL}/users/{users[0]}/recommendations", params={"k": K}))
            if body["path"] != "ranker":
                raise RuntimeError(f"after the restart: path {body['path']!r}")
    except Exception:
        log(server.log_tail())
        raise
    finally:
        server.stop()
    out["machine"] = machine(str(tmp))
    out["argv"], out["date"] = sys.argv[1:], f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    return out


# ---- the report --------------------------------------------------------------------------------
def f0(x: float) -> str:
    return f"{x:,.0f}"


def num(x: int | str) -> str:
    return x if isinstance(x, str) else f"{x:,}"


def lat_row(name: str, m: Run, passes: list[Run], n: int) -> list[str]:
    spread = f"{min(p['p50'] for p in passes):.2f}–{max(p['p50'] for p in passes):.2f}"
    return [name, f"{n:,}", f"{m['p50']:.2f}", spread, f"{m['p99']:.2f}", f0(m["rps"]), num(m["candidates"]),
            num(m["excluded"])]  # fmt: skip


def section(args: argparse.Namespace, r: dict[str, Any], watched_s: float, others: list[tuple[str, float]]) -> str:
    rep, n = r["report"], r["n_events"]
    tr = rep["training"]
    kinds = ", ".join(f"{v:,} {k}" for k, v in r["kinds"].items())
    raw_many, raw_row = n / r["raw_many_s"], n / r["raw_row_s"]
    metrics = rep["metrics"]
    names = ["auc", "log_loss", "ndcg@10", "precision@10", "recall@10"]
    if others:
        busy = sum(s for _, s in others)
        beside = (f"other processes used {busy:,.0f} CPU-seconds during the {watched_s:,.0f} s run "
                  f"({busy / watched_s:.0%} of one core): "
                  + "; ".join(f"`{c.strip()}` {s:,.0f} s" for c, s in others[:6]))  # fmt: skip
    else:
        beside = f"nothing else used ≥ 2 CPU-seconds during the {watched_s:,.0f} s run"
    chosen = rep["chosen"]
    trial = tr["trials"][tr["chosen"]]
    lines = [
        SECTION, "",
        f"- Command: `{' '.join(['python -m benchmarks.recommend', *r['argv']])}`",
        f"- Date: {r['date']}",
        f"- Machine: {r['machine']}",
        f"- Data: `generate_shop({args.items}, {args.users}, dim={args.dim}, seed={args.seed})` (12 categories, "
        f"60 days, ~8 sessions per user, slates of 10): {n:,} events ({kinds}) of {r['n_users_active']:,} users; "
        f"generated in {r['gen_s']:.0f} s, request bodies and store rows built in {r['prep_s']:.0f} s (not timed "
        "below). Collection: cosine, payload indexes category (keyword) and price (float), default "
        "recommendation settings (30-day half-life). Server: `python -m app.cli serve`, default settings "
        "(UMBRELLA_DURABILITY=fsync); the client runs on the same 2 CPUs.",
        f"- Beside this run: {beside}.",
        "- Ingest, training and the restart ran once; latencies are medians over "
        f"{args.runs} passes (the p50 range across passes is shown).", "",
        f"### Events ingest (POST /events, batches of {args.batch:,}, oldest first)", "",
        *table(["", "events", "seconds", "events/s", "vs bare SQLite executemany"],
               ["REST, 1 client (first half of the log)", f"{r['ev1_n']:,}", f"{r['ev1_s']:.1f}", f0(r["ev1_eps"]),
                f"{r['ev1_eps'] / raw_many:.2f}×"],
               ["REST, 2 clients, alternate batches (second half)", f"{r['ev2_n']:,}", f"{r['ev2_s']:.1f}",
                f0(r["ev2_eps"]), f"{r['ev2_eps'] / raw_many:.2f}×"],
               ["REST, whole log", f"{n:,}", f"{r['ev1_s'] + r['ev2_s']:.1f}", f0(r["ev_eps"]),
                f"{r['ev_eps'] / raw_many:.2f}×"],
               ["bare SQLite, executemany INSERT OR IGNORE per batch", f"{n:,}", f"{r['raw_many_s']:.1f}",
                f0(raw_many), "1×"],
               ["bare SQLite, one execute + rowcount per row (as PointStore.add_events)", f"{n:,}",
                f"{r['raw_row_s']:.1f}", f0(raw_row), f"{raw_row / raw_many:.2f}×"]),
        "Bare SQLite: the same rows (user, item id as JSON, type, value, time), the server's events table with "
        "its UNIQUE key, WAL and synchronous=FULL, one transaction per batch, in the benchmark process before "
        "the server started. The REST figure includes validation, cleaning, the join with the items' vectors "
        "and payloads, and folding into the user profiles.", "",
        f"Items before that: {args.items:,} × {args.dim}-d, columnar base64 batches of "
        f"{ITEM_BATCH:,}: {r['items_s']:.1f} s to /readyz ({f0(r['items_pps'])} points/s).", "",
        f"### Recommendation latency (GET /users/{{u}}/recommendations?k={K}, one client, one request at a time)",
        "",
        *table(["path", "users", "p50 ms", "p50 range", "p99 ms", "req/s", "candidates (median)",
                "seen, left out (median)"],
               lat_row("similarity (no ranker yet)", r["sim"], r["sim_runs"], r["n_latency_users"]),
               lat_row("ranker", r["rank"], r["rank_runs"], r["n_latency_users"]),
               lat_row("popular (unknown users: cold start)", r["pop"], r["pop_runs"], args.latency_users),
               lat_row("floor: GET /users/{u} (the profile)", r["profile"], r["profile_runs"], r["n_latency_users"]),
               lat_row("floor: GET /healthz (async, no thread hop)", r["health"], r["health_runs"],
                       r["n_latency_users"])),
        f"The same {r['n_latency_users']:,} random users with events (of {r['n_users_active']:,}) for similarity "
        f"and ranker; {WARMUP} warm-up requests before each set; payloads included (the default).", "",
        "### Ranker training (POST /ranker/train, default options)", "",
        *table(["", "value"],
               ["wall time (request to answer)", f"{r['train_wall_s']:.1f} s"],
               ["report's own `seconds` / of which fitting (`training.seconds`)",
                f"{rep['seconds']:.1f} s / {tr['seconds']:.1f} s"],
               ["events used", f"{rep['events']['used']:,} (history {rep['split']['history_events']:,}, labels "
                f"{rep['split']['training_events']:,}, validation {rep['split']['validation_events']:,})"],
               ["pairs: train / validation (positives)", f"{tr['n_train']:,} ({tr['n_train_positive']:,}) / "
                f"{tr['n_val']:,} ({tr['n_val_positive']:,})"],
               ["trials", f"{len(tr['trials'])} (alphas × class weights), epochs run: "
                f"{sum(len(t['epochs']) for t in tr['trials'])}"],
               ["chosen", f"alpha {chosen['alpha']}, class_weight {chosen['class_weight']}, epoch {chosen['epoch']} "
                f"(best validation log-loss {trial['best_val_loss']:.4f})"],
               ["ranking metrics measured on", f"{rep['evaluation']['users']:,} validation users, "
                f"{rep['evaluation']['candidates_per_source']} candidates per source"]),
        *table(["validation", *names],
               *([name, *(("–" if metrics[name].get(m) is None else f"{metrics[name][m]:.4f}") for m in names)]
                 for name in ("ranker", "similarity", "popularity"))),
        "### Memory and restart", "",
        *table(["", "value"],
               ["server RSS (VmRSS): started / items loaded / events in / trained / end",
                f"{r['rss_start_mib']:,.0f} / {r['rss_items_mib']:,.0f} / {r['rss_events_mib']:,.0f} / "
                f"{r['rss_trained_mib']:,.0f} / {r['rss_end_mib']:,.0f} MiB"],
               ["stop (SIGTERM) / start until /readyz 200", f"{r['stop_s']:.1f} s / {r['restart_s']:.1f} s"],
               ["server log on the restart", r["replay_line"] or "–"],
               ["RSS after the restart", f"{r['rss_restart_mib']:,.0f} MiB"]),
        "### Notes", "",
        *(f"- {note}" for note in notes(args, r)),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def notes(args: argparse.Namespace, r: dict[str, Any]) -> list[str]:
    """Observations computed from this run's numbers."""
    rep, n, out = r["report"], r["n_events"], []
    batch_ms = 1e3 * args.batch / r["ev1_eps"]
    store_ms = 1e3 * args.batch * r["raw_row_s"] / n
    out.append(
        f"Per batch of {args.batch:,} events one client waits {batch_ms:.0f} ms; storing the same rows the way the "
        f"server does takes {store_ms:.0f} ms in bare SQLite ({store_ms / batch_ms:.0%}). The rest is request "
        "parsing and validation, cleaning, the join with the items' vectors and payloads, and the profile update."
    )
    two = r["ev2_eps"] / r["ev1_eps"]
    if two < 1.1:
        out.append(
            f"Two clients add no throughput ({two:.2f}× one client): a batch is mostly Python work under one GIL "
            "plus one SQLite writer, and the client shares the same CPUs. (The second half also goes into a "
            "table that already holds the first half.)"
        )
    else:
        out.append(f"Two clients: {two:.2f}× the throughput of one.")
    floor_ms = r["profile"]["p50"]
    out.append(
        f"Latency above the floor of a trivial route through the same machinery (GET /users/{{u}}, p50 "
        f"{floor_ms:.2f} ms): similarity +{r['sim']['p50'] - floor_ms:.2f} ms, ranker "
        f"+{r['rank']['p50'] - floor_ms:.2f} ms, popular +{r['pop']['p50'] - floor_ms:.2f} ms. The ranker path "
        f"scores {r['rank']['candidates']} candidates (taste neighbours plus popular items; median) per request."
    )
    users = rep["evaluation"]["users"]
    hits = {m: rep["metrics"][m][f"precision@{K}"] * K * users for m in ("ranker", "similarity", "popularity")}
    if max(hits.values()) < 100:
        recall = max(rep["metrics"][m][f"recall@{K}"] for m in hits)
        out.append(
            f"The ranking metrics rest on very few hits: in {users:,} users × {K} slots, ranker / similarity / "
            f"popularity placed about {hits['ranker']:.0f} / {hits['similarity']:.0f} / {hits['popularity']:.0f} "
            f"validation positives (precision@{K} × {K} × users; recall@{K} ≤ {recall:.4f}). The candidate lists "
            "(taste neighbours and popular items) seldom hold what a user clicked next in a shop of "
            f"{args.items:,} items whose default logging policy fills half of each slate uniformly at random, so "
            "NDCG here cannot separate the three; AUC and log-loss on the "
            f"{rep['training']['n_val']:,} labelled validation pairs can. The ranker's NDCG gain over similarity is "
            "asserted on the 2,000-item shop of tests/api/test_recommendation.py."
        )
    fit = rep["training"]["seconds"]
    out.append(
        f"Training: fitting (every trial's SGD epochs) took {fit:.1f} s of {rep['seconds']:.1f} s; the rest is "
        "reading the events, building profiles at the two time cuts, the labelled pairs with their candidates "
        "(one taste-vector search and popular list per user and window), and the evaluation."
    )
    gained, freed = r["rss_events_mib"] - r["rss_items_mib"], r["rss_events_mib"] - r["rss_restart_mib"]
    if gained > 0 and freed > gained / 2:
        if freed >= gained:
            held = f"below the {r['rss_items_mib']:,.0f} MiB after the item upload alone, so the {gained:,.0f} MiB"
        else:
            held = f"so {freed:,.0f} of the {gained:,.0f} MiB"
        out.append(
            f"Memory: the restart rebuilds the same profiles from the same events and settles at "
            f"{r['rss_restart_mib']:,.0f} MiB, {held} that the ingest added were memory the process kept after the "
            f"batches were done, not profile state; training adds {r['rss_trained_mib'] - r['rss_events_mib']:,.0f} "
            "MiB more."
        )
    return out


watch = CpuWatch()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--items", type=int, default=100_000)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=5_000, help="events per POST /events")
    p.add_argument("--latency-users", type=int, default=2_000, help="users per latency pass")
    p.add_argument("--runs", type=int, default=3, help="latency passes; medians are reported")
    p.add_argument("--out", type=Path, default=HERE / "RESULTS.md", help="Markdown file to write the section into")
    p.add_argument("--json", type=Path, help="also save the raw measurements here")
    p.add_argument("--render", type=Path, help="write the section from measurements saved with --json; no run")
    args = p.parse_args(argv)
    if args.render:
        saved = orjson.loads(args.render.read_bytes())
        args = argparse.Namespace(**{**saved["args"], "out": args.out})
        result, watched_s, others = saved["result"], saved["watched_s"], [tuple(o) for o in saved["others"]]
    else:
        watch.start()
        with tempfile.TemporaryDirectory(prefix="umbrella-recommend-") as tmp:
            result = run(args, Path(tmp))
        watched_s, others = watch.stop()
        if args.json:
            saved = {"args": {k: v for k, v in vars(args).items() if k not in ("out", "json", "render")},
                     "result": result, "watched_s": watched_s, "others": others}  # fmt: skip
            args.json.write_bytes(orjson.dumps(saved, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_INDENT_2))
    text = section(args, result, watched_s, others)
    print(text)
    write_section(args.out, SECTION, text)
    log(f"wrote the section to {args.out}")


if __name__ == "__main__":
    main()
