"""PayloadIndex: filters over declared fields become exact slot masks."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from app.core.errors import InvalidFilter, InvalidInput, UnindexedField
from app.index.payload import PayloadIndex, Rows

PAYLOADS = [
    {"cat": "shoes", "price": 10.0, "stock": 3, "sale": True, "tags": ["red", "new"]},
    {"cat": "bags", "price": 55.5, "stock": 0, "sale": False, "tags": ["red"]},
    {"cat": "shoes", "price": 99.0, "stock": 7, "tags": []},
    {"cat": "hats"},
    None,
]


@pytest.fixture
def index() -> PayloadIndex:
    idx = PayloadIndex({"cat": "keyword", "price": "float", "stock": "integer", "sale": "bool", "tags": "keyword"})
    for slot, payload in enumerate(PAYLOADS):
        idx.set(slot, payload)
    return idx


def rows(strict: bool = False) -> Rows:
    raw = [None if p is None else orjson.dumps(p) for p in PAYLOADS]
    return Rows(raw, lambda ids: [i for i in ids if i in range(len(PAYLOADS))], lambda key, text: None, strict)


def slots(index: PayloadIndex, flt: dict) -> list[int]:
    return np.flatnonzero(index.mask(flt, len(PAYLOADS), rows())).tolist()


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"must": [{"key": "cat", "match": "shoes"}]}, [0, 2]),
        ({"must": [{"key": "cat", "any": ["bags", "hats"]}]}, [1, 3]),
        ({"must": [{"key": "price", "range": {"gte": 10, "lt": 60}}]}, [0, 1]),
        ({"must": [{"key": "stock", "range": {"gt": 0}}]}, [0, 2]),
        ({"must": [{"key": "stock", "match": 0}]}, [1]),
        ({"must": [{"key": "sale", "match": True}]}, [0]),
        ({"must": [{"key": "tags", "match": "red"}]}, [0, 1]),
        ({"must_not": [{"key": "cat", "match": "shoes"}]}, [1, 3, 4]),
        ({"should": [{"key": "cat", "match": "hats"}, {"key": "price", "range": {"gt": 90}}]}, [2, 3]),
        ({"must": [{"should": [{"key": "cat", "match": "bags"}, {"key": "sale", "match": True}]}]}, [0, 1]),
        ({}, [0, 1, 2, 3, 4]),
    ],
)
def test_filters(index: PayloadIndex, flt: dict, expected: list[int]) -> None:
    assert slots(index, flt) == expected
    assert slots(PayloadIndex({}), flt) == expected  # a scan of the payloads agrees with the indexes


def test_replacing_and_removing_a_payload_updates_every_field(index: PayloadIndex) -> None:
    index.set(0, {"cat": "bags", "price": 1.0})
    assert slots(index, {"must": [{"key": "cat", "match": "shoes"}]}) == [2]
    assert slots(index, {"must": [{"key": "tags", "match": "new"}]}) == []
    index.remove(1)
    assert slots(index, {"must": [{"key": "cat", "match": "bags"}]}) == [0]


def test_a_field_without_an_index_is_scanned_unless_strict(index: PayloadIndex) -> None:
    assert slots(index, {"must": [{"key": "colour", "match": "red"}]}) == []
    with pytest.raises(UnindexedField, match="declare it in payload_indexes"):
        index.mask({"must": [{"key": "colour", "match": "red"}]}, 5, rows(strict=True))
    assert index.needs_scan({"must": [{"key": "colour", "match": "red"}]})
    assert not index.needs_scan({"must": [{"key": "cat", "match": "x"}, {"has_id": [1]}]})


@pytest.mark.parametrize(
    "cond",
    [
        {"key": "cat", "range": {"gt": 1}},
        {"key": "cat", "match": 3},
        {"key": "sale", "range": {"gt": 0}},
        {"key": "stock", "match": "three"},
    ],
)
def test_condition_that_does_not_fit_the_field_type(index: PayloadIndex, cond: dict) -> None:
    with pytest.raises(InvalidFilter):
        index.mask({"must": [cond]}, 5, rows())


@pytest.mark.parametrize(
    "payload",
    [{"price": "cheap"}, {"stock": 1.5}, {"sale": 1}, {"cat": 7}, {"tags": ["a", 1]}, {"price": float("nan")}],
)
def test_payload_values_must_fit_declared_types(index: PayloadIndex, payload: dict) -> None:
    with pytest.raises(InvalidInput):
        index.check(payload)


def test_values_are_read_back_per_slot_for_keyword_and_number_fields(index: PayloadIndex) -> None:
    every = np.array([4, 3, 2, 1, 0, 900])  # 900: a slot past the columns' end reads as missing
    assert index.keywords("cat", every) == [None, "hats", "shoes", "bags", "shoes", None]
    assert index.keywords("tags", every) == [None, None, None, "red", "red", None]  # a list: its first value
    np.testing.assert_array_equal(index.numbers("price", every), [np.nan, np.nan, 99.0, 55.5, 10.0, np.nan])
    np.testing.assert_array_equal(index.numbers("stock", every), [np.nan, np.nan, 7, 0, 3, np.nan])
    # not an indexed field of that kind: the caller must read the payloads instead
    assert index.keywords("price", every) is None and index.keywords("nope", every) is None
    assert index.numbers("cat", every) is None and index.numbers("sale", every) is None
    index.remove(2)
    assert index.keywords("cat", np.array([2])) == [None] and np.isnan(index.numbers("price", np.array([2]))[0])


NESTED = [
    {"specs": {"color": "red", "size": 42}, "tags": ["a", "b"], "note": None, "title": "USB-C 65W charger"},
    {"specs": {"color": "blue"}, "tags": [], "title": "Nike Air Max 90"},
    {"specs.color": "green", "tags": ["b"], "note": "x"},
    {"title": "usb cable", "tags": "a"},
    None,
]


def _scan(flt: dict, schema: dict | None = None) -> list[int]:
    index = PayloadIndex(schema or {})
    for slot, payload in enumerate(NESTED):
        index.set(slot, payload)
    raw = [None if p is None else orjson.dumps(p) for p in NESTED]
    found = index.mask(flt, len(NESTED), Rows(raw, lambda ids: [i for i in ids if i in (0, 3)], lambda key, text: None))
    return np.flatnonzero(found).tolist()


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"must": [{"key": "specs.color", "match": "red"}]}, [0]),
        ({"must": [{"key": "specs.color", "any": ["blue", "green"]}]}, [1, 2]),  # a literal dotted key wins
        ({"must": [{"key": "specs.size", "range": {"gte": 40}}]}, [0]),
        ({"must": [{"key": "tags", "match": "a"}]}, [0, 3]),  # a list matches when one item does
        ({"must": [{"key": "tags", "any": ["b"]}]}, [0, 2]),
        ({"must": [{"is_empty": {"key": "tags"}}]}, [1, 4]),
        ({"must": [{"is_empty": {"key": "specs.size"}}]}, [1, 2, 3, 4]),
        ({"must": [{"is_null": {"key": "note"}}]}, [0]),  # present and null; absent is not null
        ({"must_not": [{"is_empty": {"key": "note"}}]}, [2]),
        ({"must": [{"has_id": [0, 3, 99]}]}, [0, 3]),
        ({"must": [{"key": "title", "text": "usb-c charger"}]}, [0]),
        ({"must": [{"key": "title", "text": "USB"}]}, [0, 3]),
        ({"must": [{"key": "title", "text": "65w"}]}, [0]),
        ({"should": [{"has_id": [3]}, {"key": "specs.color", "match": "blue"}]}, [1, 3]),
    ],
)
def test_nested_keys_lists_emptiness_ids_and_words(flt: dict, expected: list[int]) -> None:
    assert _scan(flt) == expected
    indexed = {"specs.color": "keyword", "tags": "keyword", "specs.size": "integer"}
    assert _scan(flt, indexed) == expected  # indexes on nested keys answer the same


def test_a_value_of_another_type_is_left_out_of_an_index_added_later() -> None:
    index = PayloadIndex({"size": "integer"})
    index.set(0, {"size": "large"})  # stored before the index existed
    index.set(1, {"size": 3})
    raw = [orjson.dumps({"size": "large"}), orjson.dumps({"size": 3})]
    found = index.mask({"must": [{"key": "size", "range": {"gt": 0}}]}, 2, Rows(raw, list, lambda key, text: None))
    assert found.tolist() == [False, True]


def test_loading_at_open_indexes_what_setting_point_by_point_does() -> None:
    schema = {
        "cat": "keyword",
        "price": "float",
        "stock": "integer",
        "sale": "bool",
        "tags": "keyword",
        "m.k": "keyword",
    }
    odd = [  # values of another type are left out by both ways; a nested key; duplicates in a list
        {"cat": 5, "price": "cheap", "stock": 2.5, "sale": 1, "tags": ["a", 3]},
        {"m": {"k": "deep"}, "tags": ["b", "b"], "stock": 2**60, "price": True},
    ]
    payloads = [*PAYLOADS, *odd]
    one_by_one, loaded = PayloadIndex(schema), PayloadIndex(schema)
    for slot, payload in enumerate(payloads):
        one_by_one.set(slot, payload)
    loaded.load(list(range(4)), payloads[:4])  # in two chunks, as a collection opens
    loaded.load(list(range(4, len(payloads))), payloads[4:])
    for key in schema:
        present = np.ones(len(payloads), bool)
        if schema[key] == "keyword":
            assert loaded.keywords(key, np.arange(len(payloads))) == one_by_one.keywords(key, np.arange(len(payloads)))
        else:
            np.testing.assert_array_equal(
                loaded.numbers(key, np.arange(len(payloads))), one_by_one.numbers(key, np.arange(len(payloads)))
            )
        flt = {"must": [{"is_empty": {"key": key}}]}
        raw = [None if p is None else orjson.dumps(p) for p in payloads]
        r = Rows(raw, lambda ids: [], lambda key, text: None, False)
        np.testing.assert_array_equal(
            loaded.mask(flt, len(payloads), r, present), one_by_one.mask(flt, len(payloads), r, present)
        )
    for value in ("red", "b", "deep", "a"):
        flt = {"must": [{"key": "tags", "match": value}]}
        assert loaded.mask(flt, len(payloads), r).tolist() == one_by_one.mask(flt, len(payloads), r).tolist()


def test_a_keyword_slot_moves_between_one_value_several_and_none() -> None:
    index = PayloadIndex({"tags": "keyword", "price": "float"})
    index.load([0, 1, 2], [{"tags": "a", "price": 1.5}, {"tags": ["a", "b"], "price": 2.5}, {"price": 3.5}])
    r = Rows([b"{}"] * 4, lambda ids: [], lambda key, text: None)

    def matching(value: str) -> list[int]:
        return np.flatnonzero(index.mask({"must": [{"key": "tags", "match": value}]}, 4, r)).tolist()

    everyone = np.ones(4, bool)
    assert (matching("a"), matching("b")) == ([0, 1], [1])
    assert index.facet("tags", everyone, 10) == [("a", 2), ("b", 1)]  # a list counts once for each value
    np.testing.assert_array_equal(index.numbers("price", np.arange(4)), [1.5, 2.5, 3.5, np.nan])  # floats, in numpy
    index.set(0, {"tags": ["b", "c"]})  # one value → several
    index.set(1, {"tags": "c"})  # several → one
    index.set(3, {"tags": ["c", "c"]})  # a new slot past the loaded ones; a repeated value counts once
    assert (matching("a"), matching("b"), matching("c")) == ([], [0], [0, 1, 3])
    assert index.facet("tags", everyone, 10) == [("c", 3), ("b", 1)]  # "a" has no point left
    assert index.keywords("tags", np.arange(4)) == ["b", "c", None, "c"]
    index.remove(0)
    index.set(3, {"tags": []})
    assert (matching("b"), matching("c")) == ([], [1])
    assert index.mask({"must": [{"is_empty": {"key": "tags"}}]}, 4, r).tolist() == [True, False, True, True]


def test_a_filter_a_small_keyword_narrows_is_listed_as_its_mask_lists_it() -> None:
    """`slots` (a keyword's lists of slots, other conditions tested on those only) agrees with the mask on random
    payloads: single values, lists, missing fields, slots past a column's end, and after writes."""
    rng = np.random.default_rng(7)
    index = PayloadIndex({"tag": "keyword", "price": "float", "n": "integer", "sale": "bool"})
    size = 400
    for slot in range(size):
        p: dict = {"price": float(rng.uniform(0, 100)), "n": int(rng.integers(0, 10))}
        if rng.random() < 0.8:
            p["tag"] = f"t{rng.integers(0, 8)}" if rng.random() < 0.8 else [f"t{v}" for v in rng.integers(0, 8, 2)]
        if rng.random() < 0.5:
            p["sale"] = bool(rng.random() < 0.5)
        index.set(slot, p)
    r = Rows([b"{}"] * size, lambda ids: [], lambda key, text: None)
    filters = [
        {"must": [{"key": "tag", "match": "t1"}]},
        {"must": [{"key": "tag", "any": ["t1", "t3", "nope"]}]},
        {"must": [{"key": "tag", "any": ["t2", "t5"]}, {"key": "price", "range": {"gte": 20, "lt": 70}}]},
        {"must": [{"key": "price", "range": {"lt": 50}}, {"key": "tag", "match": "t0"}, {"key": "n", "any": [1, 2]}]},
        {"must": [{"key": "tag", "any": ["t1", "t2", "t3"]}, {"key": "tag", "match": "t2"}]},
        {"must": [{"key": "sale", "match": True}, {"key": "tag", "match": "t4"}]},
        {"must": [{"key": "tag", "match": "nope"}]},
    ]
    for round_ in range(2):
        for flt in filters:
            listed = index.slots(flt, size + 5, most=size)  # 5 slots past the last one written
            assert listed is not None, flt
            assert listed.tolist() == np.flatnonzero(index.mask(flt, size + 5, r)).tolist(), (round_, flt)
        for slot in rng.choice(size, 60, replace=False).tolist():  # writes: values moved, lists gone, slots freed
            if slot % 2:
                index.set(slot, {"tag": "t1", "price": 5.0})
            else:
                index.remove(slot)


@pytest.mark.parametrize(
    "flt",
    [
        {"must": [{"key": "price", "range": {"lt": 50}}]},  # no keyword to list from
        {"must": [{"key": "cat", "match": "shoes"}], "must_not": [{"key": "sale", "match": True}]},
        {"must": [{"key": "cat", "match": "shoes"}], "should": [{"key": "sale", "match": True}]},
        {"must": [{"key": "cat", "match": "shoes"}, {"has_id": [0]}]},
        {"must": [{"key": "cat", "match": "shoes"}, {"is_null": {"key": "sale"}}]},
        {"must": [{"key": "cat", "match": "shoes"}, {"key": "colour", "match": "red"}]},  # no index: a scan
        {"must": [{"key": "cat", "match": "shoes"}, {"key": "cat", "text": "shoes"}]},
        {"must": [{"key": "cat", "match": "shoes"}, {"must": [{"key": "sale", "match": True}]}]},
    ],
)
def test_other_filters_are_left_to_the_mask(index: PayloadIndex, flt: dict) -> None:
    assert index.slots(flt, len(PAYLOADS), most=100) is None


def test_a_keyword_holding_more_than_asked_is_left_to_the_mask_and_bad_conditions_are_refused(
    index: PayloadIndex,
) -> None:
    shoes = {"must": [{"key": "cat", "match": "shoes"}]}  # two points
    assert index.slots(shoes, len(PAYLOADS), most=1) is None
    assert index.slots(shoes, len(PAYLOADS), most=2).tolist() == [0, 2]
    for bad in ({"key": "cat", "match": 3}, {"key": "stock", "match": "three"}, {"key": "sale", "range": {"gt": 0}}):
        with pytest.raises(InvalidFilter):  # as the mask refuses them
            index.slots({"must": [{"key": "cat", "match": "shoes"}, bad]}, len(PAYLOADS), most=100)
