"""The shared request/response layer: an operation builds a Call; a client sends it; the Call reads the answer.

Every REST operation is written once (in `operations`), as a function that turns arguments into a
`Request`, registered with its HTTP method and path template. `Client` and `AsyncClient` only differ
in how they send; building the request and reading the response (or raising) happen here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar
from urllib.parse import quote

import httpx

from umbrella_client.errors import UmbrellaError, error_from_response

P = ParamSpec("P")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Request:
    """What an operation's builder returns: the path parameters and the body, query or form."""

    path: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    json: Any = None
    params: Mapping[str, Any] | None = None
    files: Mapping[str, Any] | None = None
    data: Mapping[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Call(Generic[T]):
    """A request ready to send, and how to read its answer."""

    method: str
    url: str
    request: Request
    parse: Callable[[Any], T]
    answers: frozenset[int]  # statuses that carry an answer, not an error (e.g. readyz's 503)
    raw: bool = False  # parse gets the body's bytes as they came (a file download)

    def send_kwargs(self) -> dict[str, Any]:
        r = self.request
        kwargs = {"json": r.json, "params": r.params, "files": r.files, "data": r.data}
        return {k: v for k, v in kwargs.items() if v is not None}

    def finish(self, response: httpx.Response) -> T:
        """The parsed answer, or the error the response stands for, raised."""
        if response.is_error and response.status_code not in self.answers:
            raise error_from_response(response)
        if self.raw:
            return self.parse(response.content)
        if response.headers.get("content-type", "").startswith("application/json"):
            try:
                body = response.json()
            except ValueError as err:
                raise UmbrellaError(
                    "the server sent malformed JSON", code="invalid_response", status=response.status_code
                ) from err
        else:
            body = response.text
        return self.parse(body)


@dataclasses.dataclass(frozen=True)
class Operation(Generic[P, T]):
    """One REST operation: method, path template, a builder for its request, a parser for its answer."""

    name: str
    method: str
    path: str
    build: Callable[P, Request]
    parse: Callable[[Any], T]
    answers: frozenset[int] = frozenset()
    raw: bool = False

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Call[T]:
        request = self.build(*args, **kwargs)
        url = self.path.format(**{k: quote(str(v), safe="") for k, v in request.path.items()})
        return Call(self.method, url, request, self.parse, self.answers, self.raw)


def given(**fields: Any) -> dict[str, Any]:
    """The fields that were given: the server's defaults apply to the others."""
    return {k: v for k, v in fields.items() if v is not None}


OPERATIONS: dict[str, Operation[Any, Any]] = {}
"""Every REST operation by its SDK method name; the congruence test compares it with the server's OpenAPI."""


def operation(
    method: str, path: str, parse: Callable[[Any], T], *, answers: tuple[int, ...] = (), raw: bool = False
) -> Callable[[Callable[P, Request]], Operation[P, T]]:
    """Register a builder as an operation; with `raw`, `parse` gets the answer's bytes instead of JSON or text."""

    def register(build: Callable[P, Request]) -> Operation[P, T]:
        op = Operation(build.__name__, method, path, build, parse, frozenset(answers), raw)
        OPERATIONS[op.name] = op
        return op

    return register


def _as_method(op: Operation[Any, Any], method: Callable[..., Any]) -> None:
    """Give a generated method the builder's name, docs and signature (with self and the answer's type), for help()."""
    functools.update_wrapper(method, op.build, assigned=("__name__", "__qualname__", "__doc__"), updated=())
    signature = inspect.signature(op.build)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    try:
        returns = inspect.signature(op.parse).return_annotation
    except (TypeError, ValueError):  # a builtin such as str
        returns = inspect.Signature.empty
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *signature.parameters.values()], return_annotation=returns
    )
    method.operation = op  # type: ignore[attr-defined]


def sync_method(op: Operation[P, T]) -> Callable[Concatenate[Any, P], T]:
    """`op` as a method of a client whose `_execute` sends a Call and returns its answer."""

    def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._execute(op(*args, **kwargs))  # type: ignore[no-any-return]

    _as_method(op, method)
    return method


def async_method(op: Operation[P, T]) -> Callable[Concatenate[Any, P], Awaitable[T]]:
    """`op` as a coroutine method of a client whose `_execute` is async."""

    async def method(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._execute(op(*args, **kwargs))  # type: ignore[no-any-return]

    _as_method(op, method)
    return method
