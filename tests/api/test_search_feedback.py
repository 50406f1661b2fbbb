"""Search feedback for fine-tuning: events name the words behind them, logged searches keep what they showed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from fastapi.testclient import TestClient

from app.storage.sqlite_store import PointStore
from tests.api.helpers import create, error, upsert

C = "/collections/products"


def _shop(client: TestClient) -> None:
    create(client, lexical={"fields": ["title"]})
    titles = ["red running shoes", "blue running shoes", "leather handbag", "steel frying pan"]
    upsert(client, [{"id": i, "vector": [1.0, i, 0, 0], "payload": {"title": t}} for i, t in enumerate(titles)])


def _collection(client: TestClient):  # type: ignore[no-untyped-def]
    return client.app.state.registry.get("products")  # type: ignore[attr-defined]


def test_events_keep_the_words_that_led_to_them(client: TestClient) -> None:
    _shop(client)
    events = [
        {"user": "ann", "item": 0, "type": "click", "query": "crimson sneakers", "time": 1_760_000_000},
        {"user": "ann", "item": 2, "type": "view", "time": 1_760_000_001},  # no query: not a feedback pair
    ]
    assert client.post(f"{C}/events", json={"events": events}).json()["accepted"] == 2
    assert _collection(client).queried_events() == [("ann", "0", "click", 1_760_000_000.0, "crimson sneakers")]
    bad = {"events": [{"user": "ann", "item": 0, "type": "click", "query": ""}]}
    error(client.post(f"{C}/events", json=bad), 422, "validation_error")


def test_a_logged_search_keeps_its_words_and_what_it_showed(client: TestClient) -> None:
    _shop(client)
    shown = client.post(f"{C}/search", json={"text": "running shoes", "mode": "lexical", "k": 2, "log": True}).json()
    client.post(f"{C}/search", json={"text": "handbag", "mode": "lexical", "k": 2})  # not logged
    batch = {"searches": [{"vector": [1, 0, 0, 0], "keywords": "pan", "k": 1, "log": True}, {"vector": [1, 0, 0, 0]}]}
    assert client.post(f"{C}/search/batch", json=batch).status_code == 200
    log = _collection(client).search_log()
    assert [(words, ids) for _, words, ids in log] == [
        ("running shoes", [hit["id"] for hit in shown["results"]]),
        ("pan", [client.post(f"{C}/search", json=batch["searches"][0]).json()["results"][0]["id"]]),
    ]
    refused = client.post(f"{C}/search", json={"vector": [1, 0, 0, 0], "log": True})
    assert "text or keywords" in error(refused, 422, "validation_error")["message"] + refused.text


def test_a_database_from_before_queries_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "points.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE events (user TEXT NOT NULL, item TEXT NOT NULL, type TEXT NOT NULL, value REAL NOT NULL,"
        " time REAL NOT NULL, UNIQUE (user, item, type, time, value))"
    )
    old.execute("INSERT INTO events VALUES ('bob', '1', 'view', 1.0, 1700000000.0)")
    old.commit()
    old.close()
    store = PointStore(path)
    try:
        assert store.add_events([("bob", "1", "click", 1.0, 1_700_000_100.0)], ["warm hoodie"]) == [True]
        assert store.queried_events() == [("bob", "1", "click", 1_700_000_100.0, "warm hoodie")]
        assert [len(chunk) for chunk in store.events()] == [2]
    finally:
        store.close()
