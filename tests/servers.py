"""Small HTTP servers the integration and browser tests stand peerweb beside."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

DYNAMIC_PAGE = b"<!doctype html><title>now</title><body><p id=now>dynamic</p></body>"
"""What an upstream's one dynamic page (/api/now) answers."""


def upstream_app(folder: Path) -> web.Application:
    """A plain web server: the site's files, plus one dynamic page."""
    app = web.Application()

    async def dynamic(_request: web.Request) -> web.Response:
        return web.Response(body=DYNAMIC_PAGE, content_type="text/html")

    async def index(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(folder / "index.html")

    app.router.add_get("/api/now", dynamic)
    app.router.add_get("/", index)  # as web servers do; aiohttp's static files refuse "/"
    app.router.add_static("/", folder)
    return app


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """``app`` on a free port of ``host``; yields its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    bound_host, port = runner.addresses[0][:2]
    try:
        yield f"http://{bound_host}:{port}"
    finally:
        await runner.cleanup()
