"""An ordinary site fails under a crowd; visitors whose extension asks peers get the page.

The unaware origin (bench/unaware_origin.py) serves the 41-file page (index.html and 40
stylesheets, scripts, images and texts, 0.6 MB) on an uplink shaped to 1 Mbit/s and answers
509 while more than 5 requests arrived in the last second. Twenty visitor nodes (each a
`peerweb node --web-cache` process) run on their own 127.0.0.x addresses with 2 MB/s uplinks;
five of them visited the page earlier, while the site was quiet, so their nodes hold copies
(fetched by the nodes themselves, as when the extension reports a visit). Uplinks are tc HTB
classes per source address in a private network namespace (linkcaps.py; needs root).

Then 200 page loads (an exponential spacing of 0.1 s on average, ~20 s, round robin over the
20 visitors) in a crowd process of its own (bench/rescue_visitors.py), twice in the same run:

- baseline: plain browsers, the origin alone: how many loads it completes, and how fast;
- rescue: the same loads by clients that follow the extension's decisions (decide.js,
  automatic mode): a failing status, a network error or a stall of the navigation leads to
  the node's /_ext/lookup and the rescued page from the view origin; after a rescue, that
  visitor's navigations to the origin are held back for 30 s and go to the node at once.

Reported: the share of loads completed and their times (from the navigation); for rescued
loads, the time from the failure being detected to the rescued page complete (target: 95%
within 1.5 s); the origin's requests per second in the baseline crowd, and in the rescue
crowd before the first rescue began and after the first rescued page was complete (target:
at least 90% lower once copies exist). Each run appends to bench/results/webcache_rescue.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench import linkcaps
from bench.cluster import NodeProcess, cluster, node_address
from bench.common import RESULTS, free_port, machine
from bench.unaware_origin import LimitedOrigin
from peerweb import aio
from peerweb.http.control_client import NodeClient
from peerweb.tools.testnet import write_sample_site

ORIGIN_HOST = "127.0.0.5"  # outside the nodes' 127.0.0.11.. range
ORIGIN_UP = 1_000_000 // 8  # 1 Mbit/s
PEER_UP = 2_000_000
LIMIT = 5  # requests per second before 509
VISITORS = 20
HOLDERS = 5  # visitors whose nodes cached the page earlier
LOADS = 200
SPACING = 0.1  # mean seconds between loads
STALL = 4.0  # the extension's default stall time
RETRY = 30.0  # the extension's default retryOriginSeconds: how long an origin is held back
GIVE_UP = 30.0  # a visitor gives up on a load after this long
TARGET_RESCUE = 1.5
NODE_ARGS = ("--web-cache", "64MB", "--web-cache-private-origins")


def schedule(seed: int = 18) -> list[tuple[float, int]]:
    rng = random.Random(seed)
    at, out = 0.0, []
    for load in range(LOADS):
        out.append((round(at, 4), load % VISITORS))
        at += rng.expovariate(1 / SPACING)
    return out


async def pair(session: aiohttp.ClientSession, node: NodeProcess) -> str:
    code = (await asyncio.to_thread(NodeClient(node.data_dir).extension_pair))["code"]
    async with session.post(f"http://127.0.0.1:{node.gateway_port}/_ext/pair",
                            json={"code": code}) as response:
        assert response.status == 200, await response.text()
        return str((await response.json())["token"])


async def api(session: aiohttp.ClientSession, node: NodeProcess, token: str, method: str,
              path: str, **kwargs: Any) -> Any:
    async with session.request(method, f"http://127.0.0.1:{node.gateway_port}/_ext{path}",
                               headers={"Authorization": f"Bearer {token}"},
                               **kwargs) as response:
        assert response.status < 500, await response.text()
        return await response.json()


async def visit_earlier(session: aiohttp.ClientSession, nodes: list[NodeProcess],
                        tokens: list[str], url: str) -> None:
    """Holders' users visited the page while the site was quiet: each node fetches it itself
    (one after another: at 1 Mbit/s a page takes ~5 s, a node's fetch may take 15)."""
    for index in range(HOLDERS):
        await api(session, nodes[index], tokens[index], "POST", "/seen", json={"url": url})
        deadline = time.monotonic() + 60
        while True:
            got = await api(session, nodes[index], tokens[index], "GET", "/wait",
                            params={"url": url})
            if got["cached"] is True:
                break
            if got["reason"] != "still fetching" or time.monotonic() > deadline:
                raise RuntimeError(f"holder {index} did not cache the page: {got}")


async def holders_findable(session: aiohttp.ClientSession, nodes: list[NodeProcess],
                           tokens: list[str], url: str) -> None:
    """Wait until each holder's lookup finds the other holders through the DHT (a holder's
    own lookup changes nothing: its own copy is the one chosen)."""
    for index in range(HOLDERS):
        deadline = time.monotonic() + 30
        while True:
            got = await api(session, nodes[index], tokens[index], "GET", "/lookup",
                            params={"url": url})
            if got["found"] and got["holders"] >= HOLDERS - 1:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"holder {index} finds {got['holders']} holders: {got}")
            await asyncio.sleep(0.5)  # the DHT's announces propagate: poll, bounded above


