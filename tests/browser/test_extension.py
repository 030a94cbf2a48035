"""The browser extension end to end (issue 18, "How we will know"): Debian's Chromium with the
extension loaded unpacked (a Playwright persistent context), an unaware origin (unaware.py),
and four real nodes with a web cache on a private DHT: the browser's own node and three peers
that cached the origin's pages earlier (as their users' extensions would have told them to).

The extension is set up through its own popup (node address, settings, the pairing code);
the tests wait on what it decided (the service worker's trace) and on the tab, never on time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import (
    BrowserContext,
    Error,
    Page,
    Response,
    Worker,
    async_playwright,
)

from peerweb import extension
from peerweb.config import NodeConfig
from peerweb.http.daemon import RunningNode
from peerweb.tools.testnet import Testnet
from peerweb.webcache import urls
from peerweb.webcache.settings import WebCacheSettings

from ..waiting import wait_until
from .pages import ARGS, CHROMIUM
from .unaware import Unaware

pytestmark = pytest.mark.asyncio(loop_scope="module")

WAIT = 20.0  # a bound on every wait; the lookups themselves take ~1.5 s at most
PAGE = "/index.html"
PARTS = ("/style.css", "/img/a.png", "/img/b.png")


@dataclass
class Nodes:
    net: Testnet
    tokens: dict[int, str]

    @property
    def mine(self) -> RunningNode:
        return self.net.nodes[0]

    @property
    def peers(self) -> list[RunningNode]:
        return self.net.nodes[1:]

    async def api(self, index: int, method: str, path: str, **kwargs: Any) -> Any:
        node = self.net.nodes[index]
        headers = {"Authorization": f"Bearer {self.tokens[index]}"}
        async with aiohttp.ClientSession() as session, session.request(
                method, node.gateway_url + "/_ext" + path, headers=headers, **kwargs) as r:
            assert r.status < 500, await r.text()
            return await r.json()

    async def cache(self, index: int, url: str) -> dict[str, Any]:
        """A peer's user visited ``url``: the peer fetches it itself; its verdict."""
        await self.api(index, "POST", "/seen", json={"url": url})
        got: dict[str, Any] = await self.api(index, "GET", "/wait", params={"url": url})
        return got


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def nodes() -> AsyncIterator[Nodes]:
    template = NodeConfig(web_cache=WebCacheSettings(size=50_000_000,
                                                     allow_private_origins=True))
    async with Testnet(4, template=template) as net:
        tokens = {}
        async with aiohttp.ClientSession() as session:
            for index, node in enumerate(net.nodes):
                code = node.node.web.pairing.issue(time.time())
                async with session.post(node.gateway_url + "/_ext/pair",
                                        json={"code": code}) as r:
                    assert r.status == 200
                    tokens[index] = (await r.json())["token"]
        yield Nodes(net, tokens)


@pytest_asyncio.fixture(loop_scope="module")
async def origin() -> AsyncIterator[Unaware]:
    async with Unaware() as served:
        yield served


async def cached_by_peers(nodes: Nodes, origin: Unaware, paths: tuple[str, ...] = (PAGE,),
                          peers: tuple[int, ...] = (1, 2, 3)) -> None:
    for path in paths:
        for index in peers:
            verdict = await nodes.cache(index, origin.base + path)
            assert verdict["cached"] is True, verdict


@dataclass
class Chromium:
    context: BrowserContext
    worker: Worker
    id: str

    def url(self, page: str) -> str:
        return f"chrome-extension://{self.id}/{page}"

    async def trace(self) -> list[dict[str, Any]]:
        got: list[dict[str, Any]] = await self.worker.evaluate("self.peerwebTrace")
        return got

    async def wait_trace(self, what: str, **fields: Any) -> dict[str, Any]:
        async def found() -> dict[str, Any] | None:
            for item in await self.trace():
                if item["what"] == what and all(item.get(k) == v for k, v in fields.items()):
                    return item
            return None
        return await wait_until(found, WAIT, f"the extension's {what!r} {fields}")

    async def setup(self, node: str, code: str | None, **settings: Any) -> Page:
        """Through the popup, as a user would: the settings, then the pairing code."""
        popup = await self.context.new_page()
        await popup.goto(self.url("popup.html"))
        await popup.fill("#node", node)
        for name, value in settings.items():
            element = f"#{name}"
            if isinstance(value, bool):
                await popup.set_checked(element, value)
            else:
                await popup.fill(element, str(value))
        await popup.click("#save")
        await popup.wait_for_selector("#saved:has-text('Saved')")
        if code is not None:
            await popup.fill("#code", code)
            await popup.click("#pair")
            await popup.wait_for_selector("#state[data-state=ok]", timeout=WAIT * 1000)
        return popup


