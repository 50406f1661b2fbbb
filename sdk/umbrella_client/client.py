"""Client and AsyncClient: the same methods, generated from `operations`; they differ only in how they send."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any, TypeVar

import httpx

from umbrella_client import operations as ops
from umbrella_client import upload as bulk
from umbrella_client.calls import Call, async_method, sync_method
from umbrella_client.errors import connection_failed
from umbrella_client.images import Image
from umbrella_client.models import PointId
from umbrella_client.retry import RetryPolicy
from umbrella_client.version import __version__

T = TypeVar("T")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0


def _headers(api_key: str | None) -> dict[str, str]:
    headers = {"user-agent": f"umbrella-client/{__version__}"}
    if api_key:
        headers["api-key"] = api_key  # the header the server's guard reads (it also takes Authorization: Bearer)
    return headers


def _check_http_client(http_client: Any, base_url: str | None, timeout: Any, transport: Any) -> None:
    if http_client is None:
        return
    if (base_url, timeout, transport) != (None, None, None):
        raise TypeError("base_url, timeout and transport are the http_client's own: pass them to it instead")
    if not http_client.base_url.host:
        raise ValueError("the http_client needs a base_url: the client sends paths relative to it")


class Client:
    """A synchronous Umbrella client: `with Client("http://host:8000", api_key=...) as client: ...`.

    `transport` is any httpx transport (e.g. `httpx.MockTransport` in tests). Or pass a ready `http_client`
    (an `httpx.Client`, e.g. starlette's `TestClient(app)`, which runs the app in-process): its base URL,
    timeout and transport are used, the api key is still sent, and closing this client leaves it open.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
        http_client: httpx.Client | None = None,
    ) -> None:
        _check_http_client(http_client, base_url, timeout, transport)
        self._headers = _headers(api_key)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
        )

    def _execute(self, call: Call[T]) -> T:
        try:
            response = self._http.request(call.method, call.url, headers=self._headers, **call.send_kwargs())
        except httpx.TransportError as err:
            raise connection_failed(err) from err
        return call.finish(response)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    healthz = sync_method(ops.healthz)
    readyz = sync_method(ops.readyz)
    cluster = sync_method(ops.cluster)
    create_collection = sync_method(ops.create_collection)
    list_collections = sync_method(ops.list_collections)
    get_collection = sync_method(ops.get_collection)
    drop_collection = sync_method(ops.drop_collection)
    tune = sync_method(ops.tune)
    set_lexical = sync_method(ops.set_lexical)
    drop_lexical = sync_method(ops.drop_lexical)
    index_field = sync_method(ops.index_field)
    drop_field_index = sync_method(ops.drop_field_index)
    upsert = sync_method(ops.upsert)
    get_points = sync_method(ops.get_points)
    delete_points = sync_method(ops.delete_points)
    count = sync_method(ops.count)
    scroll = sync_method(ops.scroll)
    search = sync_method(ops.search)
    search_batch = sync_method(ops.search_batch)
    search_image = sync_method(ops.search_image)
    facets = sync_method(ops.facets)
    recommend = sync_method(ops.recommend)
    add_events = sync_method(ops.add_events)
    get_user = sync_method(ops.get_user)
    recommend_for_user = sync_method(ops.recommend_for_user)
    train_ranker = sync_method(ops.train_ranker)
    get_ranker = sync_method(ops.get_ranker)
    ranker_curves = sync_method(ops.ranker_curves)
    start_finetune = sync_method(ops.start_finetune)
    finetune_status = sync_method(ops.finetune_status)
    cancel_finetune = sync_method(ops.cancel_finetune)
    finetune_curves = sync_method(ops.finetune_curves)
    get_embedder = sync_method(ops.get_embedder)
    apply_finetune = sync_method(ops.apply_finetune)
    rollback_finetune = sync_method(ops.rollback_finetune)
    create_snapshot = sync_method(ops.create_snapshot)
    list_snapshots = sync_method(ops.list_snapshots)
    download_snapshot = sync_method(ops.download_snapshot)
    delete_snapshot = sync_method(ops.delete_snapshot)
    restore_snapshot = sync_method(ops.restore_snapshot)

    def upload(
        self,
        collection: str,
        *,
        vectors: Any = None,
        texts: Iterable[str] | None = None,
        sequences: Iterable[str] | None = None,
        images: Iterable[Image] | None = None,
        ids: Iterable[PointId] | None = None,
        payloads: Iterable[dict[str, Any] | None] | None = None,
        batch_size: int = 256,
        parallel: int = 2,
        retry: RetryPolicy | None = None,
        progress: bool = True,
    ) -> bulk.UploadSummary:
        """Load many points in batches from `parallel` threads, retrying 429, 503 and lost connections.

        Inputs may be generators (read a batch at a time). Points without ids get random UUIDs. A batch that still
        fails is reported in the summary, not raised; `progress` shows a tqdm bar when tqdm is installed.
        """
        job = bulk.plan(
            collection,
            vectors=vectors,
            texts=texts,
            sequences=sequences,
            images=images,
            ids=ids,
            payloads=payloads,
            batch_size=batch_size,
        )
        return bulk.run_sync(self._execute, job, parallel=parallel, retry=retry or RetryPolicy(), progress=progress)


