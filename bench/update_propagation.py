"""Update propagation: how fast a new version reaches the nodes holding a site, and its cost.

HOLDERS nodes hold version 1 of the 41-file page plus a 1 MB file. The publisher publishes
version 2 with that 1 MB file changed, through the real CLI (`peerweb publish`, its own
process, against the publisher's running node). Measured from the moment the command was
started: its wall time (spawn to exit, from a thread of its own as a shell would see it),
when each holder has accepted the v2 pointer (pushed from the publisher and between
holders; the DHT poll is only a safety net), when each holder serves v2 (pointer accepted
and v2's metadata here: its gateway answers from v2, streaming what it lacks), and when each
holder has v2 complete. At the end every holder's gateway is asked for the changed file and
must answer v2's bytes. Several rounds (PEERWEB_BENCH_UPDATE_ROUNDS), each a new version.
Cost: payload bytes each holder downloaded for each version, against
the changed file's size (target: within 10%). Baseline in the same run: a fresh node fetching
v2 whole (what a version costs without reuse), in time and bytes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp

from bench.common import median, write_result
from peerweb import aio
from peerweb.tools.testnet import Testnet, write_sample_site

HOLDERS = int(os.environ.get("PEERWEB_BENCH_UPDATE_HOLDERS", "20"))
ROUNDS = int(os.environ.get("PEERWEB_BENCH_UPDATE_ROUNDS", "3"))
CHANGED = "media/big.bin"
CHANGED_SIZE = 1024 * 1024
DEADLINE = 120.0


def has_complete(running, tid: str) -> bool:
    handle = running.node.swarm.find(tid)
    return handle is not None and running.node.holds(tid) and handle.status().is_seeding


async def wait_all(holders, predicate, deadline: float) -> list[float]:
    """Seconds until ``predicate(holder)`` held, per holder (polled every 10 ms)."""
    start = time.perf_counter()
    times: dict[int, float] = {}
    while len(times) < len(holders):
        if time.perf_counter() - start > deadline:
            raise TimeoutError(f"only {len(times)} of {len(holders)} holders got there")
        for i, holder in enumerate(holders):
            if i not in times and predicate(holder):
                times[i] = time.perf_counter() - start
        await asyncio.sleep(0.01)
    return [times[i] for i in range(len(holders))]


# The command runs from a thread of its own: the default executor is shared with the
# nodes' disk work, and waiting on the process from the event loop, which runs all 21 nodes,
# noticed its exit 0.25-0.5 s after it happened (the process's own clock said 0.19-0.30 s
# from spawn to exit when the loop saw 0.67-0.82 s).
COMMAND_THREAD = ThreadPoolExecutor(1, thread_name_prefix="publish-command")


def run_command(data_dir: Path, folder: Path) -> tuple[float, bytes]:
    """`peerweb publish FOLDER --json` in its own process: seconds from spawn to exit as a
    shell sees them, and its stdout."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "peerweb", "publish", str(folder), "--key", "bench", "--json",
         "--data-dir", str(data_dir)], capture_output=True, timeout=DEADLINE)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"peerweb publish failed: {done.stderr.decode()[-2000:]}")
    return wall, done.stdout


async def cli_publish(data_dir: Path, folder: Path) -> tuple[float, float, dict[str, object]]:
    """The command's wall seconds, when the bench's event loop saw it end, and its result."""
    started = time.perf_counter()
    wall, out = await asyncio.get_running_loop().run_in_executor(
        COMMAND_THREAD, run_command, data_dir, folder)
    seen = time.perf_counter() - started
    return wall, seen, json.loads(out.decode().strip().splitlines()[-1])


def serves(running, site_id: str, version: int) -> bool:
    record = running.node.state.sites.get(site_id)
    return (record is not None and record.pointer.version >= version
            and running.node.holds(record.pointer.infohash.hex()))


