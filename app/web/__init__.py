"""The product-search page at `/`: static files shipped in the package, calling the REST API from the browser."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse

STATIC = Path(__file__).parent / "static"
FILES = {"/": "index.html", "/ui/app.js": "app.js", "/ui/style.css": "style.css"}
PAGE_PATHS = frozenset(FILES)  # open to callers without a key: the page holds no data, its API calls carry one


def install_page(app: FastAPI) -> None:
    for path, name in FILES.items():
        app.add_route(path, _file(STATIC / name), include_in_schema=False)


def _file(path: Path) -> Callable[[Request], Awaitable[FileResponse]]:
    async def send(_: Request) -> FileResponse:
        return FileResponse(path, headers={"cache-control": "no-cache"})  # revalidated: a new release shows at once

    return send