class AsyncClient:
    """The asynchronous twin of `Client`, with the same methods as coroutines: `async with AsyncClient() as c`.

    `transport` is any async httpx transport (e.g. `httpx.ASGITransport(app)` to run the app in-process), or
    pass a ready `http_client` (an `httpx.AsyncClient`), which closing this client leaves open.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        _check_http_client(http_client, base_url, timeout, transport)
        self._headers = _headers(api_key)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            base_url=base_url or DEFAULT_BASE_URL,
            timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
            transport=transport,
        )

    async def _execute(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.url, headers=self._headers, **call.send_kwargs())
        except httpx.TransportError as err:
            raise connection_failed(err) from err
        return call.finish(response)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    healthz = async_method(ops.healthz)
    readyz = async_method(ops.readyz)
    cluster = async_method(ops.cluster)
    create_collection = async_method(ops.create_collection)
    list_collections = async_method(ops.list_collections)
    get_collection = async_method(ops.get_collection)
    drop_collection = async_method(ops.drop_collection)
    tune = async_method(ops.tune)
    set_lexical = async_method(ops.set_lexical)
    drop_lexical = async_method(ops.drop_lexical)
    index_field = async_method(ops.index_field)
    drop_field_index = async_method(ops.drop_field_index)
    upsert = async_method(ops.upsert)
    get_points = async_method(ops.get_points)
    delete_points = async_method(ops.delete_points)
    count = async_method(ops.count)
    scroll = async_method(ops.scroll)
    search = async_method(ops.search)
    search_batch = async_method(ops.search_batch)
    search_image = async_method(ops.search_image)
    facets = async_method(ops.facets)
    recommend = async_method(ops.recommend)
    add_events = async_method(ops.add_events)
    get_user = async_method(ops.get_user)
    recommend_for_user = async_method(ops.recommend_for_user)
    train_ranker = async_method(ops.train_ranker)
    get_ranker = async_method(ops.get_ranker)
    ranker_curves = async_method(ops.ranker_curves)
    start_finetune = async_method(ops.start_finetune)
    finetune_status = async_method(ops.finetune_status)
    cancel_finetune = async_method(ops.cancel_finetune)
    finetune_curves = async_method(ops.finetune_curves)
    get_embedder = async_method(ops.get_embedder)
    apply_finetune = async_method(ops.apply_finetune)
    rollback_finetune = async_method(ops.rollback_finetune)
    create_snapshot = async_method(ops.create_snapshot)
    list_snapshots = async_method(ops.list_snapshots)
    download_snapshot = async_method(ops.download_snapshot)
    delete_snapshot = async_method(ops.delete_snapshot)
    restore_snapshot = async_method(ops.restore_snapshot)

    async def upload(
        self,
        collection: str,
        *,
        vectors: Any = None,
        texts: Iterable[str] | None = None,
        sequences: Iterable[str] | None = None,
        images: Iterable[Image] | None = None,
        ids: Iterable[PointId] | None = None,
        payloads: Iterable[dict[str, Any] | None] | None = None,
        batch_size: int = 256,
        parallel: int = 2,
        retry: RetryPolicy | None = None,
        progress: bool = True,
    ) -> bulk.UploadSummary:
        """Load many points in batches, at most `parallel` requests in flight; otherwise as `Client.upload`."""
        job = bulk.plan(
            collection,
            vectors=vectors,
            texts=texts,
            sequences=sequences,
            images=images,
            ids=ids,
            payloads=payloads,
            batch_size=batch_size,
        )
        return await bulk.run_async(
            self._execute, job, parallel=parallel, retry=retry or RetryPolicy(), progress=progress
        )
