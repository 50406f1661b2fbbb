"""Nodes as points and back: LlamaIndex's own metadata helpers, with the text in a payload field of its own."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import VectorStoreQueryResult
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
from umbrella_client import Point, ScoredPoint, SearchResult

DOC_ID_KEY = "ref_doc_id"  # written by node_to_metadata_dict ("None" for a node without a source document)
NODE_CONTENT_KEY = "_node_content"

T = TypeVar("T")


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def node_payload(node: BaseNode, text_key: str, flat_metadata: bool) -> dict[str, Any]:
    """The node's metadata at the top level (for filters), the node itself as JSON, and its text once, apart."""
    payload = node_to_metadata_dict(node, remove_text=True, flat_metadata=flat_metadata)
    payload[text_key] = node.get_content(metadata_mode=MetadataMode.NONE)
    return payload


def point_columns(
    nodes: Sequence[BaseNode], text_key: str, flat_metadata: bool
) -> tuple[list[str], list[list[float]], list[dict[str, Any]]]:
    """Ids, vectors and payloads of an upsert; a node without an embedding raises LlamaIndex's own ValueError."""
    ids = [node.node_id for node in nodes]
    vectors = [node.get_embedding() for node in nodes]
    payloads = [node_payload(node, text_key, flat_metadata) for node in nodes]
    return ids, vectors, payloads


def point_node(point: Point | ScoredPoint, text_key: str) -> BaseNode:
    """The node a point holds. A point written without LlamaIndex (`umbrella import`, the SDK) becomes a TextNode
    with its payload as metadata, so collections filled by other tools can be queried too."""
    payload = dict(point.payload or {})
    text = payload.get(text_key)
    if NODE_CONTENT_KEY in payload:
        node = metadata_dict_to_node(payload, text=text if isinstance(text, str) else None)
    else:
        payload.pop(text_key, None)
        node = TextNode(id_=str(point.id), text=text if isinstance(text, str) else "", metadata=payload)
    if point.vector is not None:  # unit length in a cosine collection: the server normalises what it stores
        node.embedding = [float(x) for x in point.vector]
    return node


def query_result(result: SearchResult, text_key: str) -> VectorStoreQueryResult:
    return VectorStoreQueryResult(
        nodes=[point_node(hit, text_key) for hit in result],
        similarities=[hit.score for hit in result],
        ids=[str(hit.id) for hit in result],
    )


def empty_result() -> VectorStoreQueryResult:
    return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])


def in_given_order(nodes: Iterable[BaseNode], node_ids: Sequence[str] | None) -> list[BaseNode]:
    """Nodes asked for by id come back in the order asked (unknown ids left out); others in storage order."""
    found = list(nodes)
    if node_ids is None:
        return found
    by_id = {node.node_id: node for node in found}
    return [by_id[i] for i in dict.fromkeys(node_ids) if i in by_id]
