"""A VectorStoreIndex on UmbrellaVectorStore, end to end and offline: documents in, retrieval, filters, deletes."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters
from llama_index.vector_stores.umbrella import UmbrellaVectorStore

pytestmark = pytest.mark.e2e

LOCAL_HOSTS = {"127.0.0.1", "::1", "localhost"}

DOCUMENTS = [
    Document(
        doc_id="orchard",
        text="Apples grow in the orchard. The orchard keeps apples and pears through the autumn. "
        "Pickers fill crates with apples every morning.",
        metadata={"topic": "fruit"},
    ),
    Document(
        doc_id="garage",
        text="The engine needs oil. A mechanic checks the engine, the brakes and the tyres. "
        "Old engines leak oil in the garage.",
        metadata={"topic": "cars"},
    ),
    Document(
        doc_id="harbour",
        text="Boats sail from the harbour at dawn. Fishermen mend nets while the boats are moored.",
        metadata={"topic": "sea"},
    ),
]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every connection but to this machine fails at once, so a download LlamaIndex tries (NLTK data, tiktoken
    encodings, a default OpenAI model) fails the test instead of passing wherever the internet happens to work."""
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOCAL_HOSTS:
            raise OSError(f"these tests run offline: refused a connection to {address}")
        real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOCAL_HOSTS and host is not None:
            raise OSError(f"these tests run offline: refused to look up {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def local_settings(monkeypatch: pytest.MonkeyPatch, embed_model: BaseEmbedding) -> None:
    """Whatever reads the global Settings gets the local embedding and a mock LLM (restored after the test)."""
    monkeypatch.setattr(Settings, "_embed_model", embed_model)
    monkeypatch.setattr(Settings, "_llm", MockLLM())


@pytest.fixture
def index(store: UmbrellaVectorStore, embed_model: BaseEmbedding) -> VectorStoreIndex:
    return VectorStoreIndex.from_documents(
        DOCUMENTS,
        storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=embed_model,
        transformations=[SentenceSplitter(chunk_size=24, chunk_overlap=0)],  # a few nodes per document
    )


def test_the_guard_refuses_the_internet() -> None:
    with pytest.raises(OSError, match="offline"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never routed anyway


def test_documents_are_split_embedded_stored_and_retrieved(index: VectorStoreIndex, store: UmbrellaVectorStore) -> None:
    stored = store.get_nodes()
    assert len(stored) > len(DOCUMENTS)  # split into several nodes each
    assert {n.ref_doc_id for n in stored} == {"orchard", "garage", "harbour"}
    hits = index.as_retriever(similarity_top_k=2).retrieve("apples in the orchard")
    assert [h.node.ref_doc_id for h in hits] == ["orchard", "orchard"]
    assert hits[0].score is not None and hits[0].score > 0
    assert "apples" in hits[0].node.get_content().lower()


def test_retriever_filters_and_query_engine(index: VectorStoreIndex) -> None:
    cars = MetadataFilters(filters=[MetadataFilter(key="topic", value="cars")])
    hits = index.as_retriever(similarity_top_k=3, filters=cars).retrieve("apples in the orchard")
    assert hits and {h.node.ref_doc_id for h in hits} == {"garage"}
    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=1).query("boats in the harbour")
    assert [s.node.ref_doc_id for s in response.source_nodes] == ["harbour"]


def test_delete_ref_doc_removes_a_document(index: VectorStoreIndex, store: UmbrellaVectorStore) -> None:
    index.delete_ref_doc("orchard")
    assert {n.ref_doc_id for n in store.get_nodes()} == {"garage", "harbour"}
    hits = index.as_retriever(similarity_top_k=3).retrieve("apples in the orchard")
    assert "orchard" not in {h.node.ref_doc_id for h in hits}


def test_index_over_an_existing_collection(
    index: VectorStoreIndex, umbrella_url: str, embed_model: BaseEmbedding
) -> None:
    """A second process opens the same collection: VectorStoreIndex.from_vector_store, nothing re-embedded."""
    store = UmbrellaVectorStore(index.vector_store.collection_name, umbrella_url)  # type: ignore[attr-defined]
    try:
        reopened = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
        hits = reopened.as_retriever(similarity_top_k=1).retrieve("engine oil")
        assert [h.node.ref_doc_id for h in hits] == ["garage"]
    finally:
        store.close()


@pytest.mark.anyio
async def test_async_index(astore: UmbrellaVectorStore, embed_model: BaseEmbedding) -> None:
    index = VectorStoreIndex(
        nodes=[],
        storage_context=StorageContext.from_defaults(vector_store=astore),
        embed_model=embed_model,
        use_async=True,
    )
    for document in DOCUMENTS:
        await index.ainsert(document)
    hits = await index.as_retriever(similarity_top_k=1).aretrieve("fishermen and boats")
    assert [h.node.ref_doc_id for h in hits] == ["harbour"]
    await index.adelete_ref_doc("harbour")
    hits = await index.as_retriever(similarity_top_k=3).aretrieve("fishermen and boats")
    assert "harbour" not in {h.node.ref_doc_id for h in hits}
