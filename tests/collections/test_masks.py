"""MaskCache and the collection's use of it: a filter asked again is answered from memory until the next write."""

from __future__ import annotations

import numpy as np
import pytest

from app.collections.masks import MaskCache
from app.collections.models import CollectionConfig
from app.core.config import Settings
from app.core.errors import UnindexedField
from app.main import open_registry
from app.search.models import Query
from app.search.searcher import search


def test_a_kept_mask_and_its_slots_are_served_until_cleared() -> None:
    cache, built = MaskCache(budget=1_000), []

    def build() -> np.ndarray:
        built.append(1)
        return np.array([True, False, True, True])

    first = cache.get("f", build)
    assert cache.get("f", build) is first and len(built) == 1 and not first.flags.writeable
    slots = cache.slots(first)
    assert slots.tolist() == [0, 2, 3] and cache.slots(first) is slots
    loose = np.array([False, True])  # not one of the cache's: listed, not kept
    assert cache.slots(loose).tolist() == [1] and cache.slots(loose) is not cache.slots(loose)
    cache.clear()
    assert cache.get("f", build) is not first and len(built) == 2


def test_the_least_recently_used_masks_leave_first_and_one_too_large_is_never_kept() -> None:
    cache = MaskCache(budget=250)  # room for two masks of 100 bytes and a few slots
    a = cache.get("a", lambda: np.ones(100, bool))
    b = cache.get("b", lambda: np.ones(100, bool))
    assert cache.get("a", lambda: np.zeros(100, bool)) is a  # a is now the most recently used
    cache.get("c", lambda: np.ones(100, bool))  # b leaves
    assert cache.get("a", lambda: np.zeros(100, bool)) is a
    assert cache.get("b", lambda: np.zeros(100, bool)) is not b
    huge = cache.get("huge", lambda: np.ones(300, bool))
    assert cache.get("huge", lambda: np.ones(300, bool)) is not huge
    kept = cache.get("d", lambda: np.eye(1, 100, 7, dtype=bool)[0])
    assert cache.slots(kept) is cache.slots(kept)  # its slots (8 bytes) are kept beside it


def test_a_collection_answers_a_repeated_filter_from_memory_and_sees_every_write(settings: Settings) -> None:
    registry = open_registry(settings)
    try:
        config = CollectionConfig(name="m", dim=4, strict=True, payload_indexes={"tag": "keyword", "n": "integer"})
        collection = registry.create(config)
        rng = np.random.default_rng(1)
        collection.upsert(
            list(range(10)), rng.normal(size=(10, 4)).astype(np.float32), [{"tag": "a", "n": i} for i in range(10)]
        )
        flt = {"must": [{"key": "tag", "match": "a"}, {"key": "n", "range": {"lt": 5}}]}

        def matching() -> list[int]:
            with collection.reading() as view:
                mask = view.mask(flt)
                return sorted(view.ids(view.selected(mask).tolist()))  # type: ignore[arg-type]

        with collection.reading() as view:
            assert view.mask(flt) is view.mask(flt)  # kept
            assert view.mask(
                {"must": [{"key": "n", "range": {"lt": 5}}, {"key": "tag", "match": "a"}]}
            ) is not view.mask(flt)
        assert matching() == [0, 1, 2, 3, 4]
        collection.upsert([2], rng.normal(size=(1, 4)).astype(np.float32), [{"tag": "b", "n": 2}])  # leaves
        collection.upsert([42], rng.normal(size=(1, 4)).astype(np.float32), [{"tag": "a", "n": 0}])  # joins
        assert matching() == [0, 1, 3, 4, 42]
        collection.delete([0])
        assert matching() == [1, 3, 4, 42]
        collection.drop_field_index("n")  # strict: the same filter is now refused, not answered from memory
        with pytest.raises(UnindexedField), collection.reading() as view:
            view.mask(flt)
    finally:
        registry.close()


def test_a_filter_a_keyword_narrows_is_listed_kept_until_a_write_and_searched_exactly(settings: Settings) -> None:
    registry = open_registry(settings)
    try:
        config = CollectionConfig(name="s", dim=4, payload_indexes={"tag": "keyword", "n": "integer"})
        collection = registry.create(config)
        rng = np.random.default_rng(2)
        vectors = rng.normal(size=(200, 4)).astype(np.float32)
        collection.upsert(list(range(200)), vectors, [{"tag": f"t{i % 20}", "n": i} for i in range(200)])
        flt = {"must": [{"key": "tag", "any": ["t1", "t2"]}, {"key": "n", "range": {"lt": 100}}]}
        expected = [i for i in range(100) if i % 20 in (1, 2)]

        def listed() -> list[int]:
            with collection.reading() as view:
                slots = view.selection(flt)
                assert slots is not None and view.selection(flt) is slots  # kept
                assert slots.tolist() == np.flatnonzero(view.mask(flt)).tolist()  # what the mask keeps
                return sorted(view.ids(slots.tolist()))  # type: ignore[arg-type]

        assert listed() == expected
        query = rng.normal(size=4).astype(np.float32)
        (result,) = search(collection, [Query(vector=query, k=5, filter=flt)])
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        best = sorted(expected, key=lambda i: -float(unit[i] @ (query / np.linalg.norm(query))))[:5]
        assert (result.plan, result.candidates, [h.id for h in result.hits]) == ("exact", len(expected), best)
        collection.upsert([1], rng.normal(size=(1, 4)).astype(np.float32), [{"tag": "t9", "n": 1}])  # leaves
        collection.delete([2])
        collection.upsert([500], rng.normal(size=(1, 4)).astype(np.float32), [{"tag": "t2", "n": 0}])  # joins
        assert listed() == sorted([*(i for i in expected if i not in (1, 2)), 500])
    finally:
        registry.close()
