"""Every REST operation of the server, written once: method, path, request builder, response parser.

Importing this package registers them all in `umbrella_client.calls.OPERATIONS`.
"""

from umbrella_client.operations.collections import (
    create_collection,
    drop_collection,
    drop_field_index,
    drop_lexical,
    get_collection,
    index_field,
    list_collections,
    set_lexical,
    tune,
)
from umbrella_client.operations.embedder import (
    apply_finetune,
    cancel_finetune,
    finetune_curves,
    finetune_status,
    get_embedder,
    rollback_finetune,
    start_finetune,
)
from umbrella_client.operations.health import cluster, healthz, readyz
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
from umbrella_client.operations.search import facets, search, search_batch, search_image
from umbrella_client.operations.snapshots import (
    create_snapshot,
    delete_snapshot,
    download_snapshot,
    list_snapshots,
    restore_snapshot,
)

__all__ = [
    "add_events",
    "apply_finetune",
    "cancel_finetune",
    "cluster",
    "count",
    "create_collection",
    "create_snapshot",
    "delete_points",
    "delete_snapshot",
    "download_snapshot",
    "drop_collection",
    "drop_field_index",
    "drop_lexical",
    "facets",
    "finetune_curves",
    "finetune_status",
    "get_collection",
    "get_embedder",
    "get_points",
    "get_ranker",
    "get_user",
    "healthz",
    "index_field",
    "list_collections",
    "list_snapshots",
    "ranker_curves",
    "readyz",
    "recommend",
    "recommend_for_user",
    "restore_snapshot",
    "rollback_finetune",
    "scroll",
    "search",
    "search_batch",
    "search_image",
    "set_lexical",
    "start_finetune",
    "train_ranker",
    "tune",
    "upsert",
]
