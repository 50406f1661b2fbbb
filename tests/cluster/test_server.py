"""A real server process on the Ray cluster: a sharded collection of texts embedded by the bundled model, through
the SDK; the server killed and started again finds its sharded collections and their copies where they were."""

from __future__ import annotations

import signal
from collections.abc import Callable

import pytest
from umbrella_client import Client

from tests.cluster.conftest import LocalCluster
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.cluster, pytest.mark.e2e, pytest.mark.slow]

TEXTS = {
    1: ("A red leather handbag with a gold clasp", "en"),
    2: ("Trail running shoes with a grippy sole", "en"),
    3: ("A waterproof hiking backpack, 30 litres", "en"),
    4: ("Noise-cancelling wireless headphones", "en"),
    5: ("Stainless steel water bottle that keeps drinks cold", "en"),
    "fr-1": ("Un sac à main en cuir rouge", "fr"),
    "fr-2": ("Des chaussures de course pour le trail", "fr"),
    6: ("A wool winter coat with a hood", "en"),
    7: ("Cast iron frying pan, pre-seasoned", "en"),
    8: ("Mechanical keyboard with brown switches", "en"),
}


def test_a_sharded_text_collection_survives_a_server_restart(
    server_factory: Callable[..., ServerProcess], ray_cluster: LocalCluster
) -> None:
    server = server_factory(env={"UMBRELLA_RAY_ADDRESS": ray_cluster.address, "UMBRELLA_SHARD_TIMEOUT_S": "5"})
    server.start(timeout=90)
    with Client(server.url, timeout=60) as client:
        info = client.create_collection(
            "catalog", embedder={"kind": "text"}, payload_indexes={"lang": "keyword"}, shards=2, replicas=2
        )
        assert (info.shards, info.replicas, info.write_quorum, info.dim) == (2, 2, 2, 384)
        texts, langs = zip(*TEXTS.values(), strict=True)
        client.upsert("catalog", list(TEXTS), texts=texts, payloads=[{"lang": lang} for lang in langs])
        hits = client.search("catalog", text="shoes for running on trails", k=3).results
        assert hits[0].id == 2
        french = client.search("catalog", text="red handbag", k=2, filter={"must": [{"key": "lang", "match": "fr"}]})
        french = french.results
        assert french[0].id == "fr-1" and all(h.payload["lang"] == "fr" for h in french)
        before = [h.id for h in client.search("catalog", text="something to carry my things", k=5)]
        placed = client.cluster()["collections"][0]["nodes"]
        client.add_events("catalog", [{"user": "ann", "item": 2, "type": "purchase"}])
    server.kill(signal.SIGKILL)
    server.start(timeout=90)
    with Client(server.url, timeout=60) as client:
        assert [c.name for c in client.list_collections()] == ["catalog"]
        assert client.count("catalog") == len(TEXTS)
        assert [h.id for h in client.search("catalog", text="something to carry my things", k=5)] == before
        state = client.cluster()
        assert state["collections"][0]["nodes"] == placed
        assert all(c["fresh"] and c["alive"] for c in state["collections"][0]["copies"])
        assert client.get_user("catalog", "ann").counts["purchase"] == 1  # the events are on the router's disk
        client.drop_collection("catalog")
        assert client.cluster()["collections"] == []
