"""Simulated volunteer discovery: V volunteers announce, O origins look them up at once.

Reports the DHT requests received by the busiest DHT node against the median and the mean
(the hot key), dropped requests, what each origin found, how long it took, and how many
origins ask the same volunteer to mirror. One key (the VOLUNTEERS_KEY of before) against the
node's VOLUNTEER_SHARDS shards, origins probing VOLUNTEER_PROBES and widening if short; both
choose whom to ask with the node's ``to_ask`` (the lighter of two at random).
Writes bench/results/sim_volunteers.json and sim_volunteers.png.
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.sim_common import RESULTS, peak_rss_mb, pyplot, write
from peerweb.policy import propagation
from peerweb.sim.scenarios import DiscoveryConfig, DiscoveryResult, summary, volunteer_discovery


def row(result: DiscoveryResult) -> dict[str, Any]:
    c = result.config
    return {"nodes": c.nodes, "volunteers": c.volunteers, "origins": c.origins,
            "shards": c.shards, "probes": min(c.probes, c.shards),
            "found_per_origin": summary(result.found), "seconds": summary(result.seconds),
            "visible_volunteers": result.visible,
            "load_requests_busiest_volunteer": result.load_requests_busiest,
            "mirror_asks_busiest_volunteer": result.asked_busiest,
            "origins_widened": result.widened, "lookups_per_origin":
            round(result.lookups / c.origins, 2),
            "announce_load": vars(result.load_announce)
            | {"busiest_over_mean": round(result.load_announce.busiest_over_mean, 1)},
            "discovery_load": vars(result.load_discovery)
            | {"busiest_over_mean": round(result.load_discovery.busiest_over_mean, 1)},
            "wall_s": round(result.wall_seconds, 1), "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--volunteers", type=int, default=2000)
    parser.add_argument("--origins", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--shards", type=int, default=propagation.VOLUNTEER_SHARDS)
    parser.add_argument("--churn", type=float, nargs="+", default=[0.0],
                        help="shares of the DHT's nodes leaving per hour (with --offline)")
    parser.add_argument("--offline", type=float, default=0.0,
                        help="share of the DHT's nodes off line at the start")
    parser.add_argument("--name", default="sim_volunteers")
    args = parser.parse_args()
    rows = []
    runs = [(o, s, c) for c in args.churn for o in args.origins for s in (1, args.shards)]
    for origins, shards, churn in runs:
            result = volunteer_discovery(DiscoveryConfig(
                nodes=args.nodes, volunteers=args.volunteers, origins=origins,
                shards=shards, offline=args.offline, churn_per_hour=churn))
            r = row(result) | {"churn_per_hour": churn, "offline": args.offline}
            rows.append(r)
            a, d = r["announce_load"], r["discovery_load"]
            print(f"N={args.nodes} V={args.volunteers} O={origins} S={shards} churn {churn}: "
                  f"busiest node "
                  f"{a['busiest']} req announcing ({a['dropped']} dropped), {d['busiest']} "
                  f"discovering ({d['dropped']} dropped; mean {d['mean']:.2f}), found "
                  f"{r['found_per_origin']['median']} median, in "
                  f"{r['seconds']['median']:.2f} s; busiest volunteer asked to mirror by "
                  f"{r['mirror_asks_busiest_volunteer']}; with background (busiest/median) "
                  f"announcing {a['background']}, discovering {d['background']}; "
                  f"{r['wall_s']} s wall", flush=True)
    write(args.name, {"runs": rows,
                      "target": "no DHT node > 10x the median node's request rate"})
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    def label(r: dict[str, Any]) -> str:
        churn = f" churn {r['churn_per_hour']:.0%}/h" if r["churn_per_hour"] else ""
        keys = "1 key" if r["shards"] == 1 else f"{r['shards']} shards"
        return f"O={r['origins']}{churn}\n{keys}"
    labels = [label(r) for r in rows]
    axes[0].bar(labels, [r["announce_load"]["busiest"] + r["discovery_load"]["busiest"]
                         for r in rows], color=["C3" if r["shards"] == 1 else "C0" for r in rows])
    axes[0].set_ylabel("requests received by the busiest DHT node")
    axes[0].set_title(f"Hot key: V={args.volunteers} volunteers, N={args.nodes}")
    axes[1].bar(labels, [r["mirror_asks_busiest_volunteer"] for r in rows],
                color=["C3" if r["shards"] == 1 else "C0" for r in rows])
    axes[1].set_ylabel("origins asking the busiest volunteer to mirror")
    axes[1].set_title("Whom discovery overloads")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
