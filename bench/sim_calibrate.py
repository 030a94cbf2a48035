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
import json
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
from peerweb.tools.testnet import Testnet, watch_accepts, write_sample_site

ANNOUNCE_INTERVAL = 8.0
"""Holders re-announce (and refresh their lists) this often here, so that every list is
refreshed after all holders announced, as in the steady state the simulator starts from."""

HOLDERS_TTL = 0.5
"""Holders lists live this long here (both sides): a forwarder's list is cold."""




async def measure_real(nodes: int, holders: int, rounds: int, lookups: int,
                       seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    template = NodeConfig(timings=dataclasses.replace(
        Timings(), holders_ttl=HOLDERS_TTL, holder_announce_interval=ANNOUNCE_INTERVAL))
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
            # Every holder announced: a lookup from a non-holder names them all; then one
            # more announce round, so that every holder's list was refreshed after that.
            strangers = [n for n in others if n not in chosen] or [publisher]
            deadline = time.perf_counter() + 60.0
            while True:
                seen = await strangers[0].node.holders(site, max_age=0.0)
                if len(seen) >= holders or time.perf_counter() > deadline:
                    break
                await asyncio.sleep(0.5)
            await asyncio.sleep(ANNOUNCE_INTERVAL + 2.0)
            lookup_s, lookup_found = [], []
            for i in range(lookups):
                who = strangers[i % len(strangers)]
                t = time.perf_counter()
                found = await who.node.holders(site, max_age=0.0)
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
            accepted: dict[int, float] = {}
            for i, h in enumerate(chosen):
                watch_accepts(h.node._resolver, i, accepted)
            for number in range(rounds):
                await asyncio.sleep(1.0)  # lists cached by the last round go stale (0.5 s)
                (folder / "index.html").write_text(f"<h1>version {number + 2}</h1>")
                accepted.clear()
                t = time.perf_counter()
                publish = asyncio.ensure_future(publisher.node.publish(folder, "calibrate"))
                while len(accepted) < holders and time.perf_counter() - t < 90.0:
                    await asyncio.sleep(0.05)
                await publish
                floods.append(sorted(at - t for at in accepted.values()))
    return {"nodes": nodes, "holders": holders, "testnet_start_s": round(up_s, 1),
            "lookup_s": lookup_s, "lookup_found": lookup_found, "push_s": push_s,
            "floods": floods}


def loopback(access: float) -> GeographyConfig:
    return dataclasses.replace(LOOPBACK, access_median=access)


def model(nodes: int, holders: int, fitted: dict[str, float], seed: int,
          probes: int = 0, protocol: str = "after") -> Any:
    """The simulator's flood under the loopback model. ``after``: the node's protocol now
    (``HOLDER_SHARDS`` holders keys, lists refreshed at each announce, planned pushes);
    ``before``: one holders key, cold lists, forward-once pushes, a forwarder looking up
    one key (the node of the second round)."""
    after = protocol == "after"
    return update_flood(FloodConfig(
        nodes=nodes, holders=holders, shards=propagation.HOLDER_SHARDS if after else 1,
        warm=after, legacy_lookup=not after, planned=after,
        geography=loopback(fitted["access_median_s"]), push_delay=fitted["push_delay_s"],
        shared_cpu=fitted.get("shared_cpu_per_node_s", 0.0) * nodes,
        publish_delay=fitted["publish_delay_s"], holder_list=propagation.PUSHED_HOLDERS,
        horizon=90.0, seed=seed, announce_window=5.0, probe_lookups=probes,
        holders_ttl=HOLDERS_TTL))


def simulate(nodes: int, holders: int, fitted: dict[str, float],
             seeds: int, protocol: str = "after") -> dict[str, Any]:
    floods, lookups = [], []
    for seed in range(seeds):
        result = model(nodes, holders, fitted, seed, probes=10, protocol=protocol)
        floods.append(result.accepted_at)
        lookups.extend(result.probe_seconds)
    return {"floods": floods, "lookup_s": lookups}


def fit(real: dict[str, Any], protocol: str = "after") -> dict[str, float]:
    """The loopback model's numbers, from measurements of the real nodes.

    - per-end delay (``LOOPBACK``'s ``access_median``): searched for on the model itself,
      its median holders lookup against the real median (a lookup ends ``PEERS_GRACE``
      after the first answer naming holders; the rest is round trips);
    - a push's delay: the real one-push time (a pointer the holder has already), measured;
    - the processor time each news costs in the one Python process all the testnet's
      nodes share (verifying, saving state, the new version's torrent added, the
      forwards), so that news queue and forwards leave when the queue is through; per
      node of the testnet, since each step of a news's coroutines waits for one pass of
      the event loop over every node's own work (fitted alone, 0.034 s a news at N=50
      and 0.018 s at N=20): searched for on a grid, the model's t50, t90 and t100 against
      the real floods' (medians over rounds, 3 seeds);
    - publish delay (building and signing the version): the real floods' first
      acceptance (median) less the model's.
    Fitted on one testnet, used on another (``--fit-from``, and
    tests/integration/test_sim_calibration.py): the errors there are a prediction's."""
    target = statistics.median(real["lookup_s"])
    fitted = {"access_median_s": 0.0005, "push_delay_s": 0.0, "publish_delay_s": 0.0,
              "shared_cpu_per_node_s": 0.0}
    best_err = float("inf")
    for access in [0.0002 * 1.4 ** i for i in range(16)]:
        trial = fitted | {"access_median_s": access}
        got = model(real["nodes"], real["holders"], trial, 0, probes=10,
                    protocol=protocol).probe_seconds
        if got and abs(statistics.median(got) - target) < best_err:
            fitted, best_err = trial, abs(statistics.median(got) - target)
    fitted["push_delay_s"] = statistics.median(real["push_s"])
    holders = real["holders"]
    real_first = statistics.median(f[0] for f in real["floods"] if f)
    goals = {share: statistics.median(share_time(f, holders, share) or 90.0
                                      for f in real["floods"]) for share in (0.5, 0.9, 1.0)}

    def with_publish_delay(trial: dict[str, float]) -> dict[str, float]:
        trial = trial | {"publish_delay_s": 0.0}
        first = model(real["nodes"], holders, trial, 0, protocol=protocol).accepted_at[0]
        return trial | {"publish_delay_s": max(0.0, real_first - first)}

    def miss(trial: dict[str, float]) -> float:
        misses = []
        for seed in range(3):
            times = model(real["nodes"], holders, trial, seed, protocol=protocol).accepted_at
            misses.append(sum(abs((share_time(times, holders, share) or 90.0) - goal) / goal
                              for share, goal in goals.items()))
        return statistics.median(misses)
    best, best_err = fitted, float("inf")
    for cpu in [0.00004 * i for i in range(41)]:
        trial = with_publish_delay(fitted | {"shared_cpu_per_node_s": cpu})
        err = miss(trial)
        if err < best_err:
            best, best_err = trial, err
    return best


def share_time(times: list[float], holders: int, share: float) -> float | None:
    need = max(1, int(-(-share * holders // 1)))
    return times[need - 1] if len(times) >= need else None


def compare(real: dict[str, Any], predicted: dict[str, Any]) -> dict[str, Any]:
    """Medians over rounds (real) and seeds (model) and the relative error of each."""
    holders = real["holders"]
    out: dict[str, Any] = {}
    for name, share in (("t50_s", 0.5), ("t90_s", 0.9), ("t100_s", 1.0)):
        r = [share_time(f, holders, share) for f in real["floods"]]
        m = [share_time(f, holders, share) for f in predicted["floods"]]
        rv = statistics.median([x if x is not None else 90.0 for x in r])
        mv = statistics.median([x if x is not None else 90.0 for x in m])
        out[name] = {"real": round(rv, 3), "model": round(mv, 3),
                     "error": round((mv - rv) / rv, 3) if rv else None}
    rl, ml = statistics.median(real["lookup_s"]), statistics.median(predicted["lookup_s"])
    out["lookup_s"] = {"real": round(rl, 3), "model": round(ml, 3),
                       "error": round((ml - rl) / rl, 3)}
    return out


async def calibrate(nodes: int, holders: int, rounds: int, seeds: int,
                    fitted: dict[str, float] | None = None,
                    protocol: str = "after", real: dict[str, Any] | None = None,
                    ) -> dict[str, Any]:
    """Measure the real nodes (or take ``real``, measured before), fit the model on them
    (or take ``fitted``, from another run: then the comparison is a prediction), and
    compare."""
    if real is None:
        real = await measure_real(nodes, holders, rounds, lookups=10)
    own = fit(real, protocol)
    use = fitted or own
    predicted = simulate(nodes, holders, use, seeds, protocol)
    return {"real": real, "model": predicted, "fitted": own, "used": use,
            "predicted_with_other_fit": fitted is not None, "protocol": protocol,
            "comparison": compare(real, predicted)}


CROWD_START_S = 1.0
"""Seconds from a visitor's first request to its node's first piece in the model of the
testnet's crowd (the pointer's DHT get and the torrent's metadata); +-0.5 s moves the
modelled completion by +-0.5 s."""


def crowd_compare(path: Path, tag: str | None) -> dict[str, Any]:
    """The simulator's flash crowd (``sim.crowd`` with every visitor on its own node, as
    bench/flash_crowd.py runs them) against a real crowd that bench/flash_crowd.py
    measured and appended to ``path`` (the last run, or the last tagged ``tag``): the
    visitors' whole-site time (median and slowest) and the publisher's upload in copies."""
    from peerweb.sim.crowd import CrowdConfig, flash_crowd

    data = json.loads(path.read_text())
    runs = [r for r in data["runs"] if "peerweb" in r["raw"] and (tag is None or r["tag"] == tag)]
    run = runs[-1]
    real_all = run["raw"]["peerweb"]["all_s"]
    visitors = len(real_all)
    result = flash_crowd(CrowdConfig(
        visitors=visitors, volunteers=0, site_bytes=int(run["site_bytes"]),
        origin_capacity=float(data["seed_upload"]), visitor_up=float(data["peer_upload"]),
        visitor_up_sigma=0.0, visitor_down=1e9, arrival_window=0.0, stay=1e9,
        own_nodes=True, swarm_start=CROWD_START_S, dt=0.02, seed=0))
    model_all = [float(x) for x in result.page_seconds]
    out: dict[str, Any] = {"source": str(path.name), "tag": run["tag"], "when": run["when"],
                           "visitors": visitors, "fluid_bound_s": run["fluid_bound_s"]}
    pairs = {"all_median_s": (statistics.median(real_all), statistics.median(model_all)),
             "all_slowest_s": (max(real_all), max(model_all)),
             "publisher_copies": (run["figures"]["peerweb_publisher_copies"],
                                  result.origin_copies)}
    for name, (rv, mv) in pairs.items():
        out[name] = {"real": round(rv, 3), "model": round(mv, 3),
                     "error": round((mv - rv) / rv, 3)}
    return out


def main() -> None:
    from bench.sim_common import RESULTS, peak_rss_mb, pyplot, write
    from peerweb import aio

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--holders", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--name", default="sim_calibrate")
    parser.add_argument("--fit-from", type=Path, help="a previous run's JSON: use its fit "
                        "(a prediction) instead of fitting on this run")
    parser.add_argument("--protocol", choices=("after", "before"), default="after")
    parser.add_argument("--crowd", type=Path, default=Path(__file__).parent / "results" /
                        "flash_crowd_n20.json", help="a real crowd measured by "
                        "bench/flash_crowd.py, to compare the crowd model with")
    parser.add_argument("--crowd-tag", help="the run of --crowd to compare (default: last)")
    parser.add_argument("--real-from", type=Path, help="real measurements written by "
                        "--real-only (e.g. by an older tree's node), to model here")
    parser.add_argument("--real-only", type=Path, help="measure the real nodes, write "
                        "the measurements to this file and stop")
    args = parser.parse_args()
    fitted = json.loads(args.fit_from.read_text())["fitted"] if args.fit_from else None
    load = Path("/proc/loadavg").read_text().split()[:3]
    out: dict[str, Any] = {}

    real = json.loads(args.real_from.read_text()) if args.real_from else None

    async def run() -> None:
        if args.real_only:
            measured = await measure_real(args.nodes, args.holders, args.rounds, lookups=10)
            args.real_only.write_text(json.dumps(measured))
            return
        out.update(await calibrate(args.nodes, args.holders, args.rounds, args.seeds, fitted,
                                   args.protocol, real))
    aio.run(run())
    if args.real_only:
        return
    out["load_before"] = load
    out["load_after"] = Path("/proc/loadavg").read_text().split()[:3]
    out["peak_rss_mb"] = round(peak_rss_mb())
    if args.crowd and args.crowd.exists():
        out["crowd"] = crowd_compare(args.crowd, args.crowd_tag)
    for name, row in [*out["comparison"].items(),
                      *((k, v) for k, v in out.get("crowd", {}).items()
                        if isinstance(v, dict))]:
        print(f"{name}: real {row['real']} model {row['model']} error {row['error']}")
    print(f"fitted here {out['fitted']}; used {out['used']}")
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
    fig.savefig(RESULTS / f"{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
