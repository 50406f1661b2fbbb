"""UmbrellaVectorStore: LangChain's VectorStore on an Umbrella collection, sync and native async."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, Self, TypeVar

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore
from umbrella_client import AsyncClient, Client

from langchain_umbrella import operations as ops
from langchain_umbrella.documents import DEFAULT_TEXT_KEY
from langchain_umbrella.scores import relevance_fn
from langchain_umbrella.steps import Flow, arun, run

T = TypeVar("T")

Filter = Mapping[str, Any]
"""The server's filter JSON: {"must": [...], "should": [...], "must_not": [...]} of conditions on payload keys,
which are the metadata's keys (README "Filters")."""


class UmbrellaVectorStore(VectorStore):
    """Documents in an Umbrella collection: metadata as the payload, the text under `text_key`, ids kept as given.

    With `embedding`, texts and queries are embedded here and vectors sent; a missing collection is created on
    the first write with their dimension and `metric`. With `embedding=None` the collection's own text embedder
    (e.g. the bundled all-MiniLM-L6-v2) embeds texts and queries on the server; a missing collection is created
    with `embedder` (default `{"kind": "text"}`). `collection_config` adds create_collection arguments
    (payload_indexes, hnsw, lexical, ...). A collection that does not exist yet reads as empty.

    Give `url` (and `api_key`) and the store makes and closes its own clients, or pass `client` and/or
    `async_client`, which it leaves open. `text_key=None` keeps the text only as the server's stored source
    (server-embedder collections with store_source): nothing in the payload, one more request per search.
    """

    def __init__(
        self,
        collection_name: str,
        embedding: Embeddings | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        client: Client | None = None,
        async_client: AsyncClient | None = None,
        metric: Literal["cosine", "ip", "l2"] = "cosine",
        embedder: Mapping[str, Any] | None = None,
        collection_config: Mapping[str, Any] | None = None,
        text_key: str | None = DEFAULT_TEXT_KEY,
        batch_size: int = 256,
        server_mmr: bool = True,
    ) -> None:
        if embedding is not None and text_key is None:
            raise ValueError("text_key=None needs the server's embedder: points sent as vectors keep no source")
        if url is not None and (client is not None or async_client is not None):
            raise ValueError("pass url (the store makes its clients) or client/async_client, not both")
        self._owned = url is not None
        self._client = Client(url, api_key=api_key) if url is not None else client
        self._aclient = AsyncClient(url, api_key=api_key) if url is not None else async_client
        if self._client is None and self._aclient is None:
            raise ValueError("pass url=, or client= and/or async_client=")
        self._embedding = embedding
        self._target = ops.Target(
            name=collection_name,
            embeds=embedding is not None,
            text_key=text_key,
            metric=metric,
            embedder=embedder,
            collection_config=dict(collection_config or {}),
            batch_size=batch_size,
            server_mmr=server_mmr,
        )

    @property
    def collection_name(self) -> str:
        return self._target.name

    @property
    def embeddings(self) -> Embeddings | None:
        return self._embedding

    def _run(self, flow: Flow[T]) -> T:
        return run(flow, self._client, self._embedding)

    async def _arun(self, flow: Flow[T]) -> T:
        return await arun(flow, self._aclient, self._embedding)

    # ---- writes -----------------------------------------------------------------------------------
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert texts (an existing id is replaced); returns their ids, random UUIDs where none was given."""
        return self._run(ops.add(self._target, list(texts), metadatas, ids))

    async def aadd_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        return await self._arun(ops.add(self._target, list(texts), metadatas, ids))

    def delete(self, ids: list[str] | None = None, *, filter: Filter | None = None, **kwargs: Any) -> bool:
        """Delete by ids (unknown ones are skipped) or by `filter`; `delete_collection()` drops everything."""
        return self._run(ops.delete(self._target, ids, filter))

    async def adelete(self, ids: list[str] | None = None, *, filter: Filter | None = None, **kwargs: Any) -> bool:
        return await self._arun(ops.delete(self._target, ids, filter))

    def delete_collection(self) -> None:
        """Drop the collection and everything in it; the next write creates it again."""
        self._run(ops.drop(self._target))

    async def adelete_collection(self) -> None:
        await self._arun(ops.drop(self._target))

    # ---- reads ------------------------------------------------------------------------------------
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of the ids that exist, in the order asked; unknown ids are left out."""
        return self._run(ops.get(self._target, list(ids)))

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await self._arun(ops.get(self._target, list(ids)))

    def similarity_search(self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    async def asimilarity_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """Hits with the server's score: cosine or dot product (higher is better), l2 distance (lower is better);
        BM25 or the fused score in lexical or hybrid mode. kwargs: ef, exact, score_threshold, mode, keywords,
        fusion, passed to the server."""
        return self._run(self._search(query, None, k, filter, kwargs))

    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return await self._arun(self._search(query, None, k, filter, kwargs))

    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        return [doc for doc, _ in await self.asimilarity_search_with_score_by_vector(embedding, k, filter, **kwargs)]

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self._run(self._search(None, embedding, k, filter, kwargs))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return await self._arun(self._search(None, embedding, k, filter, kwargs))

    def _search(
        self, text: str | None, vector: list[float] | None, k: int, filter: Filter | None, options: dict[str, Any]
    ) -> Flow[list[tuple[Document, float]]]:
        q = yield from ops.query(self._target, text, vector)
        return (yield from ops.search(self._target, q, k, filter, options))

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """k diverse hits among the best fetch_k: the server's MMR (relevance min-max normalised over the
        candidates), or LangChain's computed here on the candidates' vectors with `server_mmr=False`."""
        flow = self._mmr(query, None, k, fetch_k, lambda_mult, filter, kwargs)
        return self._run(flow)

    async def amax_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        flow = self._mmr(query, None, k, fetch_k, lambda_mult, filter, kwargs)
        return await self._arun(flow)

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        flow = self._mmr(None, embedding, k, fetch_k, lambda_mult, filter, kwargs)
        return self._run(flow)

    async def amax_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        flow = self._mmr(None, embedding, k, fetch_k, lambda_mult, filter, kwargs)
        return await self._arun(flow)

    def _mmr(
        self,
        text: str | None,
        vector: list[float] | None,
        k: int,
        fetch_k: int,
        lambda_mult: float,
        filter: Filter | None,
        options: dict[str, Any],
    ) -> Flow[list[Document]]:
        q = yield from ops.query(self._target, text, vector)
        return (yield from ops.mmr(self._target, q, k, fetch_k, lambda_mult, filter, options))

    # ---- relevance --------------------------------------------------------------------------------
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Relevance in [0, 1] from the collection's metric (the store's `metric` while it does not exist)."""
        found = self._run(ops.info(self._target))
        return relevance_fn(found.metric if found is not None else self._target.metric)

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        # relevance is defined on the dense score: a collection with a keyword index would answer hybrid by default
        kwargs.setdefault("mode", "dense")
        fn = self._select_relevance_score_fn()
        return [(doc, fn(score)) for doc, score in self.similarity_search_with_score(query, k, **kwargs)]

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        kwargs.setdefault("mode", "dense")
        found = await self._arun(ops.info(self._target))
        fn = relevance_fn(found.metric if found is not None else self._target.metric)
        return [(doc, fn(score)) for doc, score in await self.asimilarity_search_with_score(query, k, **kwargs)]

    # ---- construction and life cycle --------------------------------------------------------------
    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = "langchain",
        **kwargs: Any,
    ) -> Self:
        """A store on `collection_name` (created if missing) holding these texts; kwargs go to the constructor."""
        store = cls(collection_name, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    @classmethod
    async def afrom_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        collection_name: str = "langchain",
        **kwargs: Any,
    ) -> Self:
        store = cls(collection_name, embedding, **kwargs)
        await store.aadd_texts(texts, metadatas, ids=ids)
        return store

    def close(self) -> None:
        """Close the sync client if the store made it (from `url`)."""
        if self._owned and self._client is not None:
            self._client.close()

    async def aclose(self) -> None:
        """Close the async client if the store made it (from `url`)."""
        if self._owned and self._aclient is not None:
            await self._aclient.aclose()
