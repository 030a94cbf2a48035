"""Flash crowd: N nodes fetch the whole site at once; the publisher's upload is capped.

The site is the issue's: the 41-file page plus a 40 MB file (40.5 MB). The page alone
(0.55 MB) runs too, as a second scenario: there the bound is 0.25 s and fixed latencies
(metadata, the first request round trips) dominate rather than bandwidth.

Publisher upload 4 MB/s, each visitor node's upload 2 MB/s. Where the machine allows (root,
iproute2), the caps are uplinks: every host has its own 127.0.0.x address, shaped by a tc HTB
class in a private network namespace (linkcaps.py), and nothing runs with a rate limit of its
own. Elsewhere they are libtorrent's own limits, applied between local addresses too (and a
token bucket for the HTTP origin). Every node is a `peerweb node` process; each visitor is a
curl process that fetches every file of the site through its own node's gateway.

Baselines in the same run: plain HTTP from an origin with the same 4 MB/s uplink, N curl
clients fetching the same files; and N aria2 clients (Debian's aria2c) downloading the site's
v1 export from the same publisher through a `peerweb tracker`, each with the same 2 MB/s
uplink; their completion is when aria2 runs its download-complete hook.

Reports the slowest completion over the fluid lower bound max(F/U_s, N*F/(U_s + N*U_c)),
and the bytes the publisher uploaded over the site size. Targets: at most 1.3 and 2; and
peerweb's slowest at most 1.1x aria2's."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from bench import linkcaps, visitors
from bench.cluster import cluster, node_address
from bench.common import CappedOrigin, free_port, nginx, serving, write_result
from peerweb import aio
from peerweb.config import NodeConfig
from peerweb.tools.testnet import Testnet, write_sample_site
from peerweb.tools.tracker import make_app as tracker_app

N = 20
SEED_UP = 4_000_000
PEER_UP = 2_000_000
PARALLEL = 6  # connections per visitor, as a browser opens
BIG_FILE = 40_000_000


async def http_baseline(site: Path, contents: dict[str, bytes]) -> list[float]:
    """N curl clients fetch the site from one capped origin: nginx on its own shaped address,
    or (without link caps) a server whose connections share one token bucket."""
    if linkcaps.inside():
        with nginx(site, node_address(0)) as base:
            crowd = await visitors.run(base, site, N, PARALLEL, timeout=900)
    else:
        async with serving(CappedOrigin(contents, SEED_UP).app()) as base:
            crowd = await visitors.run(base, site, N, PARALLEL, timeout=900)
    if crowd["errors"]:
        raise RuntimeError(f"{crowd['errors']} of {N} HTTP clients did not get the whole site")
    return list(crowd["times_s"])


async def swarm_run(site: Path, work: Path) -> tuple[list[float], int]:
    """The publisher and N visitor nodes, each its own `peerweb node` process; each visitor
    (a curl process) loads the site through its own node's gateway."""
    limits = [0] * (N + 1) if linkcaps.inside() else [SEED_UP] + [PEER_UP] * N
    async with cluster(work / "swarm", limits) as nodes:
        publisher, visitor_nodes = nodes[0], nodes[1:]
        result = await publisher.publish(site, "crowd")
        bases = [f"http://{result['site_id']}.localhost:{n.gateway_port}" for n in visitor_nodes]
        crowd = await visitors.run(bases, site, N, PARALLEL, timeout=600)
        if crowd["errors"]:
            raise RuntimeError(f"{crowd['errors']} of {N} visitors did not get the whole site")
        status = await publisher.status()
        uploaded = int(status["sites"][0]["uploaded"])
    return list(crowd["times_s"]), uploaded


HOOK = """#!/bin/sh
touch "$PEERWEB_BENCH_DONE"
"""


async def aria2_run(site: Path, contents: dict[str, bytes], work: Path) -> list[float]:
    """N aria2 clients fetch the v1 export from a rate-capped peerweb publisher."""
    async with serving(tracker_app()) as tracker_base:
        return await aria2_swarm(site, contents, work, f"{tracker_base}/announce")


