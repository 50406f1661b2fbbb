"""Every REST operation of the server, written once: method, path, request builder, response parser.

Importing this package registers them all in `umbrella_client.calls.OPERATIONS`.
"""

from umbrella_client.operations.collections import (
    create_collection,
    drop_collection,
    get_collection,
    list_collections,
    tune,
)
from umbrella_client.operations.health import healthz, readyz
from umbrella_client.operations.points import count, delete_points, get_points, scroll, upsert
from umbrella_client.operations.recommend import (
    add_events,
    get_ranker,
    get_user,
    ranker_curves,
    recommend,
    recommend_for_user,
    train_ranker,
)
from umbrella_client.operations.search import search, search_batch, search_image

__all__ = [
    "add_events",
    "count",
    "create_collection",
    "delete_points",
    "drop_collection",
    "get_collection",
    "get_points",
    "get_ranker",
    "get_user",
    "healthz",
    "list_collections",
    "ranker_curves",
    "readyz",
    "recommend",
    "recommend_for_user",
    "scroll",
    "search",
    "search_batch",
    "search_image",
    "train_ranker",
    "tune",
    "upsert",
]
