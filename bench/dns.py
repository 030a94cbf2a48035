"""DNS that survives its servers: resolution latency and availability during an outage.

NODES nodes form a private DHT on loopback, each with a ``peerweb dns`` listener. A real
authoritative server (tests/dns_authority.py: a dnslib server for a zone signed by
dnspython) holds NAMES signed A records and the ``_peerweb`` TXT records of BRIDGED domains
(claimed by sites the first node publishes); the nodes trust the zone's key.

Latency, through the DNS listener of a node whose caches were emptied (cold) and again at
once (warm), for: petnames (``alice.peer``), names one and two zones deep
(``s3.alice.peer``, ``s3.bob.alice.peer``), bridged domains (``b3.pw.test.peer``: the TXT
record validated, the site's pointer from the DHT), and signed A records forwarded to the
authority; against asking the authority directly, in the same run.

Availability: RESOLVERS nodes resolve all NAMES names between them (a share each); the
authority is killed; then every name is asked once, in random order, of a random node (most
never asked for it: they find a holder through the DHT), at a steady RATE queries a second.
The share answering the right address counts (target >= 99%).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
from tests.dns_authority import build_zone

from bench.common import write_result
from peerweb import aio
from peerweb.config import DnsSettings, NodeConfig
from peerweb.content.addressing import Address, Target
from peerweb.content.identity import KeyStore, SiteKey
from peerweb.dns.server import DnsFrontend, Listener, listen
from peerweb.names.resolution import RecordCache
from peerweb.tools.testnet import Testnet, write_sample_site

NODES = int(os.environ.get("PEERWEB_BENCH_DNS_NODES", "50"))
NAMES = 1000
BRIDGED = 20
SITES = 4  # each claims BRIDGED / SITES domains (a pointer claims at most 8)
LABELS = 20
SAMPLES = 20  # cold and warm samples per kind
RESOLVERS = min(10, NODES - 1)
RATE = 100.0  # queries a second during the outage
ORIGIN = "pw.test."
AUTHORITY_HOST = "127.0.0.53"
AUTHORITY = Path(__file__).resolve().parents[1] / "tests" / "dns_authority.py"
TTL = 2  # seconds: every answer is stale once the outage starts


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"p50_ms": round(statistics.median(ordered) * 1000, 3),
            "p95_ms": round(p95 * 1000, 3), "max_ms": round(ordered[-1] * 1000, 3),
            "samples": len(ordered)}


async def ask(port: int, name: str, host: str = "127.0.0.1") -> dns.message.Message:
    query = dns.message.make_query(name, "A", want_dnssec=True)
    return await dns.asyncquery.udp(query, host, timeout=10, port=port)


def address(response: dns.message.Message) -> str | None:
    found = [r.to_text() for rrset in response.answer if rrset.rdtype == 1 for r in rrset]
    return found[0] if len(found) == 1 else None


async def timed(call: Callable[[], Awaitable[dns.message.Message]]) -> tuple[float, str | None]:
    start = time.perf_counter()
    response = await call()
    return time.perf_counter() - start, address(response)


async def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="peerweb-bench-dns-"))
    root = tmp / "net"
    keys = KeyStore(root / "node-0" / "keys")
    sites = [keys.create(f"site{i}") for i in range(SITES)]
    per_site = BRIDGED // SITES
    records: dict[str, list[tuple[str, str]]] = {
        f"n{i}": [("A", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")] for i in range(NAMES)}
    for b in range(BRIDGED):
        records[f"_peerweb.b{b}"] = [("TXT", f'"site={sites[b // per_site].site_id}"')]
    zone = build_zone(ORIGIN, records, ttl=TTL, lifetime=3 * 3600)
    (tmp / "zone").write_text(zone.text)
    (tmp / "anchor").write_text(zone.anchor)
    authority = subprocess.Popen([sys.executable, str(AUTHORITY), str(tmp / "zone"),
                                  AUTHORITY_HOST, ORIGIN], stdout=subprocess.PIPE, text=True)
    assert authority.stdout is not None
    port = int(authority.stdout.readline())
    settings = DnsSettings(upstreams=((AUTHORITY_HOST, port),), trust_anchors=tmp / "anchor",
                           upstream_timeout=1.0, rate=10_000, burst=10_000)
    listeners: list[Listener] = []
    started = time.perf_counter()
    try:
        async with Testnet(NODES, root=root, template=NodeConfig(dns=settings)) as net:
            print(f"{NODES} nodes up in {time.perf_counter() - started:.1f} s")
            owner = net.nodes[0]
            for i, key in enumerate(sites):
                folder = tmp / f"site{i}"
                write_sample_site(folder, small_files=2, big_size=0, seed=i)
                await owner.node.publish(folder, key.name, domains=tuple(
                    f"b{b}.{ORIGIN.rstrip('.')}" for b in range(i * per_site,
                                                                (i + 1) * per_site)))
            alice, bob = owner.node.keys.create("alice"), owner.node.keys.create("bob")
            await owner.node.publish_name("alice", "bob", bob.site_id, 3600)
            targets = [SiteKey.generate(f"t{i}").site_id for i in range(LABELS)]
            for i, target in enumerate(targets):
                await owner.node.publish_name("alice", f"s{i}", target, 3600)
                await owner.node.publish_name("bob", f"s{i}", target, 3600)
            ports = []
            for running in net.nodes:
                running.node.names.book.add("alice", Address(Target.SITE, alice.site_id))
                ports.append(await _listener(running, listeners))

            latency = await measure_latency(net.nodes, ports, port)
            outage = await measure_outage(net.nodes, ports, authority)
            load = os.getloadavg()
    finally:
        for listener in listeners:
            await listener.close()
        if authority.poll() is None:
            authority.kill()
        authority.wait(10)
        authority.stdout.close()
    write_result("dns", {"nodes": NODES, "names": NAMES, "bridged": BRIDGED,
                         "latency": latency, "outage": outage,
                         "load_average_after": [round(x, 2) for x in load],
                         "targets": {"cold_p95_ms": 1000, "warm_p95_ms": 5,
                                     "availability": 0.99}})


async def _listener(running: Any, listeners: list[Listener]) -> int:
    node = running.node

    listener = await listen(DnsFrontend(node.dns, node.names.knows, "127.0.0.1"), "127.0.0.1", 0)
    listeners.append(listener)
    return listener.address[1]


async def measure_latency(nodes: list[Any], ports: list[int],
                          authority_port: int) -> dict[str, Any]:
    kinds: dict[str, Callable[[int], str]] = {
        "petname": lambda i: "alice.peer.",
        "one_zone": lambda i: f"s{i % LABELS}.alice.peer.",
        "two_zones": lambda i: f"s{i % LABELS}.bob.alice.peer.",
        "bridged": lambda i: f"b{i % BRIDGED}.{ORIGIN}peer.",
        "dns_signed_a": lambda i: f"n{i}.{ORIGIN}",
    }
    results: dict[str, Any] = {}
    for kind, name_of in kinds.items():
        cold, warm = [], []
        for i in range(SAMPLES):
            index = 1 + i % (len(nodes) - 1)
            node = nodes[index].node
            node.dns.forget()  # cold: no answer, no key, no record cached on this node
            node.names.cache = RecordCache()
            name = name_of(i)
            took, got = await timed(lambda n=name, p=ports[index]: ask(p, n))
            assert got is not None, (kind, name)
            cold.append(took)
            for _ in range(5):
                took, _ = await timed(lambda n=name, p=ports[index]: ask(p, n))
                warm.append(took)
        results[kind] = {"cold": percentiles(cold), "warm": percentiles(warm)}
    direct = []
    for i in range(SAMPLES * 5):
        took, got = await timed(lambda n=f"n{i}.{ORIGIN}": ask(authority_port, n,
                                                                AUTHORITY_HOST))
        assert got is not None
        direct.append(took)
    results["direct_to_authority"] = percentiles(direct)
    for kind, row in results.items():
        if "cold" in row:
            print(f"{kind}: cold p50 {row['cold']['p50_ms']} ms p95 {row['cold']['p95_ms']} ms;"
                  f" warm p50 {row['warm']['p50_ms']} ms p95 {row['warm']['p95_ms']} ms")
        else:
            print(f"{kind}: p50 {row['p50_ms']} ms p95 {row['p95_ms']} ms")
    return results


async def measure_outage(nodes: list[Any], ports: list[int],
                         authority: subprocess.Popen[str]) -> dict[str, Any]:
    rng = random.Random(19)
    expected = {f"n{i}.{ORIGIN}": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"
                for i in range(NAMES)}
    names = list(expected)
    resolvers = list(range(1, 1 + RESOLVERS))
    gate = asyncio.Semaphore(32)

    async def warm_one(i: int, name: str) -> None:
        async with gate:
            index = resolvers[i % RESOLVERS]
            got = address(await ask(ports[index], name))
            assert got == expected[name], (name, got)

    start = time.perf_counter()
    await asyncio.gather(*(warm_one(i, n) for i, n in enumerate(names)))
    print(f"{NAMES} names resolved by {RESOLVERS} nodes in {time.perf_counter() - start:.1f} s")
    # Let the announcements settle in the DHT, then the authority goes away.
    await asyncio.sleep(2.0)
    os.kill(authority.pid, signal.SIGKILL)
    authority.wait(10)
    await asyncio.sleep(TTL)  # every cached answer is now past its TTL: stale
    order = names[:]
    rng.shuffle(order)
    outcomes: list[tuple[bool, float, bool]] = []  # correct, seconds, asked a node that knew

    async def probe(i: int, name: str) -> None:
        index = rng.randrange(len(nodes))
        knew = index == resolvers[names.index(name) % RESOLVERS]
        begin = time.perf_counter()
        try:
            got = address(await ask(ports[index], name))
        except dns.exception.Timeout:
            got = None
        outcomes.append((got == expected[name], time.perf_counter() - begin, knew))

    tasks = []
    begin = time.perf_counter()
    for i, name in enumerate(order):
        due = begin + i / RATE
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.ensure_future(probe(i, name)))
    await asyncio.gather(*tasks)
    correct = sum(1 for ok, _, _ in outcomes if ok)
    others = [t for ok, t, knew in outcomes if not knew]
    owners = [t for ok, t, knew in outcomes if knew]
    refused = sum(n.node.dns.counters["refused_forged"] for n in nodes)
    stale = sum(n.node.dns.counters["served_stale"] for n in nodes)
    result = {"asked": len(outcomes), "correct": correct,
              "availability": round(correct / len(outcomes), 4),
              "rate_qps": RATE, "served_stale": stale, "refused_forged": refused,
              "latency_node_that_resolved": percentiles(owners) if owners else None,
              "latency_other_nodes": percentiles(others) if others else None}
    print(f"outage: {correct}/{len(outcomes)} answered correctly "
          f"({result['availability']:.2%}); latency on nodes that never asked: "
          f"{result['latency_other_nodes']}")
    return result


if __name__ == "__main__":
    aio.run(main())
