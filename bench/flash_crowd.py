"""Flash crowd of browser-like visitors: N nodes load the page and its video at once.

The site is the issue's: index.html, 40 assets and a 40 MB video (40.5 MB). Each visitor
(bench/browsers.py) asks its own node's gateway for index.html, then for the assets and
the video together over at most 6 connections, the video started alongside the assets as
a browser does; per visitor the page time (index + assets) and the whole-site time.

Publisher upload 4 MB/s, each visitor node's upload 2 MB/s. Where the machine allows (root,
iproute2), the caps are uplinks: every host has its own 127.0.0.x address, shaped by a tc HTB
class in a private network namespace (linkcaps.py) at internet packet sizes, the browser to
gateway hop on loopback-sized ones; nothing runs with a rate limit of its own. Elsewhere, or
with ``--limits libtorrent`` (the 100-visitor point: 100 tc classes and their queues cost
this machine more than the crowd), the caps are libtorrent's own limits between local
addresses (and a token bucket for the HTTP origin). Every node is a `peerweb node` process.

Baselines in the same run: N aria2 clients (Debian's aria2c) downloading the site's v1
export from the same publisher through a `peerweb tracker`, each with the same uplink, done
when aria2 runs its download-complete hook; and plain HTTP from nginx on the publisher's
uplink, the same browser-like visitors, stopped once their page is in (sending every
visitor the video from one 4 MB/s origin takes N x 10 s).

Reported: page time median and slowest; whole-site slowest over the fluid lower bound
max(F/U_s, N*F/(U_s + N*U_c)) and over aria2's slowest; the publisher's upload in copies of
the site; CPU-seconds per GB (every process of a system, from /proc/<pid>/stat: peerweb's
N+1 nodes per GB delivered to the browsers, aria2's N clients and the publisher per GB
downloaded); the machine's busy share (/proc/stat) while each crowd ran; and `uptime`.
Each run appends to bench/results/flash_crowd_n<N>.json (``--tag`` names the variant), so
ranges over runs are read from one file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench import browsers, linkcaps
from bench.cluster import cluster, node_address
from bench.common import RESULTS, CappedOrigin, free_port, machine, nginx, serving
from peerweb import aio
from peerweb.config import NodeConfig
from peerweb.tools.testnet import Testnet, write_sample_site
from peerweb.tools.tracker import make_app as tracker_app

SEED_UP = 4_000_000
PEER_UP = 2_000_000
PARALLEL = 6  # connections per visitor, as a browser opens
BIG_FILE = 40_000_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


# -- CPU accounting from /proc ---------------------------------------------------------------

def process_cpu(pid: int) -> float:
    """CPU-seconds (user + system) a live process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14, 15)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU-seconds of a live process's threads: its main thread (the event loop: Python) as
    "main", every other thread by its id (libtorrent's and the executor's, all "python")."""
    spent: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = "main" if task.name == str(pid) else task.name
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[name] = spent.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
    return spent


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of every CPU since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


class Meter:
    """CPU of a set of processes, and the machine's busy share, over a window."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.cpu0 = {pid: process_cpu(pid) for pid in pids}
        self.ticks0 = machine_ticks()

    def read(self) -> tuple[float, float]:
        """(CPU-seconds the processes used since the start, machine busy share)."""
        cpu = sum(process_cpu(pid) - self.cpu0.get(pid, 0.0) for pid in self.pids)
        busy, total = machine_ticks()
        share = (busy - self.ticks0[0]) / max(1, total - self.ticks0[1])
        return cpu, share


def uptime() -> str:
    return Path("/proc/loadavg").read_text().strip()


# -- the three systems ---------------------------------------------------------------------------

