"""The translation to the server's filter JSON and search arguments, without a server: shapes, nesting, refusals."""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)
from llama_index.vector_stores.umbrella import UmbrellaVectorStore, UnsupportedFilterError
from llama_index.vector_stores.umbrella.filters import MAX_DEPTH, all_of, to_filter
from llama_index.vector_stores.umbrella.queries import IDS_PER_REQUEST, search_args, selections

AND, OR, NOT = FilterCondition.AND, FilterCondition.OR, FilterCondition.NOT


def f(key: str, value: Any, op: FilterOperator = FilterOperator.EQ) -> MetadataFilter:
    return MetadataFilter(key=key, value=value, operator=op)


def group(*filters: MetadataFilter | MetadataFilters, condition: FilterCondition = AND) -> MetadataFilters:
    return MetadataFilters(filters=list(filters), condition=condition)


def test_it_is_a_llamaindex_vector_store() -> None:
    assert issubclass(UmbrellaVectorStore, BasePydanticVectorStore)
    assert UmbrellaVectorStore.class_name() == "UmbrellaVectorStore"


def test_and_stays_flat_with_negations_in_must_not() -> None:
    flt = group(
        f("kind", "fruit"),
        f("price", 10, FilterOperator.GT),
        f("kind", "nut", FilterOperator.NE),
        f("tags", ["a", "b"], FilterOperator.NIN),
    )
    assert to_filter(flt) == {
        "must": [{"key": "kind", "match": "fruit"}, {"key": "price", "range": {"gt": 10}}],
        "must_not": [{"key": "kind", "match": "nut"}, {"key": "tags", "any": ["a", "b"]}],
    }


def test_or_and_not() -> None:
    assert to_filter(group(f("a", 1), f("b", 2, FilterOperator.NE), condition=OR)) == {
        "should": [{"key": "a", "match": 1}, {"must_not": [{"key": "b", "match": 2}]}]
    }
    # none of them holds: a negated NE turns into a plain match
    assert to_filter(group(f("a", 1), f("b", 2, FilterOperator.NE), condition=NOT)) == {
        "must": [{"key": "b", "match": 2}],
        "must_not": [{"key": "a", "match": 1}],
    }


def test_operators_map_to_conditions() -> None:
    cases: list[tuple[MetadataFilter, dict[str, Any]]] = [
        (f("p", 1.5, FilterOperator.LTE), {"must": [{"key": "p", "range": {"lte": 1.5}}]}),
        (f("k", ["x"], FilterOperator.IN), {"must": [{"key": "k", "any": ["x"]}]}),
        (f("k", "x", FilterOperator.IN), {"must": [{"key": "k", "any": ["x"]}]}),
        (f("t", ["x", "y"], FilterOperator.ALL), {"must": [{"key": "t", "match": "x"}, {"key": "t", "match": "y"}]}),
        (f("t", "x", FilterOperator.CONTAINS), {"must": [{"key": "t", "match": "x"}]}),
        (f("t", "Red Shoe", FilterOperator.TEXT_MATCH_INSENSITIVE), {"must": [{"key": "t", "text": "Red Shoe"}]}),
        (f("t", None, FilterOperator.IS_EMPTY), {"should": [{"is_empty": {"key": "t"}}, {"key": "t", "match": ""}]}),
    ]
    for metadata_filter, expected in cases:
        assert to_filter(group(metadata_filter)) == expected, metadata_filter


@pytest.mark.parametrize(
    ("metadata_filter", "message"),
    [
        (f("t", "Red", FilterOperator.TEXT_MATCH), "TEXT_MATCH_INSENSITIVE"),
        (f("date", "2024-01-01", FilterOperator.GTE), "numbers only"),
        (f("k", [], FilterOperator.IN), "at least one value"),
        (f("k", ["a", "b"], FilterOperator.EQ), "one string or number"),
        (f("k", None, FilterOperator.EQ), "one string or number"),
    ],
)
def test_what_the_server_cannot_say_is_refused(metadata_filter: MetadataFilter, message: str) -> None:
    with pytest.raises(UnsupportedFilterError, match=message):
        to_filter(group(metadata_filter))


def test_nesting_is_checked_against_the_server_bound() -> None:
    either = group(f("a", 1), f("b", 2), condition=OR)
    flat = group(f("x", 0), either)  # an AND's one OR moves up: still one level
    assert to_filter(flat) == {"must": [{"key": "x", "match": 0}], "should": either_items()}
    three = group(f("v", 1), group(f("w", 2), group(f("c", 3), either), condition=OR), condition=OR)
    assert to_filter(three) == {
        "should": [
            {"key": "v", "match": 1},
            {"should": [{"key": "w", "match": 2}, {"must": [{"key": "c", "match": 3}], "should": either_items()}]},
        ]
    }
    with pytest.raises(UnsupportedFilterError, match=f"4 levels deep; the server takes {MAX_DEPTH} at most"):
        to_filter(group(f("z", 0), three, condition=OR))


def either_items() -> list[dict[str, Any]]:
    return [{"key": "a", "match": 1}, {"key": "b", "match": 2}]


def test_all_of_moves_the_first_should_up_and_nests_the_next() -> None:
    one = {"should": [{"key": "a", "match": 1}, {"key": "b", "match": 2}]}
    two = {"should": [{"key": "c", "match": 3}, {"key": "d", "match": 4}], "must_not": [{"key": "e", "match": 5}]}
    assert all_of(one, None, two) == {
        "must": [{"should": two["should"]}],
        "should": one["should"],
        "must_not": two["must_not"],
    }
    assert all_of(None, {}) is None
    assert to_filter(group()) is None and to_filter(None) is None


def test_selections_cut_ids_into_requests_and_keep_the_filter() -> None:
    fruit = group(f("kind", "fruit"))
    ids = [f"n{i}" for i in range(IDS_PER_REQUEST + 1)]
    first, second = selections(ids, fruit)
    assert first == {"must": [{"has_id": ids[:IDS_PER_REQUEST]}, {"key": "kind", "match": "fruit"}]}
    assert second == {"must": [{"has_id": ids[IDS_PER_REQUEST:]}, {"key": "kind", "match": "fruit"}]}
    assert selections([], fruit) == []
    assert selections(None, None) == [None]


def test_search_args() -> None:
    query = VectorStoreQuery(
        query_embedding=[1.0, 0.0],
        similarity_top_k=3,
        doc_ids=["d1"],
        filters=group(f("k", "v")),
        mode=VectorStoreQueryMode.MMR,
        mmr_threshold=0.25,
    )
    raw = {"must": [{"is_null": {"key": "n"}}]}
    assert search_args(query, {"ef": 99, "mmr_prefetch_k": 40, "umbrella_filter": raw, "other": 1}) == {
        "vector": [1.0, 0.0],
        "k": 3,
        "filter": {
            "must": [{"key": "k", "match": "v"}, {"key": "ref_doc_id", "any": ["d1"]}, {"is_null": {"key": "n"}}]
        },
        "mmr": {"lambda": 0.25, "candidates": 40},
        "ef": 99,
    }
    with pytest.raises(ValueError, match="text_search"):
        search_args(VectorStoreQuery(query_embedding=[1.0], mode=VectorStoreQueryMode.TEXT_SEARCH), {})
