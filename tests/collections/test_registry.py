"""CollectionRegistry: a create that fails leaves nothing behind that a restart would open."""

from __future__ import annotations

import threading

import pytest

from app.collections.collection import Collection
from app.collections.models import CollectionConfig
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.main import open_registry


def test_a_create_that_fails_leaves_no_folder_and_no_threads(settings: Settings) -> None:
    def broken(collection: Collection) -> object:
        raise RuntimeError("this part cannot start")

    before = set(threading.enumerate())
    registry = CollectionRegistry(settings, [broken])
    registry.open()
    with pytest.raises(RuntimeError, match="cannot start"):
        registry.create(CollectionConfig(name="c", dim=4))
    assert registry.names() == [] and not (settings.data_dir / "c").exists()
    registry.close()
    assert {t for t in threading.enumerate() if t.name.endswith("-c")} - before == set()

    registry = open_registry(settings)  # the name is free, and nothing half-made was opened
    try:
        assert registry.names() == [] and registry.failed == {}
        assert registry.create(CollectionConfig(name="c", dim=4)).count == 0
    finally:
        registry.close()
