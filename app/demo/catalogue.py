"""A generated product catalogue and the queries shoppers type into it, each with the products it wants.

Every product has a brand, a model line and number ("Kavora Aero 90"), a SKU ("KV-4411-B"), a type, a colour,
a material and two features. Titles and descriptions use the catalogue's words; the queries are of four kinds:

- code: a SKU as printed, lower-cased, or without its dashes: one product wants it;
- brand_model: "kavora aero 90" (sometimes with the type): the products of that brand, line and number;
- descriptive: the colour, type, material and a feature in other words than the catalogue's ("crimson
  jogging sneakers that let your feet breathe"): every product with those four attributes;
- misspelled: a brand_model or descriptive query with typos in its longer words: the same products.

Seeded: the same seed gives the same catalogue and queries. `umbrella demo products` loads one into a server;
tests/support/catalogue.py scores ranked ids per kind against the queries.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

KINDS = ("code", "brand_model", "descriptive", "misspelled")

# type → (the catalogue's noun, how shoppers say it, materials, features as written → as a shopper says them)
TYPES: dict[str, tuple[str, list[str], list[str], dict[str, str]]] = {
    "running shoe": (
        "running shoe",
        ["jogging sneakers", "runners", "trainers for running"],
        ["mesh", "knit", "leather", "suede"],
        {
            "breathable upper": "that let your feet breathe",
            "cushioned sole": "with a soft bouncy sole",
            "reflective trim": "visible at night",
            "wide fit": "for wide feet",
            "carbon plate": "with a stiff racing plate",
        },
    ),
    "hiking boot": (
        "hiking boot",
        ["trekking boots", "mountain boots", "walking boots"],
        ["leather", "suede", "nylon", "gore-tex"],
        {
            "waterproof membrane": "that keep water out",
            "ankle support": "that hold the ankle firmly",
            "vibram outsole": "with a grippy rubber sole",
            "insulated lining": "warm for winter",
            "lightweight build": "that weigh very little",
        },
    ),
    "backpack": (
        "backpack",
        ["rucksack", "daypack", "school bag"],
        ["nylon", "canvas", "polyester", "leather"],
        {
            "laptop sleeve": "with room for a notebook computer",
            "padded straps": "comfortable on the shoulders",
            "rain cover": "that stays dry in a downpour",
            "hidden pocket": "with a secret anti-theft pocket",
            "roll top": "that closes by rolling the top",
        },
    ),
    "headphones": (
        "headphones",
        ["earphones", "headset", "cans"],
        ["plastic", "aluminium", "leather", "fabric"],
        {
            "noise cancelling": "that block out the noise around you",
            "long battery": "that play music all week on one charge",
            "foldable design": "that fold small for travel",
            "built-in microphone": "for phone calls",
            "low latency": "with no lag for gaming",
        },
    ),
    "phone charger": (
        "phone charger",
        ["power adapter", "charging plug", "wall adapter"],
        ["plastic", "gan", "aluminium", "silicone"],
        {
            "fast charging": "that fills a phone quickly",
            "two ports": "for two devices at once",
            "foldable plug": "with prongs that fold away",
            "travel adapters": "that works abroad",
            "cable included": "with a cord in the box",
        },
    ),
    "laptop": (
        "laptop",
        ["notebook computer", "ultrabook", "portable pc"],
        ["aluminium", "plastic", "magnesium", "carbon"],
        {
            "touch screen": "with a display you can tap",
            "backlit keyboard": "with keys that light up",
            "long battery": "that lasts all day unplugged",
            "dedicated graphics": "good for games and video editing",
            "fingerprint reader": "that unlocks with your finger",
        },
    ),
    "smartwatch": (
        "smartwatch",
        ["fitness tracker", "smart watch", "wrist computer"],
        ["aluminium", "steel", "titanium", "plastic"],
        {
            "heart rate monitor": "that tracks your pulse",
            "gps tracking": "that maps your runs",
            "always-on display": "whose screen never sleeps",
            "sleep tracking": "that watches how you sleep",
            "water resistant": "you can swim with",
        },
    ),
    "coffee maker": (
        "coffee maker",
        ["espresso machine", "coffee machine", "brewer"],
        ["steel", "plastic", "glass", "aluminium"],
        {
            "milk frother": "that foams milk for cappuccino",
            "programmable timer": "that starts brewing before you wake",
            "built-in grinder": "that grinds the beans itself",
            "thermal carafe": "that keeps the pot hot",
            "single serve": "for one cup at a time",
        },
    ),
    "desk lamp": (
        "desk lamp",
        ["reading light", "table lamp", "task light"],
        ["metal", "wood", "plastic", "glass"],
        {
            "dimmable light": "whose brightness you can turn down",
            "usb port": "that charges your phone too",
            "adjustable arm": "with an arm that bends where you want",
            "warm white": "with a cosy yellow glow",
            "touch control": "switched by a tap",
        },
    ),
    "rain jacket": (
        "rain jacket",
        ["waterproof coat", "raincoat", "shell jacket"],
        ["nylon", "polyester", "gore-tex", "cotton"],
        {
            "sealed seams": "that lets no drop through",
            "packable hood": "with a hood that tucks away",
            "pit zips": "with vents under the arms",
            "reflective trim": "visible at night",
            "fleece lining": "warm inside",
        },
    ),
}
COLOURS = {
    "red": ["crimson", "scarlet"],
    "blue": ["navy", "azure"],
    "black": ["jet", "ebony"],
    "white": ["ivory", "snow-coloured"],
    "green": ["olive", "emerald"],
    "grey": ["charcoal", "slate"],
    "yellow": ["mustard", "lemon"],
    "pink": ["rose", "blush"],
}
_SYLLABLES = ["ka", "vo", "ra", "zen", "tri", "lo", "mar", "qui", "dex", "fen", "ul", "bri", "sto", "nix", "ve", "ta"]
_LINES = [
    "Aero", "Pulse", "Terra", "Nova", "Vento", "Orbit", "Strata", "Apex", "Flux", "Echo",
    "Summit", "Drift", "Core", "Zephyr", "Vertex", "Halo", "Ridge", "Quest", "Nimbus", "Blaze",
]  # fmt: skip
_NUMBERS = ["90", "100", "2", "3", "5", "X2", "X5", "Pro", "Pro 2", "Max", "Lite", "300", "500", "S", "GT", "One"]


@dataclass(frozen=True)
class Product:
    id: int
    brand: str
    line: str
    number: str
    type: str
    colour: str
    material: str
    features: tuple[str, str]
    sku: str

    @property
    def title(self) -> str:
        return f"{self.brand} {self.line} {self.number} {TYPES[self.type][0]}"

    @property
    def description(self) -> str:
        return f"{self.colour} {self.material} {TYPES[self.type][0]} with {self.features[0]} and {self.features[1]}"

    @property
    def text(self) -> str:
        """What the dense model embeds (and the keyword index keeps, as the point's source)."""
        return f"{self.title}. {self.description}."

    @property
    def payload(self) -> dict[str, object]:
        return {"title": self.title, "brand": self.brand, "sku": self.sku, "type": self.type, "colour": self.colour}


@dataclass(frozen=True)
class TypedQuery:
    kind: str
    text: str
    relevant: frozenset[int]


def _brand_names(rng: random.Random, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        names.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize())
    return sorted(names)


def generate_catalogue(n: int = 5000, seed: int = 0) -> list[Product]:
    """`n` products; brand + line + number and SKU are unique, descriptions repeat only by chance."""
    rng = random.Random(seed)
    brands = _brand_names(rng, 40)
    seen_models: set[tuple[str, str, str]] = set()
    seen_skus: set[str] = set()
    products: list[Product] = []
    while len(products) < n:
        brand, line, number = rng.choice(brands), rng.choice(_LINES), rng.choice(_NUMBERS)
        if (brand, line, number) in seen_models:
            continue
        kind = rng.choice(sorted(TYPES))
        _, _, materials, features = TYPES[kind]
        prefix = (brand[:2] + rng.choice("ABCDEFGHJKLMNPRSTUVWXZ")).upper()
        sku = f"{prefix}-{rng.randrange(1000, 10000)}-{rng.choice('ABCDEFGHJK')}"
        if sku in seen_skus:
            continue
        seen_models.add((brand, line, number))
        seen_skus.add(sku)
        pair = rng.choice(list(combinations(sorted(features), 2)))
        colour, material = rng.choice(sorted(COLOURS)), rng.choice(materials)
        products.append(Product(len(products), brand, line, number, kind, colour, material, pair, sku))
    return products


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 1)
    edit = rng.choice(("swap", "drop", "double"))
    if edit == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if edit == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _misspelled(rng: random.Random, text: str) -> str:
    words = text.split()
    long = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    for i in rng.sample(long, min(len(long), 2)):
        words[i] = _typo(rng, words[i])
    return " ".join(words)


