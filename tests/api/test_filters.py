"""Filters on any field over HTTP: scans where no index answers (and the plan says so), strict collections,
nested keys, emptiness, ids, words."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.helpers import error, upsert

C = "/collections/shop"
POINTS = [
    {"id": 1, "vector": [1, 0], "payload": {"title": "USB-C 65W charger", "specs": {"color": "red"}, "tags": ["a"]}},
    {"id": 2, "vector": [0.9, 0.1], "payload": {"title": "USB cable", "specs": {"color": "blue"}, "tags": []}},
    {"id": 3, "vector": [0, 1], "payload": {"title": "Nike Air Max 90", "note": None, "brand": "usb"}},
    {"id": "x", "vector": [0.5, 0.5]},
]


def _shop(client: TestClient, **extra: object) -> None:
    response = client.put(C, json={"dim": 2, "payload_indexes": {"brand": "keyword"}, **extra})
    assert response.status_code == 201, response.text
    upsert(client, POINTS, name="shop")


def _search(client: TestClient, flt: dict, **extra: object) -> dict:
    response = client.post(f"{C}/search", json={"vector": [1, 0], "k": 10, "filter": flt, **extra})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_filter_on_a_field_without_an_index_scans_and_says_so(client: TestClient) -> None:
    _shop(client)
    body = _search(client, {"must": [{"key": "specs.color", "match": "red"}]})
    assert [h["id"] for h in body["results"]] == [1] and body["plan"] == "exact+scan" and body["candidates"] == 1
    indexed = _search(client, {"must": [{"key": "brand", "match": "usb"}]})
    assert indexed["plan"] == "exact" and [h["id"] for h in indexed["results"]] == [3]
    both = _search(client, {"must": [{"key": "brand", "match": "usb"}, {"is_null": {"key": "note"}}]})
    assert [h["id"] for h in both["results"]] == [3] and both["plan"] == "exact+scan"
    count = client.post(f"{C}/points/count", json={"filter": {"must": [{"is_empty": {"key": "tags"}}]}}).json()
    assert count["count"] == 3  # [] , absent, no payload
    page = client.post(f"{C}/points/scroll", json={"filter": {"must": [{"has_id": ["x", 2, 99]}]}}).json()
    assert sorted(str(p["id"]) for p in page["points"]) == ["2", "x"]
    facets = client.post(f"{C}/facets", json={"key": "specs.color"}).json()
    assert facets["values"] == [{"value": "blue", "count": 1}, {"value": "red", "count": 1}]


def test_a_text_condition_matches_the_fields_own_words(client: TestClient) -> None:
    # with a keyword index that holds the field, one that does not, and none
    for lexical in ({"fields": ["title", "brand"]}, {"fields": ["brand"]}, None):
        client.delete(C)
        _shop(client, lexical=lexical)
        by_words = _search(client, {"must": [{"key": "title", "text": "usb"}]}, mode="dense")
        assert sorted(h["id"] for h in by_words["results"]) == [1, 2]  # 3 has "usb" as its brand, not its title
        assert [h["id"] for h in _search(client, {"must": [{"key": "title", "text": "usbc 65w"}]})["results"]] == [1]


def test_a_strict_collection_refuses_fields_without_an_index(client: TestClient) -> None:
    _shop(client, strict=True)
    assert client.get(C).json()["strict"] is True
    err = error(
        client.post(f"{C}/search", json={"vector": [1, 0], "filter": {"must": [{"key": "specs.color", "match": "r"}]}}),
        400,
        "unindexed_field",
    )
    assert err["details"]["field"] == "specs.color"
    error(client.post(f"{C}/facets", json={"key": "title"}), 400, "unindexed_field")
    assert _search(client, {"must": [{"key": "brand", "match": "usb"}]})["plan"] == "exact"


def test_a_bad_condition_is_named_by_its_kind(client: TestClient) -> None:
    _shop(client)
    for condition, kind in (({"has_id": []}, "has_id"), ({"is_null": {}}, "is_null"), ({"key": "a"}, "condition")):
        err = error(
            client.post(f"{C}/search", json={"vector": [1, 0], "filter": {"must": [condition]}}),
            422,
            "validation_error",
        )
        assert f"must.0.{kind}" in err["message"], err["message"]
    too_deep = {"must": [{"must": [{"must": [{"must": [{"key": "brand", "match": "usb"}]}]}]}]}
    err = error(client.post(f"{C}/search", json={"vector": [1, 0], "filter": too_deep}), 422, "validation_error")
    assert "does not match any of the expected tags" in err["message"]
