"""The server's error tree rebuilt on the client: one class per error code, raised from the error envelope.

UmbrellaError                    code, status, message, details, retry_after
├── InvalidInput (400)
│   ├── DimensionMismatch
│   ├── InvalidVector
│   ├── InvalidFilter
│   ├── UnindexedField
│   ├── WrongModality
│   ├── InvalidImage
│   ├── ImageTooLarge
│   ├── ModelNotFound
│   ├── InvalidSnapshot
│   ├── CannotFinetune
│   └── NotOnShards               an operation a sharded collection does not offer yet, or sharding without Ray
├── Unauthorized (401)            no key, a wrong key, or a bad or expired token
├── Forbidden (403)               a valid key or token that does not cover this collection or operation
├── NotFound (404)
│   ├── CollectionNotFound
│   ├── PointNotFound
│   ├── UserNotFound
│   ├── RankerNotFound
│   ├── SnapshotNotFound
│   └── FinetuneNotFound
├── AlreadyExists (409)
│   └── CollectionExists
├── NotEnoughEvents (409)
├── NotEnoughPairs (409)
├── TrainingInProgress (409)
├── FinetuneInProgress (409)
├── PayloadTooLarge (413)
├── ValidationFailed (422)
├── Overloaded (429)             retry after `retry_after` seconds
├── NotReady (503)
│   └── ShardUnavailable         a shard with no live copy, or too few copies to acknowledge a write
├── InsufficientStorage (507)    the server's disk is full; nothing of the write was kept
└── ConnectionFailed             client side: no answer (refused, reset, timed out); status is None

A code this SDK does not know becomes the most specific class for its HTTP status (a 404 → NotFound),
or UmbrellaError itself; `.code` always holds the code the server sent.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx


class UmbrellaError(Exception):
    code: ClassVar[str] = "internal_error"
    status_code: ClassVar[int | None] = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code  # type: ignore[misc]  # the instance keeps what the server sent
        self.status = status if status is not None else type(self).status_code
        self.details = details or {}
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"[{self.status} {self.code}] {self.message}" if self.status else f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status}, message={self.message!r})"


class InvalidInput(UmbrellaError):
    code = "invalid_input"
    status_code = 400


class DimensionMismatch(InvalidInput):
    code = "dimension_mismatch"


class InvalidVector(InvalidInput):
    code = "invalid_vector"


class InvalidFilter(InvalidInput):
    code = "invalid_filter"


class UnindexedField(InvalidInput):
    code = "unindexed_field"


class NoLexicalIndex(InvalidInput):
    code = "no_lexical_index"


class WrongModality(InvalidInput):
    code = "wrong_modality"


class InvalidImage(InvalidInput):
    code = "invalid_image"


class ImageTooLarge(InvalidInput):
    code = "image_too_large"


class ModelNotFound(InvalidInput):
    code = "model_not_found"


class InvalidSnapshot(InvalidInput):
    code = "invalid_snapshot"


class CannotFinetune(InvalidInput):
    code = "cannot_finetune"


class NotOnShards(InvalidInput):
    code = "not_on_shards"


class Unauthorized(UmbrellaError):
    code = "unauthorized"
    status_code = 401


class Forbidden(UmbrellaError):
    code = "forbidden"
    status_code = 403


class NotFound(UmbrellaError):
    code = "not_found"
    status_code = 404


class CollectionNotFound(NotFound):
    code = "collection_not_found"


class PointNotFound(NotFound):
    code = "point_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class RankerNotFound(NotFound):
    code = "ranker_not_found"


class SnapshotNotFound(NotFound):
    code = "snapshot_not_found"


class FinetuneNotFound(NotFound):
    code = "finetune_not_found"


class AlreadyExists(UmbrellaError):
    code = "already_exists"
    status_code = 409


class CollectionExists(AlreadyExists):
    code = "collection_exists"


class NotEnoughEvents(UmbrellaError):
    code = "not_enough_events"
    status_code = 409


class TrainingInProgress(UmbrellaError):
    code = "training_in_progress"
    status_code = 409


class NotEnoughPairs(UmbrellaError):
    code = "not_enough_pairs"
    status_code = 409


class FinetuneInProgress(UmbrellaError):
    code = "finetune_in_progress"
    status_code = 409


class PayloadTooLarge(UmbrellaError):
    code = "payload_too_large"
    status_code = 413


class ValidationFailed(UmbrellaError):
    code = "validation_error"
    status_code = 422


class Overloaded(UmbrellaError):
    code = "overloaded"
    status_code = 429


class InsufficientStorage(UmbrellaError):
    code = "insufficient_storage"
    status_code = 507


class NotReady(UmbrellaError):
    code = "not_ready"
    status_code = 503


class ShardUnavailable(NotReady):
    code = "shard_unavailable"


class ConnectionFailed(UmbrellaError):
    """No answer came back: the connection was refused or reset, or the request timed out."""

    code = "connection_failed"
    status_code = None


def _server_classes() -> dict[str, type[UmbrellaError]]:
    found: list[type[UmbrellaError]] = [UmbrellaError]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found and sub is not ConnectionFailed)
    return {cls.code: cls for cls in found}


ERRORS_BY_CODE: dict[str, type[UmbrellaError]] = _server_classes()
"""Every error code the server sends, with its class."""

# For codes this SDK does not know yet: the general class of their status (409 has three unrelated ones).
_BY_STATUS: dict[int, type[UmbrellaError]] = {
    400: InvalidInput,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    422: ValidationFailed,
    429: Overloaded,
    503: NotReady,
    507: InsufficientStorage,
}


def error_from_response(response: httpx.Response) -> UmbrellaError:
    """The exception an error response stands for: from its envelope, or from its status when it has none."""
    try:
        envelope = response.json()["error"]
        code: str | None = str(envelope["code"])
        message, details = str(envelope.get("message", "")), envelope.get("details") or {}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError):  # not our envelope
        code, message, details = None, response.text[:500] or response.reason_phrase, {}
    cls = ERRORS_BY_CODE.get(code or "") or _BY_STATUS.get(response.status_code, UmbrellaError)
    return cls(
        message,
        code=code or "http_error",
        status=response.status_code,
        details=details if isinstance(details, dict) else {"details": details},
        retry_after=_retry_after(response, details),
    )


def _retry_after(response: httpx.Response, details: Any) -> float | None:
    """Seconds from the Retry-After header (or the details), when the server named them."""
    raw = response.headers.get("retry-after")
    if raw is None and isinstance(details, dict):
        raw = details.get("retry_after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except (TypeError, ValueError):  # an HTTP date: rare enough to treat as "no advice"
        return None


def connection_failed(err: httpx.TransportError) -> ConnectionFailed:
    return ConnectionFailed(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
