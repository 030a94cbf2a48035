"""Calibration of the simulator against real nodes: the testnet (``peerweb.tools.testnet``,
N real nodes on 127.0.0.x, a private DHT) and the simulator's model of it, same N and H.

Measured on the real nodes: (1) how long a holders lookup takes (``swarm.find_peers`` of the
site's holders key, from nodes that do not hold it) and how many holders it names; (2) how
long one push takes (a peer-port offer of a pointer the holder already has); (3) an update
flood: ``node.publish`` of a new version, then the time until each of the H holders has
taken it (several rounds, each a new version).

Fitted from (1) and (2), nothing else: the loopback model's per-end delay (``LOOPBACK``'s
``access_median``: one lookup round trip) and the push's extra processing time. Predicted by
the simulator and compared: the flood's t50 and t100 (and the lookup time, as a check of the
fit). Holders lists live ``holders_ttl`` = 0.5 s here on both sides, so every forwarder's
list is cold, as the simulator assumes.

    python -m bench.sim_calibrate --nodes 50 --holders 30     # writes sim_calibrate.json/png
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from peerweb.config import NodeConfig, Timings
from peerweb.policy import propagation
from peerweb.sim.geography import GeographyConfig
from peerweb.sim.scenarios import LOOPBACK, FloodConfig, update_flood
from peerweb.tools.testnet import Testnet, write_sample_site


def site_key(site_id: str) -> bytes:
    from peerweb.content.identity import public_key_from_site_id
    return propagation.holders_key(public_key_from_site_id(site_id))


async def wait_for(predicate: Any, deadline: float, step: float = 0.005) -> float:
    """Seconds until ``predicate()`` held; TimeoutError past ``deadline`` seconds."""
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(step)
    return time.perf_counter() - start


async def measure_real(nodes: int, holders: int, rounds: int, lookups: int,
                       seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    template = NodeConfig(timings=dataclasses.replace(Timings(), holders_ttl=0.5))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "site"
        write_sample_site(folder, small_files=3, big_size=0, seed=seed)
        async with Testnet(nodes, template=template) as net:
            up_s = time.perf_counter() - started
            publisher, *others = net.nodes
            chosen = rng.sample(others, holders)
            first = await publisher.node.publish(folder, "calibrate")
            site = first.site_id
            await asyncio.gather(*(h.node.open_site(site) for h in chosen))
            key = site_key(site)
            # Every holder announced: a lookup from a non-holder names them all.
            strangers = [n for n in others if n not in chosen] or [publisher]
            deadline = time.perf_counter() + 60.0
            while True:
                seen = await strangers[0].node.swarm.find_peers(key, 4.0)
                if len(seen) >= holders or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.5)
            lookup_s, lookup_found = [], []
            for i in range(lookups):
                who = strangers[i % len(strangers)]
                t = time.perf_counter()
                found = await who.node.swarm.find_peers(key, 4.0)
                lookup_s.append(time.perf_counter() - t)
                lookup_found.append(len(found))
            pointer = publisher.node.signed_pointer(site)
            push_s = []
            for h in chosen[:10]:
                t = time.perf_counter()
                await publisher.node.peers.push(h.node.peer_endpoint, pointer,
                                                publisher.node.peer_port)
                push_s.append(time.perf_counter() - t)
            floods = []
            for number in range(rounds):
                await asyncio.sleep(1.0)  # lists cached by the last round go stale (0.5 s)
                (folder / "index.html").write_text(f"<h1>version {number + 2}</h1>")
                version = number + 2
                t = time.perf_counter()
                publish = asyncio.ensure_future(publisher.node.publish(folder, "calibrate"))
                times: dict[int, float] = {}
                while len(times) < holders and time.perf_counter() - t < 90.0:
                    for i, h in enumerate(chosen):
                        record = h.node.state.sites.get(site)
                        if i not in times and record and record.pointer.version >= version:
                            times[i] = time.perf_counter() - t
                    await asyncio.sleep(0.005)
                await publish
                floods.append(sorted(times.values()))
    return {"nodes": nodes, "holders": holders, "testnet_start_s": round(up_s, 1),
            "lookup_s": lookup_s, "lookup_found": lookup_found, "push_s": push_s,
            "floods": floods}


def loopback(access: float) -> GeographyConfig:
    return dataclasses.replace(LOOPBACK, access_median=access)


def simulate(nodes: int, holders: int, access: float, push_delay: float,
             seeds: int) -> dict[str, Any]:
    """The simulator's flood (and its holders lookups) under the fitted loopback model."""
    floods, lookups = [], []
    for seed in range(seeds):
        result = update_flood(FloodConfig(
            nodes=nodes, holders=holders, geography=loopback(access), push_delay=push_delay,
            holder_list=propagation.PUSHED_HOLDERS, horizon=90.0, seed=seed,
            announce_window=5.0))
        floods.append(result.accepted_at)
        lookups.append(sim_lookup_s(nodes, holders, access, seed))
    return {"floods": floods, "lookup_s": [x for one in lookups for x in one]}


