"""Search operations: one query, a batch of queries, a photo uploaded as a file, facet counts."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from umbrella_client import models
from umbrella_client.calls import Request, given, operation
from umbrella_client.images import Image, image_base64, image_bytes
from umbrella_client.models import Filter, PointId, SearchQuery
from umbrella_client.vectors import Vector, encode_vector, is_array


def query_json(query: SearchQuery) -> dict[str, Any]:
    body = given(
        id=query.id,
        text=query.text,
        sequence=query.sequence,
        image=image_base64(query.image) if query.image is not None else None,
        vector=encode_vector(query.vector) if query.vector is not None else None,
        ef=query.ef,
        filter=query.filter,
        score_threshold=query.score_threshold,
        mode=query.mode,
        keywords=query.keywords,
        fusion=query.fusion,
        mmr=query.mmr,
        group_by=query.group_by,
        group_size=query.group_size,
        groups=query.groups,
        group_offset=query.group_offset,
    )
    body.update(k=query.k, exact=query.exact, with_payload=query.with_payload, with_vector=query.with_vector)
    if query.log:
        body["log"] = True
    if query.partial:
        body["partial"] = True
    return body


@operation("POST", "/collections/{name}/search", models.SearchResult.from_json)
def search(
    collection: str,
    vector: Vector | None = None,
    *,
    id: PointId | None = None,
    text: str | None = None,
    sequence: str | None = None,
    image: Image | None = None,
    k: int = 10,
    ef: int | None = None,
    exact: bool = False,
    filter: Filter | None = None,
    score_threshold: float | None = None,
    with_payload: bool = True,
    with_vector: bool = False,
    mode: Literal["dense", "lexical", "hybrid"] | None = None,
    keywords: str | None = None,
    fusion: Mapping[str, Any] | None = None,
    mmr: Mapping[str, Any] | None = None,
    group_by: str | None = None,
    group_size: int | None = None,
    groups: int | None = None,
    group_offset: int | None = None,
    log: bool = False,
    partial: bool = False,
) -> Request:
    """The k nearest points to a vector, a stored point (`id`), a text, a sequence or an image. In a collection
    with a keyword index a text (or `keywords` beside another query) also searches by BM25, fused (`mode`).
    `mmr` re-ranks for variety; `group_by` returns the best hits per distinct value of a payload field.
    `log` keeps the words and the ids shown, for fine-tuning the text model from later clicks. `partial`: on a
    sharded collection, answer from the shards that can when one has no copy up."""
    query = SearchQuery(
        vector=vector,
        id=id,
        text=text,
        sequence=sequence,
        image=image,
        k=k,
        ef=ef,
        exact=exact,
        filter=filter,
        score_threshold=score_threshold,
        with_payload=with_payload,
        with_vector=with_vector,
        mode=mode,
        keywords=keywords,
        fusion=fusion,
        mmr=mmr,
        group_by=group_by,
        group_size=group_size,
        groups=groups,
        group_offset=group_offset,
        log=log,
        partial=partial,
    )
    return Request(path={"name": collection}, json=query_json(query))


@operation("POST", "/collections/{name}/search/batch", models.search_results)
def search_batch(
    collection: str,
    queries: Iterable[SearchQuery | Mapping[str, Any]] | None = None,
    *,
    vectors: Any = None,
    **defaults: Any,
) -> Request:
    """Many queries in one call, answered in order: SearchQuery objects or dicts of their fields, or the rows of
    `vectors`; keyword arguments (k=…, filter=…) fill in what dicts and rows leave out."""
    if (queries is None) == (vectors is None):
        raise ValueError("pass exactly one of queries or vectors")
    if vectors is not None:
        rows = list(vectors) if is_array(vectors) else vectors
        built = [SearchQuery(**{**defaults, "vector": row}) for row in rows]
    else:
        assert queries is not None
        built = [q if isinstance(q, SearchQuery) else SearchQuery(**{**defaults, **q}) for q in queries]
    return Request(path={"name": collection}, json={"searches": [query_json(q) for q in built]})


@operation("POST", "/collections/{name}/search/image", models.SearchResult.from_json)
def search_image(
    collection: str,
    image: Image,
    *,
    k: int = 10,
    filter: Filter | None = None,
    score_threshold: float | None = None,
    with_payload: bool = True,
    keywords: str | None = None,
    filename: str = "image",
    content_type: str = "application/octet-stream",
) -> Request:
    """Search by a photo uploaded as a file (multipart), for image and CLIP collections."""
    form = {"k": str(k), "with_payload": "true" if with_payload else "false"}
    if filter is not None:
        form["filter"] = json.dumps(filter)
    if score_threshold is not None:
        form["score_threshold"] = repr(float(score_threshold))
    if keywords is not None:
        form["keywords"] = keywords
    files = {"file": (filename, image_bytes(image), content_type)}
    return Request(path={"name": collection}, files=files, data=form)


@operation("POST", "/collections/{name}/facets", models.Facets.from_json)
def facets(collection: str, key: str, *, filter: Filter | None = None, limit: int = 20) -> Request:
    """How many points (of those matching `filter`) hold each value of the indexed field `key`."""
    return Request(path={"name": collection}, json=given(key=key, filter=filter, limit=limit))
