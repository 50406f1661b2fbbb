"""Routes on the hot path that parse their own body (pydantic's JSON parser), still documented in OpenAPI."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.responses import Response

from app.api.access import GuardedRoute

M = TypeVar("M", bound=BaseModel)
_REF = "#/components/schemas/{model}"


class SelfParsingRoute(GuardedRoute):
    """A route FastAPI documents as usual but calls as `endpoint(request, **path_params)`: no dependency
    solving and no body parsing per call. Search is the hot path, and there FastAPI's per-request machinery
    cost more than the graph search itself (benchmarks/RESULTS.md); the endpoint reads what it needs from
    `request.app.state` and parses its body, a `body_model`, with `parse_body`. The page shows that model
    as the request body (`install_documented_bodies` adds it to the components).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], *, body_model: type[BaseModel], **kwargs: Any) -> None:
        self.body_model = body_model
        schema = {"$ref": _REF.format(model=body_model.__name__)}
        body = {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
        super().__init__(path, endpoint, openapi_extra={**kwargs.pop("openapi_extra", {}), **body}, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            return await endpoint(request, **request.path_params)  # type: ignore[no-any-return]

        return handle


def parse_body(model: type[M], raw: bytes) -> M:
    """Validate straight from the JSON bytes: pydantic's own parser is several times faster than
    json.loads followed by validation, which is what FastAPI does for a declared body.
    """
    try:
        return model.model_validate_json(raw)
    except ValidationError as err:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None


def install_documented_bodies(app: FastAPI) -> None:
    """Add the body models of the app's SelfParsingRoutes (and the models they use) to the OpenAPI components."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = default()  # FastAPI caches it in app.openapi_schema: extended once, served from then on
        components = spec.setdefault("components", {}).setdefault("schemas", {})
        for model in {route.body_model for route in app.routes if isinstance(route, SelfParsingRoute)}:
            schema = model.model_json_schema(ref_template=_REF)
            for name, part in [*schema.pop("$defs", {}).items(), (model.__name__, schema)]:
                components.setdefault(name, part)  # FastAPI's own rendering of a shared model wins
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
