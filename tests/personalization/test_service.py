"""Item fields: categories and log prices, from the payload indexes or, unindexed, the JSON."""

from __future__ import annotations

import numpy as np
import pytest

from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.personalization.service import Personalization

PAYLOADS = [
    {"category": "shoes", "price": 20.0},
    {"category": "bags", "price": 0},  # no log price for 0 or below
    {"price": 7},  # an integer price; no category
    {"category": "hats", "price": -3.0},
    None,
]


@pytest.mark.parametrize("indexed", [True, False])
def test_item_fields_read_the_same_from_the_indexes_and_from_the_json(
    registry: CollectionRegistry, indexed: bool
) -> None:
    indexes = {"category": "keyword", "price": "float"} if indexed else {}
    c = registry.create(CollectionConfig(name="shop", dim=2, payload_indexes=indexes))
    c.upsert(list(range(5)), np.ones((5, 2), np.float32), PAYLOADS)
    with c.part(Personalization).items() as items:
        fields = items.fields(["4", "3", "2", "1", "0"])
    assert fields.categories == [None, "hats", None, "bags", "shoes"]
    np.testing.assert_allclose(fields.log_prices, [np.nan, np.nan, np.log(7), np.nan, np.log(20.0)])
