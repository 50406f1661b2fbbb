"""What the SDK puts on the wire and reads back, checked without a server: vectors, errors, retries, URLs."""

from __future__ import annotations

import base64

import httpx
import numpy as np
import pytest
from umbrella_client import Client, RetryPolicy, errors, vectors
from umbrella_client.errors import UmbrellaError


def _client(answer: httpx.Response | Exception, seen: list[httpx.Request] | None = None, **kwargs: object) -> Client:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return Client(transport=httpx.MockTransport(handle), **kwargs)  # type: ignore[arg-type]


def _envelope(code: str, **details: object) -> dict:
    return {"error": {"code": code, "message": f"{code} happened", "details": details}}


# ---- vectors -----------------------------------------------------------------------------------------
def test_lists_and_arrays_encode_to_the_same_little_endian_float32() -> None:
    rows = [[0.5, -1.0, 3.25], [1e-3, 2.0, -7.5]]
    array = np.array(rows, dtype=np.float64)
    assert vectors.encode_matrix(rows) == vectors.encode_matrix(array) == vectors.encode_matrix(list(array))
    encoded, n = vectors.encode_matrix(rows)
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(encoded), "<f4").reshape(n, 3), array.astype("f4"))
    assert vectors.encode_vector(rows[0]) == vectors.encode_vector(array[0])
    with pytest.raises(ValueError, match="differ in length"):
        vectors.encode_matrix([[1.0, 2.0], [1.0]])
    with pytest.raises(ValueError, match="1-D"):
        vectors.encode_vector(array)


def test_without_numpy_vectors_come_back_as_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors, "numpy_or_none", lambda: None)
    body = {"points": [{"id": 1, "vector": [0.5, 1.5]}]}
    (point,) = _client(httpx.Response(200, json=body)).get_points("c", [1], with_vector=True)
    assert point.vector == [0.5, 1.5]


# ---- errors ------------------------------------------------------------------------------------------
def test_429_keeps_retry_after_from_the_header() -> None:
    busy = httpx.Response(429, headers={"Retry-After": "7"}, json=_envelope("overloaded", queued=99))
    with pytest.raises(errors.Overloaded) as caught:
        _client(busy).count("c")
    assert (caught.value.status, caught.value.retry_after, caught.value.details) == (429, 7.0, {"queued": 99})
    assert str(caught.value) == "[429 overloaded] overloaded happened"


@pytest.mark.parametrize(
    ("status", "cls"), [(404, errors.NotFound), (400, errors.InvalidInput), (409, UmbrellaError), (418, UmbrellaError)]
)
def test_a_code_the_sdk_does_not_know_falls_back_to_its_status(status: int, cls: type[UmbrellaError]) -> None:
    with pytest.raises(UmbrellaError) as caught:
        _client(httpx.Response(status, json=_envelope("brand_new_code"))).count("c")
    assert type(caught.value) is cls and caught.value.code == "brand_new_code" and caught.value.status == status


def test_an_error_without_an_envelope_keeps_its_status_and_text() -> None:
    with pytest.raises(UmbrellaError) as caught:
        _client(httpx.Response(502, text="<html>bad gateway</html>")).count("c")
    assert (type(caught.value), caught.value.status, caught.value.code) == (UmbrellaError, 502, "http_error")
    assert "bad gateway" in caught.value.message


def test_no_answer_at_all_is_connection_failed() -> None:
    with pytest.raises(errors.ConnectionFailed) as caught:
        _client(httpx.ConnectError("connection refused")).healthz()
    assert caught.value.status is None and isinstance(caught.value.__cause__, httpx.ConnectError)
    assert "connection refused" in str(caught.value)


# ---- retries -----------------------------------------------------------------------------------------
def test_backoff_doubles_up_to_the_cap_and_retry_after_wins() -> None:
    policy = RetryPolicy(attempts=6, backoff=0.5, max_delay=3, jitter=0)
    busy = errors.NotReady("warming up")
    assert [policy.delay(n, busy) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3, 3, None]
    assert policy.delay(1, errors.Overloaded("busy", retry_after=2)) == 2
    assert policy.delay(1, errors.Overloaded("busy", retry_after=60)) == 3
    assert policy.delay(1, errors.ConnectionFailed("reset")) == 0.5
    assert policy.delay(1, errors.DimensionMismatch("no")) is None
    jittered = RetryPolicy(backoff=1, jitter=0.25).delay(1, busy)
    assert jittered is not None and 1 <= jittered <= 1.25


# ---- requests ----------------------------------------------------------------------------------------
def test_the_api_key_header_path_quoting_and_a_base_url_with_a_prefix() -> None:
    seen: list[httpx.Request] = []
    profile = {"user": "a b/c", "events": 0, "counts": {}, "first_activity": None, "last_activity": None, "items": 0}
    answer = httpx.Response(200, json={**profile, "has_taste": False, "top_categories": [], "new_field": 1})
    client = _client(answer, seen, base_url="http://umbrella.test/api/", api_key="k")
    assert client.get_user("my shop", "a b/c").user == "a b/c"  # an unknown response field is ignored
    (request,) = seen
    assert request.url.raw_path == b"/api/collections/my%20shop/users/a%20b%2Fc?with_vector=false"
    assert request.headers["api-key"] == "k" and request.headers["user-agent"].startswith("umbrella-client/")


def test_http_client_is_an_alternative_to_base_url_timeout_and_transport() -> None:
    with pytest.raises(TypeError):
        Client(http_client=httpx.Client(base_url="http://x"), transport=httpx.MockTransport(lambda r: r))
    with pytest.raises(ValueError, match="base_url"):
        Client(http_client=httpx.Client())
