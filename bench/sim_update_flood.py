"""Simulated update flood: time for version 2 to reach 50/99/100% of H holders, messages per
holder, and the DHT load it puts on the nodes closest to the holders key.

N DHT nodes; H of them hold the site. Runs: ``before`` (one holders key, lists cold at the
update, a forwarder looking one key up as ``must_look_up`` says: the node before this round),
``node`` (``HOLDER_SHARDS`` keys, each holder's list refreshed at its announce and forwarded
to without a lookup: the node now) and ``scaled`` (the same with ceil(H/400) keys, what a
site of H holders needs), ``adaptive`` (from 8, each holder's count grows with what its
refreshes find, ``propagation.holder_shards``, over ``--rounds`` announce rounds: the node
now) and ``adaptive+poll`` (the same, polls stretched by ``poll_interval(..., holders=)``).
Planned pushes (``Resolver.push_wave`` / ``forward_share``, the node now) in all but
``before`` and ``forward`` (``adaptive`` with the forward-once pushes of the fourth round,
``PUSHED_HOLDERS`` named, the baseline of planned pushes). Writes
bench/results/<name>.json and <name>.png (completion CDFs).

    python -m bench.sim_update_flood                 # N=10^4, H=10^2..5x10^3
    python -m bench.sim_update_flood --nodes 100000 --holders 10000 100000
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from bench.sim_common import RESULTS, peak_rss_mb, pyplot, write
from peerweb.policy import propagation
from peerweb.sim.scenarios import FloodConfig, FloodResult, Load, update_flood


def load_row(load: Load) -> dict[str, Any]:
    return vars(load) | {"busiest_over_mean": round(load.busiest_over_mean, 1),
                         "busiest_over_median_active": round(load.busiest_over_median, 1),
                         "busiest_per_second": round(load.busiest_per_second, 2)}


def row(result: FloodResult) -> dict[str, Any]:
    c = result.config
    return {"nodes": c.nodes, "holders": c.holders, "shards": c.shards,
            "holders_named_per_push": c.holder_list, "planned_pushes": c.planned,
            "t50_s": result.time_to(0.5), "t99_s": result.time_to(0.99),
            "t100_s": result.time_to(1.0), "reached": len(result.accepted_at),
            "by_push": result.by_push, "by_poll": result.by_poll,
            "messages_per_holder": round(result.messages_per_holder, 2),
            "pushes_per_holder": round(result.pushes / c.holders, 2),
            "dht_queries_per_holder": round(result.dht_queries / c.holders, 2),
            "holders_stored_in_dht": result.holders_in_dht,
            "update_load": load_row(result.load_update),
            "announce_load": load_row(result.load_announce),
            "wall_s": round(result.wall_seconds, 1), "events": result.events,
            "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--holders", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--runs", nargs="+", default=["before", "node", "scaled"],
                        help="before: one key, cold lists, a forwarder looks one key up "
                        "(the node before this round); node: HOLDER_SHARDS keys, lists "
                        "refreshed at each announce; scaled: the same with ceil(H/400) keys; "
                        "adaptive(+poll): growing shard counts; forward: adaptive with "
                        "the forward-once pushes before planned ones")
    parser.add_argument("--rounds", type=int, default=6,
                        help="announce rounds (holder_announce_interval each) of the "
                        "adaptive runs, as the shard counts settle")
    parser.add_argument("--churn", type=float, default=0.0,
                        help="share of the DHT's nodes going off line per hour")
    parser.add_argument("--name", default="sim_update_flood")
    args = parser.parse_args()
    rows, curves = [], []
    for holders in args.holders:
        # Scaled: about 400 holders per shard, within what 8 nodes store (500 each).
        scaled = max(1, math.ceil(holders / 400))
        options = {"before": (1, False, True),
                   "node": (propagation.HOLDER_SHARDS, True, False),
                   "scaled": (scaled, True, False),
                   "adaptive": (propagation.HOLDER_SHARDS, True, False),
                   "adaptive+poll": (propagation.HOLDER_SHARDS, True, False),
                   "forward": (propagation.HOLDER_SHARDS, True, False)}
        for run in args.runs:
            shards, warm, legacy = options[run]
            adaptive = run.startswith("adaptive") or run == "forward"
            result = update_flood(FloodConfig(
                nodes=args.nodes, holders=holders, shards=shards, warm=warm,
                legacy_lookup=legacy, holder_list=propagation.PUSHED_HOLDERS,
                planned=run not in ("before", "forward"),
                churn_per_hour=args.churn, adaptive=adaptive,
                rounds=args.rounds if adaptive else 1, poll_stretch=run == "adaptive+poll",
                seed=0))
            r = row(result) | {"run": run, "warm_lists": warm, "churn_per_hour": args.churn,
                               "shard_counts_at_update": result.shard_counts,
                               "rounds": args.rounds if adaptive else 1}
            rows.append(r)
            curves.append((holders, run, shards, result.accepted_at))
            u, a = r["update_load"], r["announce_load"]
            print(f"N={args.nodes} H={holders} {run} S={shards}: t50 {r['t50_s']} "
                  f"t99 {r['t99_s']} t100 {r['t100_s']} reached {r['reached']} "
                  f"(poll {r['by_poll']}), {r['messages_per_holder']} msg/holder, busiest "
                  f"DHT node {u['busiest']} requests in the flood ({u['dropped']} dropped; "
                  f"median of active {u['median_active']}), {a['busiest']} while "
                  f"announcing ({a['busiest_per_second']}/s, {a['dropped']} dropped, median "
                  f"of active {a['median_active']}; with background {u['background']}), "
                  f"counts {result.shard_counts}, {r['wall_s']} s "
                  f"wall, {r['peak_rss_mb']} MB", flush=True)
    write(args.name, {"runs": rows, "targets": "99% of holders <= 5 s, <= 10 messages/holder"})
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for holders, run, shards, times in curves:
        share = [(i + 1) / holders for i in range(len(times))]
        ax.step(times, share, where="post", label=f"H={holders}, {run} ({shards} keys)",
                linestyle=":" if run == "before" else "-")
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("seconds after the update (simulated)")
    ax.set_ylabel("share of holders with version 2")
    churn = f", churn {100 * args.churn:.0f}%/h" if args.churn else ""
    ax.set_title(f"Update flood, N={args.nodes} DHT nodes (FANOUT=6, forward-once, polls "
                 f"60 s{churn})")
    ax.axvline(5.0, color="grey", linewidth=0.5)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
