"""Group-by: the best hits per distinct value of a payload field (one result per product, not ten photos of it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import orjson

from app.index.scan import lookup, scalars
from app.search.models import Grouping

T = TypeVar("T")


def group(
    ranked: Sequence[T], payloads: Sequence[bytes | None], grouping: Grouping
) -> tuple[list[tuple[Any, list[T]]], bool]:
    """Groups of the ranked hits (each with its stored payload) in the order of their best hit, each with up to
    `size` hits best first, after skipping `offset` groups; and whether a group beyond the page was seen (so
    another page exists). Points without the field belong to no group; a point whose field is a list joins the
    group of each item."""
    groups: dict[Any, list[T]] = {}
    wanted = grouping.offset + grouping.groups
    more = False
    for hit, raw in zip(ranked, payloads, strict=True):
        for key in scalars(lookup(orjson.loads(raw), grouping.key) if raw else None):
            # 1 and True are equal as dict keys: the key's type keeps them apart
            members = groups.get((type(key).__name__, key))
            if members is None:
                if len(groups) >= wanted:
                    more = True
                    continue
                members = groups[(type(key).__name__, key)] = []
            if len(members) < grouping.size:
                members.append(hit)
    page = list(groups.items())[grouping.offset : wanted]
    return [(key, members) for (_, key), members in page], more
