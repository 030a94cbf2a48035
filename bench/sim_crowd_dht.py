"""Simulated DHT load of a flash crowd: V visitors over 60 s each get the site's pointer
and look up / announce into its swarm. The busiest DHT node's requests against the median
node's, with Mainline's background traffic at ``BACKGROUND_RATES`` and without (peerweb's
alone). Writes bench/results/<name>.json.

    python -m bench.sim_crowd_dht --nodes 10000 --visitors 1000 10000
"""

from __future__ import annotations

import argparse

from bench.sim_common import peak_rss_mb, write
from peerweb.sim.scenarios import crowd_lookups, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--visitors", type=int, nargs="+", default=[1000, 10_000])
    parser.add_argument("--name", default="sim_crowd_dht")
    args = parser.parse_args()
    rows = []
    for visitors in args.visitors:
        load, times = crowd_lookups(args.nodes, visitors)
        r = vars(load) | {"nodes": args.nodes, "visitors": visitors,
                          "pointer_lookup_s": summary(times),
                          "busiest_per_second": round(load.busiest_per_second, 1),
                          "peak_rss_mb": round(peak_rss_mb())}
        rows.append(r)
        print(f"N={args.nodes} V={visitors}: busiest node {load.busiest} requests "
              f"({r['busiest_per_second']}/s over {load.seconds:.0f} s; {load.dropped} "
              f"dropped), median {load.median}, median of active {load.median_active}; "
              f"with background (busiest/median) {load.background}; pointer lookup "
              f"median {r['pointer_lookup_s']['median']:.2f} s p95 "
              f"{r['pointer_lookup_s']['p95']:.2f} s", flush=True)
    write(args.name, {"runs": rows,
                      "target": "no DHT node > 10x the median node's request rate"})


if __name__ == "__main__":
    main()
