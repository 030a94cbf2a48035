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

``--nodes N`` (or PEERWEB_BENCH_DNS_NODES; default 50) sizes the DHT, ``--run K`` names the
run: each writes ``bench/results/dns_run<K>.json`` and rewrites ``bench/results/dns.json``,
the summary of every run file of the same size (min-max ranges over runs). Run it under
``flock /tmp/peerweb-bench.lock`` once per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.asyncquery
import dns.exception
import dns.message
import dns.name
import dns.rcode
from tests.dns_authority import build_zone

from bench.common import RESULTS, write_result
from peerweb import aio
from peerweb.config import DnsSettings, NodeConfig
from peerweb.content.addressing import Address, Target
from peerweb.content.identity import KeyStore, SiteKey
from peerweb.dns.server import DnsFrontend, Listener, listen
from peerweb.dns.service import share_key
from peerweb.names.resolution import RecordCache
from peerweb.tools.testnet import Testnet, write_sample_site

NODES = int(os.environ.get("PEERWEB_BENCH_DNS_NODES", "50"))
PARALLEL = 10  # nodes started at once (Testnet.parallel)
NAMES = 1000
BRIDGED = 20
SITES = 4  # each claims BRIDGED / SITES domains (a pointer claims at most 8)
LABELS = 20
SAMPLES = 40  # cold samples per kind, each on a node not used before for the kind if possible
WARM_REPEATS = 5  # warm samples after each cold one
RESOLVERS = 10  # nodes that resolve the NAMES names before the outage
RATE = float(os.environ.get("PEERWEB_BENCH_DNS_RATE", "100"))  # queries a second, outage
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


async def timed(port: int, name: str, host: str = "127.0.0.1") -> tuple[float, str | None]:
    start = time.perf_counter()
    response = await ask(port, name, host)
    return time.perf_counter() - start, address(response)


async def main(nodes: int, run: str) -> None:
    if nodes < RESOLVERS + 2:
        raise SystemExit(f"--nodes must be at least {RESOLVERS + 2}")
    tmp = Path(tempfile.mkdtemp(prefix="peerweb-bench-dns-"))
    root = tmp / "net"
    keys = KeyStore(root / "node-0" / "keys")
    sites = [keys.create(f"site{i}") for i in range(SITES)]
    per_site = BRIDGED // SITES
    records: dict[str, list[tuple[str, str]]] = {
        f"n{i}": [("A", expected_address(i))] for i in range(NAMES)}
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
        async with Testnet(nodes, root=root, template=NodeConfig(dns=settings),
                           parallel=PARALLEL) as net:
            up = time.perf_counter() - started
            print(f"{nodes} nodes up in {up:.1f} s")
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
            outage = await measure_outage(net.nodes, ports, authority, port)
            load = os.getloadavg()
    finally:
        for listener in listeners:
            await listener.close()
        if authority.poll() is None:
            authority.kill()
        authority.wait(10)
        authority.stdout.close()
    write_result(f"dns_run{run}", {
        "run": run, "nodes": nodes, "names": NAMES, "bridged": BRIDGED,
        "nodes_up_s": round(up, 2), "duration_s": round(time.perf_counter() - started, 1),
        "latency": latency, "outage": outage,
        "load_average_after": [round(x, 2) for x in load], "targets": TARGETS})
    summarize(nodes)


def expected_address(i: int) -> str:
    return f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"


async def _listener(running: Any, listeners: list[Listener]) -> int:
    node = running.node

    listener = await listen(DnsFrontend(node.dns, node.names.knows, "127.0.0.1"), "127.0.0.1", 0)
    listeners.append(listener)
    return listener.address[1]


KINDS: dict[str, Callable[[int], str]] = {
    "petname": lambda i: "alice.peer.",
    "one_zone": lambda i: f"s{i % LABELS}.alice.peer.",
    "two_zones": lambda i: f"s{i % LABELS}.bob.alice.peer.",
    "bridged": lambda i: f"b{i % BRIDGED}.{ORIGIN}peer.",
    "dns_signed_a": lambda i: f"n{i}.{ORIGIN}",
}
TARGETS = {"cold_p95_ms": 1000, "warm_p95_ms": 5, "availability": 0.99}


