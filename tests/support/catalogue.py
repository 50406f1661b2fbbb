"""Scoring searches over the generated catalogue (app/demo/catalogue.py): recall@10 and MRR per query kind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.demo.catalogue import Product, TypedQuery


@dataclass(frozen=True)
class Quality:
    recall_at_10: float  # share of the wanted products in the top 10 (of at most 10 wanted), averaged
    mrr: float  # 1 / rank of the first wanted product (0 when none is in the list), averaged


def evaluate(queries: Sequence[TypedQuery], ranked: Sequence[Sequence[int]]) -> dict[str, Quality]:
    """Quality per kind and over the mix ("all") of ranked id lists, one per query."""
    per_kind: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for query, ids in zip(queries, ranked, strict=True):
        top = list(ids)[:10]
        recall = len(query.relevant.intersection(top)) / min(10, len(query.relevant))
        first = next((i for i, pid in enumerate(ids) if pid in query.relevant), None)
        scores = (recall, 0.0 if first is None else 1.0 / (first + 1))
        per_kind[query.kind].append(scores)
        per_kind["all"].append(scores)
    return {
        kind: Quality(sum(r for r, _ in rows) / len(rows), sum(m for _, m in rows) / len(rows))
        for kind, rows in per_kind.items()
    }


def load(http: Any, collection: str, products: Sequence[Product], batch: int = 500) -> None:
    """Create a text collection that keeps its sources and a keyword index over them and the SKU and brand
    (the default model embeds), and upsert the catalogue through `http` (an httpx or TestClient client)."""
    body = {"embedder": {"kind": "text"}, "store_source": True, "lexical": {"fields": ["sku", "brand"]}}
    response = http.put(f"/collections/{collection}", json=body)
    assert response.status_code == 201, response.text
    for start in range(0, len(products), batch):
        points = [{"id": p.id, "text": p.text, "payload": p.payload} for p in products[start : start + batch]]
        response = http.put(f"/collections/{collection}/points", json={"points": points}, timeout=600)
        assert response.status_code == 200, response.text


def ranked(http: Any, collection: str, queries: Sequence[TypedQuery], **knobs: Any) -> list[list[int]]:
    """The top-10 ids of each query, asked in batches of 50 with the given search knobs (mode, fusion)."""
    out: list[list[int]] = []
    for start in range(0, len(queries), 50):
        searches = [{"text": q.text, "k": 10, "with_payload": False, **knobs} for q in queries[start : start + 50]]
        response = http.post(f"/collections/{collection}/search/batch", json={"searches": searches}, timeout=600)
        assert response.status_code == 200, response.text
        out += [[hit["id"] for hit in result["results"]] for result in response.json()["results"]]
    return out
