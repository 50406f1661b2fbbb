"""Hybrid search earns its keep, through a real server with the real text model (all-MiniLM-L6-v2): on a
generated catalogue of 5,000 products, hybrid is as good as the better of dense and keyword search on each
kind of query a shopper types, and better than both on the mix (benchmarks/hybrid.py measures the same)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.demo.catalogue import KINDS, generate_catalogue, typed_queries
from tests.e2e.conftest import ServerProcess
from tests.support.catalogue import evaluate, load, ranked

pytestmark = pytest.mark.e2e


def test_hybrid_is_never_worse_than_the_better_retriever_and_wins_the_mix(
    server_factory: Callable[..., ServerProcess],
) -> None:
    products = generate_catalogue(5000, seed=0)
    queries = typed_queries(products, per_kind=50, seed=1)
    server = server_factory().start()
    with server.client() as http:
        load(http, "catalogue", products)
        quality = {mode: evaluate(queries, ranked(http, "catalogue", queries, mode=mode)) for mode in MODES}
    table = "\n".join(
        f"{mode:8s} " + "  ".join(f"{k}: {q.recall_at_10:.3f}/{q.mrr:.3f}" for k, q in quality[mode].items())
        for mode in MODES
    )
    print(table)  # recall@10 / MRR per kind: shown when the test fails
    dense, lexical, hybrid = (quality[mode] for mode in MODES)
    assert lexical["code"].recall_at_10 > 0.95 > dense["code"].recall_at_10 + 0.5, table  # the premise
    for kind in KINDS:
        best = max(dense[kind].recall_at_10, lexical[kind].recall_at_10)
        assert hybrid[kind].recall_at_10 >= best - 0.02, f"{kind}\n{table}"
    for metric in ("recall_at_10", "mrr"):
        best = max(getattr(dense["all"], metric), getattr(lexical["all"], metric))
        assert getattr(hybrid["all"], metric) > best, f"{metric}\n{table}"


MODES = ("dense", "lexical", "hybrid")
