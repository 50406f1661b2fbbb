"""UmbrellaVectorStore: LlamaIndex nodes in an Umbrella collection, through the SDK's Client and AsyncClient."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import DEFAULT_TEXT_KEY
from llama_index.vector_stores.umbrella.filters import Filter
from llama_index.vector_stores.umbrella.nodes import (
    DOC_ID_KEY,
    batches,
    empty_result,
    in_given_order,
    point_columns,
    point_node,
    query_result,
)
from llama_index.vector_stores.umbrella.queries import SCROLL_PAGE, doc_filter, search_args, selections
from umbrella_client import AsyncClient, Client
from umbrella_client.errors import CollectionExists, CollectionNotFound

Metric = Literal["cosine", "ip", "l2"]


class UmbrellaVectorStore(BasePydanticVectorStore):
    """LlamaIndex vector store on an Umbrella server.

    `UmbrellaVectorStore("docs", "http://127.0.0.1:8000", api_key=...)` builds its own `Client` and `AsyncClient`;
    or pass `client=` and/or `aclient=` (then only the methods of the kinds given work). The collection is created
    by the first `add` (dimension from the first embedding, `metric` cosine by default, a keyword index on
    `ref_doc_id` for `delete`). Each node is a point: its id the node id, its payload the node's metadata (for
    filters), the node as JSON, `ref_doc_id` and the text under `text_key`. Queries are by vector, in the default
    or the MMR mode; filters are translated to the server's (`UnsupportedFilterError` for those it cannot say).
    """

    stores_text: bool = True
    flat_metadata: bool = False

    collection_name: str = Field(description="The Umbrella collection holding the nodes.")
    url: str | None = Field(default=None, description="The server, when the store builds its own clients.")
    metric: Metric = Field(default="cosine", description="Similarity of a collection this store creates.")
    payload_indexes: dict[str, str] = Field(
        default_factory=dict, description="Payload indexes of a collection this store creates, beside ref_doc_id."
    )
    hnsw: dict[str, int] | None = Field(default=None, description="HNSW parameters of a collection it creates.")
    batch_size: int = Field(default=256, gt=0, description="Nodes per upsert request.")
    text_key: str = Field(default=DEFAULT_TEXT_KEY, description="The payload field holding each node's text.")

    _client: Client | None = PrivateAttr(default=None)
    _aclient: AsyncClient | None = PrivateAttr(default=None)
    _owns_clients: bool = PrivateAttr(default=False)

    def __init__(
        self,
        collection_name: str,
        url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | None = None,
        client: Client | None = None,
        aclient: AsyncClient | None = None,
        **kwargs: Any,
    ) -> None:
        given = client is not None or aclient is not None
        if given and (url, api_key, timeout) != (None, None, None):
            raise TypeError("url, api_key and timeout build the store's own clients: pass them to your clients instead")
        super().__init__(collection_name=collection_name, url=url, **kwargs)
        if not given:  # the api key stays in the clients, out of the store's fields (and so out of to_dict)
            client = Client(url, api_key=api_key, timeout=timeout)
            aclient = AsyncClient(url, api_key=api_key, timeout=timeout)
        self._client, self._aclient, self._owns_clients = client, aclient, not given

    @classmethod
    def class_name(cls) -> str:
        return "UmbrellaVectorStore"

    @property
    def client(self) -> Client | None:
        return self._client

    @property
    def aclient(self) -> AsyncClient | None:
        return self._aclient

    def close(self) -> None:
        """Close the sync client this store built (clients passed in are the caller's to close)."""
        if self._owns_clients and self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close both clients this store built."""
        self.close()
        if self._owns_clients and self._aclient is not None:
            await self._aclient.aclose()

    # ---- writes ------------------------------------------------------------------------------------
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Upsert the nodes (they need embeddings), `batch_size` at a time; create the collection if it is missing."""
        for batch in batches(nodes, self.batch_size):
            ids, vectors, payloads = point_columns(batch, self.text_key, self.flat_metadata)
            try:
                self._sync.upsert(self.collection_name, ids, vectors=vectors, payloads=payloads)
            except CollectionNotFound:  # asking first would cost every add a request; a miss costs one, once
                self._create(len(vectors[0]))
                self._sync.upsert(self.collection_name, ids, vectors=vectors, payloads=payloads)
        return [node.node_id for node in nodes]

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        for batch in batches(nodes, self.batch_size):
            ids, vectors, payloads = point_columns(batch, self.text_key, self.flat_metadata)
            try:
                await self._async.upsert(self.collection_name, ids, vectors=vectors, payloads=payloads)
            except CollectionNotFound:
                await self._acreate(len(vectors[0]))
                await self._async.upsert(self.collection_name, ids, vectors=vectors, payloads=payloads)
        return [node.node_id for node in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node of this source document, by a filter on its `ref_doc_id` payload field."""
        self._delete_where([doc_filter(ref_doc_id)])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await self._adelete_where([doc_filter(ref_doc_id)])

    def delete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        """Delete the nodes with these ids that also match `filters` (either may be left out, not both)."""
        self._delete_where(_deletions(node_ids, filters))

    async def adelete_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None, **delete_kwargs: Any
    ) -> None:
        await self._adelete_where(_deletions(node_ids, filters))

    def clear(self) -> None:
        """Drop the collection; the next `add` creates it again."""
        with contextlib.suppress(CollectionNotFound):
            self._sync.drop_collection(self.collection_name)

    async def aclear(self) -> None:
        with contextlib.suppress(CollectionNotFound):
            await self._async.drop_collection(self.collection_name)

    # ---- reads -------------------------------------------------------------------------------------
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The `similarity_top_k` nodes nearest to `query_embedding` that pass the filters, best first."""
        args = search_args(query, kwargs)
        try:
            return query_result(self._sync.search(self.collection_name, **args), self.text_key)
        except CollectionNotFound:  # nothing added yet
            return empty_result()

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        args = search_args(query, kwargs)
        try:
            return query_result(await self._async.search(self.collection_name, **args), self.text_key)
        except CollectionNotFound:
            return empty_result()

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None) -> list[BaseNode]:
        """Nodes by id (in the order asked; unknown ids are skipped) and/or by filters, with their embeddings."""
        found: list[BaseNode] = []
        try:
            for selection in selections(node_ids, filters):
                offset: int | None = None
                while True:
                    page = self._sync.scroll(self.collection_name, **_page_args(selection, offset))
                    found += [point_node(p, self.text_key) for p in page.points]
                    if (offset := page.next_offset) is None:
                        break
        except CollectionNotFound:
            return []
        return in_given_order(found, node_ids)

    async def aget_nodes(
        self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None
    ) -> list[BaseNode]:
        found: list[BaseNode] = []
        try:
            for selection in selections(node_ids, filters):
                offset: int | None = None
                while True:
                    page = await self._async.scroll(self.collection_name, **_page_args(selection, offset))
                    found += [point_node(p, self.text_key) for p in page.points]
                    if (offset := page.next_offset) is None:
                        break
        except CollectionNotFound:
            return []
        return in_given_order(found, node_ids)

    # ---- helpers -----------------------------------------------------------------------------------
    @property
    def _sync(self) -> Client:
        if self._client is None:
            raise ValueError("this UmbrellaVectorStore has no sync client: pass client= (an umbrella_client.Client)")
        return self._client

    @property
    def _async(self) -> AsyncClient:
        if self._aclient is None:
            raise ValueError(
                "this UmbrellaVectorStore has no async client: pass aclient= (an umbrella_client.AsyncClient)"
            )
        return self._aclient

    def _collection_spec(self, dim: int) -> dict[str, Any]:
        indexes = {DOC_ID_KEY: "keyword", **self.payload_indexes}
        return {"dim": dim, "metric": self.metric, "hnsw": self.hnsw, "payload_indexes": indexes}

    def _create(self, dim: int) -> None:
        with contextlib.suppress(CollectionExists):  # another writer created it between our miss and now
            self._sync.create_collection(self.collection_name, **self._collection_spec(dim))

    async def _acreate(self, dim: int) -> None:
        with contextlib.suppress(CollectionExists):
            await self._async.create_collection(self.collection_name, **self._collection_spec(dim))

    def _delete_where(self, where: list[Filter | None]) -> None:
        with contextlib.suppress(CollectionNotFound):  # no collection, nothing to delete
            for flt in where:
                self._sync.delete_points(self.collection_name, filter=flt)

    async def _adelete_where(self, where: list[Filter | None]) -> None:
        with contextlib.suppress(CollectionNotFound):
            for flt in where:
                await self._async.delete_points(self.collection_name, filter=flt)


def _deletions(node_ids: list[str] | None, filters: MetadataFilters | None) -> list[Filter | None]:
    where = selections(node_ids, filters)
    if None in where:  # no ids and no condition: that would be every node
        raise ValueError("delete_nodes needs node_ids or filters with a condition; clear() deletes every node")
    return where


def _page_args(selection: Filter | None, offset: int | None) -> Mapping[str, Any]:
    return {"filter": selection, "limit": SCROLL_PAGE, "offset": offset, "with_vector": True}
