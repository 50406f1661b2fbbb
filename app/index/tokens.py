"""Words for the lexical index: lower-cased, accents dropped, and product codes findable whole and in parts."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

# A word is a run of letters and digits, possibly joined by - . / _ + (SKU-4411-B, usb-c, 2.5, 1/2).
_WORD = re.compile(r"[^\W_]+(?:[-./_+][^\W_]+)*")
_JOINERS = re.compile(r"[-./_+]")


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def tokens(text: str) -> list[str]:
    """The tokens of a text, for documents and queries alike: "SKU-4411-B" gives sku4411b, sku, 4411, b, so a
    code typed whole, in parts or without its dashes meets the same tokens. Letters and digits run together stay
    one token ("65w", "x2"): split, "blaze 2" would match "Blaze X2" as well as "Blaze 2" (measured on the
    catalogue of benchmarks/hybrid.py, it cost brand + model queries their first place)."""
    out: list[str] = []
    for word in _WORD.findall(_fold(text)):
        parts = _JOINERS.split(word)
        if len(parts) > 1:
            out.append("".join(parts))
        out.extend(parts)
    return out


def field_text(value: Any) -> Iterable[str]:
    """The strings in a payload value: a string, a number, or a list of them (nested objects are skipped)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                yield str(item)


def document(texts: Iterable[str]) -> str:
    """What the full-text table stores for one point: its tokens joined by spaces."""
    return " ".join(t for text in texts for t in tokens(text))


def match_expression(text: str, *, every: bool = False) -> str | None:
    """An FTS5 query that any of the text's tokens satisfies (BM25 ranks by how many and how rare), or with
    `every` all of them; None when the text has no tokens. Tokens are letters and digits only, so quoting them
    is safe."""
    unique = dict.fromkeys(tokens(text))
    return (" AND " if every else " OR ").join(f'"{t}"' for t in unique) if unique else None
