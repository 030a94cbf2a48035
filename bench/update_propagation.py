"""Update propagation: how fast a new version reaches the nodes holding a site, and its cost.

HOLDERS nodes hold version 1 of the 41-file page plus a 1 MB file. The publisher publishes
version 2 with that 1 MB file changed. Measured, from the end of `publish`: when each holder
has accepted the v2 pointer (pushed between holders; the DHT poll is only a safety net), and
when each holder has v2 complete. Cost: payload bytes each holder downloaded for v2, against
the changed file's size (target: within 10%). Baseline in the same run: a fresh node fetching
v2 whole (what a version costs without reuse), in time and bytes.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from bench.common import median, write_result
from peerweb import aio
from peerweb.tools.testnet import Testnet, write_sample_site

HOLDERS = 12
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

            started = time.perf_counter()
            v2 = await publisher.node.publish(v2_dir, "bench")
            publish_s = time.perf_counter() - started
            news = await wait_all(
                holders, lambda h: h.node.state.sites[v1.site_id].pointer.version == 2, DEADLINE)
            done = await wait_all(holders, lambda h: has_complete(h, v2.infohash), DEADLINE)
            spent = [h.node.swarm.find(v2.infohash).status().total_payload_download
                     for h in holders]

            fresh = await net.add_node(net.config_for(HOLDERS + 1))
            await fresh.node.swarm.wait_dht_ready(10.0)
            started = time.perf_counter()
            await fresh.node.open_site(v1.site_id)
            await wait_all([fresh], lambda h: has_complete(h, v2.infohash), DEADLINE)
            fresh_s = time.perf_counter() - started
            fresh_bytes = fresh.node.swarm.find(v2.infohash).status().total_payload_download

    bytes_ratio = median(spent) / CHANGED_SIZE
    print(f"{HOLDERS} holders; v2 changes {CHANGED} ({CHANGED_SIZE} bytes); publish took "
          f"{publish_s:.2f} s")
    print(f"news of v2 reached holders: median {median(news):.3f} s, last {max(news):.3f} s")
    print(f"v2 complete on holders: median {median(done):.3f} s, last {max(done):.3f} s")
    print(f"bytes per holder: median {median(spent)}, max {max(spent)} -> "
          f"{bytes_ratio:.3f}x the changed file (target <= 1.10x)")
    print(f"baseline, fresh node fetching v2 whole: {fresh_s:.3f} s, {fresh_bytes} bytes -> "
          f"holders moved {median(spent) / fresh_bytes:.3f}x of that")
    write_result("update_propagation", {
        "holders": HOLDERS, "changed_bytes": CHANGED_SIZE, "publish_s": publish_s,
        "news_s": news, "complete_s": done, "bytes_per_holder": spent,
        "bytes_ratio_median": bytes_ratio, "fresh_fetch_s": fresh_s,
        "fresh_fetch_bytes": fresh_bytes,
    })


if __name__ == "__main__":
    aio.run(main())
