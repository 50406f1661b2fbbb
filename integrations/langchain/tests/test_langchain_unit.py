"""The adapter without a server: payloads, relevance, argument checks, and MMR falling back to the client."""

from __future__ import annotations

import asyncio
import json
import typing

import httpx
import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_umbrella import UmbrellaVectorStore, documents
from langchain_umbrella.scores import relevance_fn
from langchain_umbrella.steps import ClientMethod
from umbrella_client import AsyncClient, Client


def test_every_step_names_a_method_of_both_clients() -> None:
    for name in typing.get_args(ClientMethod):
        assert callable(getattr(Client, name)) and callable(getattr(AsyncClient, name)), name


@pytest.mark.parametrize(
    ("metric", "score", "relevance"),
    [
        ("cosine", 1.0, 1.0),
        ("cosine", 0.0, 0.5),
        ("cosine", -1.0, 0.0),
        ("ip", 3.0, 1.0),  # a dot product of vectors longer than 1: clipped
        ("ip", -0.5, 0.25),
        ("l2", 0.0, 1.0),
        ("l2", 2**0.5, 0.5),  # unit vectors at right angles: as cosine 0
        ("l2", 3.0, 0.0),
    ],
)
def test_relevance_is_in_0_1_and_agrees_across_metrics(metric: str, score: float, relevance: float) -> None:
    assert relevance_fn(metric)(score) == pytest.approx(relevance)


def test_payloads_are_the_metadata_plus_the_text() -> None:
    assert documents.payloads(["a", "b"], [{"x": 1}, None], "page_content") == [
        {"x": 1, "page_content": "a"},
        {"page_content": "b"},
    ]
    assert documents.payloads(["a"], [{"x": 1}], None) == [{"x": 1}]
    with pytest.raises(ValueError, match="may not hold 'page_content'"):
        documents.payloads(["a"], [{"page_content": "other"}], "page_content")
    with pytest.raises(ValueError, match="1 metadatas for 2 texts"):
        documents.payloads(["a", "b"], [{}], "page_content")
    ids = documents.point_ids(["keep", None, ""], 3)
    assert ids[0] == "keep" and all(len(str(i)) == 36 for i in ids[1:])
    doc = documents.to_document(7, {"page_content": "t", "x": 1}, "page_content")
    assert (doc.id, doc.page_content, doc.metadata) == ("7", "t", {"x": 1})


def _no_request_expected(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.method} {request.url}")


def test_bad_arguments_fail_before_any_request() -> None:
    embedding = DeterministicFakeEmbedding(size=4)
    with pytest.raises(ValueError, match="text_key=None needs the server's embedder"):
        UmbrellaVectorStore("c", embedding, url="http://127.0.0.1:9", text_key=None)
    with pytest.raises(ValueError, match="not both"):
        UmbrellaVectorStore("c", embedding, url="http://127.0.0.1:9", client=Client())
    client = Client("http://umbrella.test", transport=httpx.MockTransport(_no_request_expected))
    store = UmbrellaVectorStore("c", embedding, client=client)
    with pytest.raises(TypeError, match="unknown search arguments \\['top_p'\\]"):
        store.similarity_search("q", top_p=0.5)
    with pytest.raises(ValueError, match="pass ids or filter"):
        store.delete()
    with pytest.raises(ValueError, match="no async client"):
        asyncio.run(store.asimilarity_search("q"))


def _old_server(seen: list[dict[str, typing.Any]]) -> httpx.MockTransport:
    """A server from before MMR: it refuses the `mmr` field; plain searches answer three hits with vectors."""
    hits = [
        {"id": "a", "score": 0.99, "payload": {"page_content": "a"}, "vector": [1.0, 0.0]},
        {"id": "a-copy", "score": 0.98, "payload": {"page_content": "a copy"}, "vector": [0.99, 0.1]},
        {"id": "b", "score": 0.6, "payload": {"page_content": "b"}, "vector": [0.6, 0.8]},
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append(body)
        if "mmr" in body:
            error = {"loc": ["body", "mmr"], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"}
            envelope = {"code": "validation_error", "message": "mmr: extra", "details": {"errors": [error]}}
            return httpx.Response(422, json={"error": envelope})
        return httpx.Response(200, json={"results": hits, "plan": "exact", "candidates": 3, "mode": "dense"})

    return httpx.MockTransport(handle)


def test_mmr_is_computed_here_when_the_server_refuses_the_option() -> None:
    seen: list[dict[str, typing.Any]] = []
    client = Client("http://umbrella.test", transport=_old_server(seen))
    store = UmbrellaVectorStore("c", DeterministicFakeEmbedding(size=2), client=client)
    picked = store.max_marginal_relevance_search_by_vector([1.0, 0.0], k=2, fetch_k=3, lambda_mult=0.25)
    assert [d.id for d in picked] == ["a", "b"]
    assert [("mmr" in s, s["k"], s["with_vector"]) for s in seen] == [(True, 2, False), (False, 3, True)]


@pytest.mark.anyio
async def test_mmr_fallback_async() -> None:
    seen: list[dict[str, typing.Any]] = []
    async_client = AsyncClient("http://umbrella.test", transport=_old_server(seen))
    store = UmbrellaVectorStore("c", DeterministicFakeEmbedding(size=2), async_client=async_client)
    picked = await store.amax_marginal_relevance_search_by_vector([1.0, 0.0], k=2, fetch_k=3, lambda_mult=0.25)
    assert [d.page_content for d in picked] == ["a", "b"] and len(seen) == 2
