"""Documents ↔ points: ids, payloads (the metadata, plus the text under one key) and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.documents import Document
from umbrella_client.models import PointId

DEFAULT_TEXT_KEY = "page_content"


def point_ids(ids: Sequence[str | None] | None, n: int) -> list[str]:
    """The ids to write: those given, kept exactly (never parsed as numbers), and a random UUID where one is missing."""
    if ids is None:
        return [str(uuid.uuid4()) for _ in range(n)]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} ids for {n} texts")
    # LangChain passes None (and some loaders "") for a document without an id
    return [str(uuid.uuid4()) if i is None or i == "" else i for i in ids]


def payloads(
    texts: Sequence[str], metadatas: Sequence[Mapping[str, Any] | None] | None, text_key: str | None
) -> list[dict[str, Any]]:
    """Each text's metadata as the payload, flat (so filters name metadata fields directly), with the text under
    `text_key` unless the store keeps it as the server's source (`text_key` None)."""
    if metadatas is None:
        metadatas = [None] * len(texts)
    elif len(metadatas) != len(texts):
        raise ValueError(f"{len(metadatas)} metadatas for {len(texts)} texts")
    out = []
    for text, metadata in zip(texts, metadatas, strict=True):
        payload = dict(metadata or {})
        if text_key is not None:
            if text_key in payload:
                raise ValueError(f"metadata may not hold {text_key!r}: the store keeps the text there (see text_key)")
            payload[text_key] = text
        out.append(payload)
    return out


def missing_text(points: Iterable[Any], text_key: str | None) -> list[PointId]:
    """Ids of points (hits or stored points) whose payload does not carry the text: read from their source."""
    return [p.id for p in points if text_key is None or text_key not in (p.payload or {})]


def to_document(
    point_id: PointId, payload: Mapping[str, Any] | None, text_key: str | None, source: str = ""
) -> Document:
    """A Document from a point: its payload less the text is the metadata; the text is the payload's, else `source`."""
    metadata = dict(payload or {})
    text = metadata.pop(text_key, None) if text_key is not None else None
    return Document(id=str(point_id), page_content=source if text is None else str(text), metadata=metadata)
