"""group_by over shards: every shard groups its own best hits; the router merges the groups, picks the page, and
asks a second time only the shards that may hold hits of a picked group they did not return.

Why the page's groups are right after one round: a group's best hit is on some shard, where it ranks the group as
high as it ranks anywhere; if that shard did not list the group among its first offset + groups, that many groups
beat it there, and so everywhere. Its members may be missing, though: another shard that listed only its own
first offset + groups may hold hits of it. The second round asks those shards for those groups' best hits, one
plain search per group, all of a shard's in one call.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from app.collections.models import PointId
from app.search.models import Group, Grouping, Hit, Query, SearchResult

GroupKey = tuple[str, Any]  # (type name, value): 1, 1.0 and True are one dict key otherwise


def asked_of_shards(q: Query, example: PointId | None) -> Query:
    """What each shard is asked: the groups up to the end of the page, from the first; never the `example` point of
    "more like this" (it would take a group's place on its shard)."""
    assert q.group_by is not None
    g, flt = q.group_by, q.filter
    if example is not None:
        flt = {"must_not": [{"has_id": [example]}]} if not flt else {"must": [flt], "must_not": [{"has_id": [example]}]}
    return replace(q, filter=flt, group_by=replace(g, offset=0, groups=g.offset + g.groups))


def members(result: SearchResult) -> Iterator[tuple[GroupKey, Any, list[Hit]]]:
    """A shard's groups with their hits: `hits` holds them group after group, in the groups' order."""
    at = 0
    for group in result.groups or []:
        yield (type(group.value).__name__, group.value), group.value, result.hits[at : at + len(group.ids)]
        at += len(group.ids)


@dataclass
class Merged:
    """The shards' groups merged: each group's hits from every shard that returned it."""

    grouping: Grouping
    higher: bool
    values: dict[GroupKey, Any] = field(default_factory=dict)
    hits: dict[GroupKey, dict[bytes, Hit]] = field(default_factory=dict)
    listed: dict[int, set[GroupKey]] = field(default_factory=dict)  # the groups each shard returned
    more: dict[int, bool] = field(default_factory=dict)  # whether a shard has groups past those it returned

    def add(self, shard: int, result: SearchResult) -> None:
        """A shard's first answer: the groups it found among its best hits."""
        self.listed[shard] = set()
        self.more[shard] = result.next_group_offset is not None
        for key, value, hits in members(result):
            self.listed[shard].add(key)
            self.values[key] = value
            self._keep(key, hits)

    def fill(self, key: GroupKey, result: SearchResult) -> None:
        """A shard's second answer for one group: its best hits of that group's value."""
        self._keep(key, result.hits)

    def _keep(self, key: GroupKey, hits: list[Hit]) -> None:
        found = self.hits.setdefault(key, {})
        for hit in hits:  # the example of more-like-this is not among them: the shards were asked without it
            found.setdefault(orjson.dumps(hit.id), hit)

    def _order(self, hits: dict[bytes, Hit]) -> list[Hit]:
        return sorted(hits.values(), key=lambda h: (-h.score if self.higher else h.score, orjson.dumps(h.id)))

    def page(self) -> list[GroupKey]:
        """The groups of the page, by their best hit (equal scores: by its id)."""
        best = {key: self._order(hits)[0] for key, hits in self.hits.items() if hits}
        ranked = sorted(best, key=lambda key: (-best[key].score if self.higher else best[key].score,
                                               orjson.dumps(best[key].id)))  # fmt: skip
        g = self.grouping
        return ranked[g.offset : g.offset + g.groups]

    def missing(self, page: list[GroupKey]) -> dict[int, list[GroupKey]]:
        """Per shard, the page's groups it did not return though it may hold hits of them."""
        out = {s: [key for key in page if key not in listed] for s, listed in self.listed.items() if self.more[s]}
        return {s: keys for s, keys in out.items() if keys}

    def result(self, page: list[GroupKey], plan: str, candidates: int, mode: str) -> SearchResult:
        wanted = self.grouping.offset + self.grouping.groups
        hits, groups = [], []
        for key in page:
            chosen = self._order(self.hits[key])[: self.grouping.size]
            hits += chosen
            groups.append(Group(self.values[key], [h.id for h in chosen]))
        more = len(self.hits) > wanted or any(self.more.values())
        return SearchResult(hits, plan, candidates, mode, groups=groups, next_group_offset=wanted if more else None)


def fill_queries(q: Query, values: list[Any]) -> list[Query]:
    """The second round for one shard: for each group, a plain search of that group's points (one search per group,
    since a point of a list field would bring other groups into a grouped one)."""
    assert q.group_by is not None
    g, out = q.group_by, []
    for value in values:
        only = {"key": g.key, "match": value}
        out.append(replace(q, filter={"must": [only]} if not q.filter else {"must": [q.filter, only]}, group_by=None,
                           k=g.size))  # fmt: skip
    return out
