"""Swagger UI and ReDoc from files installed with the server (fastapi-offline's copies), never a CDN."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
    """/docs (Swagger UI), /redoc and their scripts, for an app made with docs_url=None, redoc_url=None. The
    pages are the same for every request: they are made once, here."""
    title = f"{app.title} — API"
    pages = {
        "/docs": get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=title,
            swagger_js_url="/docs/swagger-ui-bundle.js",
            swagger_css_url="/docs/swagger-ui.css",
            swagger_favicon_url="/docs/favicon.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        ),
        "/docs/oauth2-redirect": get_swagger_ui_oauth2_redirect_html(),
        "/redoc": get_redoc_html(
            openapi_url="/openapi.json",
            title=title,
            redoc_js_url="/docs/redoc.standalone.js",
            redoc_favicon_url="/docs/favicon.png",
            with_google_fonts=False,
        ),
    }
    for path, page in pages.items():
        app.add_route(path, _page(page.body), include_in_schema=False)
    for name in ASSET_FILES:
        app.add_route(f"/docs/{name}", _asset(ASSETS / name), include_in_schema=False)


def _page(html: bytes) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def send(_: Request) -> HTMLResponse:
        return HTMLResponse(html)

    return send


def _asset(path: Path) -> Callable[[Request], Awaitable[FileResponse]]:
    async def send(_: Request) -> FileResponse:
        return FileResponse(path, headers={"cache-control": "public, max-age=86400"})

    return send
