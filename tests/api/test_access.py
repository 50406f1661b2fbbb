"""Access control: the whole permission matrix (every route × every kind of caller), read from README.md."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import api_routes, create_app
from tests.api.helpers import error

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"  # 32+ bytes: HS256 wants that much
READ_ONLY_KEY = "read-only-key-for-tests-0123456789"
README = Path(__file__).parents[2] / "README.md"


def token(access: Any, *, key: str = ADMIN_KEY, expires_in: float | None = None, **header: Any) -> str:
    claims: dict[str, Any] = {"access": access}
    if expires_in is not None:
        claims["exp"] = int(time.time() + expires_in)
    return jwt.encode(claims, key, algorithm="HS256", headers=header or None)


# One column per kind of caller, in the README's order; "c" is the collection every request names.
CALLERS: dict[str, str | None] = {
    "admin key": ADMIN_KEY,
    "read-only key": READ_ONLY_KEY,
    'token "rw"': token("rw"),
    'token "r"': token("r"),
    "token r on c": token([{"collection": "c", "access": "r"}]),
    "token rw on c": token([{"collection": "c", "access": "rw"}]),
    "token rw on another": token([{"collection": "another", "access": "rw"}]),
    "expired token": token("rw", expires_in=-60),
    "no key": None,
}

V = [0.1, 0.2, 0.3, 0.4]
# Each route of the README table → the request that exercises it. Requests that an allowed caller would
# use to destroy something aim at what does not exist (404), so every caller meets the same state.
REQUESTS: dict[str, dict[str, Any]] = {
    "GET /healthz": {},
    "GET /readyz": {},
    "GET /metrics": {},
    "GET /cluster": {},
    "GET /collections": {},
    "PUT /collections/{name}": {"url": "/collections/c", "json": {"dim": 4}},  # exists: 409 when allowed
    "GET /collections/{name}": {},
    "DELETE /collections/{name}": {"url": "/collections/ghost"},
    "POST /collections/{name}/tune": {"json": {"k": 1}},
    "PUT /collections/{name}/lexical": {"json": {"fields": ["title"]}},
    "DELETE /collections/{name}/lexical": {},
    "PUT /collections/{name}/payload_indexes/{field}": {
        "url": "/collections/c/payload_indexes/f",
        "json": {"type": "bool"},
    },
    "DELETE /collections/{name}/payload_indexes/{field}": {"url": "/collections/c/payload_indexes/f"},
    "POST /collections/{name}/facets": {"json": {"key": "nothing-indexed"}},
    "PUT /collections/{name}/points": {"json": {"points": [{"id": "p1", "vector": V}]}},
    "POST /collections/{name}/points/get": {"json": {"ids": ["p1"]}},
    "POST /collections/{name}/points/delete": {"json": {"ids": ["nothing-here"]}},
    "POST /collections/{name}/points/count": {"json": {}},
    "POST /collections/{name}/points/scroll": {"json": {}},
    "POST /collections/{name}/search": {"json": {"vector": V}},
    "POST /collections/{name}/search/batch": {"json": {"searches": [{"vector": V}]}},
    "POST /collections/{name}/search/image": {},  # no file: 422 when allowed
    "POST /collections/{name}/recommend": {"json": {"positive": ["p1"]}},
    "POST /collections/{name}/events": {"json": {"events": [{"user": "u", "item": "p1", "type": "view"}]}},
    "GET /collections/{name}/users/{user}": {"url": "/collections/c/users/u"},
    "GET /collections/{name}/users/{user}/recommendations": {"url": "/collections/c/users/u/recommendations"},
    "POST /collections/{name}/ranker/train": {"json": {}},
    "GET /collections/{name}/ranker": {},
    "GET /collections/{name}/ranker/curves.svg": {},
    "POST /collections/{name}/embedder/finetune": {"json": {}},  # a vector collection: 400 when allowed
    "GET /collections/{name}/embedder/finetune": {},
    "DELETE /collections/{name}/embedder/finetune": {},
    "GET /collections/{name}/embedder/finetune/curves.svg": {},
    "GET /collections/{name}/embedder": {},
    "POST /collections/{name}/embedder/finetune/apply": {},  # a vector collection: 400 when allowed
    "POST /collections/{name}/embedder/finetune/rollback": {},
    "POST /collections/{name}/snapshots": {},
    "GET /collections/{name}/snapshots": {},
    "GET /collections/{name}/snapshots/{snapshot}": {"url": "/collections/c/snapshots/ghost.snapshot"},
    "DELETE /collections/{name}/snapshots/{snapshot}": {"url": "/collections/c/snapshots/ghost.snapshot"},
    "POST /collections/{name}/snapshots/{snapshot}/restore": {"url": "/collections/c/snapshots/ghost.snapshot/restore"},
}


def readme_matrix() -> tuple[list[str], dict[str, list[str]]]:
    """The table under README's "### Who may call what": its caller columns and, per route, its cells."""
    section = README.read_text().split("### Who may call what", 1)[1].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("|"))
    rows = list(itertools.takewhile(lambda line: line.startswith("|"), section[start:]))
    split = [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]
    header, body = split[0], split[2:]  # split[1] is the |---| line
    return header[1:], {row[0]: row[1:] for row in body}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"), index_threads=1, api_key=ADMIN_KEY, read_only_api_key=READ_ONLY_KEY
    )
    with TestClient(create_app(settings)) as client:
        admin = {"api-key": ADMIN_KEY}
        for name in ("c", "another"):
            assert client.put(f"/collections/{name}", json={"dim": 4}, headers=admin).status_code == 201
            client.put(f"/collections/{name}/points", json={"points": [{"id": "p1", "vector": V}]}, headers=admin)
        yield client


