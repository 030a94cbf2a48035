"""Name resolution latency: petnames, names one and two zones deep, cold and warm.

NODES nodes (PEERWEB_BENCH_NAMES_NODES, default 50) form a private DHT on loopback. One
owns zones ``alice`` and ``bob``: Alice's zone delegates ``bob`` to Bob's, and each zone
names LABELS sites. Every other node knows ``alice`` as a petname. In-process (what the
gateway and the CLI call); bench/dns.py measures the same through the DNS listener, against
direct DNS. Cold: a node with an empty record cache resolves a name (each
level a DHT lookup, which waits ``item_grace`` after the first item for a newer version).
Warm: the same name again, from the cache. Targets (issue 19): cold p95 <= 1 s, warm p95 <=
5 ms; IPNS takes 30-60 s.
"""

from __future__ import annotations

import os
import statistics
import time

from bench.common import write_result
from peerweb import aio
from peerweb.content.addressing import Address, Target
from peerweb.content.identity import SiteKey
from peerweb.names.resolution import RecordCache
from peerweb.tools.testnet import Testnet

NODES = int(os.environ.get("PEERWEB_BENCH_NAMES_NODES", "50"))
LABELS = 20
WARM_REPEATS = 50


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(p95 * 1000, 3), "max_ms": round(ordered[-1] * 1000, 3),
            "samples": len(ordered)}


async def main() -> None:
    async with Testnet(NODES, parallel=10) as net:
        owner, *resolvers = net.nodes
        alice, bob = owner.node.keys.create("alice"), owner.node.keys.create("bob")
        sites = [SiteKey.generate(f"s{i}").site_id for i in range(LABELS)]
        await owner.node.publish_name("alice", "bob", bob.site_id, 3600)
        for i, site in enumerate(sites):
            await owner.node.publish_name("alice", f"s{i}", site, 3600)
            await owner.node.publish_name("bob", f"s{i}", site, 3600)
        for running in resolvers:
            running.node.names.book.add("alice", Address(Target.SITE, alice.site_id))

        results: dict[str, dict[str, dict[str, float]]] = {}
        for kind, name_of in (("petname", lambda i: "alice"),
                              ("one_zone", lambda i: f"s{i}.alice"),
                              ("two_zones", lambda i: f"s{i}.bob.alice")):
            cold: list[float] = []
            warm: list[float] = []
            for i in range(LABELS):
                running = resolvers[i % len(resolvers)]
                names = running.node.names
                names.cache = RecordCache()  # cold: nothing known on this node
                name = name_of(i)
                start = time.perf_counter()
                found = await names.resolve(name)
                cold.append(time.perf_counter() - start)
                assert found.ident in (sites[i], alice.site_id), (name, found)
                for _ in range(WARM_REPEATS):
                    start = time.perf_counter()
                    await names.resolve(name)
                    warm.append(time.perf_counter() - start)
            c, w = percentiles(cold), percentiles(warm)
            results[kind] = {"cold": c, "warm": w}
            print(f"{kind}: cold p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms; "
                  f"warm p50 {w['p50_ms']} ms, p95 {w['p95_ms']} ms")
    write_result("names", {"nodes": NODES, "labels": LABELS, "results": results,
                           "targets": {"cold_p95_ms": 1000, "warm_p95_ms": 5}})


if __name__ == "__main__":
    aio.run(main())
