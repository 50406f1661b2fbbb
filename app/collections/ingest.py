"""What a point is made of on the way in: given vectors checked, texts, sequences and images embedded."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from app.collections.models import PointId, Source
from app.core.errors import DimensionMismatch, InvalidInput, WrongModality
from app.embedding.base import Embedder, Modality, embed


@dataclass(frozen=True)
class PointInput:
    """One point to upsert: exactly one of vector, text, sequence or image (bytes), and a payload."""

    id: PointId
    vector: np.ndarray | None = None
    text: str | None = None
    sequence: str | None = None
    image: bytes | None = None
    payload: dict[str, Any] | None = None

    @property
    def modality(self) -> Modality | None:
        """What must be embedded; None when the vector is given."""
        if self.vector is not None:
            return None
        return "text" if self.text is not None else "sequence" if self.sequence is not None else "image"

    @property
    def item(self) -> str | bytes:
        return self.text if self.text is not None else self.sequence if self.sequence is not None else self.image or b""


def embed_items(
    embedder: Embedder | None, collection: str, modality: Modality, items: list[Any], ids: list[PointId] | None = None
) -> np.ndarray:
    """Vectors for texts, images or sequences; a bad item fails the whole call, and with `ids` the
    error names the point it came from.
    """
    if embedder is None:
        raise WrongModality(
            f"collection '{collection}' has no embedder: send vectors", modality=modality, accepted=["vector"]
        )
    try:
        return embed(embedder, modality, items)
    except WrongModality:
        raise
    except InvalidInput as err:
        if ids is None:
            raise
        for pid, item in zip(ids, items, strict=True):  # find the culprit, only on the error path
            try:
                embed(embedder, modality, [item])
            except InvalidInput as one:
                raise type(one)(f"point {pid!r}: {one.message}", id=pid, **one.details) from None
        raise err from None


def vectors_of(
    embedder: Embedder | None, collection: str, dim: int, points: list[PointInput]
) -> tuple[np.ndarray, list[Source | None]]:
    """One vector per point, embedded a modality at a time, and what each embedded point was made from."""
    vectors = np.empty((len(points), dim), np.float32)
    sources: list[Source | None] = [None] * len(points)
    to_embed: dict[Modality, list[int]] = {}
    for i, point in enumerate(points):
        modality = point.modality
        if modality is not None:
            to_embed.setdefault(modality, []).append(i)
            continue
        row = point.vector
        assert row is not None
        if row.ndim != 1 or len(row) != dim:
            raise DimensionMismatch(
                f"point {point.id!r}: this collection holds {dim}-dimensional vectors, got {row.size}",
                id=point.id,
                expected=dim,
                got=int(row.size),
            )
        vectors[i] = row
    for modality, rows in to_embed.items():
        items = [points[i].item for i in rows]
        vectors[rows] = embed_items(embedder, collection, modality, items, ids=[points[i].id for i in rows])
        for i, item in zip(rows, items, strict=True):
            sources[i] = (modality, item if isinstance(item, bytes) else item.encode())
    return vectors, sources