def typed_queries(products: Sequence[Product], per_kind: int = 50, seed: int = 1) -> list[TypedQuery]:
    """`per_kind` queries of each kind, in kind order, each with every product it wants."""
    rng = random.Random(seed)
    by_model = {(p.brand, p.line, p.number): p.id for p in products}
    by_attributes: dict[tuple[str, str, str, str], set[int]] = defaultdict(set)
    for p in products:
        for feature in p.features:
            by_attributes[(p.type, p.colour, p.material, feature)].add(p.id)

    def code(p: Product) -> TypedQuery:
        written = rng.choice((p.sku, p.sku.lower(), p.sku.replace("-", "").lower()))
        return TypedQuery("code", written, frozenset({p.id}))

    def brand_model(p: Product) -> TypedQuery:
        text = f"{p.brand} {p.line} {p.number}".lower()
        if rng.random() < 0.5:
            text += f" {TYPES[p.type][0]}"
        return TypedQuery("brand_model", text, frozenset({by_model[(p.brand, p.line, p.number)]}))

    def descriptive(p: Product) -> TypedQuery:
        _, said, _, features = TYPES[p.type]
        feature = rng.choice(p.features)
        text = f"{rng.choice(COLOURS[p.colour])} {p.material} {rng.choice(said)} {features[feature]}"
        return TypedQuery("descriptive", text, frozenset(by_attributes[(p.type, p.colour, p.material, feature)]))

    def misspelled(p: Product) -> TypedQuery:
        base = brand_model(p) if rng.random() < 0.5 else descriptive(p)
        return TypedQuery("misspelled", _misspelled(rng, base.text), base.relevant)

    makers: dict[str, Callable[[Product], TypedQuery]] = {
        "code": code,
        "brand_model": brand_model,
        "descriptive": descriptive,
        "misspelled": misspelled,
    }
    return [makers[kind](p) for kind in KINDS for p in rng.sample(list(products), per_kind)]
