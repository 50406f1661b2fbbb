"""Throughput of the model-free embedders, in process: k-mer sequences/s and image-feature images/s.

python -m benchmarks.embedders [--runs R] [--out benchmarks/RESULTS.md]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

from app.embedding.image_features import ImageFeatureEmbedder
from app.embedding.kmer import KmerEmbedder
from benchmarks._report import machine, table, write_section
from tests.support.product_images import encode, product_image, transformed_copy

SECTION = "## Embedders (model-free)"


def rate(fn, items: list, runs: int) -> float:
    """Items per second, median of `runs` passes."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(items)
        times.append(time.perf_counter() - start)
    return len(items) / float(np.median(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/RESULTS.md"))
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    dna = ["".join(np.array(list("ACGT"))[rng.integers(0, 4, 1_000)]) for _ in range(10_000)]
    pngs = [encode(product_image(seed)) for seed in range(500)]
    jpegs = [transformed_copy(product_image(seed), seed) for seed in range(500)]
    image = ImageFeatureEmbedder()
    rows = [
        [
            "kmer, DNA k=4 (256 dims), 10,000 × 1,000 bases",
            f"{rate(KmerEmbedder(k=4).embed_sequences, dna, args.runs):,.0f} sequences/s",
        ],
        [
            "kmer, DNA k=8 hashed (4,096 dims)",
            f"{rate(KmerEmbedder(k=8).embed_sequences, dna, args.runs):,.0f} sequences/s",
        ],
        [
            "image features, 500 PNG product images (200–320 px)",
            f"{rate(image.embed_images, pngs, args.runs):,.0f} images/s",
        ],
        ["image features, 500 JPEG-60 copies", f"{rate(image.embed_images, jpegs, args.runs):,.0f} images/s"],
    ]
    text = "\n".join(
        [
            SECTION,
            "",
            f"- Command: `{' '.join(['python -m benchmarks.embedders', *sys.argv[1:]])}`",
            f"- Date: {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}",
            f"- Machine: {machine('/tmp')}",
            f"- In process, one batch call per pass, median of {args.runs} passes; no HTTP.",
            "",
            *table(["embedder and input", "throughput"], *rows),
        ]
    )
    print(text)
    write_section(args.out, SECTION, text)


if __name__ == "__main__":
    main()