@contextlib.asynccontextmanager
async def chromium_with_extension(profile: Path) -> AsyncIterator[Chromium]:
    folder = str(extension.folder())
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True,
            args=[*ARGS, f"--disable-extensions-except={folder}", f"--load-extension={folder}"])
        try:
            worker = (context.service_workers
                      or [await context.wait_for_event("serviceworker", timeout=WAIT * 1000)])[0]
            yield Chromium(context, worker, worker.url.split("/")[2])
        finally:
            await context.close()


@pytest_asyncio.fixture(loop_scope="module")
async def browser(tmp_path: Path) -> AsyncIterator[Chromium]:
    async with chromium_with_extension(tmp_path / "profile") as launched:
        yield launched
        errors = [t for t in await launched.trace() if t["what"] == "error"]
        assert not errors, errors


async def paired(browser: Chromium, nodes: Nodes, **settings: Any) -> None:
    code = nodes.mine.node.web.pairing.issue(time.time())
    popup = await browser.setup(nodes.mine.gateway_url, code, **settings)
    await popup.close()


def is_view(url: str, nodes: Nodes) -> bool:
    return ".web.localhost:" in url and url.endswith(f":{nodes.mine.gateway_address[1]}{PAGE}")


async def bodies_of(page: Page, responses: list[Response], suffixes: tuple[str, ...]
                    ) -> dict[str, bytes]:
    got = {}
    for response in responses:
        for suffix in suffixes:
            if response.url.endswith(suffix) and response.ok:
                got[suffix] = await response.body()
    return got


async def shows_the_copy(page: Page, origin: Unaware, nodes: Nodes) -> str:
    """The tab shows the origin's page from the peers: the banner, the honest title, the
    stylesheet applied and both images drawn. Returns the banner's text."""
    await page.wait_for_selector("#peerweb-webcache-banner", timeout=WAIT * 1000)
    assert is_view(page.url, nodes), page.url
    assert await page.text_content("#title") == "The unaware origin (honest)"
    await page.wait_for_function(
        "[...document.images].every((i) => i.complete && i.naturalWidth > 0)",
        timeout=WAIT * 1000)
    color = await page.eval_on_selector("#title", "(e) => getComputedStyle(e).color")
    assert color == "rgb(1, 2, 3)"
    link = await page.get_attribute("#peerweb-try-original", "href")
    assert link == origin.base + PAGE
    return await page.text_content("#peerweb-webcache-banner") or ""


