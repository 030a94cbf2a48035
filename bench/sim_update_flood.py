"""Simulated update flood: time for version 2 to reach 50/99/100% of H holders, messages per
holder, and the DHT load it puts on the nodes closest to the holders key.

N DHT nodes; H of them hold the site, announced under ``holders_key`` (or under one of
S = ceil(H/400) salted keys, a proposal the node does not make yet), each run with pushes that
name no holders (before) and ``propagation.PUSHED_HOLDERS`` of them (the node now). Writes
bench/results/sim_update_flood.json and sim_update_flood.png (completion CDFs).

    python -m bench.sim_update_flood                 # N=10^4, H=10^2..5x10^3
    python -m bench.sim_update_flood --nodes 100000 --holders 10000 100000
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.sim_common import peak_rss_mb, pyplot, write
from peerweb.policy import propagation
from peerweb.sim.scenarios import FloodConfig, FloodResult, update_flood


def row(result: FloodResult) -> dict[str, Any]:
    c = result.config
    return {"nodes": c.nodes, "holders": c.holders, "shards": c.shards,
            "holders_named_per_push": c.holder_list,
            "t50_s": result.time_to(0.5), "t99_s": result.time_to(0.99),
            "t100_s": result.time_to(1.0), "reached": len(result.accepted_at),
            "by_push": result.by_push, "by_poll": result.by_poll,
            "messages_per_holder": round(result.messages_per_holder, 2),
            "pushes_per_holder": round(result.pushes / c.holders, 2),
            "dht_queries_per_holder": round(result.dht_queries / c.holders, 2),
            "holders_stored_in_dht": result.holders_in_dht,
            "update_load": vars(result.load_update)
            | {"busiest_over_mean": round(result.load_update.busiest_over_mean, 1)},
            "announce_load": vars(result.load_announce),
            "wall_s": round(result.wall_seconds, 1), "events": result.events,
            "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--holders", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--name", default="sim_update_flood")
    args = parser.parse_args()
    rows, curves = [], []
    for holders in args.holders:
        # Sharded: about 400 holders per shard, within what 8 nodes store (500 each).
        sharded = max(1, math.ceil(holders / 400))
        runs = [(1, 0), (1, propagation.PUSHED_HOLDERS)]
        if sharded > 1:
            runs += [(sharded, 0), (sharded, propagation.PUSHED_HOLDERS)]
        for shards, holder_list in runs:
            result = update_flood(FloodConfig(nodes=args.nodes, holders=holders,
                                              shards=shards, holder_list=holder_list))
            r = row(result)
            rows.append(r)
            curves.append((holders, shards, holder_list, result.accepted_at))
            print(f"N={args.nodes} H={holders} S={shards} list={holder_list}: t50 {r['t50_s']} "
                  f"t99 {r['t99_s']} t100 {r['t100_s']} reached {r['reached']} "
                  f"(poll {r['by_poll']}), "
                  f"{r['messages_per_holder']} msg/holder, busiest DHT node "
                  f"{r['update_load']['busiest']} requests ({r['update_load']['dropped']} "
                  f"dropped), {r['wall_s']} s wall, {r['peak_rss_mb']} MB")
    write(args.name, {"runs": rows, "targets": "99% of holders <= 5 s, <= 10 messages/holder"})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for holders, shards, holder_list, times in curves:
        share = [(i + 1) / holders for i in range(len(times))]
        keys = "one key" if shards == 1 else f"{shards} shards"
        listed = f", push names {holder_list}" if holder_list else ""
        ax.step(times, share, where="post", label=f"H={holders}, {keys}{listed}",
                linestyle="-" if holder_list else ":")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("seconds after the update (simulated)")
    ax.set_ylabel("share of holders with version 2")
    ax.set_title(f"Update flood, N={args.nodes} DHT nodes (FANOUT=6, forward-once, polls 60 s)")
    ax.axvline(5.0, color="grey", linewidth=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"bench/results/{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
