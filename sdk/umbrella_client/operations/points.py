"""Point operations: upsert, get, delete, count, scroll."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from umbrella_client import models
from umbrella_client.calls import Request, given, operation
from umbrella_client.images import Image, image_base64
from umbrella_client.models import Filter, PointId
from umbrella_client.vectors import encode_matrix


@operation("PUT", "/collections/{name}/points", models.WriteResult.from_json)
def upsert(
    collection: str,
    ids: Sequence[PointId],
    *,
    vectors: Any = None,
    texts: Sequence[str] | None = None,
    sequences: Sequence[str] | None = None,
    images: Sequence[Image] | None = None,
    payloads: Sequence[Mapping[str, Any] | None] | None = None,
) -> Request:
    """Insert or replace points, all or nothing: `vectors` (an n × dim array or rows), or texts, sequences, images."""
    ids = list(ids)
    columns = {"vectors": vectors, "texts": texts, "sequences": sequences, "images": images}
    if sum(v is not None for v in columns.values()) != 1:
        raise ValueError("pass exactly one of vectors, texts, sequences, images")
    if payloads is not None and len(payloads) != len(ids):
        raise ValueError(f"{len(payloads)} payloads for {len(ids)} ids")
    if vectors is not None:
        encoded, rows = encode_matrix(vectors)
        if rows != len(ids):
            raise ValueError(f"{rows} vectors for {len(ids)} ids")
        batch = given(ids=ids, vectors=encoded, payloads=list(payloads) if payloads is not None else None)
        return Request(path={"name": collection}, json={"batch": batch})
    field, items = next((k, v) for k, v in columns.items() if v is not None)
    items = list(items)
    if len(items) != len(ids):
        raise ValueError(f"{len(items)} {field} for {len(ids)} ids")
    key = field.removesuffix("s")
    values = [image_base64(i) for i in items] if key == "image" else items
    points = [
        given(id=i, **{key: v}, payload=payloads[n] if payloads is not None else None)
        for n, (i, v) in enumerate(zip(ids, values, strict=True))
    ]
    return Request(path={"name": collection}, json={"points": points})


@operation("POST", "/collections/{name}/points/get", models.point_list)
def get_points(
    collection: str,
    ids: Iterable[PointId],
    *,
    with_payload: bool = True,
    with_vector: bool = False,
    with_source: bool = False,
) -> Request:
    """Points by id, in order; an unknown id raises PointNotFound. Vectors come back as numpy arrays if installed."""
    body = {"ids": list(ids), "with_payload": with_payload, "with_vector": with_vector, "with_source": with_source}
    return Request(path={"name": collection}, json=body)


@operation("POST", "/collections/{name}/points/delete", models.WriteResult.from_json)
def delete_points(collection: str, ids: Iterable[PointId] | None = None, *, filter: Filter | None = None) -> Request:
    """Delete by ids (unknown ones are skipped) or by filter."""
    return Request(path={"name": collection}, json=given(ids=list(ids) if ids is not None else None, filter=filter))


@operation("POST", "/collections/{name}/points/count", models.count_of)
def count(collection: str, filter: Filter | None = None) -> Request:
    """How many points there are, or how many match `filter`."""
    return Request(path={"name": collection}, json=given(filter=filter))


@operation("POST", "/collections/{name}/points/scroll", models.ScrollPage.from_json)
def scroll(
    collection: str,
    *,
    filter: Filter | None = None,
    limit: int = 100,
    offset: int | None = None,
    with_payload: bool = True,
    with_vector: bool = False,
    with_source: bool = False,
) -> Request:
    """One page of points in storage order; pass the page's `next_offset` as `offset` for the next one."""
    body = given(filter=filter, limit=limit, offset=offset)
    body.update(with_payload=with_payload, with_vector=with_vector, with_source=with_source)
    return Request(path={"name": collection}, json=body)
