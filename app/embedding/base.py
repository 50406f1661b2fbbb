"""The Embedder protocol and the one function that calls an embedder for a modality."""

from __future__ import annotations

from typing import Any, Literal, Protocol

import numpy as np

from app.core.errors import WrongModality

Modality = Literal["text", "image", "sequence"]
EMBED_METHOD = {"text": "embed_texts", "image": "embed_images", "sequence": "embed_sequences"}


class Embedder(Protocol):
    """Turns batches of inputs into L2-normalised float32 rows of `dim` columns.

    Each implementation has one `embed_<modality>s(items)` method per modality it lists.
    """

    kind: str
    dim: int
    modalities: tuple[str, ...]


def check_modality(embedder: Embedder, modality: Modality) -> None:
    """400 for a modality the embedder does not take."""
    if modality not in embedder.modalities:
        raise WrongModality(
            f"this collection's {embedder.kind} embedder takes {' or '.join(embedder.modalities)}, not {modality}",
            modality=modality,
            accepted=list(embedder.modalities),
        )


def embed(embedder: Embedder, modality: Modality, items: list[Any]) -> np.ndarray:
    check_modality(embedder, modality)
    vectors: np.ndarray = getattr(embedder, EMBED_METHOD[modality])(items)
    return vectors
