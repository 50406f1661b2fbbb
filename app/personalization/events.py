"""Event cleaning: which interaction events are kept, and a report of what was dropped and why."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from app.collections.view import EventRow
from app.personalization.config import EVENT_TYPES

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC).timestamp()  # older "times" are almost always unit mistakes
FUTURE_SLACK = 86_400.0  # clocks disagree; a day ahead is tolerated, more is a bad timestamp
SAMPLES = 10

Row = EventRow  # user, item key, type, value, time — as the store keeps them


@dataclass
class CleanReport:
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    samples: list[dict[str, Any]] = field(default_factory=list)

    def reject(self, index: int, reason: str, message: str) -> None:
        self.rejected += 1
        self.reasons[reason] += 1
        if len(self.samples) < SAMPLES:
            self.samples.append({"index": index, "reason": reason, "message": message})

    def to_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "reasons": dict(self.reasons),
            "samples": self.samples,
        }


def parse_time(value: float | str | None, now: float) -> float | None:
    """Epoch seconds from epoch seconds or ISO 8601 (UTC when no zone is given); None if it is not a time."""
    if value is None:
        return now
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    else:
        try:
            seconds = float(value)
        except OverflowError:  # an integer with hundreds of digits is no time
            return None
    if not math.isfinite(seconds) or seconds < EARLIEST or seconds > now + FUTURE_SLACK:
        return None
    return seconds


def clean(
    events: list[dict[str, Any]], item_key: Callable[[Any], str | None], now: float
) -> tuple[list[Row], list[int], CleanReport]:
    """Rows to store (and the index in `events` each came from), and the report.

    `item_key` gives the stored key of an item id, or None when the collection does not hold it
    (never did, or it was deleted). Duplicates inside the batch are dropped here; the store drops
    the ones it already has.
    """
    report = CleanReport(received=len(events))
    rows: list[Row] = []
    origin: list[int] = []
    seen: set[Row] = set()
    for index, event in enumerate(events):
        key = item_key(event["item"])
        if key is None:
            report.reject(index, "unknown_item", f"item {event['item']!r} is not in the collection")
            continue
        when = parse_time(event.get("time"), now)
        if when is None:
            report.reject(index, "bad_time", f"time {event.get('time')!r} is not a time between 2000 and now")
            continue
        value = event.get("value")
        try:
            value = 1.0 if value is None else float(value)
        except OverflowError:
            value = math.inf  # refused just below, as any value that is not finite
        if event["type"] == "rating" and not 1.0 <= value <= 5.0:
            report.reject(index, "bad_value", f"a rating is between 1 and 5, got {value}")
            continue
        if not math.isfinite(value):
            report.reject(index, "bad_value", "value must be a finite number")
            continue
        assert event["type"] in EVENT_TYPES  # the schema checked it
        row = (str(event["user"]), key, event["type"], value, when)
        if row in seen:
            report.duplicates += 1
            continue
        seen.add(row)
        rows.append(row)
        origin.append(index)
    return rows, origin, report
