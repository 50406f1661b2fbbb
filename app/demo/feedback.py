"""What shoppers of the demo shop type, and what it led them to: search feedback with a hidden truth.

The shop has its own words. Each product type has two slang names nobody outside it uses ("a crimson vorrel"
is a red running shoe): invented words, so a general model cannot know them. A feedback click is a search for a
product in shop words (its colour, and a slang name or its brand and line), and the product clicked; the truth
behind every query is the set of products it describes. `slang_queries` and `plain_queries` are the held-out
sets that judge a tuned model: the first should improve, the second (the catalogue's own words) must not fall.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from app.demo.catalogue import COLOURS, TYPES
from app.demo.shop import DAY, ShopItem

_SYLLABLES = ["vor", "rel", "quan", "tib", "lo", "dren", "mup", "sa", "kel", "zor", "fen", "ix", "bru", "nal"]


def slang_names() -> dict[str, tuple[str, str]]:
    """Two invented words per product type: the shop's slang, the same in every generated shop."""
    rng = random.Random(7)
    taken: set[str] = set()
    names = {}
    for kind in sorted(TYPES):
        pair = []
        while len(pair) < 2:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3))))
            if word not in taken:
                taken.add(word)
                pair.append(word)
        names[kind] = (pair[0], pair[1])
    return names


@dataclass(frozen=True)
class Query:
    text: str
    relevant: frozenset[int]  # the ids of every product the words describe


def _slang_query(rng: random.Random, item: ShopItem, slang: dict[str, tuple[str, str]]) -> str:
    p = item.product
    colour = rng.choice([p.colour, *COLOURS[p.colour]])
    return f"{colour} {rng.choice(slang[p.type])}"


def _by_type_and_colour(items: list[ShopItem]) -> dict[tuple[str, str], set[int]]:
    groups: dict[tuple[str, str], set[int]] = defaultdict(set)
    for item in items:
        groups[(item.product.type, item.product.colour)].add(item.id)
    return groups


def feedback_clicks(items: list[ShopItem], n: int, now: float, seed: int = 0) -> list[dict[str, Any]]:
    """`n` clicks over the 30 days before `now`, each carrying the shop words searched: most in slang, some in
    the catalogue's words; the clicked product is one the words describe (shoppers found it by browsing on)."""
    rng, slang = random.Random(seed + 3), slang_names()
    events = []
    for i in range(n):
        item = rng.choice(items)
        words = _slang_query(rng, item, slang) if rng.random() < 0.8 else f"{item.product.colour} {item.product.type}"
        events.append(
            {
                "user": f"searcher-{i % 97 + 1}",
                "item": item.id,
                "type": "click",
                "time": now - (30 - 30 * i / n) * DAY,  # spread evenly, so a split by time splits the queries too
                "query": words,
            }
        )
    return events


def slang_queries(items: list[ShopItem], n: int, seed: int = 1) -> list[Query]:
    """Held-out searches in shop slang, each with every product of that type and colour as its truth."""
    rng, slang, groups = random.Random(seed + 5), slang_names(), _by_type_and_colour(items)
    chosen = rng.sample(items, min(n, len(items)))
    return [Query(_slang_query(rng, i, slang), frozenset(groups[(i.product.type, i.product.colour)])) for i in chosen]


def plain_queries(items: list[ShopItem], n: int, seed: int = 2) -> list[Query]:
    """Held-out searches in the catalogue's own words ("navy backpack"): what a general model already gets."""
    rng, groups = random.Random(seed + 9), _by_type_and_colour(items)
    chosen = rng.sample(items, min(n, len(items)))
    return [
        Query(
            f"{rng.choice([i.product.colour, *COLOURS[i.product.colour]])} {rng.choice(TYPES[i.product.type][1])}",
            frozenset(groups[(i.product.type, i.product.colour)]),
        )
        for i in chosen
    ]
