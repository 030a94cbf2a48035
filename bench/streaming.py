"""Streaming: first 1 MB of the 40 MB file from a cold node, then after a seek to 90%.

Three nodes hold the site; for each trial a new node asks its gateway for bytes 0..1 MB of
media/big.bin, then for 1 MB at 90% of the file (a seek), as a video player would; another new
node asks for 1 MB at 90% first (a cold seek).
Target: under 500 ms each. Baseline: the same ranges from nginx.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import median, nginx, ratio_line, write_result
from peerweb import aio
from peerweb.tools.testnet import Testnet, write_sample_site

TRIALS = 6
HOLDERS = 3
MB = 1024 * 1024


async def timed_range(session: aiohttp.ClientSession, url: str, host: str | None,
                      start: int, expected: bytes) -> float:
    headers = {"Range": f"bytes={start}-{start + MB - 1}"}
    if host:
        headers["Host"] = host
    began = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.read()
    elapsed = time.perf_counter() - began
    assert response.status == 206 and body == expected, response.status
    return elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        contents = write_sample_site(site, small_files=2)
        big = contents["media/big.bin"]
        seek = len(big) * 9 // 10
        first, after_seek, cold_seek = [], [], []
        async with Testnet(HOLDERS) as net, aiohttp.ClientSession() as session:
            result = await net.nodes[0].node.publish(site, "bench")
            for holder in net.nodes[1:]:
                host = f"{result.site_id}.localhost:{holder.gateway_address[1]}"
                async with session.get(f"{holder.gateway_url}/media/big.bin",
                                       headers={"Host": host}) as response:
                    assert await response.read() == big
            for trial in range(TRIALS):
                fresh = await net.add_node(net.config_for(HOLDERS + trial))
                await fresh.node.swarm.wait_dht_ready(10.0)
                url = f"{fresh.gateway_url}/media/big.bin"
                host = f"{result.site_id}.localhost:{fresh.gateway_address[1]}"
                first.append(await timed_range(session, url, host, 0, big[:MB]))
                after_seek.append(await timed_range(session, url, host, seek,
                                                    big[seek:seek + MB]))
                # A second cold node jumps straight to 90%: the seek must not wait for the
                # beginning of the file.
                other = await net.add_node(net.config_for(HOLDERS + TRIALS + trial))
                await other.node.swarm.wait_dht_ready(10.0)
                host = f"{result.site_id}.localhost:{other.gateway_address[1]}"
                cold_seek.append(await timed_range(session, f"{other.gateway_url}/media/big.bin",
                                                   host, seek, big[seek:seek + MB]))
                print(f"trial {trial}: first MB {first[-1] * 1000:.0f} ms, "
                      f"after seek {after_seek[-1] * 1000:.0f} ms, "
                      f"cold seek {cold_seek[-1] * 1000:.0f} ms")
        base_first, base_seek = [], []
        with nginx(site) as base:
            async with aiohttp.ClientSession() as session:
                for _ in range(TRIALS):
                    base_first.append(await timed_range(session, f"{base}/media/big.bin", None,
                                                        0, big[:MB]))
                    base_seek.append(await timed_range(session, f"{base}/media/big.bin", None,
                                                       seek, big[seek:seek + MB]))
    print(ratio_line("first 1 MB", median(first) * 1000, median(base_first) * 1000, "ms",
                     "target < 500 ms"))
    print(ratio_line("1 MB after seek to 90%", median(after_seek) * 1000,
                     median(base_seek) * 1000, "ms", "target < 500 ms"))
    print(ratio_line("1 MB at 90% from a cold node", median(cold_seek) * 1000,
                     median(base_seek) * 1000, "ms", "target < 500 ms"))
    write_result("streaming", {
        "cold_seek_mb_ms": [t * 1000 for t in cold_seek],
        "median_cold_seek_mb_ms": median(cold_seek) * 1000,
        "file_size": len(big), "trials": TRIALS,
        "first_mb_ms": [t * 1000 for t in first], "seek_mb_ms": [t * 1000 for t in after_seek],
        "median_first_mb_ms": median(first) * 1000, "median_seek_mb_ms": median(after_seek) * 1000,
        "nginx_median_first_mb_ms": median(base_first) * 1000,
        "nginx_median_seek_mb_ms": median(base_seek) * 1000, "target_ms": 500,
    })


if __name__ == "__main__":
    aio.run(main())
