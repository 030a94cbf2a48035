"""Cold page load: a fresh node's gateway fetching the 41-file page from a 5-node swarm.

Five nodes hold the site (the publisher and four that visited it). For each trial a new node
joins the private DHT and its gateway is asked for index.html, then for all 40 assets at
once, as a browser would. Reports time to first byte of index.html and to the last asset.
Targets on loopback: under 200 ms and under 500 ms. Baseline: the same page from nginx, cold.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import median, nginx, ratio_line, write_result
from peerweb import aio
from peerweb.tools.testnet import Testnet, write_sample_site

TRIALS = 5
HOLDERS = 5


async def load_page(session: aiohttp.ClientSession, base: str, host: str | None,
                    assets: list[str], contents: dict[str, bytes]) -> tuple[float, float]:
    headers = {"Host": host} if host else {}
    start = time.perf_counter()
    async with session.get(f"{base}/", headers=headers) as response:
        await response.content.readany()
        ttfb = time.perf_counter() - start
        assert response.status == 200
        rest = await response.read()
        del rest

    async def one(name: str) -> None:
        async with session.get(f"{base}/{name}", headers=headers) as response:
            body = await response.read()
            assert response.status == 200 and body == contents[name], name

    await asyncio.gather(*(one(a) for a in assets))
    return ttfb, time.perf_counter() - start


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        contents = write_sample_site(site, big_size=0)
        assets = [n for n in contents if n.startswith("assets/")]
        ttfbs, totals = [], []
        async with Testnet(HOLDERS) as net, aiohttp.ClientSession() as session:
            result = await net.nodes[0].node.publish(site, "bench")
            for holder in net.nodes[1:]:
                host = f"{result.site_id}.localhost:{holder.gateway_address[1]}"
                await load_page(session, holder.gateway_url, host, assets, contents)
            for trial in range(TRIALS):
                fresh = await net.add_node(net.config_for(HOLDERS + trial))
                await fresh.node.swarm.wait_dht_ready(10.0)
                host = f"{result.site_id}.localhost:{fresh.gateway_address[1]}"
                ttfb, total = await load_page(session, fresh.gateway_url, host, assets, contents)
                ttfbs.append(ttfb)
                totals.append(total)
                print(f"trial {trial}: index.html first byte {ttfb * 1000:.0f} ms, "
                      f"whole page {total * 1000:.0f} ms")
        base_ttfb, base_total = [], []
        with nginx(site) as base:
            for _ in range(TRIALS):
                async with aiohttp.ClientSession() as session:  # new connections each time
                    t, total = await load_page(session, base, None, assets, contents)
                base_ttfb.append(t)
                base_total.append(total)
    print(ratio_line("first byte of index.html", median(ttfbs) * 1000, median(base_ttfb) * 1000,
                     "ms", "target < 200 ms"))
    print(ratio_line("whole page", median(totals) * 1000, median(base_total) * 1000, "ms",
                     "target < 500 ms"))
    write_result("cold_page", {
        "trials": TRIALS, "holders": HOLDERS, "files": len(assets) + 1,
        "ttfb_ms": [t * 1000 for t in ttfbs], "page_ms": [t * 1000 for t in totals],
        "median_ttfb_ms": median(ttfbs) * 1000, "median_page_ms": median(totals) * 1000,
        "nginx_median_ttfb_ms": median(base_ttfb) * 1000,
        "nginx_median_page_ms": median(base_total) * 1000,
        "target_ttfb_ms": 200, "target_page_ms": 500,
    })


if __name__ == "__main__":
    aio.run(main())
