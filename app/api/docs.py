"""Swagger UI and ReDoc from files installed with the server (fastapi-offline's copies), never a CDN."""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse

ASSETS = Path(fastapi_offline.__file__).parent / "static"
ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js", "favicon.png")
ASSET_PATHS = frozenset(f"/docs/{name}" for name in ASSET_FILES)


def install_docs(app: FastAPI) -> None:
    """/docs (Swagger UI), /redoc and their scripts, for an app made with docs_url=None, redoc_url=None."""

    async def swagger(_: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def redoc(_: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} — API",
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url="/docs/favicon.png",
            with_google_fonts=False,
        )

    def asset(name: str):  # type: ignore[no-untyped-def]
        async def send(_: Request) -> FileResponse:
            return FileResponse(ASSETS / name, headers={"cache-control": "public, max-age=86400"})

        return send

    app.add_route("/docs", swagger, include_in_schema=False)
    app.add_route("/docs/oauth2-redirect", oauth2_redirect, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)
    for name in ASSET_FILES:
        app.add_route(f"/docs/{name}", asset(name), include_in_schema=False)
