"""Bulk loads: cut the input into upsert batches lazily, send a few at a time, retry, count, show progress.

Retrying is safe because an upsert replaces points by id: a batch sent twice leaves what one send leaves.
Points without ids get random UUIDs, fixed per batch before the first try for the same reason.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sized
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import count, islice
from typing import Any

import anyio

from umbrella_client import operations
from umbrella_client.calls import Call
from umbrella_client.errors import UmbrellaError
from umbrella_client.images import Image
from umbrella_client.models import PointId, WriteResult
from umbrella_client.retry import RetryPolicy
from umbrella_client.vectors import is_array


@dataclasses.dataclass(frozen=True)
class FailedBatch:
    index: int  # the batch's number, from 0
    ids: list[PointId]
    error: UmbrellaError  # the last error, after any retries


@dataclasses.dataclass
class UploadSummary:
    sent: int = 0  # points acknowledged, i.e. on disk
    batches: int = 0
    failed: list[FailedBatch] = dataclasses.field(default_factory=list)
    retries: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def failed_ids(self) -> list[PointId]:
        return [i for batch in self.failed for i in batch.ids]


@dataclasses.dataclass(frozen=True)
class Batch:
    index: int
    ids: list[PointId]
    call: Call[WriteResult]


@dataclasses.dataclass(frozen=True)
class Plan:
    batches: Iterator[Batch]
    total: int | None  # points, when the input has a length


def _chunks(items: Any, size: int) -> Iterator[Any]:
    """Chunks of `size` rows: array slices for a numpy array, lists for anything else iterable."""
    if is_array(items):
        for start in range(0, len(items), size):
            yield items[start : start + size]
        return
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _take(it: Iterator[Any], n: int, what: str) -> list[Any]:
    taken = list(islice(it, n))
    if len(taken) != n:
        raise ValueError(f"fewer {what} than points")
    return taken


def plan(
    collection: str,
    *,
    vectors: Any = None,
    texts: Iterable[str] | None = None,
    sequences: Iterable[str] | None = None,
    images: Iterable[Image] | None = None,
    ids: Iterable[PointId] | None = None,
    payloads: Iterable[dict[str, Any] | None] | None = None,
    batch_size: int = 256,
) -> Plan:
    """The batches of an upload, built one at a time as they are sent, so a generator input is never all in memory."""
    columns = {"vectors": vectors, "texts": texts, "sequences": sequences, "images": images}
    given = [(k, v) for k, v in columns.items() if v is not None]
    if len(given) != 1:
        raise ValueError("pass exactly one of vectors, texts, sequences, images")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    field, data = given[0]
    total = len(data) if isinstance(data, Sized) else None
    for name, column in (("ids", ids), ("payloads", payloads)):
        if total is not None and isinstance(column, Sized) and len(column) != total:
            raise ValueError(f"{len(column)} {name} for {total} {field}")

    def batches() -> Iterator[Batch]:
        id_source = iter(ids) if ids is not None else (str(uuid.uuid4()) for _ in count())
        payload_source = iter(payloads) if payloads is not None else None
        for index, chunk in enumerate(_chunks(data, batch_size)):
            batch_ids = _take(id_source, len(chunk), "ids")
            batch_payloads = _take(payload_source, len(chunk), "payloads") if payload_source is not None else None
            call = operations.upsert(collection, batch_ids, payloads=batch_payloads, **{field: chunk})
            yield Batch(index, batch_ids, call)

    return Plan(batches(), total)


class _Tally:
    """The summary and the progress bar, updated as batches finish (always from one thread)."""

    def __init__(self, total: int | None, progress: bool) -> None:
        self.summary, self.started, self.bar = UploadSummary(), time.perf_counter(), None
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # tqdm is optional: no bar without it
                pass
            else:
                self.bar = tqdm(total=total, unit="points", desc="upload")

    def record(self, batch: Batch, error: UmbrellaError | None, retries: int) -> None:
        s = self.summary
        s.batches, s.retries = s.batches + 1, s.retries + retries
        if error is None:
            s.sent += len(batch.ids)
        else:
            s.failed.append(FailedBatch(batch.index, batch.ids, error))
        if self.bar is not None:
            self.bar.update(len(batch.ids))
            if s.failed:
                self.bar.set_postfix(failed_batches=len(s.failed), refresh=False)

    def close(self) -> UploadSummary:
        if self.bar is not None:
            self.bar.close()
        self.summary.failed.sort(key=lambda f: f.index)
        self.summary.seconds = time.perf_counter() - self.started
        return self.summary


Outcome = tuple[UmbrellaError | None, int]  # the final error (None: sent), retries used


def _send(execute: Callable[[Call[Any]], Any], call: Call[Any], retry: RetryPolicy) -> Outcome:
    attempt = 1
    while True:
        try:
            execute(call)
            return None, attempt - 1
        except UmbrellaError as err:
            delay = retry.delay(attempt, err)
            if delay is None:
                return err, attempt - 1
            time.sleep(delay)
            attempt += 1


def run_sync(
    execute: Callable[[Call[Any]], Any], job: Plan, *, parallel: int, retry: RetryPolicy, progress: bool
) -> UploadSummary:
    """Send the batches from `parallel` threads, with at most twice that many built and waiting."""
    tally = _Tally(job.total, progress)
    pending: dict[Future[Outcome], Batch] = {}

    def collect(done: Iterable[Future[Outcome]]) -> None:
        for future in done:
            tally.record(pending.pop(future), *future.result())

    try:
        with ThreadPoolExecutor(max(1, parallel), thread_name_prefix="umbrella-upload") as pool:
            for batch in job.batches:
                if len(pending) >= 2 * parallel:
                    collect(wait(pending, return_when=FIRST_COMPLETED).done)
                pending[pool.submit(_send, execute, batch.call, retry)] = batch
            collect(wait(pending).done)
    finally:
        summary = tally.close()
    return summary


async def _send_async(execute: Callable[[Call[Any]], Awaitable[Any]], call: Call[Any], retry: RetryPolicy) -> Outcome:
    attempt = 1
    while True:
        try:
            await execute(call)
            return None, attempt - 1
        except UmbrellaError as err:
            delay = retry.delay(attempt, err)
            if delay is None:
                return err, attempt - 1
            await anyio.sleep(delay)
            attempt += 1


async def run_async(
    execute: Callable[[Call[Any]], Awaitable[Any]], job: Plan, *, parallel: int, retry: RetryPolicy, progress: bool
) -> UploadSummary:
    """Send the batches as tasks, at most `parallel` at a time (asyncio or trio, through anyio)."""
    tally = _Tally(job.total, progress)
    limiter = anyio.Semaphore(max(1, parallel))
    bad_input: Exception | None = None

    async def send(batch: Batch) -> None:
        try:
            tally.record(batch, *await _send_async(execute, batch.call, retry))
        finally:
            limiter.release()

    try:
        async with anyio.create_task_group() as tasks:
            try:
                for batch in job.batches:
                    await limiter.acquire()
                    tasks.start_soon(send, batch)
            except Exception as err:  # building a batch failed: let the ones in flight finish, then raise it
                bad_input = err
    finally:
        summary = tally.close()
    if bad_input is not None:
        raise bad_input
    return summary
