"""Filter conditions checked point by point against stored payload JSON: the path for fields without an index."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from app.index.tokens import field_text, tokens

_MISSING = object()


def find(payload: dict[str, Any] | None, key: str) -> Any:
    """The value at `key` (a dotted key walks nested objects; a key that exists as written wins), or _MISSING."""
    if payload is None:
        return _MISSING
    if key in payload or "." not in key:
        return payload.get(key, _MISSING)
    value: Any = payload
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def lookup(payload: dict[str, Any] | None, key: str) -> Any:
    """The value at `key`, None when absent."""
    value = find(payload, key)
    return None if value is _MISSING else value


def scalars(value: Any) -> list[str | int | float | bool]:
    """The distinct strings, numbers and bools a payload value holds: itself, or the items of a list (what a
    facet counts once per point, and the groups a point joins)."""
    return list(dict.fromkeys(v for v in _values(value) if isinstance(v, (str, int, float, bool))))


def _same(a: Any, b: Any) -> bool:
    """JSON equality: a bool equals only a bool (Python's True == 1 does not hold here), 2 equals 2.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return isinstance(a, str) and isinstance(b, str) and a == b


def _values(value: Any) -> list[Any]:
    """A list's items, or the value itself: a condition on a field holding a list holds if it holds for one item."""
    return value if isinstance(value, list) else [value]


def _in_range(value: Any, bounds: dict[str, Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        return False
    checks = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}
    return all(bounds.get(op) is None or check(float(value), float(bounds[op])) for op, check in checks.items())


def holds(cond: dict[str, Any], payload: dict[str, Any] | None) -> bool:
    """Whether one field condition (match, any, range, text, is_empty, is_null) holds for a payload."""
    if "is_empty" in cond:
        value = find(payload, cond["is_empty"]["key"])
        return value is _MISSING or value is None or value == []
    if "is_null" in cond:
        return find(payload, cond["is_null"]["key"]) is None
    value = find(payload, cond["key"])
    if value is _MISSING or value is None:
        return False
    if "match" in cond:
        return any(_same(v, cond["match"]) for v in _values(value))
    if "any" in cond:
        return any(_same(v, w) for v in _values(value) for w in cond["any"])
    if "range" in cond:
        return any(_in_range(v, cond["range"]) for v in _values(value))
    words = set(tokens(" ".join(field_text(value))))
    return set(tokens(cond["text"])) <= words


def _needles(cond: dict[str, Any]) -> list[bytes]:
    """Byte strings one of which a payload's JSON must contain for the condition to hold (none: no shortcut).

    Payloads are stored as orjson wrote them, so `"brand":"nike"` appears in them exactly so when the field
    holds that string; a field holding a list (`"brand":[`) is left for the parse to decide. The field is
    named by its full key and by its last part, as a dotted key may be a literal name or a nested path.
    """
    if "key" not in cond:
        return []
    keys = [orjson.dumps(k) + b":" for k in dict.fromkeys((cond["key"], cond["key"].rsplit(".", 1)[-1]))]
    values = [cond["match"]] if "match" in cond else cond.get("any") or []
    if values and all(isinstance(v, str) for v in values):
        return [key + orjson.dumps(v) for key in keys for v in values] + [key + b"[" for key in keys]
    return keys


class Scanner:
    """Checks conditions for the slots a mask keeps, parsing each payload at most once per filter."""

    def __init__(self, payloads: Sequence[bytes | None]) -> None:
        self._payloads = payloads
        self._parsed: dict[int, dict[str, Any] | None] = {}

    def _payload(self, slot: int) -> dict[str, Any] | None:
        if slot not in self._parsed:
            raw = self._payloads[slot] if slot < len(self._payloads) else None
            self._parsed[slot] = None if raw is None else orjson.loads(raw)
        return self._parsed[slot]

    def mask(self, cond: dict[str, Any], within: np.ndarray) -> np.ndarray:
        """The slots among `within` (a bool per slot) whose payload satisfies the condition."""
        out = np.zeros(len(within), dtype=bool)
        slots = np.flatnonzero(within).tolist()
        needles = _needles(cond)
        if needles:  # one C-speed search of the raw JSON rules out most points before any is parsed
            found = re.compile(b"|".join(re.escape(n) for n in needles)).search
            payloads = self._payloads
            size = len(payloads)
            slots = [s for s in slots if s < size and (raw := payloads[s]) is not None and found(raw)]
        for slot in slots:
            if holds(cond, self._payload(slot)):
                out[slot] = True
        return out
