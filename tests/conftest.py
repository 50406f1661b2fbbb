"""Shared fixtures: settings on a temp data dir, an in-process client, seeded vectors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.main import create_app, open_registry


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", index_threads=2)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture
def registry(settings: Settings) -> Iterator[CollectionRegistry]:
    reg = open_registry(settings)
    yield reg
    reg.close()


def clustered(n: int, dim: int, seed: int = 0, clusters: int = 50) -> np.ndarray:
    """Vectors around random centres: closer to real embeddings than uniform noise, so recall means something."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    return (centres[rng.integers(0, clusters, n)] + 0.4 * rng.normal(size=(n, dim))).astype(np.float32)
