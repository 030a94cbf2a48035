"""Warm gateway throughput and latency for small cached files, against nginx.

A 2-node private network; node B visits the 41-file page once (so every file is cached and
verified), then wrk hammers one small asset through B's gateway and through nginx serving the
same folder. Target: peerweb at least 0.5x nginx requests/s.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import aiohttp

from bench.common import nginx, ratio_line, write_result, wrk
from peerweb import aio
from peerweb.tools.testnet import Testnet, write_sample_site

SECONDS = 8
CONNECTIONS = 32
ASSET = "assets/file05.js"


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        contents = write_sample_site(site, big_size=0)
        async with Testnet(2) as net:
            result = await net.nodes[0].node.publish(site, "bench")
            gateway = net.nodes[1]
            host = f"{result.site_id}.localhost:{gateway.gateway_address[1]}"
            async with aiohttp.ClientSession() as session:
                for name in contents:
                    async with session.get(f"{gateway.gateway_url}/{name}",
                                           headers={"Host": host}) as response:
                        assert response.status == 200, name
                        assert await response.read() == contents[name]
            ours = await asyncio.to_thread(wrk, f"{gateway.gateway_url}/{ASSET}", SECONDS,
                                           CONNECTIONS, 1, host)
        with nginx(site) as base:
            theirs = await asyncio.to_thread(wrk, f"{base}/{ASSET}", SECONDS, CONNECTIONS, 1)
    print(ratio_line("requests/s", ours["rps"], theirs["rps"], "req/s", "target >= 0.5"))
    print(f"p99 latency: peerweb {ours.get('p99_ms', 0):.2f} ms, "
          f"nginx {theirs.get('p99_ms', 0):.2f} ms")
    write_result("warm_gateway", {
        "file": ASSET, "file_size": len(contents[ASSET]), "seconds": SECONDS,
        "connections": CONNECTIONS, "peerweb": ours, "nginx": theirs,
        "rps_ratio": ours["rps"] / theirs["rps"], "target_rps_ratio": 0.5,
    })


if __name__ == "__main__":
    aio.run(main())