async def measure_latency(nodes: list[Any], ports: list[int],
                          authority_port: int) -> dict[str, Any]:
    """Per kind: SAMPLES cold resolutions, each on its own node (node 0, the owner, is never
    asked) with every cache of the node emptied first, and WARM_REPEATS warm ones after each;
    then the baseline, the authority asked directly, as many times as there are warm samples.
    """
    results: dict[str, Any] = {}
    for kind, name_of in KINDS.items():
        cold, warm = [], []
        for i in range(SAMPLES):
            index = 1 + i % (len(nodes) - 1)
            node = nodes[index].node
            node.dns.forget()  # cold: no answer, no key, no record cached on this node
            node.names.cache = RecordCache()
            name = name_of(i)
            took, got = await timed(ports[index], name)
            assert got is not None, (kind, name)
            cold.append(took)
            for _ in range(WARM_REPEATS):
                took, got = await timed(ports[index], name)
                assert got is not None, (kind, name)
                warm.append(took)
        results[kind] = {"cold": percentiles(cold), "warm": percentiles(warm)}
    direct = []
    for i in range(SAMPLES * WARM_REPEATS):
        took, got = await timed(authority_port, f"n{i % NAMES}.{ORIGIN}", AUTHORITY_HOST)
        assert got == expected_address(i % NAMES)
        direct.append(took)
    base = percentiles(direct)
    results["direct_to_authority"] = base
    print(f"baseline, the authority asked directly: p50 {base['p50_ms']} ms, "
          f"p95 {base['p95_ms']} ms")
    for kind in KINDS:
        c, w = results[kind]["cold"], results[kind]["warm"]
        results[kind]["ratio_to_direct"] = {
            "cold_p95": round(c["p95_ms"] / base["p95_ms"], 2),
            "warm_p50": round(w["p50_ms"] / base["p50_ms"], 2),
            "warm_p95": round(w["p95_ms"] / base["p95_ms"], 2)}
        r = results[kind]["ratio_to_direct"]
        print(f"{kind}: cold p50 {c['p50_ms']} ms, p95 {c['p95_ms']} ms "
              f"({r['cold_p95']}x direct; target {TARGETS['cold_p95_ms']} ms: "
              f"{_met(c['p95_ms'] <= TARGETS['cold_p95_ms'])}); warm p50 {w['p50_ms']} ms, "
              f"p95 {w['p95_ms']} ms ({r['warm_p95']}x direct; target "
              f"{TARGETS['warm_p95_ms']} ms: {_met(w['p95_ms'] <= TARGETS['warm_p95_ms'])})")
    return results


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


async def _announced(nodes: list[Any], names: list[str], rng: random.Random) -> bool:
    """Whether a sample of the names has a holder in the DHT, as the last node (never a
    resolver) finds them."""
    finder = nodes[-1].node.swarm
    sample = rng.sample(names, 10)
    found = await asyncio.gather(*(finder.find_peers(
        share_key(dns.name.from_text(n), 1), 5.0) for n in sample))
    return all(found)


async def _direct_answers(authority_port: int, names: list[str]) -> int:
    """How many of ``names`` the authority answers directly (the baseline: plain DNS)."""
    async def one(name: str) -> bool:
        query = dns.message.make_query(name, "A")
        try:
            response = await dns.asyncquery.udp(query, AUTHORITY_HOST, timeout=1.0,
                                                port=authority_port)
        except (dns.exception.Timeout, OSError):
            return False
        return address(response) is not None

    return sum(await asyncio.gather(*(one(n) for n in names)))


