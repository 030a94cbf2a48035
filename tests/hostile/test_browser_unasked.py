"""In real Chromium: another site's <img> of content this node does not hold starts no fetch,
and a link to it asks the user first (issue 16, item 1)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from playwright.async_api import Browser, Request

from peerweb.tools.testnet import Testnet
from tests.browser.conftest import browser  # noqa: F401  (the fixture)


async def test_an_img_on_another_site_starts_no_fetch_and_a_link_asks(
        browser: Browser, tmp_path: Path) -> None:  # noqa: F811
    target = tmp_path / "target"
    target.mkdir()
    (target / "index.html").write_text("<!doctype html><title>Target</title><h1 id=t>target</h1>")
    async with Testnet(2) as net:
        publisher, visitor = net.nodes
        wanted = await publisher.node.publish(target, "target")
        port = visitor.gateway_address[1]
        site_url = f"http://{wanted.site_id}.localhost:{port}/"
        snapshot_url = f"http://localhost:{port}/ih/{wanted.infohash}/index.html"
        page_dir = tmp_path / "page"
        page_dir.mkdir()
        (page_dir / "index.html").write_text(
            "<!doctype html><title>Page</title>"
            f"<img id=snap src='{snapshot_url}'><img id=site src='{site_url}'>"
            f"<a id=go href='{site_url}'>go</a>")
        page_site = await publisher.node.publish(page_dir, "page")

        context = await browser.new_context()
        page = await context.new_page()
        # Chromium's opaque-response blocking hides the 403 from the page (and from
        # Playwright's response events); the request ends either way, after the gateway
        # answered. Before the fix that answer came once the whole torrent was fetched.
        ended: dict[str, asyncio.Future[str | None]] = {
            url: asyncio.get_running_loop().create_future() for url in (snapshot_url, site_url)}

        def done(request: Request) -> None:
            future = ended.get(request.url)
            if future is not None and not future.done():
                future.set_result(request.failure)

        page.on("requestfinished", done)
        page.on("requestfailed", done)
        # The user opens the page site: their own navigation, so it is fetched.
        await page.goto(f"http://{page_site.site_id}.localhost:{port}/", timeout=60_000)
        failures = await asyncio.wait_for(asyncio.gather(*ended.values()), 30)
        assert failures == ["net::ERR_BLOCKED_BY_ORB"] * 2
        assert not visitor.node.holds(wanted.infohash)
        assert wanted.site_id not in visitor.node.state.sites

        # A click on the link: a page that asks; confirming loads the site.
        await page.click("#go")
        await page.wait_for_selector("button", timeout=30_000)
        assert await page.title() == "Open this site?"
        assert not visitor.node.holds(wanted.infohash)
        await page.click("button")
        await page.wait_for_selector("#t", timeout=60_000)
        assert page.url == site_url
        assert visitor.node.holds(wanted.infohash)
        await context.close()
