"""PayloadIndex: in-memory indexes on declared payload fields, turning a filter into a slot mask."""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, Literal

import numpy as np
import orjson

from app.core.errors import InvalidFilter, InvalidInput, UnindexedField
from app.index.scan import Scanner, lookup, scalars

FieldType = Literal["keyword", "integer", "float", "bool"]


NO_VALUE, MANY_VALUES = -1, -2  # codes of a slot with no value, and of one whose list holds several


class _KeywordField:
    """Strings (or lists of strings) as one int32 code per slot; a slot whose list holds several values keeps
    them beside the column. A point costs 4 bytes here, where a set entry and a tuple per point cost ~200 (a
    399k-point collection loaded 0.5 s faster and ~90 MiB smaller: benchmarks/restart.py)."""

    def __init__(self) -> None:
        self.codes = np.full(1024, NO_VALUE, np.int32)  # slot → code of its value
        self.values: list[str] = []  # code → value (codes are never reused: a value whose points are gone stays)
        self.code_of: dict[str, int] = {}
        self.several: dict[int, tuple[str, ...]] = {}  # slot → its values, for slots with MANY_VALUES
        self.several_slots: dict[str, set[int]] = {}  # value → the slots with MANY_VALUES that hold it
        self._arrays: dict[str, np.ndarray] = {}  # value → its sorted slots, made on first use

    @staticmethod
    def _strings(value: Any) -> tuple[str, ...] | None:
        """The distinct strings of a keyword value (a string or a list of them); None for any other value."""
        values = value if isinstance(value, list) else [value]
        return tuple(dict.fromkeys(values)) if all(isinstance(v, str) for v in values) else None

    def check(self, key: str, value: Any) -> None:
        if self._strings(value) is None:
            raise InvalidInput(f"payload field '{key}' is declared keyword: use a string or a list of strings")

    def _code(self, value: str) -> int:
        code = self.code_of.get(value)
        if code is None:
            code = self.code_of[value] = len(self.values)
            self.values.append(value)
        return code

    def _code_of_slot(self, slot: int, strings: tuple[str, ...]) -> int:
        """The code a slot holding `strings` gets; several values are noted beside the column."""
        if len(strings) == 1:
            return self._code(strings[0])
        if not strings:
            return NO_VALUE
        self.several[slot] = strings
        for v in strings:
            self._code(v)
            self.several_slots.setdefault(v, set()).add(slot)
        return MANY_VALUES

    def set(self, slot: int, value: Any) -> None:
        self.remove(slot)
        strings = self._strings(value) or ()
        self._grow(slot + 1)
        self.codes[slot] = self._code_of_slot(slot, strings)
        for v in strings:
            self._arrays.pop(v, None)

    def remove(self, slot: int) -> None:
        if slot >= len(self.codes):
            return
        code = int(self.codes[slot])
        if code >= 0:
            self._arrays.pop(self.values[code], None)
        elif code == MANY_VALUES:
            for v in self.several.pop(slot):
                self.several_slots[v].discard(slot)
                self._arrays.pop(v, None)
        self.codes[slot] = NO_VALUE

    def load(self, slots: list[int], values: list[Any]) -> None:
        """Index the values of slots not indexed yet (a collection opening); values of another type are left
        out, as `_store` leaves them out."""
        code_of, codes = self.code_of, []
        for slot, value in zip(slots, values, strict=True):
            if type(value) is str:  # the common case first: one dict lookup
                code = code_of.get(value)
                codes.append(self._code(value) if code is None else code)
            else:
                kept = None if value is None else self._strings(value)
                codes.append(NO_VALUE if kept is None else self._code_of_slot(slot, kept))
        if slots:
            self._grow(max(slots) + 1)
            self.codes[slots] = codes
        self._arrays.clear()

    def image(self, size: int) -> tuple[dict[str, Any], np.ndarray]:
        """The field as a checkpoint keeps it, a copy: its values and lists in the header, its code column beside."""
        several = [[slot, list(values)] for slot, values in self.several.items()]
        return {"kind": "keyword", "values": list(self.values), "several": several}, self._column(size).copy()

    def restore(self, header: dict[str, Any], column: np.ndarray) -> None:
        self.codes = column.astype(np.int32, copy=False)
        self.values = list(header["values"])
        self.code_of = {value: code for code, value in enumerate(self.values)}
        self.several = {int(slot): tuple(values) for slot, values in header["several"]}
        self.several_slots = {}
        for slot, values in self.several.items():
            for v in values:
                self.several_slots.setdefault(v, set()).add(slot)
        self._arrays.clear()

    def _grow(self, size: int) -> None:
        if size > len(self.codes):
            grown = np.full(max(size, 2 * len(self.codes)), NO_VALUE, np.int32)
            grown[: len(self.codes)] = self.codes
            self.codes = grown

    def _column(self, size: int) -> np.ndarray:
        column = self.codes[:size]
        return column if len(column) == size else np.concatenate([column, np.full(size - len(column), NO_VALUE)])

    def _wanted(self, cond: dict[str, Any]) -> list[str]:
        """The values a match or any condition asks for, those this field holds; 400 for another condition."""
        if "range" in cond:
            raise InvalidFilter(f"field '{cond['key']}' is a keyword: use match or any, not range")
        wanted = [cond["match"]] if "match" in cond else cond["any"]
        if not all(isinstance(v, str) for v in wanted):
            raise InvalidFilter(f"field '{cond['key']}' is a keyword: compare it with strings")
        return [v for v in dict.fromkeys(wanted) if v in self.code_of]

    def mask(self, cond: dict[str, Any], size: int) -> np.ndarray:
        out = np.zeros(size, dtype=bool)
        for v in self._wanted(cond):
            out[_below(self._slots(v), size)] = True  # sorted and cached: a mask is written front to back
        return out

    def count(self, cond: dict[str, Any]) -> int:
        """At least as many slots as pass the condition (exactly as many when no slot holds a list)."""
        return sum(len(self._slots(v)) for v in self._wanted(cond))

    def slots(self, cond: dict[str, Any], size: int) -> np.ndarray:
        """The slots (of the first `size`) that pass the condition, ascending, from each value's list of slots."""
        wanted = self._wanted(cond)
        lists = [_below(self._slots(v), size) for v in wanted]
        if not lists:
            return np.zeros(0, np.int64)
        if len(lists) == 1:
            return lists[0]
        if any(v in self.several_slots for v in wanted):  # a slot with a list can be in several
            return np.unique(np.concatenate(lists))
        return np.sort(np.concatenate(lists), kind="stable")  # merges the sorted runs: 60 µs for 20k (quicksort 660)

    def test(self, cond: dict[str, Any], slots: np.ndarray) -> np.ndarray:
        """A bool per given slot: it passes the condition."""
        wanted = self._wanted(cond)
        codes = self._column(int(slots.max()) + 1 if len(slots) else 0)[slots]
        out = np.isin(codes, [self.code_of[v] for v in wanted])
        for i in np.flatnonzero(codes == MANY_VALUES).tolist():
            out[i] = any(v in wanted for v in self.several[int(slots[i])])
        return out

    def present(self, size: int) -> np.ndarray:
        """Slots holding at least one value."""
        return self._column(size) != NO_VALUE

    def first(self, slots: np.ndarray) -> list[str | None]:
        """Each slot's value (the first, for a list), None where it has none."""
        codes = self._column(int(slots.max()) + 1 if len(slots) else 0)[slots].tolist()
        values, several = self.values, self.several
        return [
            values[c] if c >= 0 else several[s][0] if c == MANY_VALUES else None
            for s, c in zip(slots.tolist(), codes, strict=True)
        ]

    def facet(self, selected: np.ndarray, limit: int) -> list[tuple[FacetValue, int]]:
        column = self._column(len(selected))
        chosen = column[selected]
        per_code = np.bincount(chosen[chosen >= 0], minlength=len(self.values))
        counts: Counter[str] = Counter({self.values[c]: int(per_code[c]) for c in np.flatnonzero(per_code).tolist()})
        if self.several:  # a point with a list counts once for each of its values
            lists = np.flatnonzero(column == MANY_VALUES)
            counts.update(chain.from_iterable(self.several[s] for s in lists[selected[lists]].tolist()))
        return _most_common(counts, limit)

    def _slots(self, value: str) -> np.ndarray:
        arr = self._arrays.get(value)
        if arr is None:
            arr = np.flatnonzero(self.codes == self.code_of[value])
            if self.several_slots.get(value):
                arr = np.union1d(arr, np.fromiter(self.several_slots[value], dtype=np.int64))
            self._arrays[value] = arr
        return arr


