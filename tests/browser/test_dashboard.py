"""The dashboard and the first-visit page in real Chromium, on real nodes of a private
network. Each test leaves screenshots (PNG) in its tmp dir."""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from playwright.async_api import Browser, Page, expect

from peerweb.config import NodeConfig
from peerweb.tools.testnet import Testnet

from ..servers import serving
from ..waiting import wait_until

ALPHA_TITLE = "Alpha & <Friends>"
BIG = 16 * 1024 * 1024


def write_site(folder: Path, title: str, marker: str, big: int = 0,
               extra: dict[str, bytes] | None = None) -> None:
    escaped = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    files = {"index.html": (f"<!doctype html><meta charset=utf-8><title>{escaped}</title>"
                            f"<h1 id=hello>{marker}</h1>").encode(),
             "css/site.css": b"h1 { color: teal }\n", **(extra or {})}
    if big:
        files["media/big.bin"] = bytes(range(256)) * (big // 256)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)


async def dashboard_token(page: Page, base: str) -> str:
    await page.goto(base + "/")
    value = await page.locator("form.open input[name=token]").get_attribute("value")
    assert value
    return value


# Uploads limited, loopback included: the visitor stays connected (still fetching the big
# file) while the test looks at its peers, instead of finishing and dropping the seed.
SLOW = NodeConfig(upload_limit=300_000, limit_local_peers=True)


async def test_dashboard_lists_sites_pins_and_opens(browser: Browser, http, tmp_path) -> None:
    async with Testnet(2, template=SLOW) as net:
        a, b = net.nodes
        write_site(tmp_path / "alpha", ALPHA_TITLE, "alpha", big=BIG)
        write_site(tmp_path / "beta", "Beta", "beta")
        alpha = (await a.node.publish(tmp_path / "alpha", "alpha")).site_id
        beta = await b.node.publish(tmp_path / "beta", "beta")
        status, _, _ = await http(b).site(alpha, "/")  # B visits Alpha
        assert status == 200

        async def alpha_has_a_peer() -> bool:
            sites = {s["site_id"]: s for s in (await b.node.status())["sites"]}
            return bool(sites[alpha].get("peers", 0) >= 1)

        await wait_until(alpha_has_a_peer, 20, "B to be connected to A for Alpha")

        base = f"http://localhost:{b.gateway_address[1]}"
        page = await (await browser.new_context(viewport={"width": 1280, "height": 900})
                      ).new_page()
        await page.goto(base + "/")
        visited = page.locator(f"#cached tr[data-site='{alpha}']")
        await expect(visited.locator(".title")).to_have_text(ALPHA_TITLE)
        await expect(visited).to_contain_text("16.8 MB")
        await expect(visited.locator("[data-field=peers]")).to_have_text("1")
        own = page.locator(f"#published tr[data-site='{beta.site_id}']")
        await expect(own.locator(".title")).to_have_text("Beta")
        await expect(own).to_contain_text(f"{beta.size} B")
        # Links point at this gateway's own address, in the form browsers use.
        href = await visited.locator("a.button", has_text="Open").get_attribute("href")
        assert href == f"http://{alpha}.localhost:{b.gateway_address[1]}/"
        # The plot draws from stats.json once a second.
        three_samples = re.compile(r"\S+ \S+ \S+")
        await expect(page.locator("#plot-down")).to_have_attribute("points", three_samples)
        await page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

        await visited.get_by_role("button", name="Pin").click()
        await expect(page.locator(".notice")).to_contain_text("Pinned")
        assert b.node.state.sites[alpha].pinned
        await page.reload()
        pinned = page.locator(f"#pinned tr[data-site='{alpha}']")
        await expect(pinned.get_by_role("button", name="Unpin")).to_be_visible()
        await expect(page.locator(f"#cached tr[data-site='{alpha}']")).to_have_count(0)

        await pinned.get_by_role("link", name="Details").click()
        await expect(page.locator("h1")).to_have_text(ALPHA_TITLE)
        await expect(page.get_by_role("heading", name="Peers (1)")).to_be_visible()
        await expect(page.locator("svg.pieces rect").first).to_be_attached()
        await expect(page.locator(".spread")).to_contain_text("hold 1 copy of each")
        await expect(page.get_by_role("link", name="media/big.bin")).to_be_visible()
        await expect(page.get_by_text(f"http://localhost:{b.gateway_address[1]}/s/{alpha}/")
                     ).to_be_visible()
        await page.screenshot(path=tmp_path / "site.png", full_page=True)

        # The open box takes a magnet link and lands on the site.
        await page.goto(base + "/")
        await page.fill("#address", beta.magnet)
        await page.get_by_role("button", name="Open", exact=True).last.click()
        await expect(page.locator("#hello")).to_have_text("beta")
        assert page.url == f"http://{beta.site_id}.localhost:{b.gateway_address[1]}/"


ATTACK = """<!doctype html><title>win a prize</title>
<form id=f method=post action="{action}">
<input type=hidden name=token value="{token}"><input type=hidden name=site value="{site}">
<input type=hidden name=next value="/"></form>
<script>document.getElementById("f").submit()</script>"""


async def test_cross_site_posts_to_actions_are_refused(browser: Browser, tmp_path) -> None:
    async with Testnet(1) as net:
        node = net.nodes[0]
        port = node.gateway_address[1]
        base = f"http://localhost:{port}"
        page = await (await browser.new_context()).new_page()
        write_site(tmp_path / "site", "Victim", "victim")
        site = (await node.node.publish(tmp_path / "site", "victim")).site_id
        token = await dashboard_token(page, base)
        action = f"{base}/dashboard/action/pin"
        # The attacker even knows the token (as if it had leaked): the browser's own
        # Origin and Sec-Fetch-Site headers still give it away.
        evil_page = ATTACK.format(action=action, token=token, site=site)
        for name, text in (("attack.html", evil_page),
                           ("guess.html", ATTACK.format(action=action, token="", site=site))):
            (tmp_path / "site" / name).write_text(text)
        await node.node.publish(tmp_path / "site", "victim")  # v2, with the attack pages

        other = web.Application()

        async def attack(_request: web.Request) -> web.Response:
            return web.Response(text=evil_page, content_type="text/html")

        other.router.add_get("/", attack)
        async with serving(other, "127.0.0.2") as elsewhere:
            attackers = [f"http://{site}.localhost:{port}/attack.html",  # same site, other origin
                         f"http://{site}.localhost:{port}/guess.html",
                         f"http://localhost:{port}/s/{site}/attack.html",  # sandboxed: null
                         elsewhere + "/"]
            for url in attackers:
                async with page.expect_response(lambda r: "/dashboard/action/" in r.url) as got:
                    await page.goto(url)
                response = await got.value
                assert response.status == 403, url
                await expect(page.locator(".problem")).to_contain_text("Refused")
                assert not node.node.state.sites[site].pinned, url
            await page.screenshot(path=tmp_path / "refused.png")
        # A GET to an action does nothing either.
        response = await page.goto(action)
        assert response is not None and response.status == 405


async def test_first_visit_page_follows_a_slow_lookup(browser: Browser, http, tmp_path) -> None:
    # Short patience, so that the lookup of a site nobody publishes ends within the test.
    template = NodeConfig(fetch_timeout=6.0)
    async with Testnet(3, template=template) as net:
        a, b, _c = net.nodes
        port = b.gateway_address[1]
        site_id = a.node.keys.get_or_create("late").site_id
        write_site(tmp_path / "late", "Late", "arrived")
        page = await (await browser.new_context()).new_page()
        # Nobody publishes the site yet: the browser gets the waiting page at once.
        await page.goto(f"http://{site_id}.localhost:{port}/")
        await expect(page.locator("h1")).to_have_text("Opening a peerweb site…")
        await expect(page.locator("#step-pointer")).to_have_class("now")
        await page.screenshot(path=tmp_path / "waiting.png")

        result = await a.node.publish(tmp_path / "late", "late")
        assert result.site_id == site_id
        # The page moves on to the site by itself.
        await expect(page.locator("#hello")).to_have_text("arrived", timeout=30_000)
        await page.screenshot(path=tmp_path / "arrived.png")

        # A site nobody publishes: the lookup ends in words, with a way to try again.
        unknown = a.node.keys.get_or_create("never").site_id
        await page.goto(f"http://{unknown}.localhost:{port}/")
        await expect(page.locator("#headline")).to_have_text(
            "Nobody is sharing this site right now", timeout=30_000)
        await expect(page.get_by_role("button", name="Try again")).to_be_visible()
        await page.screenshot(path=tmp_path / "failed.png")
        # Clients that are not browsers keep the plain answer.
        status, headers, body = await http(b).site(unknown, "/")
        assert status == 404 and b"no signed pointer" in body
