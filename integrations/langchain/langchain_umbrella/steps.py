"""Store operations as generators of I/O steps, run by a sync or an async driver: each operation is written once.

An operation yields a `Step` (an SDK client method, or an `Embeddings` method) and gets its answer back, or its
exception thrown in at the yield. `run` answers with `Client` and `embed_query`; `arun` with `AsyncClient` and
`aembed_query`. The SDK twins have the same method names, so a step names one and both drivers can call it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Mapping
from typing import Any, Literal, TypeVar

from langchain_core.embeddings import Embeddings
from umbrella_client import AsyncClient, Client

T = TypeVar("T")

ClientMethod = Literal[
    "get_collection", "create_collection", "drop_collection", "upload", "scroll", "delete_points", "search"
]
"""The SDK methods operations use; a test checks that `Client` and `AsyncClient` both have each."""

EmbedMethod = Literal["embed_query", "embed_documents"]


@dataclasses.dataclass(frozen=True)
class Step:
    """One call an operation needs answered: a method of the SDK client, or of the Embeddings."""

    target: Literal["client", "embeddings"]
    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


Flow = Generator[Step, Any, T]
"""An operation: yields steps, receives their answers, returns its result."""


def call(method: ClientMethod, *args: Any, **kwargs: Any) -> Step:
    return Step("client", method, args, kwargs)


def embed(method: EmbedMethod, arg: Any) -> Step:
    return Step("embeddings", method, (arg,))


def _bound(step: Step, client: Any, embeddings: Embeddings | None, prefix: str) -> Any:
    if step.target == "client":
        if client is None:
            raise ValueError(f"this store has no {'async ' if prefix else ''}client: pass url= or the client")
        return getattr(client, step.method)
    if embeddings is None:  # operations only embed when the store was given embeddings
        raise AssertionError(f"{step.method} asked of a store that embeds nothing")
    return getattr(embeddings, prefix + step.method)


def run(flow: Flow[T], client: Client | None, embeddings: Embeddings | None) -> T:
    """Drive `flow` with blocking calls."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            reply, error = _bound(step, client, embeddings, "")(*step.args, **step.kwargs), None
        except Exception as err:  # thrown into the operation at its yield: it may handle it, else it surfaces
            reply, error = None, err


async def arun(flow: Flow[T], client: AsyncClient | None, embeddings: Embeddings | None) -> T:
    """Drive `flow` with awaited calls (the Embeddings' `a…` twins)."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        try:
            reply, error = await _bound(step, client, embeddings, "a")(*step.args, **step.kwargs), None
        except Exception as err:
            reply, error = None, err
