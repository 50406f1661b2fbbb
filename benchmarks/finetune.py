"""Fine-tuning the bundled text model on the demo shop's search feedback: what it gains, what it costs.

    python -m benchmarks.finetune [--seeds 0,1,2] [--clicks 600] [--sizes 2000,10000,50000] [--steps 150]
                                  [--out benchmarks/out/finetune.md]
    python -m benchmarks.finetune --clip [--sizes 2000,10000,50000] [--steps 60]

Quality, per seed: the demo shop (app/demo/shop.py, 200 products) and `--clicks` feedback clicks whose words are
mostly its slang (app/demo/feedback.py); the oldest 85 % train, the newest 15 % validate; all-MiniLM-L6-v2 is
tuned as the server tunes it (app/embedding/tuning.py: learning rate 5e-5, warm-up 0.1, at most 3 epochs,
patience 1, batches of 32), once without replay and once with the server's default (0.5 own-words pairs per
feedback pair, app/personalization/feedback.py). Before and after, on held-out queries ranked against every
product: MRR (first relevant within 100) and recall@10 of 150 slang queries (type and colour in shop words), and
of the general set that guards against forgetting: 150 descriptive and 150 brand + model queries of
app/demo/catalogue.py, in ordinary words, with their own truth.

Cost, per size: that many (query, product text) pairs from the same generator, one process each (so its peak RSS
is its own); the training steps of the first epoch are timed for `--steps` batches (the whole epoch when it is
shorter), and an epoch's time is that rate times its batches. A section "## Fine-tuning the text model" of --out
is replaced (or appended).

With --clip, only the cost of tuning a CLIP collection's text side (no weights of clip-ViT-B-32 can be had here):
a model of its shape with random weights (tests/support/tiny_clip.py; the time of a step does not depend on the
weights' values, and its byte-level tokenizer makes each query 2-3x longer than CLIP's BPE would, so the rate is
a floor), its text tower trained against fixed 512-d photo vectors as the server does. Section "## Fine-tuning a
CLIP model's text side".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from app.demo.catalogue import typed_queries
from app.demo.feedback import Query, feedback_clicks, slang_queries
from app.demo.shop import ShopItem, shop_items
from app.embedding import tuning
from app.embedding.sentence import find_model
from app.personalization.feedback import own_words
from benchmarks._report import log, machine, proc_status_kib, table, write_section

HERE = Path(__file__).resolve().parent
SECTION = "## Fine-tuning the text model"
CLIP_SECTION = "## Fine-tuning a CLIP model's text side"
GRID = tuning.Grid(learning_rates=(5e-5,), warmups=(0.1,), max_epochs=3, patience=1, batch_size=32)


def quality(model: Any, items: list[ShopItem], queries: list[Query]) -> tuple[float, float]:
    """(MRR within 100, recall@10) of the queries, each ranked against every product by the model."""
    keys = [item.id for item in items]
    scores = tuning.encode(model, [q.text for q in queries]) @ tuning.encode(model, [i.product.text for i in items]).T
    order = np.argsort(-scores, axis=1)
    mrr, recall = [], []
    for query, row in zip(queries, order, strict=True):
        ranked = [keys[j] for j in row[:100]]
        first = next((n for n, key in enumerate(ranked) if key in query.relevant), None)
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
        recall.append(len(query.relevant & set(ranked[:10])) / min(10, len(query.relevant)))
    return float(np.mean(mrr)), float(np.mean(recall))


def general_queries(items: list[ShopItem], seed: int) -> list[Query]:
    products = [item.product for item in items]
    typed = typed_queries(products, per_kind=150, seed=seed)
    return [Query(q.text, q.relevant) for q in typed if q.kind in ("descriptive", "brand_model")]


def pairs_of(items: list[ShopItem], clicks: int, seed: int) -> list[tuning.Pair]:
    text = {item.id: item.product.text for item in items}
    clicked = feedback_clicks(items, clicks, now=time.time(), seed=seed)
    return [tuning.Pair(c["query"], text[c["item"]]) for c in clicked]


def one_seed(seed: int, clicks: int, replay: float) -> dict[str, Any]:
    items = shop_items(200, seed)
    model = tuning.load(find_model("all-MiniLM-L6-v2", None))
    slang, general = slang_queries(items, 150, seed=seed + 1), general_queries(items, seed + 2)
    before = {"slang": quality(model, items, slang), "general": quality(model, items, general)}
    pairs = pairs_of(items, clicks, seed)
    cut = int(len(pairs) * 0.85)
    texts = {str(item.id): item.product.text for item in items}
    mixed = [tuning.Pair(words, texts[key]) for words, key in own_words(texts, round(replay * cut), seed=seed)]
    started = time.perf_counter()
    trials, _ = tuning.finetune(model, pairs[:cut] + mixed, pairs[cut:], GRID)
    seconds = time.perf_counter() - started
    after = {"slang": quality(model, items, slang), "general": quality(model, items, general)}
    epochs = [(e.epoch, e.train_loss, e.val_loss) for e in trials[0].epochs]
    return {"seed": seed, "replay": replay, "before": before, "after": after, "seconds": seconds, "epochs": epochs}


def cost(size: int, steps: int, clip: Path | None) -> dict[str, Any]:
    """Run in a child process: the training rate on `size` pairs and the process's peak RSS; with `clip`, of the
    CLIP model in that folder."""
    items = shop_items(max(200, size // 10), 0)
    pairs, targets = pairs_of(items, size, 0), None
    if clip is not None:
        model = tuning.load(clip)
        rng = np.random.default_rng(0)
        targets = {str(item.id): _unit(rng.standard_normal(512, dtype=np.float32)) for item in items}
        by_text = {item.product.text: str(item.id) for item in items}
        pairs = [tuning.Pair(p.query, by_text[p.positive]) for p in pairs]
    else:
        model = tuning.load(find_model("all-MiniLM-L6-v2", None))
    batches = len(tuning._batches(pairs, GRID.batch_size, None))
    done = {"steps": 0}

    def progress(_index: int, _trials: list[tuning.Trial], _share: float) -> None:
        done["steps"] += 1

    started = time.perf_counter()
    try:
        grid = tuning.Grid(learning_rates=(5e-5,), warmups=(0.1,), max_epochs=1, patience=1)
        tuning.finetune(
            model, pairs, pairs[:64], grid, targets=targets, progress=progress, cancelled=lambda: done["steps"] >= steps
        )
    except tuning.Cancelled:
        pass
    seconds = time.perf_counter() - started
    timed = min(done["steps"], batches)
    rss = peak_rss_mib()
    return {"pairs": size, "batches": batches, "timed_steps": timed, "seconds": seconds, "rss_mib": rss}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM, because ru_maxrss after a spawn also counts the parent's peak."""
    return proc_status_kib("VmHWM") / 1024


