"""PayloadIndex: in-memory indexes on declared payload fields, turning a filter into a slot mask."""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Mapping
from itertools import chain, repeat
from typing import Any, Literal

import numpy as np

from app.core.errors import InvalidFilter, InvalidInput, UnindexedField

FieldType = Literal["keyword", "integer", "float", "bool"]


def lookup(payload: dict[str, Any] | None, key: str) -> Any:
    """The value at `key` in a payload; a dotted key walks nested objects ("specs.color"). A key that exists
    as written wins over a nested path, so a field literally named "a.b" stays reachable."""
    if payload is None:
        return None
    if key in payload or "." not in key:
        return payload.get(key)
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class _KeywordField:
    """Strings (or lists of strings): value → set of slots, with a cached slot array per value."""

    def __init__(self) -> None:
        self.postings: dict[str, set[int]] = {}
        self.by_slot: dict[int, tuple[str, ...]] = {}
        self._arrays: dict[str, np.ndarray] = {}

    def check(self, key: str, value: Any) -> None:
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, str) for v in values):
            raise InvalidInput(f"payload field '{key}' is declared keyword: use a string or a list of strings")

    def set(self, slot: int, value: Any) -> None:
        self.remove(slot)
        values = tuple(dict.fromkeys(value if isinstance(value, list) else [value]))
        self.by_slot[slot] = values
        for v in values:
            self.postings.setdefault(v, set()).add(slot)
            self._arrays.pop(v, None)

    def remove(self, slot: int) -> None:
        for v in self.by_slot.pop(slot, ()):
            self.postings[v].discard(slot)
            self._arrays.pop(v, None)

    def mask(self, cond: dict[str, Any], size: int) -> np.ndarray:
        if "range" in cond:
            raise InvalidFilter(f"field '{cond['key']}' is a keyword: use match or any, not range")
        wanted = [cond["match"]] if "match" in cond else cond["any"]
        out = np.zeros(size, dtype=bool)
        for v in wanted:
            if not isinstance(v, str):
                raise InvalidFilter(f"field '{cond['key']}' is a keyword: compare it with strings")
            out[self._slots(v)] = True
        return out

    def facet(self, selected: np.ndarray, limit: int) -> list[tuple[FacetValue, int]]:
        chosen = np.flatnonzero(selected)
        if len(self.postings) * FEW_VALUES < len(chosen):  # few values, many points: one masked count per value
            counts = {v: n for v in self.postings if (n := int(np.count_nonzero(selected[self._slots(v)])))}
        else:  # a point with a list counts once for each of its values
            counts = Counter(chain.from_iterable(map(self.by_slot.get, chosen.tolist(), repeat(()))))
        return _most_common(counts, limit)

    def _slots(self, value: str) -> np.ndarray:
        arr = self._arrays.get(value)
        if arr is None:
            arr = self._arrays[value] = np.fromiter(self.postings.get(value, ()), dtype=np.int64)
        return arr


FacetValue = str | int | float | bool
# A keyword facet counts per value (a numpy call each) when there are this many times fewer values than
# selected points, else per point (benchmarks/RESULTS.md, "Facet counts").
FEW_VALUES = 30


def _most_common(counts: Mapping[Any, int], limit: int) -> list[tuple[FacetValue, int]]:
    """The `limit` largest counts, ties by value. Only the values that can make the cut are sorted: sorting all
    of 50k SKU-like values with a Python key took 100 ms, finding the cut-off count 2 ms."""
    top = heapq.nlargest(limit, counts.values())
    cut = top[-1] if top else 1
    return sorted(((v, c) for v, c in counts.items() if c >= cut), key=lambda item: (-item[1], item[0]))[:limit]


def _as_float(value: int | float) -> float:
    """A number as a float64; an integer too large for one becomes ±inf (JSON integers have no bound)."""
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


