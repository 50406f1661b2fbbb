"""umbrella-client: the Python SDK of the Umbrella vector search service, sync and async."""

from umbrella_client import errors, models
from umbrella_client.client import DEFAULT_BASE_URL, AsyncClient, Client
from umbrella_client.errors import ConnectionFailed, UmbrellaError
from umbrella_client.models import (
    CollectionInfo,
    EmbedderStatus,
    Event,
    EventsReport,
    FinetuneStatus,
    HnswParams,
    Point,
    RankerReport,
    Readiness,
    ScoredPoint,
    ScrollPage,
    SearchQuery,
    SearchResult,
    Snapshot,
    TuneReport,
    TuneTrial,
    UserProfile,
    UserRecommendations,
    WriteResult,
)
from umbrella_client.retry import RetryPolicy
from umbrella_client.upload import FailedBatch, UploadSummary
from umbrella_client.version import __version__

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncClient",
    "Client",
    "CollectionInfo",
    "ConnectionFailed",
    "EmbedderStatus",
    "Event",
    "EventsReport",
    "FailedBatch",
    "FinetuneStatus",
    "HnswParams",
    "Point",
    "RankerReport",
    "Readiness",
    "RetryPolicy",
    "ScoredPoint",
    "ScrollPage",
    "SearchQuery",
    "SearchResult",
    "Snapshot",
    "TuneReport",
    "TuneTrial",
    "UmbrellaError",
    "UploadSummary",
    "UserProfile",
    "UserRecommendations",
    "WriteResult",
    "__version__",
    "errors",
    "models",
]
