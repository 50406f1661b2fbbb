"""Fixtures: a real Umbrella server per test module, a store on a fresh collection per test, a local embedding."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.vector_stores.umbrella import UmbrellaVectorStore

from tests.e2e.conftest import ServerProcess  # the repo root is on sys.path: pythonpath in pyproject.toml


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def umbrella_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server per test module on its own data dir; SIGKILLed at teardown (its log is shown on failure)."""
    root = tmp_path_factory.mktemp("umbrella")
    server = ServerProcess(root / "data", root / "server.log")
    server.start()
    try:
        yield server.url
    finally:
        server.kill()
        print(server.log_tail(80))


@pytest.fixture
def collection_name() -> str:
    return f"li-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def store(umbrella_url: str, collection_name: str) -> Iterator[UmbrellaVectorStore]:
    vector_store = UmbrellaVectorStore(collection_name, umbrella_url)
    yield vector_store
    vector_store.clear()
    vector_store.close()


@pytest.fixture
async def astore(umbrella_url: str, collection_name: str) -> AsyncIterator[UmbrellaVectorStore]:
    vector_store = UmbrellaVectorStore(collection_name, umbrella_url)
    yield vector_store
    await vector_store.aclear()
    await vector_store.aclose()


class HashEmbedding(BaseEmbedding):
    """Deterministic bag-of-words vectors (each word hashed to a signed bucket), unit length: no model, no network,
    and texts that share words land near each other."""

    dim: int = 64

    @classmethod
    def class_name(cls) -> str:
        return "HashEmbedding"

    def _embed(self, text: str) -> list[float]:
        vector = [0.0] * self.dim
        for word in re.findall(r"\w+", text.lower()):
            digest = hashlib.sha256(word.encode()).digest()
            vector[digest[0] % self.dim] += 1.0 if digest[1] % 2 else -1.0
        norm = math.sqrt(sum(x * x for x in vector)) or 1.0
        return [x / norm for x in vector]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed(text)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._embed(query)


@pytest.fixture
def embed_model() -> HashEmbedding:
    return HashEmbedding()
