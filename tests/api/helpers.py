"""Small request helpers for the in-process API tests."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
from fastapi.testclient import TestClient


def b64(vectors: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode()


def create(client: TestClient, name: str = "products", dim: int = 4, **extra: Any) -> dict:
    body = {"dim": dim, "metric": "cosine", "payload_indexes": {"category": "keyword", "price": "float"}, **extra}
    response = client.put(f"/collections/{name}", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def upsert(client: TestClient, points: list[dict], name: str = "products") -> dict:
    response = client.put(f"/collections/{name}/points", json={"points": points})
    assert response.status_code == 200, response.text
    return response.json()


def error(response: Any, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]