async def check_served(holders, site_id: str, expected: bytes) -> None:
    async with aiohttp.ClientSession() as session:
        for holder in holders:
            host = f"{site_id}.localhost:{holder.gateway_address[1]}"
            async with session.get(f"{holder.gateway_url}/{CHANGED}",
                                   headers={"Host": host}) as response:
                body = await response.read()
            assert response.status == 200 and body == expected, holder.gateway_url


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        v1_dir = Path(tmp) / "v1"
        write_sample_site(v1_dir, big_size=CHANGED_SIZE)
        v2_dir = Path(tmp) / "v2"
        shutil.copytree(v1_dir, v2_dir)
        (v2_dir / CHANGED).write_bytes(bytes(reversed((v1_dir / CHANGED).read_bytes())))

        async with Testnet(HOLDERS + 1) as net:
            publisher, *holders = net.nodes
            v1 = await publisher.node.publish(v1_dir, "bench")
            await asyncio.gather(*(h.node.open_site(v1.site_id) for h in holders))
            await wait_all(holders, lambda h: has_complete(h, v1.infohash), DEADLINE)
            await asyncio.sleep(2)  # holders' DHT announces settle

            rounds = []
            changed = (v1_dir / CHANGED).read_bytes()
            for number in range(ROUNDS):
                changed = bytes(reversed(changed)) if number % 2 == 0 else changed[1:] + b"x"
                (v2_dir / CHANGED).write_bytes(changed)
                version = number + 2
                started = time.perf_counter()
                command = asyncio.ensure_future(cli_publish(publisher.config.data_dir, v2_dir))

                lag = time.perf_counter() - started  # the watch starts this much later
                news_at, serving_at, done_at = await asyncio.gather(
                    wait_all(holders, lambda h, v=version: h.node.state.sites[
                        v1.site_id].pointer.version >= v, DEADLINE),
                    wait_all(holders, lambda h, v=version: serves(h, v1.site_id, v), DEADLINE),
                    wait_all(holders, lambda h, v=version: has_complete(
                        h, h.node.state.sites[v1.site_id].pointer.infohash.hex())
                        and h.node.state.sites[v1.site_id].pointer.version >= v, DEADLINE))
                publish_s, publish_seen_s, result = await command
                tid = str(result["infohash"])
                spent = [h.node.swarm.find(tid).status().total_payload_download
                         for h in holders]
                await check_served(holders, v1.site_id, changed)
                one = {"version": version, "publish_s": publish_s,
                       "publish_seen_by_loop_s": publish_seen_s,
                       "news_s": [t + lag for t in news_at],
                       "serving_s": [t + lag for t in serving_at],
                       "complete_s": [t + lag for t in done_at],
                       "bytes_per_holder": spent}
                rounds.append(one)
                print(f"round {number}: v{version}: publish command {publish_s:.2f} s; "
                      f"serving: median {median(one['serving_s']):.3f} s, "
                      f"slowest {max(one['serving_s']):.3f} s; complete: median "
                      f"{median(one['complete_s']):.3f} s, slowest {max(one['complete_s']):.3f}"
                      f" s; bytes per holder median {median(spent)}")
                await asyncio.sleep(1)  # re-puts and announces settle before the next
            v2 = result
            fresh = await net.add_node(net.config_for(HOLDERS + 1))
            await fresh.node.swarm.wait_dht_ready(10.0)
            started = time.perf_counter()
            await fresh.node.open_site(v1.site_id)
            last = str(v2["infohash"])
            await wait_all([fresh], lambda h: has_complete(h, last), DEADLINE)
            fresh_s = time.perf_counter() - started
            fresh_bytes = fresh.node.swarm.find(last).status().total_payload_download

    def spread(key: str, pick) -> str:
        values = [pick(r[key]) for r in rounds]
        return f"{median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"

    spent = [b for r in rounds for b in r["bytes_per_holder"]]
    bytes_ratio = median(spent) / CHANGED_SIZE
    commands = [r["publish_s"] for r in rounds]
    seen = [r["publish_seen_by_loop_s"] for r in rounds]
    print(f"{HOLDERS} holders; each version changes {CHANGED} ({CHANGED_SIZE} bytes); "
          f"{ROUNDS} rounds; times from the command's start (machine shared, 2 cores)")
    print(f"publish command: median {median(commands):.3f} s "
          f"({min(commands):.3f}-{max(commands):.3f}) -> {median(commands) / 0.3:.2f}x the "
          f"target (<= 0.3 s); as the bench's busy loop saw it end: median {median(seen):.3f} s")
    print(f"news reached holders: median over holders {spread('news_s', median)}, "
          f"slowest {spread('news_s', max)}")
    print(f"holders serve the new version: median over holders {spread('serving_s', median)}"
          f", slowest {spread('serving_s', max)} (target median <= 1 s, slowest <= 2 s)")
    medians = [median(r["serving_s"]) for r in rounds]
    slowest = [max(r["serving_s"]) for r in rounds]
    print(f"  vs targets: median {median(medians):.2f}x ({min(medians):.2f}-{max(medians):.2f}x"
          f") of 1 s, slowest {max(slowest) / 2:.2f}x of 2 s at worst")
    print(f"new version complete on holders: median {spread('complete_s', median)}, "
          f"slowest {spread('complete_s', max)}")
    print(f"bytes per holder: median {median(spent)}, max {max(spent)} -> "
          f"{bytes_ratio:.3f}x the changed file (target <= 1.10x)")
    print(f"baseline, fresh node fetching the last version whole: {fresh_s:.3f} s, "
          f"{fresh_bytes} bytes -> holders moved {median(spent) / fresh_bytes:.3f}x of that")
    write_result("update_propagation", {
        "holders": HOLDERS, "changed_bytes": CHANGED_SIZE, "rounds": rounds,
        "note": "machine shared with other engineers' tests (2 cores); times from the start "
                "of the `peerweb publish` process",
        "publish_s_median": median(commands),
        "publish_s_range": [min(commands), max(commands)],
        "publish_seen_by_loop_s_median": median(seen),
        "serving_s_median": median([median(r["serving_s"]) for r in rounds]),
        "serving_s_slowest": max(max(r["serving_s"]) for r in rounds),
        "bytes_ratio_median": bytes_ratio, "fresh_fetch_s": fresh_s,
        "fresh_fetch_bytes": fresh_bytes,
    })


if __name__ == "__main__":
    aio.run(main())