async def crowd(config: dict[str, Any], work: Path) -> dict[str, Any]:
    path = work / f"crowd-{int(config['extension'])}.json"
    path.write_text(json.dumps(config))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.rescue_visitors", str(path),
        stdout=asyncio.subprocess.PIPE, cwd=Path(__file__).resolve().parent.parent)
    out, _ = await asyncio.wait_for(process.communicate(), 180)
    if process.returncode != 0:
        raise RuntimeError(f"the crowd failed (exit {process.returncode})")
    result: dict[str, Any] = json.loads(out)
    debug = os.environ.get("PEERWEB_BENCH_LOADS")
    if debug:  # every load's record, to look into one run
        Path(f"{debug}-{int(config['extension'])}.json").write_bytes(out)
    return result


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def rate(origin: LimitedOrigin, start: float, end: float) -> float:
    count = sum(1 for r in origin.log if start <= r.at < end)
    return count / max(1e-3, end - start)


def figures_of(result: dict[str, Any], origin: LimitedOrigin, log_from: int,
               extension: bool) -> dict[str, Any]:
    loads = result["loads"]
    began = result["began"]
    last_start = max(load["start"] for load in loads)
    log = origin.log[log_from:]
    done = [load for load in loads if load.get("outcome") in ("origin", "peers")]
    times = [load["end"] - load["start"] for load in done]
    out: dict[str, Any] = {
        "completed": len(done) / len(loads),
        "from_origin": sum(1 for load in done if load["outcome"] == "origin"),
        "load_median_s": statistics.median(times) if times else None,
        "load_p95_s": percentile(times, 0.95) if times else None,
        "origin_requests": len(log),
        "origin_served": sum(1 for r in log if r.status == 200),
        "origin_requests_per_load": len(log) / len(loads),
        "origin_rps_crowd": sum(1 for r in log if began <= r.at < last_start)
                            / max(1e-3, last_start - began),
        "outcomes": summarise([load.get("outcome", "?") for load in loads]),
        "failures": summarise([load.get("kind", "none") for load in loads]),
    }
    if not extension:
        return out
    rescued = [load for load in loads if load.get("outcome") == "peers"]
    failed = [load for load in loads if "failed_at" in load]
    rescue_s = [load["rescued_at"] - load["failed_at"] for load in rescued]
    lookup_s = [load["looked_up_at"] - load["failed_at"] for load in failed
                if "looked_up_at" in load]
    first_failure = min((load["failed_at"] for load in failed), default=last_start)
    first_rescued = min((load["rescued_at"] for load in rescued), default=last_start)
    out.update({
        "failures_detected": len(failed),
        "rescued": len(rescued),
        "rescue_median_s": statistics.median(rescue_s) if rescue_s else None,
        "rescue_p95_s": percentile(rescue_s, 0.95),
        "rescue_max_s": max(rescue_s, default=None),
        "lookup_median_s": statistics.median(lookup_s) if lookup_s else None,
        "lookup_p95_s": percentile(lookup_s, 0.95),
        # Of every load whose failure was detected: its rescued page complete in time.
        "rescued_within_target": sum(1 for s in rescue_s if s <= TARGET_RESCUE)
                                 / max(1, len(failed)),
        "first_failure_after_s": first_failure - began,
        "first_rescued_after_s": first_rescued - began,
        # A count: the window before the first failure is a few ms, its rate meaningless.
        "origin_requests_before_rescue": sum(1 for r in log if r.at < first_failure),
        "origin_rps_after_rescue": rate(origin, first_rescued, last_start),
    })
    return out