def sim_lookup_s(nodes: int, holders: int, access: float, seed: int) -> list[float]:
    """Holders lookups from non-holders in the model, as ``find_peers`` ends them."""
    from peerweb.sim.core import Simulator
    from peerweb.sim.kademlia import Dht, Kind, LookupResult
    from peerweb.sim.scenarios import LOOKUP_TIMEOUT, PEERS_GRACE, key_prefix

    sim = Simulator(seed)
    dht = Dht(sim, nodes, geo_config=loopback(access))
    key = key_prefix(bytes(sim.rng.randbytes(20)))
    chosen = sim.rng.sample(range(nodes), holders)
    for h in chosen:
        sim.at(sim.rng.uniform(0, 2.0), dht.announce, h, key)
    sim.run(until=5.0)
    out: list[float] = []

    def done(result: LookupResult) -> None:
        out.append(result.finished - result.started)
    strangers = [n for n in range(nodes) if n not in set(chosen)]
    for i, who in enumerate(strangers[:20]):
        sim.at(6.0 + i, dht.lookup, who, key, Kind.GET_PEERS, done, PEERS_GRACE,
               LOOKUP_TIMEOUT)
    sim.run()
    return out


def fit(real: dict[str, Any]) -> tuple[float, float]:
    """The loopback model's per-end delay and push delay from the real lookups and pushes.

    A lookup from a stranger ends ``PEERS_GRACE`` after the first answer naming holders;
    the rest is the traversal's round trips to it, ~2 in a network of 50 (its first
    contacts' answers name the nodes that store the key). The per-end delay is a quarter
    of that (2 round trips, each 2 ends), searched for on the model itself."""
    from peerweb.sim.scenarios import PUSH_RTTS

    target = statistics.median(real["lookup_s"])
    best, best_err = 0.0005, float("inf")
    for access in [0.0002 * 1.4 ** i for i in range(16)]:
        modelled = statistics.median(sim_lookup_s(real["nodes"], real["holders"], access, 0))
        if abs(modelled - target) < best_err:
            best, best_err = access, abs(modelled - target)
    push = statistics.median(real["push_s"])
    return best, max(0.0, push - PUSH_RTTS * 2 * best)


def share_time(times: list[float], holders: int, share: float) -> float | None:
    need = max(1, int(-(-share * holders // 1)))
    return times[need - 1] if len(times) >= need else None


def compare(real: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Medians over rounds (real) and seeds (model) and the relative error of each."""
    holders = real["holders"]
    out: dict[str, Any] = {}
    for name, share in (("t50_s", 0.5), ("t90_s", 0.9), ("t100_s", 1.0)):
        r = [share_time(f, holders, share) for f in real["floods"]]
        m = [share_time(f, holders, share) for f in model["floods"]]
        rv = statistics.median([x if x is not None else 90.0 for x in r])
        mv = statistics.median([x if x is not None else 90.0 for x in m])
        out[name] = {"real": round(rv, 3), "model": round(mv, 3),
                     "error": round((mv - rv) / rv, 3) if rv else None}
    rl, ml = statistics.median(real["lookup_s"]), statistics.median(model["lookup_s"])
    out["lookup_s"] = {"real": round(rl, 3), "model": round(ml, 3),
                       "error": round((ml - rl) / rl, 3)}
    return out


async def calibrate(nodes: int, holders: int, rounds: int, seeds: int) -> dict[str, Any]:
    real = await measure_real(nodes, holders, rounds, lookups=10)
    access, push_delay = fit(real)
    model = simulate(nodes, holders, access, push_delay, seeds)
    return {"real": real, "model": model, "fitted": {"access_median_s": access,
                                                     "push_delay_s": push_delay},
            "comparison": compare(real, model)}


def main() -> None:
    from bench.sim_common import peak_rss_mb, pyplot, write
    from peerweb import aio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--holders", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--name", default="sim_calibrate")
    args = parser.parse_args()
    load = Path("/proc/loadavg").read_text().split()[:3]
    out: dict[str, Any] = {}

    async def run() -> None:
        out.update(await calibrate(args.nodes, args.holders, args.rounds, args.seeds))
    aio.run(run())
    out["load_before"] = load
    out["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out["peak_rss_mb"] = round(peak_rss_mb())
    for name, row in out["comparison"].items():
        print(f"{name}: real {row['real']} model {row['model']} error {row['error']}")
    print(f"fitted {out['fitted']}")
    write(args.name, out | {"tolerance": 0.2})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, times in enumerate(out["real"]["floods"]):
        ax.step(times, [(j + 1) / args.holders for j in range(len(times))], where="post",
                color="C3", alpha=0.7, label="real nodes" if i == 0 else None)
    for i, times in enumerate(out["model"]["floods"]):
        ax.step(times, [(j + 1) / args.holders for j in range(len(times))], where="post",
                color="C0", alpha=0.7, linestyle="--", label="simulator" if i == 0 else None)
    ax.set_xlabel("seconds after publish")
    ax.set_ylabel("share of holders with the new version")
    ax.set_title(f"Calibration: N={args.nodes} nodes on loopback, H={args.holders}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"bench/results/{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
