"""The SDK stays in step with the server: same error codes, a method for every REST operation, no app imports."""

from __future__ import annotations

import inspect
import subprocess
import sys

import umbrella_client
from umbrella_client import AsyncClient, Client, errors
from umbrella_client.calls import OPERATIONS

from app.core import errors as server_errors
from app.core.config import Settings
from app.main import create_app

HTTP_METHODS = {"get", "put", "post", "delete", "patch"}


def _tree(classes: list[type], root: type) -> dict[str, tuple[int | None, str | None]]:
    """code → (status, parent's code): the codes, their statuses and the shape of the tree."""
    return {c.code: (c.status_code, c.__base__.code if c is not root else None) for c in classes}


def test_the_sdk_has_one_error_class_per_server_code_in_the_same_tree() -> None:
    server = _tree(server_errors.all_error_classes(), server_errors.UmbrellaError)
    sdk = _tree(list(errors.ERRORS_BY_CODE.values()), errors.UmbrellaError)
    assert sdk == server
    for cls in server_errors.all_error_classes():  # same names too, so `except errors.X` reads like the server
        assert errors.ERRORS_BY_CODE[cls.code].__name__ == cls.__name__


def test_every_server_operation_has_an_sdk_method_and_no_more(settings: Settings) -> None:
    paths = create_app(settings).openapi()["paths"]
    server = {(m.upper(), path) for path, ops in paths.items() for m in ops if m in HTTP_METHODS}
    sdk = {(op.method, op.path) for op in OPERATIONS.values()}
    assert sdk == server, f"missing in the SDK: {sorted(server - sdk)}; not on the server: {sorted(sdk - server)}"


def test_both_clients_have_every_operation_sync_and_async() -> None:
    for name, op in OPERATIONS.items():
        sync, coro = getattr(Client, name), getattr(AsyncClient, name)
        assert sync.operation is op and coro.operation is op, name
        assert not inspect.iscoroutinefunction(sync) and inspect.iscoroutinefunction(coro), name
        assert inspect.signature(sync) == inspect.signature(coro), name
    assert _public(Client) - {"close"} == _public(AsyncClient) - {"aclose"}  # upload too, and nothing one-sided


def _public(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if callable(value) and not name.startswith("_")}


def test_the_public_names_are_honest() -> None:
    assert sorted(umbrella_client.__all__) == sorted(set(umbrella_client.__all__))
    for name in umbrella_client.__all__:
        assert hasattr(umbrella_client, name), name


def test_importing_the_sdk_loads_neither_the_app_nor_the_optional_extras() -> None:
    code = (
        "import sys, umbrella_client; "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('app', 'numpy', 'tqdm', 'fastapi', 'starlette')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