async def aria2_swarm(site: Path, contents: dict[str, bytes], work: Path,
                      tracker: str) -> list[float]:
    hook = work / "done.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    processes: list[asyncio.subprocess.Process] = []
    try:
        shaped = linkcaps.inside()
        net = Testnet(0, template=NodeConfig(limit_local_peers=not shaped))
        async with net:
            publisher = await net.add_node(replace(net.config_for(0),
                                                   upload_limit=0 if shaped else SEED_UP))
            result = await publisher.node.publish(site, "crowd", trackers=(tracker,))
            torrent = work / "site-v1.torrent"
            await publisher.node.export(result.site_id, torrent, v1_only=True)
            markers = [work / f"done-{i}" for i in range(N)]
            start = time.perf_counter()
            for i in range(N):
                processes.append(await asyncio.create_subprocess_exec(
                    "aria2c", "--enable-dht=false", "--enable-dht6=false",
                    "--bt-enable-lpd=false", "--disable-ipv6=true", "--seed-time=5",
                    f"--interface={node_address(i + 1)}",
                    f"--max-upload-limit={0 if shaped else PEER_UP}",
                    f"--listen-port={free_port(node_address(i + 1))}",
                    f"--dir={work / f'aria2-{i}'}", f"--on-bt-download-complete={hook}",
                    "--console-log-level=error", "--summary-interval=0", str(torrent),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    env={"PATH": "/usr/bin:/bin", "PEERWEB_BENCH_DONE": str(markers[i])}))
            times: dict[int, float] = {}
            deadline = start + 300
            while len(times) < N and time.perf_counter() < deadline:
                for i, marker in enumerate(markers):
                    if i not in times and marker.exists():
                        times[i] = time.perf_counter() - start
                await asyncio.sleep(0.005)
            if len(times) < N:
                raise TimeoutError(f"only {len(times)} of {N} aria2 clients finished")
        for i in range(N):
            for name, data in contents.items():
                assert (work / f"aria2-{i}" / "site" / name).read_bytes() == data, name
        return [times[i] for i in range(N)]
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def scenario(name: str, big_size: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        contents = write_sample_site(site, big_size=big_size)
        size = sum(len(v) for v in contents.values())
        bound = max(size / SEED_UP, N * size / (SEED_UP + N * PEER_UP))
        print(f"{name}: {size / 1e6:.2f} MB, {N} visitors, publisher {SEED_UP / 1e6:.0f} MB/s "
              f"up, visitors {PEER_UP / 1e6:.0f} MB/s up; fluid lower bound {bound:.2f} s",
              flush=True)
        swarm_times, uploaded = await swarm_run(site, Path(tmp))
        slowest = max(swarm_times)
        print(f"  peerweb slowest {slowest:.2f} s -> {slowest / bound:.2f}x bound "
              f"(target <= 1.3); publisher uploaded {uploaded / size:.2f}x the site "
              f"(target <= 2)", flush=True)
        aria2_times = await aria2_run(site, contents, Path(tmp))
        aria2_slowest = max(aria2_times)
        print(f"  aria2 swarm slowest {aria2_slowest:.2f} s -> {aria2_slowest / bound:.2f}x "
              f"bound; peerweb / aria2 {slowest / aria2_slowest:.2f} (target <= 1.1)",
              flush=True)
        http_times = await http_baseline(site, contents)
        http_slowest = max(http_times)
        print(f"  plain HTTP slowest {http_slowest:.2f} s -> {http_slowest / bound:.2f}x bound; "
              f"peerweb / plain HTTP {slowest / http_slowest:.2f}", flush=True)
    return {
        "site_bytes": size, "fluid_bound_s": bound, "peerweb_times_s": swarm_times,
        "http_times_s": http_times, "aria2_times_s": aria2_times,
        "peerweb_slowest_over_bound": slowest / bound,
        "http_slowest_over_bound": http_slowest / bound,
        "aria2_slowest_over_bound": aria2_slowest / bound,
        "peerweb_over_aria2": slowest / aria2_slowest,
        "publisher_upload_over_size": uploaded / size,
    }


async def main() -> None:
    result: dict[str, object] = {
        "visitors": N, "seed_upload": SEED_UP, "peer_upload": PEER_UP,
        "limits": "tc HTB class per source address in a private network namespace"
        if linkcaps.inside() else
        "libtorrent rate limits between loopback addresses; HTTP origin token bucket",
    }
    result["site"] = await scenario("site (41-file page + 40 MB file)", BIG_FILE)
    result["page"] = await scenario("page only (41 files)", 0)
    write_result("flash_crowd", result)


if __name__ == "__main__":
    if linkcaps.available() and not linkcaps.inside():
        caps = {node_address(0): SEED_UP, **{node_address(i): PEER_UP for i in range(1, N + 1)}}
        sys.exit(linkcaps.rerun_inside(caps, "bench.flash_crowd", timeout=3600))
    aio.run(main())
