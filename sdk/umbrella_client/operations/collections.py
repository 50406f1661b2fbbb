"""Collection operations: create, list, inspect, drop, tune, the keyword index's fields."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from umbrella_client import models
from umbrella_client.calls import Request, given, operation
from umbrella_client.vectors import Vector, vector_list


@operation("PUT", "/collections/{name}", models.CollectionInfo.from_json)
def create_collection(
    name: str,
    *,
    dim: int | None = None,
    embedder: Mapping[str, Any] | None = None,
    metric: Literal["cosine", "ip", "l2"] = "cosine",
    hnsw: Mapping[str, int] | None = None,
    payload_indexes: Mapping[str, str] | None = None,
    store_source: bool | None = None,
    strict: bool | None = None,
    recommendation: Mapping[str, Any] | None = None,
    lexical: Mapping[str, Any] | None = None,
    shards: int | None = None,
    replicas: int | None = None,
    write_quorum: int | None = None,
) -> Request:
    """Create a collection of `dim`-dimensional vectors, or one with a server-side `embedder` ({"kind": …});
    `lexical={"fields": [...]}` keeps a keyword index for lexical and hybrid search; `shards` (with `replicas`
    and `write_quorum`) spreads it over the server's Ray cluster."""
    body = given(
        shards=shards,
        replicas=replicas,
        write_quorum=write_quorum,
        dim=dim,
        embedder=embedder,
        metric=metric,
        hnsw=hnsw,
        payload_indexes=payload_indexes,
        store_source=store_source,
        strict=strict,
        recommendation=recommendation,
        lexical=lexical,
    )
    return Request(path={"name": name}, json=body)


@operation("GET", "/collections", models.collection_list)
def list_collections() -> Request:
    """Every collection with its stats."""
    return Request()


@operation("GET", "/collections/{name}", models.CollectionInfo.from_json)
def get_collection(name: str) -> Request:
    """One collection's settings and stats (count, indexed count, index state, memory)."""
    return Request(path={"name": name})


@operation("DELETE", "/collections/{name}", lambda _: None)
def drop_collection(name: str) -> Request:
    """Drop a collection and delete its files."""
    return Request(path={"name": name})


@operation("POST", "/collections/{name}/tune", models.TuneReport.from_json)
def tune(
    name: str,
    *,
    target_recall: float | None = None,
    k: int | None = None,
    queries: int | None = None,
    source: Literal["auto", "searches", "points"] | None = None,
    vectors: Iterable[Vector] | None = None,
    seed: int | None = None,
    apply: bool | None = None,
) -> Request:
    """The smallest search ef whose recall@k reaches `target_recall` (server default 0.95), measured on
    `vectors` if given, else the collection's recent searches or stored points (`source`); `apply=True`
    makes it the collection's default."""
    rows = None if vectors is None else [vector_list(v) for v in vectors]
    body = given(target_recall=target_recall, k=k, queries=queries, source=source, vectors=rows, seed=seed, apply=apply)
    return Request(path={"name": name}, json=body)


@operation("PUT", "/collections/{name}/lexical", models.CollectionInfo.from_json)
def set_lexical(name: str, fields: Iterable[str] = (), *, source: bool | None = None) -> Request:
    """Keep a keyword index on these payload fields (and the embedded text, `source`), or change its fields;
    the points are re-indexed in the background (`lexical_state`, `lexical_progress` in the info)."""
    return Request(path={"name": name}, json=given(fields=list(fields), source=source))


@operation("DELETE", "/collections/{name}/lexical", models.CollectionInfo.from_json)
def drop_lexical(name: str) -> Request:
    """Stop keeping a keyword index; lexical and hybrid searches are then refused."""
    return Request(path={"name": name})


@operation("PUT", "/collections/{name}/payload_indexes/{field}", models.CollectionInfo.from_json)
def index_field(name: str, field: str, type: Literal["keyword", "integer", "float", "bool"]) -> Request:
    """Index a payload field of an existing collection (built in the background; filters scan meanwhile)."""
    return Request(path={"name": name, "field": field}, json={"type": type})


@operation("DELETE", "/collections/{name}/payload_indexes/{field}", models.CollectionInfo.from_json)
def drop_field_index(name: str, field: str) -> Request:
    """Stop indexing a payload field; filters on it scan the payloads from now on."""
    return Request(path={"name": name, "field": field})