class _NumericField:
    """One number (or bool) per slot in a float64 column; NaN marks a missing value."""

    def __init__(self, kind: FieldType) -> None:
        self.kind = kind
        self.values = np.full(1024, np.nan)

    def check(self, key: str, value: Any) -> None:
        if self.kind == "bool":
            ok = isinstance(value, bool)
        elif self.kind == "integer":
            ok = isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53
        else:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(_as_float(value))
        if not ok:
            raise InvalidInput(f"payload field '{key}' is declared {self.kind}: got {type(value).__name__}")

    def set(self, slot: int, value: Any) -> None:
        if slot >= len(self.values):
            grown = np.full(max(slot + 1, 2 * len(self.values)), np.nan)
            grown[: len(self.values)] = self.values
            self.values = grown
        self.values[slot] = float(value)

    def remove(self, slot: int) -> None:
        if slot < len(self.values):
            self.values[slot] = np.nan

    def mask(self, cond: dict[str, Any], size: int) -> np.ndarray:
        column = self.values[:size]
        if len(column) < size:
            column = np.concatenate([column, np.full(size - len(column), np.nan)])
        if "range" in cond:
            if self.kind == "bool":
                raise InvalidFilter(f"field '{cond['key']}' is a bool: use match, not range")
            out = ~np.isnan(column)
            bounds = cond["range"]
            for op, compare in (("gt", np.greater), ("gte", np.greater_equal), ("lt", np.less), ("lte", np.less_equal)):
                if bounds.get(op) is not None:
                    out &= compare(column, _as_float(bounds[op]))
            return out
        wanted = [cond["match"]] if "match" in cond else cond["any"]
        if not all(isinstance(v, bool) == (self.kind == "bool") and isinstance(v, (int, float)) for v in wanted):
            raise InvalidFilter(f"field '{cond['key']}' is {self.kind}: match it with {self.kind} values")
        return np.isin(column, np.asarray([_as_float(v) for v in wanted], dtype=float))  # ±inf matches nothing

    def facet(self, selected: np.ndarray, limit: int) -> list[tuple[FacetValue, int]]:
        n = min(len(selected), len(self.values))
        column = self.values[:n][selected[:n]]
        values, counts = np.unique(column[~np.isnan(column)], return_counts=True)
        typed = {"bool": bool, "integer": int}.get(self.kind, float)
        return _most_common({typed(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}, limit)


class PayloadIndex:
    """The declared fields of one collection; answers filters as boolean masks over slots."""

    def __init__(self, schema: dict[str, FieldType]) -> None:
        self.schema = dict(schema)
        self._fields = {k: _KeywordField() if t == "keyword" else _NumericField(t) for k, t in schema.items()}

    def check(self, payload: dict[str, Any] | None) -> None:
        """Raise InvalidInput when a declared field holds a value of the wrong type."""
        for key, value in (payload or {}).items():
            field = self._fields.get(key)
            if field is not None and value is not None:
                field.check(key, value)

    def set(self, slot: int, payload: dict[str, Any] | None) -> None:
        for key, field in self._fields.items():
            value = (payload or {}).get(key)
            if value is None:
                field.remove(slot)
            else:
                field.set(slot, value)

    def remove(self, slot: int) -> None:
        for field in self._fields.values():
            field.remove(slot)

    def keywords(self, key: str, slots: np.ndarray) -> list[str | None] | None:
        """Each slot's value of a keyword field (the first, for a list), None where it has none;
        None when `key` is not an indexed keyword field."""
        field = self._fields.get(key)
        if not isinstance(field, _KeywordField):
            return None
        by_slot = field.by_slot
        return [values[0] if (values := by_slot.get(slot)) else None for slot in slots.tolist()]

    def numbers(self, key: str, slots: np.ndarray) -> np.ndarray | None:
        """Each slot's value of an integer or float field, NaN where it has none; None when `key` is not one."""
        field = self._fields.get(key)
        if not isinstance(field, _NumericField) or field.kind == "bool":
            return None
        inside = slots < len(field.values)
        out = np.full(len(slots), np.nan)
        out[inside] = field.values[slots[inside]]
        return out

    def mask(self, flt: dict[str, Any], size: int) -> np.ndarray:
        """Slots (of the first `size`) that pass the filter; the caller ANDs it with liveness."""
        out = np.ones(size, dtype=bool)
        for cond in flt.get("must") or []:
            out &= self._condition(cond, size)
        if flt.get("should"):
            any_of = np.zeros(size, dtype=bool)
            for cond in flt["should"]:
                any_of |= self._condition(cond, size)
            out &= any_of
        for cond in flt.get("must_not") or []:
            out &= ~self._condition(cond, size)
        return out

    def facet(self, key: str, selected: np.ndarray, limit: int) -> list[tuple[FacetValue, int]]:
        """The `limit` most frequent values of an indexed field among the selected slots (a bool per slot),
        with how many selected points hold each; most frequent first, ties by value."""
        return self._field(key, "count its values").facet(selected, limit)

    def _condition(self, cond: dict[str, Any], size: int) -> np.ndarray:
        if "key" not in cond:  # a nested filter
            return self.mask(cond, size)
        return self._field(cond["key"], "filter on it").mask(cond, size)

    def _field(self, key: str, to: str) -> _KeywordField | _NumericField:
        field = self._fields.get(key)
        if field is None:
            raise UnindexedField(
                f"payload field '{key}' has no index: declare it in payload_indexes to {to}",
                field=key,
                indexed=sorted(self._fields),
            )
        return field