async def measure_outage(nodes: list[Any], ports: list[int], authority: subprocess.Popen[str],
                         authority_port: int) -> dict[str, Any]:
    rng = random.Random(19)
    expected = {f"n{i}.{ORIGIN}": expected_address(i) for i in range(NAMES)}
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
    warmed = time.perf_counter() - start
    print(f"{NAMES} names resolved by {RESOLVERS} nodes in {warmed:.1f} s")
    # The announcements go out as the answers come; the outage starts once a sample of
    # them can be found.
    deadline = time.monotonic() + 60.0
    while not await _announced(nodes, names, rng):
        if time.monotonic() > deadline:
            raise TimeoutError("the holders' announcements were not found within 60 s")
        await asyncio.sleep(0.2)
    os.kill(authority.pid, signal.SIGKILL)
    authority.wait(10)
    await asyncio.sleep(TTL)  # every cached answer is now past its TTL: stale
    baseline_sample = rng.sample(names, 20)
    direct = await _direct_answers(authority_port, baseline_sample)
    order = names[:]
    rng.shuffle(order)
    outcomes: list[tuple[bool, float, bool]] = []  # correct, seconds, asked a node that knew

    async def probe(name: str) -> None:
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
        await asyncio.sleep(max(0.0, due - time.perf_counter()))  # a steady RATE a second
        tasks.append(asyncio.ensure_future(probe(name)))
    sent = time.perf_counter() - begin
    await asyncio.gather(*tasks)
    correct = sum(1 for ok, _, _ in outcomes if ok)
    failed = [t for ok, t, _ in outcomes if not ok]
    others = [t for _, t, knew in outcomes if not knew]
    owners = [t for _, t, knew in outcomes if knew]
    counters = [n.node.dns.counters for n in nodes]
    result = {"asked": len(outcomes), "correct": correct,
              "availability": round(correct / len(outcomes), 4),
              "rate_qps": RATE, "achieved_qps": round(len(order) / sent, 1),
              "warmup_s": round(warmed, 1),
              "served_stale": sum(c["served_stale"] for c in counters),
              "stale_refused": sum(c["stale_refused"] for c in counters),
              "refused_forged": sum(c["refused_forged"] for c in counters),
              "latency_node_that_resolved": percentiles(owners) if owners else None,
              "latency_other_nodes": percentiles(others) if others else None,
              "latency_failed": percentiles(failed) if failed else None,
              "direct_to_authority_availability": direct / len(baseline_sample)}
    print(f"outage: {correct}/{len(outcomes)} answered correctly "
          f"({result['availability']:.2%}; plain DNS to the authority "
          f"{direct}/{len(baseline_sample)}; target {TARGETS['availability']:.0%}: "
          f"{_met(result['availability'] >= TARGETS['availability'])}); latency on nodes that "
          f"resolved the name {result['latency_node_that_resolved']}, on nodes that never "
          f"asked {result['latency_other_nodes']}")
    return result


# -- the summary over runs ------------------------------------------------------------------

def _leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[prefix + key] = value
    return out


def summarize(nodes: int) -> dict[str, Any]:
    """Ranges (min-max over runs) of every figure of the run files of ``nodes`` nodes, and
    whether each target holds in every run; written to bench/results/dns.json."""
    runs = []
    for path in sorted(RESULTS.glob("dns_run*.json")):
        data = json.loads(path.read_text())
        if data.get("nodes") == nodes:
            runs.append(data)
    figures: dict[str, list[float]] = {}
    for data in runs:
        for key, value in _leaves({"latency": data["latency"],
                                   "outage": data["outage"]}).items():
            figures.setdefault(key, []).append(value)
    ranges = {key: {"min": min(v), "max": max(v)} for key, v in sorted(figures.items())}
    worst_cold = max(figures[f"latency.{k}.cold.p95_ms"][i] for k in KINDS
                     for i in range(len(runs)))
    worst_warm = max(figures[f"latency.{k}.warm.p95_ms"][i] for k in KINDS
                     for i in range(len(runs)))
    worst_share = min(figures["outage.availability"])
    held = {"cold_p95_ms": {"worst": worst_cold, "met": worst_cold <= TARGETS["cold_p95_ms"]},
            "warm_p95_ms": {"worst": worst_warm, "met": worst_warm <= TARGETS["warm_p95_ms"]},
            "availability": {"worst": worst_share,
                             "met": worst_share >= TARGETS["availability"]}}
    summary = {"nodes": nodes, "runs": [r["run"] for r in runs],
               "run_files": [f"dns_run{r['run']}.json" for r in runs],
               "ranges": ranges, "targets": TARGETS, "targets_held_in_every_run": held}
    write_result("dns", summary)
    print(f"summary over {len(runs)} runs of {nodes} nodes: worst cold p95 {worst_cold} ms, "
          f"worst warm p95 {worst_warm} ms, worst availability {worst_share:.2%}")
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nodes", type=int, default=NODES,
                        help="nodes in the private DHT (default %(default)s, or "
                             "PEERWEB_BENCH_DNS_NODES)")
    parser.add_argument("--run", default="1", help="this run's name in the result files")
    parser.add_argument("--summarize", action="store_true",
                        help="only rewrite dns.json from the run files of --nodes nodes")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse_args()
    if args.summarize:
        summarize(args.nodes)
    else:
        aio.run(main(args.nodes, args.run))
