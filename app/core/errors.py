"""One error root: every failure the API reports has a stable code and an HTTP status.

UmbrellaError
├── InvalidInput (400)          bad values the schema could not catch
│   ├── DimensionMismatch
│   ├── InvalidVector
│   ├── InvalidFilter
│   ├── UnindexedField
│   ├── NoLexicalIndex          a keyword or hybrid search on a collection without a keyword index
│   ├── WrongModality
│   ├── InvalidImage
│   ├── ImageTooLarge
│   ├── ModelNotFound
│   ├── InvalidSnapshot         a snapshot file that is unreadable or fails its checksums
│   ├── CannotFinetune          a collection whose model cannot be tuned (its kind, no stored sources)
│   └── NotOnShards             an operation a sharded collection does not offer (yet), or sharding without Ray
├── Unauthorized (401)
├── NotFound (404)
│   ├── CollectionNotFound
│   ├── PointNotFound
│   ├── UserNotFound
│   ├── RankerNotFound
│   ├── SnapshotNotFound
│   └── FinetuneNotFound        no fine-tuning run yet
├── AlreadyExists (409)
│   └── CollectionExists
├── NotEnoughEvents (409)       too few interactions to train a ranker
├── NotEnoughPairs (409)        too few (query, clicked item) pairs to fine-tune the text model
├── TrainingInProgress (409)
├── FinetuneInProgress (409)
├── PayloadTooLarge (413)
├── ValidationFailed (422)      the request did not match the schema
├── Overloaded (429)            too much work queued; retry after `retry_after` seconds
└── NotReady (503)
    └── ShardUnavailable        a shard with no live copy, or too few copies to acknowledge a write
"""

from __future__ import annotations

import errno
import sqlite3
from typing import Any, ClassVar


class UmbrellaError(Exception):
    code: ClassVar[str] = "internal_error"
    status_code: ClassVar[int] = 500

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


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


class FinetuneNotFound(NotFound):
    code = "finetune_not_found"


class SnapshotNotFound(NotFound):
    code = "snapshot_not_found"


class AlreadyExists(UmbrellaError):
    code = "already_exists"
    status_code = 409


class CollectionExists(AlreadyExists):
    code = "collection_exists"


class NotEnoughEvents(UmbrellaError):
    """The events cannot train a ranker yet; details say how many are needed and how many there are."""

    code = "not_enough_events"
    status_code = 409


class TrainingInProgress(UmbrellaError):
    code = "training_in_progress"
    status_code = 409


class NotEnoughPairs(UmbrellaError):
    """Too few (query, item) pairs to fine-tune on; details say how many are needed and how many there are."""

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
    """Too much work is queued; the response carries `Retry-After: retry_after`."""

    code = "overloaded"
    status_code = 429

    def __init__(self, message: str, retry_after: int = 1, **details: Any) -> None:
        super().__init__(message, retry_after=retry_after, **details)
        self.retry_after = retry_after


class NotReady(UmbrellaError):
    code = "not_ready"
    status_code = 503


class ShardUnavailable(NotReady):
    code = "shard_unavailable"


class InsufficientStorage(UmbrellaError):
    """The disk is full: nothing of the write was kept; reads go on, and writes work again once there is space."""

    code = "insufficient_storage"
    status_code = 507


def is_disk_full(exc: BaseException) -> bool:
    """An error that means no space left: ENOSPC from the OS, or SQLite's SQLITE_FULL."""
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno == errno.ENOSPC


def all_error_classes() -> list[type[UmbrellaError]]:
    """Every error class, for the error-code table and the SDK congruence test."""
    found: list[type[UmbrellaError]] = [UmbrellaError]
    for cls in found:
        found.extend(sub for sub in cls.__subclasses__() if sub not in found)
    return found
