"""Fine-tuning the real all-MiniLM-L6-v2 through a real server, on the demo shop's search feedback.

The shop's shoppers search in slang no model knows; after a run on their clicks and an apply, the server finds
what the slang means, and ordinary searches (the catalogue's descriptive and brand + model queries) lose no more
than a little. Margins: benchmarks/finetune.py measured three seeds (RESULTS.md, "Fine-tuning the text model");
the asserts sit well below the worst of them.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from click.testing import CliRunner

from app.cli import main
from app.demo.catalogue import typed_queries
from app.demo.feedback import slang_queries
from app.demo.shop import shop_items
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
C = "/collections/shop"


def _mrr(http: Any, queries: list[tuple[str, frozenset[int]]]) -> float:
    """Mean reciprocal rank of the first relevant product in the top 100, by the server's dense search."""
    searches = [{"text": text, "k": 100, "mode": "dense", "with_payload": False} for text, _ in queries]
    results = http.post(f"{C}/search/batch", json={"searches": searches}, timeout=120).json()["results"]
    total = 0.0
    for (_, relevant), result in zip(queries, results, strict=True):
        ranks = [n for n, hit in enumerate(result["results"]) if hit["id"] in relevant]
        total += 1.0 / (ranks[0] + 1) if ranks else 0.0
    return total / len(queries)


def _until(http: Any, path: str, done: Any, timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not done(status := http.get(path).json()):
        assert time.monotonic() < deadline, status
        time.sleep(1)
    return status


def test_the_tuned_model_learns_the_shops_slang_and_keeps_ordinary_words(server: ServerProcess) -> None:
    loaded = CliRunner().invoke(main, ["demo", "products", "--url", server.url], catch_exceptions=False)
    assert loaded.exit_code == 0, loaded.output
    items = shop_items(200)
    slang = [(q.text, q.relevant) for q in slang_queries(items, 100, seed=11)]
    general = [(q.text, q.relevant) for q in typed_queries([i.product for i in items], 50, seed=12)
               if q.kind in ("descriptive", "brand_model")]  # fmt: skip
    with server.client(timeout=120) as http:
        before = _mrr(http, slang), _mrr(http, general)
        started = http.post(f"{C}/embedder/finetune", json={"learning_rates": [5e-5], "max_epochs": 3})
        assert started.status_code == 202, started.text
        report = _until(http, f"{C}/embedder/finetune", lambda s: s["state"] != "running")
        assert report["state"] == "done", report
        base, tuned = report["metrics"]["base"]["mrr"], report["metrics"]["tuned"]["mrr"]
        assert tuned > base + MARGIN, report["metrics"]  # on the newest feedback pairs, held out
        assert http.post(f"{C}/embedder/finetune/apply").status_code == 202
        _until(http, f"{C}/embedder", lambda s: s["switch"]["state"] != "running")
        after = _mrr(http, slang), _mrr(http, general)
    assert after[0] > before[0] + MARGIN, (before, after)  # new searches in slang, through the server
    assert after[1] > before[1] - FORGETTING, (before, after)  # ordinary words: at most a little worse


MARGIN = 0.3
FORGETTING = 0.05
