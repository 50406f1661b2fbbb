"""A small generated shop, whole: products with prices and photos, shoppers with tastes, and what they did."""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from typing import Any

from app.demo.catalogue import Product, generate_catalogue
from app.demo.pictures import encode, product_picture

DAY = 86_400.0
THUMBNAIL = 96  # px a side: small enough to ride in every search answer's payload
PRICE_LEVEL = {
    "running shoe": 90, "hiking boot": 140, "backpack": 60, "headphones": 120, "phone charger": 25,
    "laptop": 900, "smartwatch": 250, "coffee maker": 150, "desk lamp": 45, "rain jacket": 110,
}  # fmt: skip


@dataclass(frozen=True)
class ShopItem:
    product: Product
    price: float

    @property
    def id(self) -> int:
        return self.product.id

    def picture(self) -> bytes:
        p = self.product
        return encode(product_picture(p.type, p.colour, p.material, seed=p.id))

    def payload(self, *, thumbnail: bool = True) -> dict[str, Any]:
        p = self.product
        payload: dict[str, Any] = {
            "title": p.title, "brand": p.brand, "category": p.type, "colour": p.colour, "material": p.material,
            "price": self.price, "sku": p.sku,
        }  # fmt: skip
        if thumbnail:
            small = product_picture(p.type, p.colour, p.material, seed=p.id).resize((THUMBNAIL, THUMBNAIL))
            payload["thumbnail"] = "data:image/png;base64," + base64.b64encode(encode(small)).decode()
        return payload


def shop_items(n: int, seed: int = 0) -> list[ShopItem]:
    """`n` products of the generated catalogue, each priced around its type's level (…​.99, as shops do)."""
    rng = random.Random(seed + 1)
    return [
        ShopItem(p, round(max(5.0, PRICE_LEVEL[p.type] * rng.lognormvariate(0, 0.35))) - 0.01)
        for p in generate_catalogue(n, seed)
    ]


def shopper_events(items: list[ShopItem], users: int, now: float, seed: int = 0) -> list[dict[str, Any]]:
    """What `users` shoppers did over the 30 days before `now`: each likes one or two product types and a
    colour, browses (views) a mix of what they like and what they do not, and clicks, adds to the cart and
    buys mostly what they like. Enough positives for the ranker to train on (it needs 25 in its time split)."""
    rng = random.Random(seed + 2)
    by_type: dict[str, list[ShopItem]] = {}
    for item in items:
        by_type.setdefault(item.product.type, []).append(item)
    kinds = sorted(by_type)
    events: list[dict[str, Any]] = []
    for u in range(users):
        user = f"shopper-{u + 1}"
        liked_types = set(rng.sample(kinds, min(len(kinds), rng.choice((1, 2)))))
        liked_colour = rng.choice(sorted({i.product.colour for i in items}))
        for _ in range(rng.randint(3, 8)):  # sessions
            start = now - rng.uniform(0.05, 30) * DAY
            liked = [i for t in liked_types for i in by_type[t]]
            shown = rng.sample(liked, min(len(liked), 4)) + rng.sample(items, min(len(items), 3))
            for n, item in enumerate(shown):
                at = start + 60 * n
                events.append({"user": user, "item": item.id, "type": "view", "time": at})
                appeal = 0.55 * (item.product.type in liked_types) + 0.3 * (item.product.colour == liked_colour)
                if rng.random() < 0.08 + appeal:
                    events.append({"user": user, "item": item.id, "type": "click", "time": at + 10})
                    if rng.random() < appeal:
                        events.append({"user": user, "item": item.id, "type": "cart", "time": at + 30})
                        if rng.random() < 0.6:
                            events.append({"user": user, "item": item.id, "type": "purchase", "time": at + 50})
    return sorted(events, key=lambda e: e["time"])
