"""One error envelope for every failure: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from app.core.errors import InsufficientStorage, Overloaded, UmbrellaError, is_disk_full

log = logging.getLogger(__name__)
_HTTP_CODES = {400: "invalid_body", 404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}


# A Python repr such as <_io.BytesIO object at 0x7f…> tells a caller nothing and the server's internals too much.
_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> Response:
    body = {"error": {"code": code, "message": _REPR.sub("<object>", message), "details": details or {}}}
    return Response(orjson.dumps(body, default=str), status_code=status, media_type="application/json", headers=headers)


def umbrella_error_response(exc: UmbrellaError, headers: dict[str, str] | None = None) -> Response:
    if isinstance(exc, Overloaded):
        headers = {**(headers or {}), "Retry-After": str(exc.retry_after)}
    return error_response(exc.status_code, exc.code, exc.message, exc.details, headers=headers)


def validation_error_response(raw_errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> Response:
    """422 listing what did not match the schema (inputs left out: they can be huge)."""
    errors = [
        {"loc": [*prefix, *e.get("loc", ())], "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in raw_errors[:20]
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"])
    return error_response(422, "validation_error", f"{where}: {first['msg']}", {"errors": errors})


async def _umbrella(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, UmbrellaError)
    return umbrella_error_response(exc)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return validation_error_response(exc.errors())


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)  # 405 keeps its Allow


async def _unexpected(request: Request, exc: Exception) -> Response:
    if is_disk_full(exc):  # a write outside the database (a snapshot, a ranker file) met a full disk
        log.warning("disk full on %s %s: %s", request.method, request.url.path, exc)
        return umbrella_error_response(InsufficientStorage("no space left on the server's disk: nothing was kept"))
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(UmbrellaError, _umbrella)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
