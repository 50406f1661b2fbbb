"""LlamaIndex MetadataFilters in the server's filter language: {"must", "should", "must_not"} lists, three deep."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

Filter = dict[str, Any]

MAX_DEPTH = 3  # the server's bound: a filter in a filter in a filter; a fourth level would be a 422
_LISTS = ("must", "should", "must_not")
_CONDITION_KEYS = {"key", "has_id", "is_empty", "is_null"}  # what tells a condition from a nested filter
_RANGES = {FilterOperator.GT: "gt", FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte"}


class UnsupportedFilterError(ValueError):
    """A MetadataFilter that the server's filter language cannot say."""


def to_filter(filters: MetadataFilters | None) -> Filter | None:
    """The server filter for these MetadataFilters; None when they hold no condition."""
    if filters is None:
        return None
    out = _group(filters) or None
    if out is not None and (depth := _depth(out)) > MAX_DEPTH:
        raise UnsupportedFilterError(f"these filters nest {depth} levels deep; the server takes {MAX_DEPTH} at most")
    return out


def all_of(*parts: Filter | None) -> Filter | None:
    """Filters that must all hold, merged flat where that keeps their meaning, so nesting stays shallow."""
    out: Filter = {name: [] for name in _LISTS}
    for part in filter(None, parts):
        out["must"] += part.get("must", [])
        out["must_not"] += part.get("must_not", [])
        if "should" in part:
            # "one of these" binds to the filter it sits in: the first should list can move up, others stay inside
            if out["should"]:
                out["must"].append({"should": part["should"]})
            else:
                out["should"] = list(part["should"])
    return {name: items for name, items in out.items() if items} or None


def has_id(ids: Iterable[str]) -> Filter:
    return {"must": [{"has_id": list(ids)}]}


def field_is_any(key: str, values: Iterable[Any]) -> Filter:
    return {"must": [{"key": key, "any": list(values)}]}


def _group(filters: MetadataFilters) -> Filter:
    parts = [_group(f) if isinstance(f, MetadataFilters) else _leaf(f) for f in filters.filters]
    parts = [p for p in parts if p]  # an empty group says nothing
    condition = filters.condition or FilterCondition.AND
    if not parts:
        return {}
    if condition == FilterCondition.AND:
        return all_of(*parts) or {}
    if condition == FilterCondition.OR:
        return {"should": [_item(p) for p in parts]}
    if condition == FilterCondition.NOT:  # none of them holds; a negated "must not" becomes a plain "must"
        must = [p["must_not"][0] for p in parts if _only(p, "must_not")]
        must_not = [_item(p) for p in parts if not _only(p, "must_not")]
        return {name: items for name, items in (("must", must), ("must_not", must_not)) if items}
    raise UnsupportedFilterError(f"filter condition {condition!r} is not supported")


def _leaf(f: MetadataFilter) -> Filter:
    op, key = f.operator, f.key
    if op == FilterOperator.IS_EMPTY:  # LlamaIndex counts "" as empty too; the server's is_empty does not
        return {"should": [{"is_empty": {"key": key}}, {"key": key, "match": ""}]}
    if op in (FilterOperator.EQ, FilterOperator.CONTAINS):  # match on a list field holds when one item does
        return {"must": [{"key": key, "match": _scalar(f)}]}
    if op == FilterOperator.NE:
        return {"must_not": [{"key": key, "match": _scalar(f)}]}
    if op in _RANGES:
        return {"must": [{"key": key, "range": {_RANGES[op]: _number(f)}}]}
    if op in (FilterOperator.IN, FilterOperator.ANY):
        return field_is_any(key, _values(f))
    if op == FilterOperator.NIN:
        return {"must_not": [{"key": key, "any": _values(f)}]}
    if op == FilterOperator.ALL:
        return {"must": [{"key": key, "match": v} for v in _values(f)]}
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        return {"must": [{"key": key, "text": _text(f)}]}
    if op == FilterOperator.TEXT_MATCH:
        raise UnsupportedFilterError(
            f"TEXT_MATCH on {key!r}: the server matches words in any case, not case-sensitive substrings; "
            "use TEXT_MATCH_INSENSITIVE (every word of the value must occur in the field)"
        )
    raise UnsupportedFilterError(f"filter operator {op.value!r} on {key!r} is not supported")


def _scalar(f: MetadataFilter) -> str | int | float:
    if not isinstance(f.value, str | int | float):
        raise UnsupportedFilterError(f"{f.operator.name} on {f.key!r} takes one string or number, got {f.value!r}")
    return f.value


def _number(f: MetadataFilter) -> float:
    if not isinstance(f.value, int | float):
        raise UnsupportedFilterError(
            f"{f.operator.name} on {f.key!r} needs a number, got {f.value!r}: the server's ranges compare numbers only"
        )
    return f.value


def _values(f: MetadataFilter) -> list[Any]:
    values = f.value if isinstance(f.value, list) else [f.value]
    if not values or any(v is None for v in values):
        raise UnsupportedFilterError(f"{f.operator.name} on {f.key!r} needs at least one value, got {f.value!r}")
    return values


def _text(f: MetadataFilter) -> str:
    if not isinstance(f.value, str) or not f.value.strip():
        raise UnsupportedFilterError(f"{f.operator.name} on {f.key!r} needs a non-empty string, got {f.value!r}")
    return f.value


def _only(part: Filter, name: str) -> bool:
    """The part is a single condition in the list `name`."""
    return part.keys() == {name} and len(part[name]) == 1


def _item(part: Filter) -> Any:
    """A part as one item of a list: its condition when it is a lone positive one, else the part as a nested filter."""
    return part["must"][0] if _only(part, "must") and _is_condition(part["must"][0]) else part


def _is_condition(item: dict[str, Any]) -> bool:
    return bool(_CONDITION_KEYS & item.keys())


def _depth(flt: Filter) -> int:
    nested = [item for name in _LISTS for item in flt.get(name, []) if not _is_condition(item)]
    return 1 + max((_depth(n) for n in nested), default=0)
