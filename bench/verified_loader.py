"""The verifying loader against the plain redirect, in headless Chromium, same run.

An origin in hand-off mode sends a visitor of the 41-file page (index.html loading 40 assets)
to two volunteer mirrors (peerweb nodes on loopback). (a) Plain redirect: the browser follows
a 302 to one mirror and loads the page from it, unverified. (b) Verifying loader: the origin
serves its small page, the Service Worker installs, then takes the signed record, the torrent
and every file from the mirrors and checks each. Three visits per fresh browser profile:
"first" (the worker is installed during it), "next page" (page2.html: 40 other assets, the
worker already running) and "repeat" (index.html again: caches warm). Media: time to the
first bytes of the 40 MB file through the worker, and after a seek to 90%, against a direct
range request to a mirror. Medians over 7 runs (PEERWEB_BENCH_LOADER_RUNS), the two kinds
taking turns to go first.
Targets: page load (b) at most 1.5x (a); first media bytes under 1 s.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, async_playwright

from bench.common import median, serving, write_result
from peerweb import aio
from peerweb.config import NodeConfig
from peerweb.spike.handoff import LoadPolicy, Mode, Thresholds
from peerweb.spike.origin import Origin, OriginConfig, sitemap_of
from peerweb.tools.testnet import BIG_FILE_SIZE, SMALL_FILES, Testnet, write_sample_site

RUNS = int(os.environ.get("PEERWEB_BENCH_LOADER_RUNS", "7"))
VISITS = {"first": "/", "next_page": "/page2.html", "repeat": "/"}
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-default-apps"]


def bench_page(assets: list[str]) -> bytes:
    """index.html that loads every asset in parallel, as a page's subresources load."""
    names = ",".join(f'"{a}"' for a in assets)
    return ("<!doctype html><meta charset=utf-8><title>bench</title><h1 id=title>bench</h1>"
            f"<script>Promise.all([{names}].map((a) => fetch(a).then((r) => r.arrayBuffer())))"
            ".then(() => { window.__doneAt = performance.timeOrigin + performance.now(); "
            "window.__done = true; });</script>").encode()


def handing_off() -> LoadPolicy:
    """An origin policy already in hand-off mode, staying there for the whole bench."""
    policy = LoadPolicy(Thresholds(capacity=1e12, leave_after=3600.0))
    policy.mode = Mode.HANDOFF
    return policy


async def page_load(context: BrowserContext, url: str) -> float:
    """Seconds from navigation start to every asset loaded (redirects and loader included),
    by the wall clock the browser shares with this process: the page notes when its last
    asset arrived, so the harness's own polling lag is left out."""
    page = await context.new_page()
    started = time.time()
    await page.goto(url)
    await page.wait_for_function("window.__done === true", timeout=60_000, polling=5)
    done_at = await page.evaluate("window.__doneAt")
    await page.close()
    return float(done_at) / 1000 - started


async def media_first_bytes(context: BrowserContext, page_url: str, file_url: str,
                            size: int) -> dict[str, float]:
    """Milliseconds to the first chunk of a range request at 0 and at 90% of the file."""
    page = await context.new_page()
    await page.goto(page_url)
    await page.wait_for_function("window.__done === true", timeout=60_000)
    times = {}
    for label, offset in (("start", 0), ("seek_90", int(size * 0.9))):
        times[label] = await page.evaluate(
            """async ([url, offset]) => {
              const t = performance.now();
              const r = await fetch(url, {headers: {Range: `bytes=${offset}-`}});
              const reader = r.body.getReader();
              await reader.read();
              const ms = performance.now() - t;
              reader.cancel();
              return ms;
            }""", [file_url, offset])
    await page.close()
    return times


