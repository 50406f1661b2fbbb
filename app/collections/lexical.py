"""The document each point gives its collection's keyword index."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.collections.models import CollectionConfig, Source
from app.index.scan import lookup
from app.index.tokens import document, field_text


def documents(
    config: CollectionConfig, payloads: Sequence[dict[str, Any] | None], sources: Sequence[Source | None] | None
) -> list[str]:
    """One keyword document per point: the tokens of its lexical fields, then of its source text if kept."""
    fields, with_source = config.lexical_fields, config.lexical_source
    out = []
    for i, payload in enumerate(payloads):
        texts = [t for key in fields for t in field_text(lookup(payload, key))] if payload else []
        source = sources[i] if sources is not None and with_source else None
        if source is not None and source[0] == "text":
            texts.append(source[1].decode())
        out.append(document(texts))
    return out
