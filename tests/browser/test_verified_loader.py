"""The verifying loader end to end: headless Chromium visits an origin that hands off, and the
Service Worker takes the page from real peerweb mirrors, checking every byte.

A hostile mirror is a small proxy in front of a real one that alters what passes through."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import struct
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page

from peerweb.config import NodeConfig
from peerweb.content import bencode
from peerweb.node.node import Node
from peerweb.spike.handoff import LoadPolicy, Mode, Thresholds
from peerweb.spike.loader import CONFIG_PATH, WorkerTimings
from peerweb.spike.origin import Origin, OriginConfig, sitemap_of
from peerweb.tools.testnet import Testnet

from ..servers import DYNAMIC_PAGE, serving, upstream_app

SCRIPT = b'document.body.dataset.app = "ok";\n'
QUICK = WorkerTimings(config_refresh=0.3, bundle_wait=0.3, release_after=1.0)
"""The worker's timings here (worker.json): the origin's word is taken again within 0.3 s, so
a test that changes it waits that long, not 5 s."""
BIG = 3 * 1024 * 1024 + 777  # several pieces: streamed and checked piece by piece


def png() -> bytes:
    """A valid 2x2 grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\x80\x80" for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_site(folder: Path, version: int) -> dict[str, bytes]:
    contents = {
        "index.html": (b"<!doctype html><meta charset=utf-8><title>Verified</title>"
                       b"<link rel=stylesheet href=style.css>"
                       b"<h1 id=title>peerweb v%d</h1><img id=logo src=img/logo.png>"
                       b"<video id=clip src=media/big.bin preload=metadata muted></video>"
                       b"<script src=app.js></script>" % version),
        "about.html": b"<!doctype html><title>About</title><p id=about>about v%d</p>" % version,
        "notes.txt": b"notes v%d\n" % version,
        "style.css": b"h1 { color: rgb(1, 2, 3); }\n",
        "app.js": SCRIPT,
        "img/logo.png": png(),
        "media/big.bin": hashlib.sha256(b"big%d" % version).digest() * (BIG // 32)
        + b"x" * (BIG % 32),
    }
    for name, data in contents.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return contents


def handing_off() -> LoadPolicy:
    """An origin already in hand-off mode that stays there for the test."""
    policy = LoadPolicy(Thresholds(capacity=1e12, leave_after=3600.0))
    policy.mode = Mode.HANDOFF
    return policy


class HostileMirror:
    """A proxy in front of a real mirror gateway. ``mode``: 'alter' flips one byte of every
    script, 'stale' hands out an old signed record and bundle (``old``), 'lagging' the current
    record but an old bundle (a mirror caught mid-update), 'forge' bumps the version
    of the real record without re-signing it, 'layer' alters a piece layer in torrents
    (outside the signed info dict), 'slow' holds bundles until ``release`` is set. ``asked``
    counts requests: record, current (a record with its torrent), torrent, bundle (of the
    small files), file."""

    def __init__(self, real: str, mode: str, old: tuple[bytes, bytes, str] | None = None
                 ) -> None:
        """``old``: a former record (JSON), bundle and its snapshot's info-hash."""
        self.real, self.mode, self.old = real, mode, old
        self.asked: Counter[str] = Counter()
        self.release = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.Response:
        cors = {"Access-Control-Allow-Origin": "*",
                "Access-Control-Expose-Headers": "Content-Range, Content-Length, "
                                                 "X-Peerweb-Snapshot"}
        if request.method == "OPTIONS":
            return web.Response(status=204, headers={**cors, "Access-Control-Allow-Headers":
                                                     "Range"})
        path = request.raw_path
        kind = next((k for k in ("record", "current", "torrent", "bundle")
                     if f"/v1/{k}/" in path), "file")
        self.asked[kind] += 1
        if kind == "bundle" and self.mode == "slow":
            await self.release.wait()
            return web.Response(status=503, headers=cors)
        if self.mode == "lagging" and kind == "bundle" or self.mode == "stale" and kind in (
                "record", "current", "bundle"):
            assert self.old is not None
            record, bundle, infohash = self.old
            if kind == "bundle":
                return web.Response(body=bundle, headers={**cors, "X-Peerweb-Snapshot": infohash})
            return web.Response(body=record if kind == "record"
                                else bencode.encode({b"record": record}), headers=cors)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Range": request.headers["Range"]} if "Range" in request.headers else {}
        async with self._session.get(self.real + path, headers=headers) as real:
            body = await real.read()
            keep = {k: v for k, v in real.headers.items()
                    if k in ("Content-Type", "Content-Range", "X-Peerweb-Snapshot")}
            status = real.status
        if kind in ("record", "current") and self.mode == "forge":
            parts = bencode.decode(body) if kind == "current" else {b"record": body}
            assert isinstance(parts, dict)
            record = json.loads(parts[b"record"])  # type: ignore[arg-type]
            value = bytes.fromhex(record["value"])
            record["value"] = value.replace(b"1:vi2e", b"1:vi9e").hex()
            parts[b"record"] = json.dumps(record).encode()
            body = bencode.encode(parts) if kind == "current" else parts[b"record"]
        if kind in ("torrent", "current") and self.mode == "layer":
            parts = bencode.decode(body) if kind == "current" else {b"torrent": body}
            assert isinstance(parts, dict) and isinstance(parts[b"torrent"], bytes)
            torrent = bencode.decode(parts[b"torrent"])
            assert isinstance(torrent, dict) and isinstance(torrent[b"piece layers"], dict)
            for root, layer in torrent[b"piece layers"].items():
                assert isinstance(layer, bytes)
                torrent[b"piece layers"][root] = layer[:40] + bytes([layer[40] ^ 1]) + layer[41:]
            parts[b"torrent"] = bencode.encode(torrent)
            body = bencode.encode(parts) if kind == "current" else parts[b"torrent"]
        if self.mode == "alter" and (kind == "bundle" or kind == "file" and path.endswith(".js")):
            body = body.replace(b'"ok"', b'"xk"')  # one byte of the script
        return web.Response(status=status, body=body, headers={**keep, **cors})


@contextlib.asynccontextmanager
async def behind(folder: Path, site_id: str, mirror: HostileMirror
                 ) -> AsyncIterator[tuple[Origin, str, str]]:
    """An origin that hands off to ``mirror`` alone: yields it, its URL and the mirror's."""
    async with serving(upstream_app(folder)) as upstream_url, \
            serving(mirror.app()) as mirror_url:
        origin = Origin(OriginConfig(upstream_url, site_id, [f"{mirror_url}/s/{site_id}"],
                                     worker_timings=QUICK),
                        sitemap_of(folder), handing_off())
        async with serving(origin.make_app()) as base:
            yield origin, base, mirror_url


async def hold(node: Node, site_id: str, version: int, timeout: float = 30.0) -> None:
    """Make a volunteer node mirror the site and wait until it holds all of ``version``."""
    await node.mirror(site_id)

    async def holds() -> bool:
        snapshot = await node.open_site(site_id)
        return (node.signed_pointer(site_id).version == version
                and snapshot.handle.status().is_seeding)
    await wait_until(holds, timeout, f"a volunteer holds version {version}")


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str
                     ) -> None:
    """Ask ``predicate`` until it holds; fail, saying ``what`` did not happen, after
    ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not await predicate():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def answer(page: Page, path: str) -> dict[str, Any]:
    """What the page gets for ``path`` (through its worker): status, verified-by and text."""
    return await page.evaluate(
        """async (p) => { const r = await fetch(p);
          return {status: r.status, verified: r.headers.get('X-Peerweb-Verified'),
                  text: await r.text()}; }""", path)


async def wait_answer(page: Page, path: str, holds: Callable[[dict[str, Any]], bool],
                      what: str) -> dict[str, Any]:
    """The first answer for ``path`` that ``holds``: the worker takes the origin's word again
    within QUICK.config_refresh of a change, and answers accordingly."""
    got: dict[str, Any] = {}

    async def check() -> bool:
        got.update(await answer(page, path))
        return holds(got)
    await wait_until(check, 10, what)
    return got


@contextlib.asynccontextmanager
async def network(tmp_path: Path) -> AsyncIterator[tuple[Testnet, Path]]:
    async with Testnet(3, root=tmp_path / "net", template=NodeConfig(volunteer=True)) as net:
        yield net, tmp_path / "site"


@dataclass
class Hostile:
    """Version 1 held by both volunteers; the origin hands off to a hostile proxy in front
    of the second one alone (``honest`` is the first one's mirror URL, for later)."""
    contents: dict[str, bytes]
    mirror: HostileMirror
    origin: Origin
    base: str
    url: str
    honest: str


@contextlib.asynccontextmanager
async def hostile_scene(tmp_path: Path, mode: str) -> AsyncIterator[Hostile]:
    async with network(tmp_path) as (net, folder):
        contents = write_site(folder, 1)
        site_id = (await net.nodes[0].node.publish(folder, "site")).site_id
        await asyncio.gather(*(hold(n.node, site_id, 1) for n in net.nodes[1:]))
        mirror = HostileMirror(net.nodes[2].gateway_url, mode)
        async with behind(folder, site_id, mirror) as (origin, base, url):
            yield Hostile(contents, mirror, origin, base, url,
                          f"{net.nodes[1].gateway_url}/s/{site_id}")


async def visit(context: BrowserContext, url: str) -> Page:
    """Open ``url`` as a visitor would; the loader page installs the worker and reloads."""
    page = await context.new_page()
    await page.goto(url)
    await page.wait_for_selector("#title, #about, h1", timeout=20_000)
    await page.wait_for_function("navigator.serviceWorker.controller !== null", timeout=20_000)
    return page


async def fetched(page: Page, paths: list[str], range_header: str | None = None
                  ) -> dict[str, dict[str, Any]]:
    """What the page gets for each path (through its worker): status, SHA-256, verified-by."""
    return await page.evaluate(
        """async ([paths, range]) => {
          const out = {};
          for (const p of paths) {
            const r = await fetch(p, range ? {headers: {Range: range}} : {});
            const b = new Uint8Array(await crypto.subtle.digest('SHA-256',
                                                               await r.arrayBuffer()));
            out[p] = {status: r.status, verified: r.headers.get('X-Peerweb-Verified'),
                      sha: Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')};
          }
          return out;
        }""", [paths, range_header])


async def worker_status(page: Page) -> dict[str, Any]:
    return await page.evaluate("fetch('/.peerweb/worker-status').then((r) => r.json())")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_page_with_assets_and_video_comes_verified_from_two_mirrors(
        tmp_path: Path, browser: Browser) -> None:
    async with network(tmp_path) as (net, folder):
        contents = write_site(folder, 1)
        published = await net.nodes[0].node.publish(folder, "site")
        site_id = published.site_id
        await asyncio.gather(*(hold(n.node, site_id, 1) for n in net.nodes[1:]))
        mirrors = [f"{n.gateway_url}/s/{site_id}" for n in net.nodes[1:]]
        upstream_hits: Counter[str] = Counter()
        origin_hits: Counter[str] = Counter()

        def counting(hits: Counter[str]) -> Any:
            @web.middleware
            async def count(request: web.Request, handler: Any) -> web.StreamResponse:
                hits[request.path] += 1
                return await handler(request)
            return count

        upstream = upstream_app(folder)
        upstream.middlewares.append(counting(upstream_hits))
        async with serving(upstream) as upstream_url:
            policy = handing_off()
            # The config handed over on the first visit stays good for 2 s here, long
            # enough to see that the visit did not ask for it again.
            timings = dataclasses.replace(QUICK, config_refresh=2.0)
            origin = Origin(OriginConfig(upstream_url, site_id, mirrors,
                                         worker_timings=timings),
                            sitemap_of(folder), policy)
            origin_app = origin.make_app()
            origin_app.middlewares.append(counting(origin_hits))
            async with serving(origin_app) as base:
                context = await browser.new_context()
                started = time.monotonic()
                page = await visit(context, base + "/")
                # The loader page handed the worker its config: the first visit did not ask
                # the busy origin for it again (unless it outlasted the config's 2 s).
                if time.monotonic() - started < timings.config_refresh - 0.5:
                    assert origin_hits[CONFIG_PATH] == 0
                assert origin_hits["/favicon.ico"] == 0  # the loader page names none to ask
                # The verified page was written in place of the loader page (no reload), and
                # it loaded as a page does.
                assert await page.evaluate(
                    "performance.getEntriesByType('navigation')[0].type") == "navigate"
                await page.wait_for_function("document.readyState === 'complete'",
                                             timeout=10_000)
                # The DOM is the original's: the script ran, the style and image applied.
                assert await page.text_content("#title") == "peerweb v1"
                assert await page.evaluate("document.body.dataset.app") == "ok"
                assert await page.evaluate(
                    "getComputedStyle(document.querySelector('h1')).color") == "rgb(1, 2, 3)"
                assert await page.evaluate("document.getElementById('logo').naturalWidth") == 2
                # Every file byte-exact, each verified by the worker against version 1.
                got = await fetched(page, list(contents))
                for path, data in contents.items():
                    assert got[path]["status"] == 200, path
                    assert got[path]["sha"] == sha(data), path
                    assert got[path]["verified"] == f"v1 {published.infohash}", path
                # Media ranges: the first MB, and a seek to 90%.
                big = contents["media/big.bin"]
                first = await fetched(page, ["media/big.bin"], "bytes=0-1048575")
                assert first["media/big.bin"] == {"status": 206, "sha": sha(big[:1 << 20]),
                                                  "verified": f"v1 {published.infohash}"}
                seek = int(len(big) * 0.9)
                tail = await fetched(page, ["media/big.bin"], f"bytes={seek}-")
                assert tail["media/big.bin"]["sha"] == sha(big[seek:])
                # A dynamic page is not a published file: the origin answers it.
                dynamic = await page.evaluate("fetch('/api/now').then((r) => r.text())")
                assert dynamic == DYNAMIC_PAGE.decode()
                status = await worker_status(page)
                assert status["version"] == 1 and status["origin_fallbacks"] == 0
                served = {base: m["served"] for base, m in status["mirrors"].items()}
                assert len(served) == 2 and all(n > 0 for n in served.values()), served
                assert not any(m["bad"] for m in status["mirrors"].values())
                # The upstream served no published file (only the dynamic page and the
                # browser's favicon miss): the files came from mirrors.
                assert upstream_hits["/api/now"] == 1
                assert not [p for p in upstream_hits if p == "/" or p[1:] in contents]
                # A first visit to a fragment of a page lands on it, as a navigation does.
                other = await browser.new_context()
                page_frag = await visit(other, base + "/#title")
                assert await page_frag.evaluate("document.querySelector(':target')?.id") \
                    == "title"
                await other.close()
                # A first visit to a file that is not a page: the loader reloads instead, and
                # the worker answers the navigation itself.
                other = await browser.new_context()
                page_txt = await other.new_page()
                await page_txt.goto(base + "/notes.txt")
                await page_txt.wait_for_function(
                    "navigator.serviceWorker.controller !== null"
                    " && document.body.innerText.startsWith('notes v1')", timeout=20_000)
                assert await page_txt.evaluate(
                    "performance.getEntriesByType('navigation')[0].type") == "reload"
                await other.close()
                # A browser that cannot run the worker gets the plain (unverified) redirect,
                # once the loader page has waited takeover_wait for one (shortened here).
                origin.config = dataclasses.replace(origin.config, worker_timings=(
                    dataclasses.replace(timings, takeover_wait=0.5)))
                plain = await browser.new_context(service_workers="block")
                page_plain = await plain.new_page()
                await page_plain.goto(base + "/")
                await page_plain.wait_for_url(lambda url: any(url.startswith(m + "/")
                                                              for m in mirrors), timeout=10_000)
                assert await page_plain.text_content("#title") == "peerweb v1"
                await plain.close()
                # The load falls: the worker passes requests to the origin, and once the calm
                # has outlasted worker_release it unregisters itself.
                policy.mode = Mode.NORMAL
                about = await wait_answer(page, "/about.html", lambda a: not a["verified"],
                                          "the worker passes requests to the origin")
                assert about["text"] == contents["about.html"].decode()
                assert upstream_hits["/about.html"] == 1

                async def left() -> bool:
                    return not await page.evaluate(
                        "navigator.serviceWorker.getRegistrations().then((r) => r.length)")
                await wait_until(left, 5, "the worker unregisters itself")
                await context.close()


async def test_an_altered_script_is_caught_and_the_mirror_is_avoided(
        tmp_path: Path, browser: Browser) -> None:
    async with hostile_scene(tmp_path, "alter") as scene:
        contents, hostile, origin = scene.contents, scene.mirror, scene.origin
        base, hostile_url, site_id = scene.base, scene.url, scene.origin.config.site_id
        # At first the only mirror alters scripts: the script must come from the origin.
        context = await browser.new_context()
        page = await visit(context, base + "/")
        await page.wait_for_function("document.body.dataset.app", timeout=10_000)
        assert await page.evaluate("document.body.dataset.app") == "ok"  # never "xk"
        status = await worker_status(page)
        assert "altered bytes of app.js in a bundle" in status["mirrors"][hostile_url]["bad"]
        assert status["origin_fallbacks"] >= 1
        # An honest mirror joins; the hostile one is never asked again.
        origin.handoff.mirrors.append(scene.honest)
        asked = sum(hostile.asked.values())
        await wait_answer(page, "/about.html", lambda a: a["verified"] is not None,
                          "the worker takes the honest mirror")
        page = await visit(context, base + "/about.html")
        got = await fetched(page, ["about.html", "app.js", "media/big.bin"])
        assert got["app.js"]["sha"] == sha(contents["app.js"])
        assert got["media/big.bin"]["sha"] == sha(contents["media/big.bin"])
        assert got["about.html"]["verified"] is not None  # from the honest mirror
        assert sum(hostile.asked.values()) == asked
        # Every mirror bad and the origin's upstream gone: a clear error page.
        origin.handoff.mirrors[:] = [f"{hostile_url}/s/{site_id}"]
        origin.config = dataclasses.replace(origin.config, upstream="http://127.0.0.1:9",
                                            mirrors=[])
        await wait_answer(page, "/notes.txt", lambda a: a["status"] == 503,
                          "the worker knows of no mirror but the bad one")
        response = await page.goto(base + "/notes.txt")
        assert response is not None and response.status == 503
        assert "No mirror could deliver a verified copy" in await page.content()
        await context.close()


async def test_old_and_forged_records_are_refused(tmp_path: Path, browser: Browser) -> None:
    async with network(tmp_path) as (net, folder), aiohttp.ClientSession() as session:
        write_site(folder, 1)
        v1 = await net.nodes[0].node.publish(folder, "site")
        site_id = v1.site_id
        await asyncio.gather(*(hold(n.node, site_id, 1) for n in net.nodes[1:]))
        mirror_url = net.nodes[1].gateway_url
        async with session.get(f"{mirror_url}/peerweb/v1/record/{site_id}") as response:
            old_record = await response.read()
        async with session.get(f"{mirror_url}/peerweb/v1/bundle/{site_id}") as response:
            old_bundle = await response.read()
        contents = write_site(folder, 2)
        v2 = await net.nodes[0].node.publish(folder, "site")
        assert v2.version == 2
        await asyncio.gather(*(hold(n.node, site_id, 2) for n in net.nodes[1:]))
        old = (old_record, old_bundle, v1.infohash)
        lagging = HostileMirror(net.nodes[2].gateway_url, "lagging", old)
        stale = HostileMirror(net.nodes[2].gateway_url, "stale", old)
        forger = HostileMirror(net.nodes[2].gateway_url, "forge")
        async with serving(upstream_app(folder)) as upstream_url, \
                serving(lagging.app()) as lagging_url, serving(stale.app()) as stale_url, \
                serving(forger.app()) as forger_url:
            mirrors = [f"{u}/s/{site_id}"
                       for u in (lagging_url, stale_url, forger_url, mirror_url)]
            origin = Origin(OriginConfig(upstream_url, site_id, mirrors, worker_timings=QUICK),
                            sitemap_of(folder), handing_off())
            async with serving(origin.make_app()) as base:
                context = await browser.new_context()
                page = await visit(context, base + "/")
                assert await page.text_content("#title") == "peerweb v2"
                got = await fetched(page, ["index.html", "media/big.bin"])
                assert got["index.html"]["sha"] == sha(contents["index.html"])
                assert got["media/big.bin"]["verified"] == f"v2 {v2.infohash}"
                status = await worker_status(page)
                assert status["version"] == 2 and status["origin_fallbacks"] == 0
                assert status["mirrors"][stale_url]["version"] == 1
                assert status["mirrors"][stale_url]["bad"] is None  # old is not dishonest
                assert "forged record" in status["mirrors"][forger_url]["bad"]
                # The lagging one, first in the list, was the lead: asked for its record with
                # its torrent and for its bundle at once. That bundle named v1's snapshot: set
                # aside, with no blame, and the bundle asked of another mirror.
                assert lagging.asked["current"] == lagging.asked["bundle"] == 1
                lag = status["mirrors"][lagging_url]
                assert lag["bad"] is None and lag["version"] == 2
                # Neither the stale nor the forger was asked for a file, a torrent or a bundle.
                for hostile in (stale, forger):
                    assert hostile.asked["file"] == hostile.asked["torrent"] == 0
                    assert hostile.asked["bundle"] == hostile.asked["current"] == 0
                # Replay: with only the stale mirror left, the worker will not go back to v1;
                # the origin serves the page itself.
                origin.handoff.mirrors[:] = [f"{stale_url}/s/{site_id}"]
                await wait_answer(page, "/about.html", lambda a: not a["verified"],
                                  "the worker, left with the stale mirror, asks the origin")
                page = await visit(context, base + "/about.html")
                assert await page.text_content("#about") == "about v2"
                assert stale.asked["file"] == 0
                await context.close()


async def test_a_forged_piece_layer_is_caught_and_media_comes_verified_from_another_mirror(
        tmp_path: Path, browser: Browser) -> None:
    async with hostile_scene(tmp_path, "layer") as scene:
        contents, forger, base, forger_url = scene.contents, scene.mirror, scene.base, scene.url
        # The forger is asked first for the torrent: the page itself comes through (its
        # small files do not use piece layers), then the layer check catches it.
        scene.origin.handoff.mirrors.append(scene.honest)
        context = await browser.new_context()
        page = await visit(context, base + "/")
        async def caught() -> bool:
            return bool((await worker_status(page))["mirrors"][forger_url]["bad"])
        await wait_until(caught, 10, "the forged piece layer is caught")
        assert forger.asked["current"] == 1  # the lead: its torrent came with its record
        status = await worker_status(page)
        assert "piece layer" in status["mirrors"][forger_url]["bad"]
        # The video streams from the honest mirror, every piece checked.
        big = contents["media/big.bin"]
        got = await fetched(page, ["media/big.bin"], "bytes=1000000-")
        assert got["media/big.bin"]["status"] == 206
        assert got["media/big.bin"]["sha"] == sha(big[1000000:])
        assert (await worker_status(page))["origin_fallbacks"] == 0
        await context.close()


async def test_a_slow_bundle_does_not_hold_the_page(tmp_path: Path, browser: Browser) -> None:
    async with network(tmp_path) as (net, folder):
        contents = write_site(folder, 1)
        site_id = (await net.nodes[0].node.publish(folder, "site")).site_id
        await hold(net.nodes[1].node, site_id, 1)
        slow = HostileMirror(net.nodes[1].gateway_url, "slow")
        async with behind(folder, site_id, slow) as (_origin, base, slow_url):
            context = await browser.new_context()
            try:
                # The bundle never comes (a worker waiting on it for good would time
                # out the visit): the page's files come one by one, from the same mirror.
                page = await visit(context, base + "/")
                await page.wait_for_function("document.body.dataset.app", timeout=10_000)
                assert await page.evaluate("document.body.dataset.app") == "ok"
                got = await fetched(page, ["app.js", "style.css"])
                assert got["app.js"]["sha"] == sha(contents["app.js"])
                status = await worker_status(page)
                assert status["origin_fallbacks"] == 0
                assert status["mirrors"][slow_url]["bad"] is None  # slow is not dishonest
                assert slow.asked["bundle"] == 1 and slow.asked["file"] >= 3
            finally:
                slow.release.set()
                await context.close()
