"""Headless Chromium (Debian's package) driven by Playwright, and a plain page with the
worker's parts (static/*.js but sw.js itself) loaded as the origin serves them, so the tests
can call them with plain values."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from peerweb.spike import loader

from ..servers import serving

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# No background traffic: this machine's network is closed, and tests stay on loopback.
ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps"]
PARTS = "V: self.peerwebVerify, D: self.peerwebDecide, P: self.peerwebPrefetch"
"""What an expression given to ``call`` sees: verify.js, decide.js and prefetch.js."""


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            await launched.close()


def parts_app() -> web.Application:
    app = web.Application()

    async def index(_request: web.Request) -> web.Response:
        tags = "".join(f"<script src='{path}'></script>" for path in loader.PART_PATHS)
        return web.Response(text=tags, content_type="text/html")

    async def script(request: web.Request) -> web.Response:
        found = loader.asset(request.path)
        assert found is not None
        return web.Response(body=found[0], headers=loader.asset_headers(request.path, found[1]))

    app.router.add_get("/", index)
    for path in loader.PART_PATHS:
        app.router.add_get(path, script)
    return app


@contextlib.asynccontextmanager
async def parts_page() -> AsyncIterator[Page]:
    """A page of its own Chromium with every part loaded. The parts hold no state between
    calls, so the tests of one module share it (a module-scoped fixture)."""
    async with chromium() as browser, serving(parts_app()) as base:
        page = await browser.new_page()
        await page.goto(base + "/")
        await page.wait_for_function("self.peerwebVerify && self.peerwebDecide"
                                     " && self.peerwebPrefetch")
        yield page


async def call(page: Page, expression: str, *args: Any) -> Any:
    """Run ``async ({V, D, P}, args) => expression`` in the page; errors come back as
    {'error': name, 'message': ...}."""
    return await page.evaluate(
        "async ([body, args]) => { const parts = {" + PARTS + "};"
        " try { return await (new Function('{V, D, P}', 'args',"
        " 'return (async () => ' + body + ')()'))(parts, args); }"
        " catch (e) { return {error: e.constructor.name, message: e.message}; } }",
        [expression, list(args)])
