"""Private sites against the same site public (issue 20): publish time, the first MB from a
cold node and 1 MB after a seek to 90% of a big file, and the throughput of a whole-file
read through the gateway, cold (fetched from the swarm) and warm (held).

The same folder is published twice by one node, public and ``--private``; two holders take
each; for each trial a fresh node (with the read key for the private one) asks its gateway.
Targets (issue 20): throughput >= 90% of public; first byte and seek within 1.2x public;
publish <= 1.5x. ``PEERWEB_BENCH_PRIVATE_MB`` sets the big file's size (default 40).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.common import median, ratio_line, write_result
from peerweb import aio
from peerweb.tools.testnet import Testnet

TRIALS = 3
HOLDERS = 2
MB = 1024 * 1024
SIZE = int(os.environ.get("PEERWEB_BENCH_PRIVATE_MB", "40")) * MB


async def timed_get(session: aiohttp.ClientSession, url: str, host: str,
                    start: int | None, expected: bytes) -> float:
    headers = {"Host": host}
    if start is not None:
        headers["Range"] = f"bytes={start}-{start + len(expected) - 1}"
    began = time.perf_counter()
    async with session.get(url, headers=headers) as response:
        body = await response.read()
    elapsed = time.perf_counter() - began
    assert response.status in (200, 206) and body == expected, response.status
    return elapsed


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        (site / "media").mkdir(parents=True)
        (site / "index.html").write_bytes(b"<h1>bench</h1>")
        big = os.urandom(SIZE)
        (site / "media" / "big.bin").write_bytes(big)
        seek = SIZE * 9 // 10
        results: dict[str, dict[str, list[float]]] = {}
        async with Testnet(1 + HOLDERS) as net, aiohttp.ClientSession() as session:
            publisher = net.nodes[0].node
            published = {}
            for kind in ("public", "private"):
                began = time.perf_counter()
                published[kind] = await publisher.publish(site, f"bench-{kind}",
                                                          private=kind == "private")
                results[kind] = {"publish": [time.perf_counter() - began], "first_mb": [],
                                 "seek_90": [], "cold_mbps": [], "warm_mbps": []}
            key = publisher.private.keyring.get(published["private"].site_id)
            assert key is not None
            for holder in net.nodes[1:]:
                holder.node.private.keyring.put(published["private"].site_id, key)
                for result in published.values():
                    host = f"{result.site_id}.localhost:{holder.gateway_address[1]}"
                    await timed_get(session, f"{holder.gateway_url}/media/big.bin", host, None,
                                    big)
            index = 1 + HOLDERS
            for trial in range(TRIALS):
                for kind, result in published.items():
                    row = results[kind]
                    for what in ("stream", "whole"):
                        fresh = await net.add_node(net.config_for(index))
                        index += 1
                        await fresh.node.swarm.wait_dht_ready(10.0)
                        fresh.node.private.keyring.put(published["private"].site_id, key)
                        url = f"{fresh.gateway_url}/media/big.bin"
                        host = f"{result.site_id}.localhost:{fresh.gateway_address[1]}"
                        if what == "stream":
                            row["first_mb"].append(await timed_get(session, url, host, 0,
                                                                   big[:MB]))
                            row["seek_90"].append(await timed_get(session, url, host, seek,
                                                                  big[seek:seek + MB]))
                        else:
                            cold = await timed_get(session, url, host, None, big)
                            warm = await timed_get(session, url, host, None, big)
                            row["cold_mbps"].append(SIZE / MB / cold)
                            row["warm_mbps"].append(SIZE / MB / warm)
                        await net.stop_node(fresh)
                    print(f"trial {trial} {kind}: " + ", ".join(
                        f"{k} {v[-1]:.3g}" for k, v in row.items() if v))
    pub, priv = ({k: median(v) for k, v in results[kind].items()}
                 for kind in ("public", "private"))
    lines = [
        ratio_line("publish", priv["publish"], pub["publish"], "s", "target <= 1.5x"),
        ratio_line("first 1 MB", priv["first_mb"] * 1000, pub["first_mb"] * 1000, "ms",
                   "target <= 1.2x"),
        ratio_line("1 MB after seek to 90%", priv["seek_90"] * 1000, pub["seek_90"] * 1000,
                   "ms", "target <= 1.2x"),
        ratio_line("cold whole-file MB/s", priv["cold_mbps"], pub["cold_mbps"], "MB/s",
                   "target >= 0.9"),
        ratio_line("warm whole-file MB/s", priv["warm_mbps"], pub["warm_mbps"], "MB/s",
                   "target >= 0.9"),
    ]
    for line in lines:
        print(line)
    write_result("private", {"size_mb": SIZE // MB, "trials": TRIALS, "public": pub,
                             "private": priv, "raw": results, "summary": lines})


if __name__ == "__main__":
    aio.run(main())