FacetValue = str | int | float | bool


def _below(slots: np.ndarray, size: int) -> np.ndarray:
    """The slots (ascending) below `size`."""
    return slots if not len(slots) or slots[-1] < size else slots[: np.searchsorted(slots, size)]


def _most_common(counts: Mapping[Any, int], limit: int) -> list[tuple[FacetValue, int]]:
    """The `limit` largest counts, ties by value. Only the values that can make the cut are sorted: sorting all
    of 50k SKU-like values with a Python key took 100 ms, finding the cut-off count 2 ms."""
    top = heapq.nlargest(limit, counts.values())
    cut = top[-1] if top else 1
    chosen = ((v, c) for v, c in counts.items() if c >= cut)  # a scanned field may mix types: group ties by type
    return sorted(chosen, key=lambda item: (-item[1], type(item[0]).__name__, item[0]))[:limit]


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

    def fits(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "integer":
            return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**53
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(_as_float(value))

    def check(self, key: str, value: Any) -> None:
        if not self.fits(value):
            raise InvalidInput(f"payload field '{key}' is declared {self.kind}: got {type(value).__name__}")

    def set(self, slot: int, value: Any) -> None:
        self._grow(slot + 1)
        self.values[slot] = float(value)

    def load(self, slots: list[int], values: list[Any]) -> None:
        """Index the values of slots not indexed yet (a collection opening); values of another type are left out."""
        if self.kind == "float" and all(type(v) is float for v in values):  # the common case, in numpy: 5x faster
            numbers = np.asarray(values, dtype=np.float64)
            finite = np.isfinite(numbers)
            if slots:
                self._grow(max(slots) + 1)
                self.values[np.asarray(slots, np.int64)[finite]] = numbers[finite]
            return
        kept = [
            (slot, float(value))
            for slot, value in zip(slots, values, strict=True)
            if value is not None and self.fits(value)
        ]
        if kept:
            at, numbers = zip(*kept, strict=True)
            self._grow(max(at) + 1)
            self.values[list(at)] = numbers

    def image(self, size: int) -> tuple[dict[str, Any], np.ndarray]:
        """The field as a checkpoint keeps it, a copy: its column of numbers."""
        column = self.values[:size]
        return {"kind": self.kind}, np.concatenate([column, np.full(size - len(column), np.nan)])

    def restore(self, header: dict[str, Any], column: np.ndarray) -> None:
        self.values = column.astype(np.float64, copy=False)

    def _grow(self, size: int) -> None:
        if size > len(self.values):
            grown = np.full(max(size, 2 * len(self.values)), np.nan)
            grown[: len(self.values)] = self.values
            self.values = grown

    def remove(self, slot: int) -> None:
        if slot < len(self.values):
            self.values[slot] = np.nan

    def present(self, size: int) -> np.ndarray:
        column = self.values[:size]
        out = np.zeros(size, dtype=bool)
        out[: len(column)] = ~np.isnan(column)
        return out

    def mask(self, cond: dict[str, Any], size: int) -> np.ndarray:
        column = self.values[:size]
        if len(column) < size:
            column = np.concatenate([column, np.full(size - len(column), np.nan)])
        return self._passes(cond, column)

    def test(self, cond: dict[str, Any], slots: np.ndarray) -> np.ndarray:
        """A bool per given slot: it passes the condition."""
        inside = slots < len(self.values)
        column = np.full(len(slots), np.nan)
        column[inside] = self.values[slots[inside]]
        return self._passes(cond, column)

    def _passes(self, cond: dict[str, Any], column: np.ndarray) -> np.ndarray:
        """A bool per number of the column (NaN: no value) that passes the condition."""
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


@dataclass(frozen=True)
class Rows:
    """What a filter may need besides the indexes: each slot's payload JSON (to scan fields without an index),
    the slots of given ids (has_id), and the slots whose keyword document holds every word of a text (None when
    the collection keeps no keyword index). `strict` refuses to scan: a field without an index is a 400."""

    payloads: Sequence[bytes | None]
    slots_of: Callable[[list[Any]], list[int]]
    text_slots: Callable[[str, str], np.ndarray | None]  # (field, text) → slots, or None: scan them all
    strict: bool = False


class PayloadIndex:
    """The indexed fields of one collection; answers filters as boolean masks over slots, scanning the payloads
    for conditions no index answers (unless strict)."""

    def __init__(self, schema: dict[str, FieldType]) -> None:
        self.schema = dict(schema)
        self._fields = {k: new_field(t) for k, t in schema.items()}
        self._building: dict[str, tuple[FieldType, Field]] = {}  # added while serving: written, not yet read
        self._written: list[tuple[str, Field]] = list(self._fields.items())  # what writes update: both of them
        self.generation = 0

    def _changed(self) -> None:
        self.generation += 1  # which fields a filter may read changed: a mask made before may now be refused
        self._written = [*self._fields.items(), *((key, field) for key, (_, field) in self._building.items())]

    def check(self, payload: dict[str, Any] | None) -> None:
        """Raise InvalidInput when an indexed field holds a value of the wrong type."""
        for key, field in self._written:
            value = lookup(payload, key)
            if value is not None:
                field.check(key, value)

    def set(self, slot: int, payload: dict[str, Any] | None) -> None:
        for key, field in self._written:
            _store(field, key, slot, lookup(payload, key))

    def load(self, slots: list[int], payloads: list[dict[str, Any] | None], keys: Sequence[str] | None = None) -> None:
        """Index the payloads of slots not indexed yet, field by field (a collection opening: 3x faster than
        `set` point by point); only the fields `keys` names, when given."""
        for key, field in self._written:
            if keys is None or key in keys:
                field.load(slots, [lookup(payload, key) for payload in payloads])

    def image(self, size: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The indexed fields as a checkpoint keeps them (not those still being built): a header and a column each,
        copies that writes made afterwards do not change."""
        header, columns = {}, {}
        for key, field in self._fields.items():
            header[key], columns[key] = field.image(size)
        return header, columns

    def restore(self, header: dict[str, Any], columns: dict[str, np.ndarray], size: int) -> list[str]:
        """Take each declared field from a checkpoint's image where it kept one of the same type, `size` slots
        long; returns the declared fields it kept none for (to be loaded from the payloads)."""
        missing = []
        for key, field in self._fields.items():
            kept, column = header.get(key), columns.get(key)
            fits = isinstance(kept, dict) and kept.get("kind") == self.schema[key]
            if not fits or column is None or len(column) != size:
                missing.append(key)
            else:
                field.restore(kept, column)
        return missing

    def remove(self, slot: int) -> None:
        for _, field in self._written:
            field.remove(slot)

    # ---- indexes added and dropped while the collection serves -------------------------------------
    def begin(self, key: str, kind: FieldType) -> None:
        """Start an index on `key`: writes go into it from now on, filters use it once `finish` is called
        (until then they scan). The caller brings the points already stored in with `fill`."""
        self.drop(key)
        self._building[key] = (kind, new_field(kind))
        self._changed()

    def fill(self, key: str, slot: int, payload: dict[str, Any] | None) -> None:
        if key in self._building:
            _store(self._building[key][1], key, slot, lookup(payload, key))

    def finish(self, key: str) -> None:
        """Filters use the index from now on (unless it was dropped meanwhile)."""
        if key in self._building:
            kind, field = self._building.pop(key)
            self.schema[key], self._fields[key] = kind, field
            self._changed()

    def drop(self, key: str) -> None:
        self.schema.pop(key, None)
        self._fields.pop(key, None)
        self._building.pop(key, None)
        self._changed()

    # ---- reads ---------------------------------------------------------------------------------------
    def keywords(self, key: str, slots: np.ndarray) -> list[str | None] | None:
        """Each slot's value of a keyword field (the first, for a list), None where it has none;
        None when `key` is not an indexed keyword field."""
        field = self._fields.get(key)
        return field.first(slots) if isinstance(field, _KeywordField) else None

    def numbers(self, key: str, slots: np.ndarray) -> np.ndarray | None:
        """Each slot's value of an integer or float field, NaN where it has none; None when `key` is not one."""
        field = self._fields.get(key)
        if not isinstance(field, _NumericField) or field.kind == "bool":
            return None
        inside = slots < len(field.values)
        out = np.full(len(slots), np.nan)
        out[inside] = field.values[slots[inside]]
        return out

    def needs_scan(self, flt: dict[str, Any]) -> bool:
        """Whether a filter reads payloads: a condition on a field without an index, is_null, or text."""
        for cond in (*(flt.get("must") or ()), *(flt.get("should") or ()), *(flt.get("must_not") or ())):
            if "has_id" in cond:
                continue
            if "is_null" in cond or "text" in cond:
                return True
            if "is_empty" in cond:
                if cond["is_empty"]["key"] not in self._fields:
                    return True
            elif "key" in cond:
                if cond["key"] not in self._fields:
                    return True
            elif self.needs_scan(cond):
                return True
        return False

    def mask(self, flt: dict[str, Any], size: int, rows: Rows, within: np.ndarray | None = None) -> np.ndarray:
        """Slots (of the first `size`, and among `within`) that pass the filter; the caller ANDs it with liveness.

        Conditions an index answers run first, so the ones that scan payloads look only at the slots still in.
        """
        out = np.ones(size, dtype=bool) if within is None else within.copy()
        scanner = Scanner(rows.payloads)
        must = sorted(flt.get("must") or [], key=self._scans)
        for cond in must:
            out &= self._condition(cond, size, rows, scanner, out)
        if flt.get("should"):
            any_of = np.zeros(size, dtype=bool)
            for cond in sorted(flt["should"], key=self._scans):
                any_of |= self._condition(cond, size, rows, scanner, out & ~any_of)
            out &= any_of
        for cond in sorted(flt.get("must_not") or [], key=self._scans):
            out &= ~self._condition(cond, size, rows, scanner, out)
        return out

    def slots(self, flt: dict[str, Any], size: int, most: int) -> np.ndarray | None:
        """The slots (ascending, of the first `size`) that pass a filter of `must` conditions on indexed fields, at
        least one of them a keyword's match or any that holds at most `most` slots: read from that keyword's lists
        of slots, the other conditions tested on those slots only. None for any other filter: make a mask.

        For a filter that keeps few points, a mask over every slot, listed again (`flatnonzero` over 399k: 0.3 ms),
        cost more than the exact search of what it keeps (benchmarks/RESULTS.md, "Filtered search across the
        selectivity band")."""
        must = flt.get("must")
        if not must or flt.get("should") or flt.get("must_not"):
            return None
        fields = [self._fields.get(cond.get("key", "")) for cond in must]
        if any(field is None or "text" in cond for field, cond in zip(fields, must, strict=True)):
            return None  # has_id, is_null, is_empty, text, nested filters, fields without an index: the mask's work
        sizes = [
            (f.count(c), i) for i, (f, c) in enumerate(zip(fields, must, strict=True)) if isinstance(f, _KeywordField)
        ]
        if not sizes or min(sizes)[0] > most:
            return None
        first = min(sizes)[1]
        slots = fields[first].slots(must[first], size)  # type: ignore[union-attr]
        for i, (field, cond) in enumerate(zip(fields, must, strict=True)):
            if i != first:
                slots = slots[field.test(cond, slots)]  # type: ignore[union-attr]
        return slots

    def facet(
        self, key: str, selected: np.ndarray, limit: int, payloads: Sequence[bytes | None] | None = None
    ) -> list[tuple[FacetValue, int]]:
        """The `limit` most frequent values of a field among the selected slots (a bool per slot), with how many
        selected points hold each; most frequent first, ties by value. A field without an index is counted from
        `payloads` (a scan); without them it is a 400."""
        field = self._fields.get(key)
        if field is not None:
            return field.facet(selected, limit)
        if payloads is None:
            raise self._unindexed(key, "count its values (the collection is strict)")
        return scan_facet(payloads, key, selected, limit)

    def _scans(self, cond: dict[str, Any]) -> bool:
        return self.needs_scan({"must": [cond]})

    def _condition(
        self, cond: dict[str, Any], size: int, rows: Rows, scanner: Scanner, within: np.ndarray
    ) -> np.ndarray:
        if "has_id" in cond:
            out = np.zeros(size, dtype=bool)
            out[[s for s in rows.slots_of(cond["has_id"]) if s < size]] = True
            return out
        if "text" in cond:
            found = rows.text_slots(cond["key"], cond["text"])  # the keyword index narrows; the field's words decide
            return scanner.mask(cond, within if found is None else within & found[:size])
        if "key" not in cond and "is_empty" not in cond and "is_null" not in cond:  # a nested filter
            return self.mask(cond, size, rows, within)
        key = cond["key"] if "key" in cond else (cond.get("is_empty") or cond["is_null"])["key"]
        field = self._fields.get(key)
        if field is not None and "is_empty" in cond:
            return ~field.present(size)
        if field is not None and "is_null" not in cond:  # null and absent look the same to an index
            return field.mask(cond, size)
        if rows.strict and field is None:
            raise self._unindexed(key, "filter on it (the collection is strict)")
        return scanner.mask(cond, within)

    def _unindexed(self, key: str, to: str) -> UnindexedField:
        return UnindexedField(
            f"payload field '{key}' has no index: declare it in payload_indexes to {to}",
            field=key,
            indexed=sorted(self._fields),
        )


Field = _KeywordField | _NumericField


def new_field(kind: FieldType) -> Field:
    return _KeywordField() if kind == "keyword" else _NumericField(kind)


def _store(field: Field, key: str, slot: int, value: Any) -> None:
    """Index one value; a value of another type (in points stored before the index existed) is left out."""
    if value is None:
        field.remove(slot)
        return
    try:
        field.check(key, value)
    except InvalidInput:
        field.remove(slot)
        return
    field.set(slot, value)


def scan_facet(
    payloads: Sequence[bytes | None], key: str, selected: np.ndarray, limit: int
) -> list[tuple[FacetValue, int]]:
    """Facet counts of a field without an index, from the selected points' payloads (strings, numbers, bools,
    lists of them; a list counts once for each distinct value)."""
    counts: Counter[Any] = Counter()
    for slot in np.flatnonzero(selected).tolist():
        raw = payloads[slot] if slot < len(payloads) else None
        value = lookup(orjson.loads(raw), key) if raw else None
        for v in scalars(value):
            counts[v] += 1
    return _most_common(counts, limit)
