"""Wire ⇄ numpy: decode vectors (lists or base64 float32), encode answers with orjson."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson
from starlette.responses import Response

from app.collections.models import Point
from app.core.errors import InvalidImage, InvalidVector
from app.search.models import Hit, Hits, SearchResult


def decode_vector(value: list[float] | str) -> np.ndarray:
    if isinstance(value, str):
        return decode_matrix(value, rows=1)[0]
    return np.asarray(value, dtype=np.float32)


def decode_image(value: str) -> bytes:
    """The bytes of a base64 image; whether they are a valid image is the embedder's call."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage("image is not valid base64") from None


def decode_matrix(value: str, rows: int) -> np.ndarray:
    """base64 of rows × dim little-endian float32; the dimension follows from the length."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidVector("vectors is not valid base64") from None
    if len(raw) % (4 * rows):
        raise InvalidVector(f"{len(raw)} bytes of base64 do not split into {rows} float32 vector(s)", bytes=len(raw))
    return np.frombuffer(raw, dtype="<f4").reshape(rows, -1)


def json_response(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), status_code, media_type="application/json")


def _point_json(out: dict[str, Any], payload_json: bytes | None, vector: np.ndarray | None) -> dict[str, Any]:
    if payload_json is not None:
        out["payload"] = orjson.Fragment(payload_json)  # stored JSON goes out as it came in
    if vector is not None:
        out["vector"] = vector
    return out


def point_json(point: Point) -> dict[str, Any]:
    out = _point_json({"id": point.id}, point.payload_json, point.vector)
    if point.source is not None:
        kind, data = point.source
        out["source"] = {kind: base64.b64encode(data).decode() if kind == "image" else data.decode()}
    return out


def hit_json(hit: Hit) -> dict[str, Any]:
    out = _point_json({"id": hit.id, "score": hit.score}, hit.payload_json, hit.vector)
    if hit.dense is not None or hit.lexical is not None:  # a lexical or hybrid search says where each list had it
        for name, rank in (("dense", hit.dense), ("lexical", hit.lexical)):
            out[name] = None if rank is None else {"rank": rank.rank, "score": rank.score}
    return out


def hits_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    """The hits as `hit_json` writes each, straight from the columns when a search kept them so (the hot path)."""
    if not isinstance(hits, Hits):
        return [hit_json(h) for h in hits]
    out = [{"id": pid, "score": score} for pid, score in zip(hits.ids, hits.scores, strict=True)]
    if hits.payloads is not None:
        for hit, payload in zip(out, hits.payloads, strict=True):
            if payload is not None:
                hit["payload"] = orjson.Fragment(payload)
    if hits.vectors is not None:
        for hit, vector in zip(out, hits.vectors, strict=True):
            hit["vector"] = vector
    return out


def result_bytes(result: SearchResult) -> bytes:
    """A search answer's response body, as `json_response(result_json(result))` sends it."""
    return orjson.dumps(result_json(result), option=orjson.OPT_SERIALIZE_NUMPY)


def result_json(result: SearchResult) -> dict[str, Any]:
    out = {
        "results": hits_json(result.hits),
        "plan": result.plan,
        "mode": result.mode,
        "candidates": result.candidates,
    }
    if result.groups is not None:
        out["groups"] = [{"value": g.value, "ids": g.ids} for g in result.groups]
        out["next_group_offset"] = result.next_group_offset
    if result.partial:
        out["partial"] = True
    return out