async def profiled(pid: int, seconds: int, out: Path) -> asyncio.subprocess.Process:
    """py-spy sampling one node process (Python and native frames) for ``seconds``."""
    return await asyncio.create_subprocess_exec(
        "py-spy", "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "50",
        "--native", "--format", "raw", "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)


PROFILE: int = 0  # seconds of py-spy on visitor node 1 during the crowd (--profile)


async def swarm_run(site: Path, work: Path, n: int, shaped: bool) -> dict[str, Any]:
    """The publisher and N visitor nodes, each its own `peerweb node` process; each visitor
    loads the page and its video through its own node's gateway."""
    limits = [0] * (n + 1) if shaped else [SEED_UP] + [PEER_UP] * n
    async with cluster(work / "swarm", limits) as nodes:
        publisher = nodes[0]
        result = await publisher.publish(site, "crowd")
        bases = [f"http://{result['site_id']}.localhost:{node.gateway_port}"
                 for node in nodes[1:]]
        meter = Meter([node.process.pid for node in nodes])
        threads0 = [thread_cpu(node.process.pid) for node in nodes[:2]]
        spy = (await profiled(nodes[1].process.pid, PROFILE, RESULTS / "flash_crowd_profile.txt")
               if PROFILE else None)
        crowd = await browsers.run(bases, site, n, PARALLEL, timeout=280)
        if spy is not None:
            await spy.wait()
        cpu, busy = meter.read()
        # Where a node's CPU went, by thread (libtorrent's network and disk threads, the
        # event loop, the default executor): the publisher and visitor node 1.
        threads = [{name: round(spent - before.get(name, 0.0), 2)
                    for name, spent in thread_cpu(node.process.pid).items()}
                   for node, before in zip(nodes[:2], threads0, strict=True)]
        if crowd["errors"]:
            raise RuntimeError(f"{crowd['errors']} of {n} visitors did not get the whole site")
        status = await publisher.status()
        uploaded = int(status["sites"][0]["uploaded"])
    return {"page_s": crowd["page_s"], "all_s": crowd["all_s"], "uploaded": uploaded,
            "cpu_s": cpu, "busy": busy, "delivered": crowd["delivered"],
            "crowd_cpu_s": crowd["cpu_s"], "threads_publisher": threads[0],
            "threads_visitor": threads[1]}


HOOK = """#!/bin/sh
touch "$PEERWEB_BENCH_DONE"
"""


async def aria2_run(site: Path, contents: dict[str, bytes], work: Path, n: int,
                    shaped: bool) -> dict[str, Any]:
    """N aria2 clients fetch the v1 export from a rate-capped peerweb publisher."""
    async with serving(tracker_app()) as tracker_base:
        return await aria2_swarm(site, contents, work, f"{tracker_base}/announce", n, shaped)


async def aria2_swarm(site: Path, contents: dict[str, bytes], work: Path, tracker: str,
                      n: int, shaped: bool) -> dict[str, Any]:
    hook = work / "done.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    processes: list[asyncio.subprocess.Process] = []
    try:
        net = Testnet(0, template=NodeConfig(limit_local_peers=not shaped))
        async with net:
            publisher = await net.add_node(replace(net.config_for(0),
                                                   upload_limit=0 if shaped else SEED_UP))
            result = await publisher.node.publish(site, "crowd", trackers=(tracker,))
            torrent = work / "site-v1.torrent"
            await publisher.node.export(result.site_id, torrent, v1_only=True)
            markers = [work / f"done-{i}" for i in range(n)]
            # The publisher runs in this process: its CPU is this process's.
            meter = Meter([os.getpid()])
            start = time.perf_counter()
            for i in range(n):
                # Clients keep seeding until the last is done, as peerweb's nodes do.
                processes.append(await asyncio.create_subprocess_exec(
                    "aria2c", "--enable-dht=false", "--enable-dht6=false",
                    "--bt-enable-lpd=false", "--disable-ipv6=true", "--seed-time=600",
                    f"--interface={node_address(i + 1)}",
                    f"--max-upload-limit={0 if shaped else PEER_UP}",
                    f"--listen-port={free_port(node_address(i + 1))}",
                    f"--dir={work / f'aria2-{i}'}", f"--on-bt-download-complete={hook}",
                    "--console-log-level=error", "--summary-interval=0", str(torrent),
                    stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
                    env={"PATH": "/usr/bin:/bin", "PEERWEB_BENCH_DONE": str(markers[i])}))
            meter.pids += [p.pid for p in processes]
            times: dict[int, float] = {}
            deadline = start + 280
            while len(times) < n and time.perf_counter() < deadline:
                for i, marker in enumerate(markers):
                    if i not in times and marker.exists():
                        times[i] = time.perf_counter() - start
                await asyncio.sleep(0.02)
            cpu, busy = meter.read()
            # The v1 export is a torrent of its own: the session's upload (payload and
            # protocol) stands for it.
            uploaded = int((await publisher.node.status())["uploaded"])
            if len(times) < n:
                raise TimeoutError(f"only {len(times)} of {n} aria2 clients finished")
        for i in range(n):
            for name, data in contents.items():
                assert (work / f"aria2-{i}" / "site" / name).read_bytes() == data, name
        return {"all_s": [times[i] for i in range(n)], "cpu_s": cpu, "busy": busy,
                "uploaded": uploaded}
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def http_run(site: Path, contents: dict[str, bytes], n: int,
                   shaped: bool) -> dict[str, Any]:
    """The same browser-like visitors against one capped origin: nginx on the publisher's
    shaped address, or (without link caps) a server whose connections share a token bucket;
    each visitor stops once its page is in."""
    async def crowd(base: str, pids: list[int]) -> dict[str, Any]:
        meter = Meter(pids)
        result = await browsers.run([base], site, n, PARALLEL, timeout=280, page_only=True)
        cpu, busy = meter.read()
        if result["errors"]:
            raise RuntimeError(f"{result['errors']} of {n} HTTP visitors did not get the page")
        return {"page_s": result["page_s"], "cpu_s": cpu, "busy": busy}

    if shaped:
        with nginx(site, node_address(0)) as base:
            return await crowd(base, [])
    async with serving(CappedOrigin(contents, SEED_UP).app()) as base:
        return await crowd(base, [os.getpid()])


# -- one run ---------------------------------------------------------------------------------

def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Ranges (min, max) over runs of each reported figure."""
    keys = [k for k in runs[0]["figures"] if all(k in r["figures"] for r in runs)]
    return {k: [min(r["figures"][k] for r in runs), max(r["figures"][k] for r in runs)]
            for k in keys}


async def one_run(n: int, systems: list[str]) -> dict[str, Any]:
    shaped = linkcaps.inside()
    figures: dict[str, float] = {}
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        contents = write_sample_site(site, big_size=BIG_FILE)
        size = sum(len(v) for v in contents.values())
        assets, _ = browsers.page_files(site)
        page_bytes = sum(len(contents[name]) for name in [browsers.INDEX, *assets])
        bound = max(size / SEED_UP, n * size / (SEED_UP + n * PEER_UP))
        print(f"{n} visitors; site {size / 1e6:.2f} MB (page {page_bytes / 1e6:.2f} MB); "
              f"publisher {SEED_UP / 1e6:.0f} MB/s up, visitors {PEER_UP / 1e6:.0f} MB/s up; "
              f"fluid bound {bound:.2f} s; load {uptime()}", flush=True)
        raw["load_before"] = uptime()
        if "peerweb" in systems:
            swarm = await swarm_run(site, Path(tmp), n, shaped)
            raw["peerweb"] = swarm
            figures.update({
                "peerweb_page_median_s": statistics.median(swarm["page_s"]),
                "peerweb_page_slowest_s": max(swarm["page_s"]),
                "peerweb_all_over_bound": max(swarm["all_s"]) / bound,
                "peerweb_publisher_copies": swarm["uploaded"] / size,
                "peerweb_cpu_s_per_gb": swarm["cpu_s"] / (swarm["delivered"] / 1e9),
                "peerweb_busy": swarm["busy"],
            })
            print(f"  peerweb: page median {figures['peerweb_page_median_s']:.2f} s, slowest "
                  f"{figures['peerweb_page_slowest_s']:.2f} s; whole site "
                  f"{figures['peerweb_all_over_bound']:.2f}x bound; publisher "
                  f"{figures['peerweb_publisher_copies']:.2f} copies; "
                  f"{swarm['cpu_s']:.1f} CPU-s = {figures['peerweb_cpu_s_per_gb']:.1f} CPU-s/GB; "
                  f"machine {swarm['busy']:.0%} busy", flush=True)
            print(f"  visitor node 1 threads (CPU-s): {swarm['threads_visitor']}", flush=True)
        if "aria2" in systems:
            aria2 = await aria2_run(site, contents, Path(tmp), n, shaped)
            raw["aria2"] = aria2
            figures.update({
                "aria2_all_over_bound": max(aria2["all_s"]) / bound,
                "aria2_publisher_copies": aria2["uploaded"] / size,
                "aria2_cpu_s_per_gb": aria2["cpu_s"] / (n * size / 1e9),
                "aria2_busy": aria2["busy"],
            })
            print(f"  aria2: whole site {figures['aria2_all_over_bound']:.2f}x bound; "
                  f"publisher {figures['aria2_publisher_copies']:.2f} copies; "
                  f"{aria2['cpu_s']:.1f} CPU-s = {figures['aria2_cpu_s_per_gb']:.1f} CPU-s/GB; "
                  f"machine {aria2['busy']:.0%} busy", flush=True)
        if "http" in systems:
            http = await http_run(site, contents, n, shaped)
            raw["http"] = http
            figures.update({
                "http_page_median_s": statistics.median(http["page_s"]),
                "http_page_slowest_s": max(http["page_s"]),
            })
            print(f"  plain HTTP (nginx): page median {figures['http_page_median_s']:.2f} s, "
                  f"slowest {figures['http_page_slowest_s']:.2f} s", flush=True)
        if "peerweb_page_slowest_s" in figures and "http_page_slowest_s" in figures:
            figures["peerweb_page_slowest_over_http"] = (figures["peerweb_page_slowest_s"]
                                                          / figures["http_page_slowest_s"])
            figures["peerweb_page_median_over_http"] = (figures["peerweb_page_median_s"]
                                                         / figures["http_page_median_s"])
        if "peerweb_all_over_bound" in figures and "aria2_all_over_bound" in figures:
            figures["peerweb_all_over_aria2"] = (figures["peerweb_all_over_bound"]
                                                 / figures["aria2_all_over_bound"])
            figures["peerweb_cpu_over_aria2"] = (figures["peerweb_cpu_s_per_gb"]
                                                 / figures["aria2_cpu_s_per_gb"])
        for key in ("peerweb_page_slowest_over_http", "peerweb_all_over_aria2",
                    "peerweb_cpu_over_aria2"):
            if key in figures:
                print(f"  {key} {figures[key]:.2f}", flush=True)
    raw["load_after"] = uptime()
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "site_bytes": size,
            "page_bytes": page_bytes, "fluid_bound_s": bound, "figures": figures, "raw": raw}


async def main(args: argparse.Namespace) -> None:
    run = await one_run(args.visitors, args.systems.split(","))
    run["tag"] = args.tag
    path = RESULTS / f"flash_crowd_n{args.visitors}.json"
    RESULTS.mkdir(exist_ok=True)
    record: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {
        "benchmark": "flash_crowd", "visitors": args.visitors, "seed_upload": SEED_UP,
        "peer_upload": PEER_UP, "runs": []}
    record["machine"] = machine()
    record["limits"] = ("tc HTB class per source address in a private network namespace, "
                        "1500-byte packets between hosts" if linkcaps.inside() else
                        "libtorrent rate limits between loopback addresses; HTTP origin "
                        "token bucket")
    record["runs"].append(run)
    tags = sorted({r.get("tag", "") for r in record["runs"]})
    record["summary"] = {tag: summary([r for r in record["runs"] if r.get("tag", "") == tag])
                         for tag in tags}
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--visitors", type=int, default=20, help="visitors (default 20)")
    parser.add_argument("--limits", choices=("auto", "libtorrent"), default="auto",
                        help="uplink caps: tc classes where possible (auto), or libtorrent's "
                             "own rate limits")
    parser.add_argument("--systems", default="peerweb,aria2,http",
                        help="comma-separated: peerweb, aria2, http (default all three)")
    parser.add_argument("--tag", default="", help="names this variant in the results file")
    parser.add_argument("--profile", type=int, default=0, metavar="SECONDS",
                        help="record visitor node 1 with py-spy for SECONDS during the crowd "
                             "(results/flash_crowd_profile.txt, folded stacks)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse(sys.argv[1:])
    if arguments.limits == "libtorrent":
        os.environ["PEERWEB_BENCH_LIMITS"] = "libtorrent"
    if linkcaps.available() and not linkcaps.inside():
        n = arguments.visitors
        caps = {node_address(0): SEED_UP, **{node_address(i): PEER_UP for i in range(1, n + 1)}}
        sys.exit(linkcaps.rerun_inside(caps, "bench.flash_crowd", timeout=600,
                                       args=sys.argv[1:]))
    PROFILE = arguments.profile
    aio.run(main(arguments))
