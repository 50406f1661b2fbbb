"""LangChain's standard VectorStore suite (langchain-tests), sync and async, against a real Umbrella server."""

from __future__ import annotations

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests
from langchain_umbrella import UmbrellaVectorStore
from umbrella_client import AsyncClient, Client

# anyio runs the suite's async tests (the repo's async runner); it leaves the sync ones alone
pytestmark = [pytest.mark.e2e, pytest.mark.anyio]


class TestUmbrellaStandard(VectorStoreIntegrationTests):
    """Client-side embeddings (the suite's deterministic fake, 6 dimensions): the collection is made on first write."""

    @pytest.fixture
    def vectorstore(self, collection_name: str, client: Client, async_client: AsyncClient) -> UmbrellaVectorStore:
        # collection_name drops the collection after the test
        return UmbrellaVectorStore(collection_name, self.get_embeddings(), client=client, async_client=async_client)