def report(seeds: list[dict[str, Any]], costs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    def pair(x: tuple[float, float]) -> str:
        return f"{x[0]:.3f} / {x[1]:.3f}"

    lines = [
        SECTION,
        "",
        f"- Command: `python -m benchmarks.finetune --seeds {args.seeds} --clicks {args.clicks} --sizes {args.sizes}"
        f" --steps {args.steps}`",
        f"- Machine: {machine('.')}",
        "- Model: all-MiniLM-L6-v2 (the bundled one), CPU torch; the grid the server would run with "
        "learning_rates [5e-5], warmups [0.1], max_epochs 3, patience 1, batch_size 32.",
        "",
        f"Quality on the demo shop (200 products, {args.clicks} feedback clicks: 85 % train, 15 % validation), "
        "MRR / recall@10 on held-out queries ranked against every product:",
        "",
        *table(
            [
                "seed",
                "replay",
                "slang before",
                "slang after",
                "general before",
                "general after",
                "training s",
                "epochs",
            ],
            *[
                [
                    s["seed"],
                    s["replay"],
                    pair(s["before"]["slang"]),
                    pair(s["after"]["slang"]),
                    pair(s["before"]["general"]),
                    pair(s["after"]["general"]),
                    f"{s['seconds']:.0f}",
                    ", ".join(f"{e}: {t:.2f}/{v:.2f}" for e, t, v in s["epochs"]),
                ]
                for s in seeds
            ],
        ),
        "The epochs column is train / validation loss. Slang: the shop's invented words for its product types "
        "(no general model knows them); general: descriptive and brand + model queries in ordinary words. Replay "
        "0: feedback pairs alone; 0.5 (the server's default): own-words pairs mixed in.",
        "",
        "Cost of training (one epoch; the first `--steps` batches timed, the rest at that rate):",
        "",
        *cost_table(costs),
    ]
    return "\n".join(lines)


def cost_table(costs: list[dict[str, Any]]) -> list[str]:
    return table(
        ["pairs", "batches per epoch", "timed batches", "pairs/s", "one epoch", "peak RSS"],
        *[
            [
                f"{c['pairs']:,}",
                c["batches"],
                c["timed_steps"],
                f"{c['timed_steps'] * GRID.batch_size / c['seconds']:.0f}",
                f"{c['seconds'] / c['timed_steps'] * c['batches'] / 60:.1f} min"
                + (" (extrapolated)" if c["timed_steps"] < c["batches"] else ""),
                f"{c['rss_mib']:,.0f} MiB",
            ]
            for c in costs
        ],
    )


def clip_report(costs: list[dict[str, Any]], args: argparse.Namespace) -> str:
    return "\n".join(
        [
            CLIP_SECTION,
            "",
            f"- Command: `python -m benchmarks.finetune --clip --sizes {args.sizes} --steps {args.steps}`",
            f"- Machine: {machine('.')}",
            "- Model: clip-ViT-B-32's shape (text tower 12 × 512, vocabulary 49,408; image tower ViT-B/32) with "
            "random weights; only the text tower learns, against fixed 512-d photo vectors; batches of 32, "
            "learning rate 5e-5. Its byte-level tokenizer makes queries 2-3x as long as CLIP's BPE: a floor.",
            "",
            *cost_table(costs),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--clicks", type=int, default=600)
    p.add_argument("--sizes", default="2000,10000,50000")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--out", type=Path, default=HERE / "out" / "finetune.md")
    p.add_argument("--clip", action="store_true", help="the cost of tuning a CLIP model's text side, only")
    p.add_argument("--cost-child", type=int, default=None, help=argparse.SUPPRESS)  # one size, in a child process
    p.add_argument("--clip-model", type=Path, default=None, help=argparse.SUPPRESS)  # the CLIP the child times
    args = p.parse_args(argv)
    if args.cost_child is not None:
        print(json.dumps(cost(args.cost_child, args.steps, args.clip_model)))
        return
    with tempfile.TemporaryDirectory() as folder:
        run(args, Path(folder))


def run(args: argparse.Namespace, scratch: Path) -> None:
    clip: list[str] = []
    if args.clip:  # built once here, so the children's peak RSS is training's alone
        from tests.support.tiny_clip import build_tiny_clip

        clip = ["--clip-model", str(build_tiny_clip(scratch, full_size=True))]
    seeds = []
    for seed in map(int, args.seeds.split(",")) if not args.clip else ():
        for replay in (0.0, 0.5):
            log(f"quality, seed {seed}, replay {replay}")
            seeds.append(one_seed(seed, args.clicks, replay))
            log(json.dumps(seeds[-1]))
    costs = []
    for size in map(int, args.sizes.split(",")):
        log(f"cost, {size:,} pairs")
        child = [sys.executable, "-m", "benchmarks.finetune", "--cost-child", str(size), "--steps", str(args.steps)]
        done = subprocess.run(child + clip, capture_output=True, text=True, check=True)
        costs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        log(json.dumps(costs[-1]))
    text = clip_report(costs, args) if args.clip else report(seeds, costs, args)
    print(text)
    write_section(args.out, CLIP_SECTION if args.clip else SECTION, text)
    log(f"wrote the section to {args.out}")


if __name__ == "__main__":
    main()
