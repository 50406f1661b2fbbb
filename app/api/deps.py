"""Dependencies every router shares: the registry, the settings, the collection named in the path."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from anyio import CapacityLimiter, to_thread
from fastapi import Depends, Request

from app.api.access import ANONYMOUS, SCOPE_KEY, Access
from app.collections.collection import Collection
from app.collections.registry import CollectionRegistry
from app.core.config import Settings
from app.core.errors import PayloadTooLarge


# async on purpose: FastAPI runs sync dependencies in a thread pool, which costs more than the lookup.
async def get_registry(request: Request) -> CollectionRegistry:
    return request.app.state.registry  # type: ignore[no-any-return]


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_access(request: Request) -> Access:
    return request.scope.get(SCOPE_KEY, ANONYMOUS)  # type: ignore[no-any-return]  # left there by the Guard


async def get_search_workers(request: Request) -> CapacityLimiter:
    return request.app.state.search_workers  # type: ignore[no-any-return]


AccessDep = Annotated[Access, Depends(get_access)]
RegistryDep = Annotated[CollectionRegistry, Depends(get_registry)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
SearchWorkersDep = Annotated[CapacityLimiter, Depends(get_search_workers)]
T = TypeVar("T")


async def on_search_worker(workers: CapacityLimiter, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run CPU-bound search work in a worker thread, at most `UMBRELLA_SEARCH_THREADS` at once.

    Sixteen exact searches in sixteen threads on two cores ran 6× slower than the same searches two at
    a time (benchmarks/RESULTS.md, "Event loop under exact load"), and every extra runnable thread
    is one more that the event loop queues behind for the GIL.
    """
    return await to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=workers)


async def get_collection(name: str, registry: RegistryDep) -> Collection:
    return registry.get(name)  # the one place an unknown collection becomes a 404


CollectionDep = Annotated[Collection, Depends(get_collection)]


def own_or(collection: Any, name: str, fn: Callable[..., T]) -> Callable[..., T]:
    """The collection's own way of doing `name` when it has one (a sharded collection, app/cluster, asks its
    shards and merges their answers), else `fn` applied to it (the search layer, on a local collection)."""
    own: Callable[..., T] | None = getattr(collection, name, None)
    return own if own is not None else functools.partial(fn, collection)


def check_batch(size: int, limit: int, what: str) -> None:
    """413 for a request carrying more items than the server takes in one call."""
    if size > limit:
        raise PayloadTooLarge(f"{size} {what} in one request; the limit is {limit}", size=size, limit=limit)
