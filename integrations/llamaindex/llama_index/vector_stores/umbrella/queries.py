"""What the store asks the SDK for, built once for the sync and the async methods: searches and id selections."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from llama_index.core.vector_stores.types import MetadataFilters, VectorStoreQuery, VectorStoreQueryMode
from llama_index.vector_stores.umbrella.filters import Filter, all_of, field_is_any, has_id, to_filter
from llama_index.vector_stores.umbrella.nodes import DOC_ID_KEY, batches

IDS_PER_REQUEST = 1_000  # well under the server's 10,000 ids in one has_id, and a modest request body
SCROLL_PAGE = 1_000
PASSED_THROUGH = ("ef", "exact", "score_threshold")  # search options a retriever may hand over as kwargs
MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR)


def search_args(query: VectorStoreQuery, options: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `Client.search` for a VectorStoreQuery. `options` may hold `umbrella_filter` (a server
    filter ANDed with the rest), `mmr_prefetch_k` (MMR's candidates) and the search options in PASSED_THROUGH."""
    if query.query_embedding is None:
        raise ValueError("UmbrellaVectorStore searches by vector: the query needs a query_embedding")
    if query.mode not in MODES:
        raise ValueError(f"UmbrellaVectorStore answers default and mmr queries, not {query.mode.value!r}")
    args: dict[str, Any] = {
        "vector": query.query_embedding,
        "k": query.similarity_top_k,
        "filter": all_of(
            to_filter(query.filters),
            # empty lists narrow nothing: VectorStoreIndex passes node_ids=[] when the store keeps the nodes itself
            has_id(query.node_ids) if query.node_ids else None,
            field_is_any(DOC_ID_KEY, query.doc_ids) if query.doc_ids else None,
            options.get("umbrella_filter"),
        ),
    }
    if query.mode == VectorStoreQueryMode.MMR:
        mmr: dict[str, Any] = {}
        if query.mmr_threshold is not None:  # LlamaIndex's threshold is MMR's lambda: 1 is the plain ranking
            mmr["lambda"] = query.mmr_threshold
        if options.get("mmr_prefetch_k") is not None:
            mmr["candidates"] = options["mmr_prefetch_k"]
        args["mmr"] = mmr
    args.update({name: options[name] for name in PASSED_THROUGH if options.get(name) is not None})
    return args


def selections(node_ids: Sequence[str] | None, filters: MetadataFilters | None) -> list[Filter | None]:
    """The filters that pick these nodes, one request each: a chunk of ids (and the metadata filters) per filter.
    No ids means the metadata filters alone (None: every point); an empty list of ids picks nothing."""
    metadata = to_filter(filters)
    if node_ids is None:
        return [metadata]
    return [all_of(has_id(chunk), metadata) for chunk in batches(list(dict.fromkeys(node_ids)), IDS_PER_REQUEST)]


def doc_filter(ref_doc_id: str) -> Filter:
    return {"must": [{"key": DOC_ID_KEY, "match": ref_doc_id}]}
