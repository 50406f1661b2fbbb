"""SDK fixtures: the SDK talking to the app in-process, sync through starlette's TestClient, async through ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from umbrella_client import AsyncClient, Client

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def http(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as http:  # runs the lifespan: the registry opens, and closes at the end
        yield http


@pytest.fixture
def sdk(http: TestClient) -> Iterator[Client]:
    with Client(http_client=http) as client:
        yield client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def asdk(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with app.router.lifespan_context(app), AsyncClient(transport=httpx.ASGITransport(app)) as client:
        yield client