def test_the_readme_matrix_covers_every_route_and_every_caller() -> None:
    callers, matrix = readme_matrix()
    assert callers == list(CALLERS)
    routes = {f"{method} {route.path}" for route in api_routes() for method in route.methods}
    assert set(matrix) == routes == set(REQUESTS)


@pytest.mark.parametrize("caller", list(CALLERS))
def test_every_route_answers_each_caller_as_the_readme_says(guarded: TestClient, caller: str) -> None:
    callers, matrix = readme_matrix()
    credential = CALLERS[caller]
    headers = {"api-key": credential} if credential else {}
    wrong = []
    for route, cells in matrix.items():
        method, template = route.split(" ", 1)
        request = REQUESTS[route]
        url = request.get("url", template.replace("{name}", "c"))
        response = guarded.request(method, url, json=request.get("json"), headers=headers)
        expected = cells[callers.index(caller)]
        allowed = response.status_code not in (401, 403)
        if not (allowed if expected == "✓" else str(response.status_code) == expected):
            wrong.append(f"{route}: {response.status_code}, README says {expected}")
        if not allowed:
            code = {401: "unauthorized", 403: "forbidden"}[response.status_code]
            assert response.json()["error"]["code"] == code
    assert not wrong, wrong


def test_both_header_forms_and_only_the_bearer_prefix(guarded: TestClient) -> None:
    assert guarded.get("/collections", headers={"Authorization": f"Bearer {READ_ONLY_KEY}"}).status_code == 200
    assert guarded.get("/collections", headers={"Authorization": f"bearer {ADMIN_KEY}"}).status_code == 200
    error(guarded.get("/collections", headers={"Authorization": ADMIN_KEY}), 401, "unauthorized")
    error(guarded.get("/collections", headers={"Authorization": f"Basic {ADMIN_KEY}"}), 401, "unauthorized")
    error(guarded.get("/collections", headers={"api-key": "wrong"}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("credential", "says"),
    [
        (token("rw", expires_in=-60), "token expired"),
        (token("rw", key="another-key-of-at-least-32-bytes-x"), "invalid token"),
        (jwt.encode({"access": "rw"}, None, algorithm="none"), "invalid token"),  # alg: none
        (token("rw") + "x", "invalid token"),
        ("a.b.c", "invalid token"),
        (jwt.encode({"sub": "me"}, ADMIN_KEY, algorithm="HS256"), 'no "access" claim'),
        (token("admin"), '"access" claim must be'),
        (token([{"collection": "c", "access": "x"}]), '"access" claim must be'),
        (token([{"collection": "c"}]), '"access" claim must be'),
    ],
)
def test_a_bad_token_is_401_and_says_why(guarded: TestClient, credential: str, says: str) -> None:
    body = error(guarded.get("/collections/c", headers={"api-key": credential}), 401, "unauthorized")
    assert says in body["message"]
    assert ADMIN_KEY not in body["message"]


def test_a_token_that_has_not_expired_works(guarded: TestClient) -> None:
    headers = {"Authorization": f"Bearer {token('r', expires_in=60)}"}
    assert guarded.get("/collections/c", headers=headers).status_code == 200


def test_listing_and_readiness_show_only_what_the_caller_may_read(guarded: TestClient) -> None:
    def names(credential: str) -> set[str]:
        listed = guarded.get("/collections", headers={"api-key": credential}).json()["collections"]
        return {info["name"] for info in listed}

    assert names(ADMIN_KEY) == names(READ_ONLY_KEY) == {"c", "another"}
    assert names(CALLERS["token r on c"]) == {"c"}  # type: ignore[arg-type]
    assert names(CALLERS["token rw on another"]) == {"another"}  # type: ignore[arg-type]
    anonymous = guarded.get("/readyz")
    assert anonymous.status_code == 200 and anonymous.json() == {"status": "ready", "collections": {}}
    scoped = guarded.get("/readyz", headers={"api-key": CALLERS["token r on c"]}).json()  # type: ignore[dict-item]
    assert scoped["collections"] == {"c": "ready"}


def test_docs_follow_public_docs(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_key=ADMIN_KEY, public_docs=False)
    with TestClient(create_app(settings)) as client:
        error(client.get("/openapi.json"), 401, "unauthorized")
        error(client.get("/docs"), 401, "unauthorized")
        assert client.get("/openapi.json", headers={"api-key": READ_ONLY_KEY}).status_code == 401  # no such key here
        assert client.get("/openapi.json", headers={"api-key": ADMIN_KEY}).status_code == 200
        assert client.get("/healthz").status_code == 200
    with TestClient(create_app(Settings(data_dir=tmp_path, api_key=ADMIN_KEY))) as client:
        assert client.get("/openapi.json").status_code == 200  # the default: open
        for page, script in (("/docs", "/docs/swagger-ui-bundle.js"), ("/redoc", "/docs/redoc.standalone.js")):
            html = client.get(page).text
            assert f'src="{script}"' in html and "https://" not in html  # works offline: nothing from a CDN
            asset = client.get(script)
            assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/javascript")
        assert client.get("/docs/swagger-ui.css").status_code == 200


def test_the_spec_shows_the_rule_of_every_operation(guarded: TestClient) -> None:
    spec = guarded.get("/openapi.json").json()
    rules = {op["x-umbrella-access"] for path in spec["paths"].values() for op in path.values()}
    assert rules == {"open", "listed", "read", "write", "manage"}  # /metrics is not in the spec


def test_key_settings_that_make_no_sense_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="needs UMBRELLA_API_KEY"):
        Settings(data_dir=tmp_path, read_only_api_key=READ_ONLY_KEY)
    with pytest.raises(ValueError, match="must differ"):
        Settings(data_dir=tmp_path, api_key=ADMIN_KEY, read_only_api_key=ADMIN_KEY)


@pytest.mark.parametrize(
    ("host", "key", "allow", "refused"),
    [
        ("127.0.0.1", None, False, False),
        ("127.0.0.2", None, False, False),
        ("::1", None, False, False),
        ("localhost", None, False, False),
        ("0.0.0.0", None, False, True),
        ("::", None, False, True),
        ("192.168.1.10", None, False, True),
        ("my-host", None, False, True),
        ("0.0.0.0", ADMIN_KEY, False, False),
        ("0.0.0.0", None, True, False),
    ],
)
def test_a_server_refuses_to_listen_beyond_loopback_without_a_key(
    tmp_path: Path, host: str, key: str | None, allow: bool, refused: bool
) -> None:
    settings = Settings(data_dir=tmp_path, host=host, api_key=key, allow_unauthenticated=allow)
    refusal = settings.unsafe_bind()
    assert (refusal is not None) == refused
    if refusal:
        assert re.search(r"UMBRELLA_API_KEY.*UMBRELLA_ALLOW_UNAUTHENTICATED=1", refusal)
        assert "\n" not in refusal
