"""The answer written from a search's hit columns is the one written hit by hit."""

from __future__ import annotations

import numpy as np
import orjson

from app.api.codec import hit_json, hits_json, result_bytes
from app.search.models import Hit, Hits, SearchResult


def _columns() -> Hits:
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    return Hits(["a", 7, "c"], [0.9, 0.5, -0.25], [b'{"x":1}', None, b'{"y":[1,2]}'], vectors)


def test_columns_make_the_json_of_their_hits() -> None:
    hits = _columns()
    by_hit = [hit_json(h) for h in list(hits)]
    assert orjson.dumps(hits_json(hits), option=orjson.OPT_SERIALIZE_NUMPY) == orjson.dumps(
        by_hit, option=orjson.OPT_SERIALIZE_NUMPY
    )
    written = orjson.loads(result_bytes(SearchResult(hits, "hnsw", 3)))["results"]
    assert written == [
        {"id": "a", "score": 0.9, "payload": {"x": 1}, "vector": [0.0, 1.0]},
        {"id": 7, "score": 0.5, "vector": [2.0, 3.0]},  # no payload stored: no key, as hit_json writes it
        {"id": "c", "score": -0.25, "payload": {"y": [1, 2]}, "vector": [4.0, 5.0]},
    ]


def test_columns_without_payloads_or_vectors_write_ids_and_scores() -> None:
    assert hits_json(Hits([1, 2], [0.5, 0.25])) == [{"id": 1, "score": 0.5}, {"id": 2, "score": 0.25}]


def test_columns_read_as_a_list_of_hits() -> None:
    hits = Hits([1, 2, 3], [0.3, 0.2, 0.1], [b"{}", None, b"[]"])
    assert len(hits) == 3
    assert hits[1] == Hit(2, 0.2, None) and hits[-1] == Hit(3, 0.1, b"[]")
    assert hits[:2] == [Hit(1, 0.3, b"{}"), Hit(2, 0.2, None)] and hits[5:] == []
    assert hits == [Hit(1, 0.3, b"{}"), Hit(2, 0.2, None), Hit(3, 0.1, b"[]")]
    assert [h.id for h in hits] == [1, 2, 3]