async def run() -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="bench-loader-"))
    folder = root / "site"
    contents = write_sample_site(folder, 2 * SMALL_FILES, BIG_FILE_SIZE)
    assets = sorted(p for p in contents if p.startswith("assets/"))
    (folder / "index.html").write_bytes(bench_page(assets[:SMALL_FILES]))
    (folder / "page2.html").write_bytes(bench_page(assets[SMALL_FILES:]))
    try:
        async with Testnet(3, root=root / "net", template=NodeConfig(volunteer=True)) as net:
            site_id = (await net.nodes[0].node.publish(folder, "site")).site_id
            for running in net.nodes[1:]:
                await running.node.mirror(site_id)
            async with asyncio.timeout(120):
                for running in net.nodes[1:]:
                    while not (await running.node.open_site(site_id)).handle.status() \
                            .is_seeding:
                        await asyncio.sleep(0.2)
            mirrors = [f"{n.gateway_url}/s/{site_id}" for n in net.nodes[1:]]
            upstream = web.Application()
            upstream.router.add_static("/", folder)
            async with serving(upstream) as upstream_url, async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    return await compare(browser, upstream_url, site_id, folder, mirrors,
                                         mirrors[0].rsplit("/s/", 1)[0])
                finally:
                    await browser.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def compare(browser: Browser, upstream_url: str, site_id: str, folder: Path,
                  mirrors: list[str], mirror_root: str) -> dict[str, Any]:
    results: dict[str, dict[str, list[float]]] = {
        kind: {visit: [] for visit in VISITS} for kind in ("plain", "loader")}
    for run in range(RUNS):
        # Each goes first in every other run: neither column is always the one that follows
        # the other's leftover work (a closing browser context, a busy mirror).
        for kind in ("plain", "loader") if run % 2 == 0 else ("loader", "plain"):
            origin = Origin(OriginConfig(upstream_url, site_id, mirrors, None, kind == "loader"),
                            sitemap_of(folder), handing_off())
            async with serving(origin.make_app()) as base:
                context = await browser.new_context()
                for visit, path in VISITS.items():
                    results[kind][visit].append(await page_load(context, base + path))
                await context.close()
    # Media through the worker, and straight from a mirror (unverified).
    origin = Origin(OriginConfig(upstream_url, site_id, mirrors), sitemap_of(folder),
                    handing_off())
    async with serving(origin.make_app()) as base:
        context = await browser.new_context()
        await page_load(context, base + "/")  # installs the worker
        via_worker = await media_first_bytes(context, base + "/", "media/big.bin",
                                             BIG_FILE_SIZE)
        direct = await media_first_bytes(context, base + "/",
                                         f"{mirror_root}/s/{site_id}/media/big.bin",
                                         BIG_FILE_SIZE)
        await context.close()
    return {"runs": RUNS, "page_load_s": results, "media_first_bytes_ms":
            {"loader": via_worker, "direct_from_mirror": direct}}


def main() -> None:
    data = aio.run(run())
    loads = data["page_load_s"]
    summary = {kind: {visit: median(times) for visit, times in by_visit.items()}
               for kind, by_visit in loads.items()}
    data["median_page_load_s"] = summary
    data["ratios"] = {}
    for visit in VISITS:
        ours, plain = summary["loader"][visit], summary["plain"][visit]
        data["ratios"][visit] = ours / plain
        print(f"41-file page, {visit.replace('_', ' ')} visit: loader {ours * 1000:.0f} ms vs "
              f"plain redirect {plain * 1000:.0f} ms -> ratio {ours / plain:.2f} "
              "(target <= 1.5)")
    media = data["media_first_bytes_ms"]
    print(f"40 MB media, first bytes through the worker: {media['loader']['start']:.0f} ms, "
          f"after a seek to 90%: {media['loader']['seek_90']:.0f} ms (target < 1000 ms); "
          f"straight from a mirror: {media['direct_from_mirror']['start']:.0f} / "
          f"{media['direct_from_mirror']['seek_90']:.0f} ms")
    write_result("verified_loader", data)


if __name__ == "__main__":
    main()
