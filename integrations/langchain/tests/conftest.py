"""Fixtures: one real Umbrella server per session (the repo's ServerProcess), a fresh collection per test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import httpx
import pytest
from umbrella_client import AsyncClient, Client, errors

try:
    from tests.e2e.conftest import ServerProcess
except ModuleNotFoundError as err:  # pragma: no cover - a configuration error, said plainly
    raise ImportError(
        "the repo root must be on sys.path to reuse tests/e2e's ServerProcess: run from the repo root with "
        'pythonpath = ["."] in [tool.pytest.ini_options] (or pass -o pythonpath=.)'
    ) from err


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def umbrella_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server on 127.0.0.1 with its own data dir, for the whole session (the text model loads once); SIGKILLed
    at teardown, its log tail printed (pytest shows it when a test failed)."""
    root = tmp_path_factory.mktemp("umbrella")
    server = ServerProcess(root / "data", root / "server.log")
    server.start()
    try:
        yield server.url
    finally:
        server.kill()
        print(server.log_tail(80))


@pytest.fixture
def collection_name(umbrella_url: str) -> Iterator[str]:
    """A collection name no other test uses; the collection is dropped afterwards if a test made it."""
    name = f"lc-{uuid.uuid4().hex[:16]}"
    yield name
    with Client(umbrella_url) as client, contextlib.suppress(errors.CollectionNotFound):
        client.drop_collection(name)


@pytest.fixture
def client(umbrella_url: str) -> Iterator[Client]:
    with Client(umbrella_url) as sync_client:
        yield sync_client


@pytest.fixture
def async_client(umbrella_url: str) -> AsyncClient:
    """An AsyncClient that keeps no connection between requests, so none outlives the event loop of the async
    test that opened it (a sync fixture cannot await aclose(), and the standard suite shares one fixture)."""
    no_pool = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
    return AsyncClient(umbrella_url, transport=no_pool)