async def test_a_509_shows_the_page_from_peers_with_its_banner_and_exact_files(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    await cached_by_peers(nodes, origin, (PAGE, *PARTS))
    await paired(browser, nodes, automatic=True)
    origin.mode = 509
    page = await browser.context.new_page()
    responses: list[Response] = []
    page.on("response", lambda r: responses.append(r))
    await page.goto(origin.base + PAGE)
    banner = await shows_the_copy(page, origin, nodes)
    assert "agreed" in banner
    decided = await browser.wait_trace("decision", act="view")
    assert decided["url"] == page.url
    failure = await browser.wait_trace("failure", url=origin.base + PAGE)
    assert failure["kind"] == "status" and "509" in failure["text"]
    # What the page drew came from the peers' copy, byte for byte as the origin served it.
    exact = await bodies_of(page, [r for r in responses if is_view_part(r.url)], PARTS)
    assert exact == {path: origin.body(path) for path in PARTS}
    assert origin.requests.count(PAGE) == 4  # three peers earlier, the browser once: 509


def is_view_part(url: str) -> bool:
    return ".web.localhost:" in url


async def on_the_rescue_page(page: Page, browser: Chromium) -> None:
    await wait_until(lambda: page.url.startswith(browser.url("rescue.html")), WAIT,
                     "the rescue page in the tab")
    await page.wait_for_selector("body[data-ready]", timeout=WAIT * 1000)


async def test_after_a_rescue_navigations_to_the_failing_origin_wait_at_the_peers(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    await cached_by_peers(nodes, origin, (PAGE, *PARTS))
    await paired(browser, nodes, automatic=True)
    origin.mode = 509
    page = await browser.context.new_page()
    await page.goto(origin.base + PAGE)
    await shows_the_copy(page, origin, nodes)
    await browser.wait_trace("holding", origin=origin.base)
    asked = len(origin.requests)
    # Typed again: held back (the origin is not asked), and the copy is shown.
    again = await browser.context.new_page()
    with contextlib.suppress(Error):  # net::ERR_BLOCKED_BY_CLIENT, then the copy
        await again.goto(origin.base + PAGE)
    await browser.wait_trace("failure", kind="held", url=origin.base + PAGE)
    await shows_the_copy(again, origin, nodes)
    assert len(origin.requests) == asked
    # The banner's "try the original again" is not held back; the origin answers: browsing
    # is back with it, and so is the next typed navigation.
    origin.mode = "ok"
    await again.click("#peerweb-try-original")
    await again.wait_for_url(origin.base + PAGE, timeout=WAIT * 1000)
    await again.wait_for_selector("#title:has-text('The unaware origin (honest)')")
    assert await again.query_selector("#peerweb-webcache-banner") is None
    await page.goto(origin.base + PAGE)
    assert await page.query_selector("#peerweb-webcache-banner") is None
    assert [path for path in origin.requests[asked:] if path == PAGE] == [PAGE, PAGE]


async def test_a_stalled_origin_gets_a_button_that_shows_the_copy(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    await cached_by_peers(nodes, origin, (PAGE, *PARTS))
    await paired(browser, nodes, stall=1)
    origin.mode = "stall"
    page = await browser.context.new_page()
    # Not page.goto: the navigation never ends (the extension replaces it).
    await page.evaluate("(url) => { location.href = url; }", origin.base + PAGE)
    await on_the_rescue_page(page, browser)
    failure = await browser.wait_trace("failure", url=origin.base + PAGE)
    assert failure["kind"] == "stall" and failure["text"] == "did not answer within 1 s"
    assert "not answering" in (await page.text_content("#title") or "")
    assert await page.text_content("#try-original") == "Keep waiting for the original"
    assert "agreed on a copy fetched" in (await page.text_content("#copy") or "")
    await page.click("#show-copy")
    await shows_the_copy(page, origin, nodes)


async def test_a_refused_connection_gets_the_same_button(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    await cached_by_peers(nodes, origin, (PAGE, *PARTS))
    await paired(browser, nodes)
    await origin.close()
    page = await browser.context.new_page()
    with contextlib.suppress(Error):  # net::ERR_CONNECTION_REFUSED
        await page.goto(origin.base + PAGE)
    await on_the_rescue_page(page, browser)
    failure = await browser.wait_trace("failure", url=origin.base + PAGE)
    assert failure == {**failure, "kind": "network", "text": "refused the connection"}
    assert "refused the connection" in (await page.text_content("#why") or "")
    await page.click("#show-copy")
    await shows_the_copy(page, origin, nodes)


async def test_a_hostile_holders_altered_copy_is_not_shown_and_it_is_avoided_afterwards(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    # The hostile peer holds a whole, self-consistent copy with other bytes (the origin gave
    # them to its fetch), dated between the two honest holders' fetches: the page cannot have
    # been different then. The honest fetch times are set apart as if their users had visited
    # a minute apart (kept again with the same bytes: a seconds-resolution clock would otherwise
    # make all three one instant, and the test must not wait for the clock).
    origin.version = "altered"
    await cached_by_peers(nodes, origin, (PAGE, *PARTS), peers=(3,))
    origin.version = "honest"
    await cached_by_peers(nodes, origin, (PAGE, *PARTS), peers=(1, 2))
    hostile = nodes.net.nodes[3].node.web
    lied_at = hostile.store.get(urls.normalise(origin.base + PAGE), own=True)
    assert lied_at is not None
    for index, shift in ((1, -60), (2, 1)):
        store = nodes.net.nodes[index].node.web.store
        entry = store.get(urls.normalise(origin.base + PAGE), own=True)
        assert entry is not None and entry.digest != lied_at.digest
        bodies = {r.sha256: store.body(r.sha256) or b"" for r in entry.manifest.resources}
        assert store.put(entry.manifest, bodies, lied_at.fetched_at + shift, own=True,
                         agreeing=1, now=time.time())
    await paired(browser, nodes, automatic=True)
    origin.mode = 509
    page = await browser.context.new_page()
    await page.goto(origin.base + PAGE)
    banner = await shows_the_copy(page, origin, nodes)
    assert "2 peers agreed" in banner
    assert "altered" not in await page.content()
    liar = hostile.peer_endpoint()
    assert nodes.mine.node.web.reputation.avoided(liar, time.monotonic())
    # Afterwards it is not asked: of three holders of the next page, two answer.
    origin.mode = "ok"
    await cached_by_peers(nodes, origin, ("/next.html",))
    found = await nodes.api(0, "GET", "/lookup", params={"url": origin.base + "/next.html"})
    assert found["found"] is True and found["holders"] == 2


async def test_a_page_with_set_cookie_or_private_is_never_cached_nor_served(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    for path in ("/cookie.html", "/private.html"):
        for index in (1, 2, 3):
            verdict = await nodes.cache(index, origin.base + path)
            assert verdict["cached"] is False, verdict
    await paired(browser, nodes, automatic=True)
    origin.mode = 503
    page = await browser.context.new_page()
    for path in ("/cookie.html", "/private.html"):
        await page.goto(origin.base + path)
        decided = await browser.wait_trace("decision", url=origin.base + path)
        assert decided["act"] == "none"
        assert page.url == origin.base + path  # the origin's own answer stays
        assert "503" in (await page.text_content("body") or "")


async def test_once_the_origin_recovers_the_next_navigation_goes_to_it(
        nodes: Nodes, origin: Unaware, browser: Chromium) -> None:
    await cached_by_peers(nodes, origin, (PAGE, "/next.html", *PARTS))
    await paired(browser, nodes, automatic=True, retry=0)
    origin.mode = 509
    page = await browser.context.new_page()
    await page.goto(origin.base + PAGE)
    await shows_the_copy(page, origin, nodes)
    origin.mode = "ok"
    before = len(origin.requests)
    await page.click("#next")  # a link inside the rescued page
    await page.wait_for_url(origin.base + "/next.html", timeout=WAIT * 1000)
    await page.wait_for_selector("#title:has-text('The next page (honest)')")
    assert await page.query_selector("#peerweb-webcache-banner") is None
    assert origin.requests[before:][0] == "/next.html"
    await browser.wait_trace("back to the origin", url=origin.base + "/next.html")
    await page.goto(origin.base + PAGE)  # and typed: the origin, no copy
    assert await page.query_selector("#peerweb-webcache-banner") is None
    assert await page.text_content("#title") == "The unaware origin (honest)"


async def test_without_a_running_node_it_says_so_and_does_nothing_else(
        origin: Unaware, browser: Chromium, tmp_path: Path) -> None:
    async with Unaware() as closed:  # a port where nothing answers once closed
        pass
    popup = await browser.setup(closed.base, None, automatic=True)
    await popup.wait_for_selector("#state[data-state=down]", timeout=WAIT * 1000)
    assert "No peerweb node answers at " + closed.base in (await popup.text_content("#state")
                                                          or "")
    assert await browser.worker.evaluate("chrome.action.getBadgeText({})") == "off"
    await popup.fill("#code", "abcdefghjk")
    await popup.click("#pair")
    await popup.wait_for_selector("#pair-result:has-text('no peerweb node answers')")
    origin.mode = 509
    page = await browser.context.new_page()
    await page.goto(origin.base + PAGE)
    nothing = await browser.wait_trace("nothing")
    assert "not paired" in nothing["why"]
    assert page.url == origin.base + PAGE  # the origin's own 509 page stays
    assert "509" in (await page.text_content("body") or "")
    assert [t["what"] for t in await browser.trace()
            if t["what"] not in ("node",)] == ["failure", "nothing"]
    assert [path for path in origin.requests if path != "/favicon.ico"] == [PAGE]