def summarise(values: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        key = value[:120]
        counts[key] = counts.get(key, 0) + 1
    return counts


async def one_run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-rescue-") as tmp:
        work = Path(tmp)
        contents = write_sample_site(work / "site", big_size=0)
        page = {name: data for name, data in contents.items() if name != "404.html"}
        origin = LimitedOrigin(page)
        runner = web.AppRunner(origin.app(), access_log=None)
        await runner.setup()
        port = free_port(ORIGIN_HOST)
        await web.TCPSite(runner, ORIGIN_HOST, port, backlog=1024).start()
        base = f"http://{ORIGIN_HOST}:{port}"
        url = f"{base}/index.html"
        try:
            async with cluster(work / "nodes", [0] * VISITORS, NODE_ARGS) as nodes, \
                    aiohttp.ClientSession() as session:
                tokens = [await pair(session, node) for node in nodes]
                t0 = time.monotonic()
                await visit_earlier(session, nodes, tokens, url)
                await holders_findable(session, nodes, tokens, url)
                print(f"{HOLDERS} holders cached the page and find each other "
                      f"({time.monotonic() - t0:.1f} s)", flush=True)
                config = {
                    "origin": base, "files": {k: v.hex() for k, v in page.items()},
                    "stall_s": STALL, "give_up_s": GIVE_UP, "retry_s": RETRY,
                    "schedule": schedule(),
                    "visitors": [{"address": node_address(i),
                                  "gateway": f"http://127.0.0.1:{node.gateway_port}",
                                  "token": tokens[i]} for i, node in enumerate(nodes)]}
                origin.limit = LIMIT
                figures = {}
                for name, extension in (("baseline", False), ("rescue", True)):
                    mark = len(origin.log)
                    result = await crowd({**config, "extension": extension}, work)
                    figures[name] = figures_of(result, origin, mark, extension)
                    figures[name]["crowd_cpu_s"] = result["cpu_s"]
                    print(f"  {name}: {json.dumps(figures[name])}", flush=True)
                    await asyncio.sleep(1.1)  # the origin's 1 s window empties between crowds
                debug = os.environ.get("PEERWEB_BENCH_LOADS")
                if debug:
                    for index, node in enumerate(nodes):
                        log = (node.data_dir / "node.log").read_bytes()
                        Path(f"{debug}-node{index}.log").write_bytes(log)
        finally:
            await runner.cleanup()
    return {"when": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "page_bytes": sum(
        len(v) for v in page.values()), "figures": figures, "tc": tc_bytes()}


def tc_bytes() -> dict[str, int]:
    """Bytes sent per shaped class (1:10 the origin, 1:11.. the nodes): proof the shaping
    took the traffic."""
    out = subprocess.run(["tc", "-s", "class", "show", "dev", "lo"], capture_output=True,
                         text=True, check=False).stdout
    found: dict[str, int] = {}
    current = ""
    for line in out.splitlines():
        words = line.split()
        if words[:2] == ["class", "htb"]:
            current = words[2]
        elif words[:1] == ["Sent"] and current:
            found[current] = int(words[1])
    return found


def report(run: dict[str, Any]) -> None:
    base, rescue = run["figures"]["baseline"], run["figures"]["rescue"]
    print(f"baseline (origin alone): {base['completed']:.0%} of {LOADS} loads completed; "
          f"origin {base['origin_rps_crowd']:.0f} requests/s during the crowd")
    print(f"with the extension's rules: {rescue['completed']:.0%} completed "
          f"({rescue['rescued']} from peers, {rescue['from_origin']} from the origin); "
          f"failure -> rescued page: median {rescue['rescue_median_s']:.2f} s, p95 "
          f"{rescue['rescue_p95_s']:.2f} s; {rescue['rescued_within_target']:.0%} of "
          f"{rescue['failures_detected']} failures rescued within {TARGET_RESCUE} s "
          f"(target 95%)")
    after = rescue["origin_rps_after_rescue"]
    print(f"origin requests/s: baseline crowd {base['origin_rps_crowd']:.1f}; with the "
          f"rescue {rescue['origin_requests_before_rescue']} requests before the first "
          f"failure, {after:.1f}/s after the first rescued page: "
          f"{1 - after / base['origin_rps_crowd']:.0%} lower than the baseline (target 90%); "
          f"per load {base['origin_requests_per_load']:.2f} vs "
          f"{rescue['origin_requests_per_load']:.2f}")


async def main() -> None:
    run = await one_run()
    base, rescue = run["figures"]["baseline"], run["figures"]["rescue"]
    run["figures"]["origin_lower_after_rescue"] = (
        1 - rescue["origin_rps_after_rescue"] / base["origin_rps_crowd"])
    run["figures"]["origin_requests_lower"] = (
        1 - rescue["origin_requests"] / base["origin_requests"])
    run["tag"] = "held back"  # navigations to a rescued origin held back (decide.js hold)
    report(run)
    path = RESULTS / "webcache_rescue.json"
    record: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {
        "benchmark": "webcache_rescue", "runs": []}
    record.update(machine=machine(), limits="tc HTB class per source address in a private "
                  "network namespace, 1500-byte packets between hosts",
                  setup={"origin_up": ORIGIN_UP, "peer_up": PEER_UP, "limit_rps": LIMIT,
                         "visitors": VISITORS, "holders": HOLDERS, "loads": LOADS,
                         "spacing_s": SPACING, "stall_s": STALL, "give_up_s": GIVE_UP,
                         "retry_s": RETRY})
    record["runs"].append(run)
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    if not linkcaps.available():
        sys.exit("needs root and iproute2 (tc shapes the origin's 1 Mbit/s uplink)")
    if not linkcaps.inside():
        caps = {ORIGIN_HOST: ORIGIN_UP, **{node_address(i): PEER_UP for i in range(VISITORS)}}
        sys.exit(linkcaps.rerun_inside(caps, "bench.webcache_rescue", timeout=420))
    aio.run(main())
