"""Simulated flash crowd: V visitors of one site from 10^3 to 10^5, M volunteers, an origin
of capacity C, decided by the node's own hand-off and step-back code (``sim.crowd``).

Per V (several seeds each): the origin's egress in copies of the site (target <= 3), the
visitors' page time p50/p95 and the p95's growth against the smallest V (target <= 2x
from 10^3 to 10^5), when the origin handed off and stepped back. Two models of a
downloader's upload: ``piece`` (its whole uplink once it holds a piece, the fluid model's
eta = 1) and ``share`` (in proportion to the share of the site it holds: the first rounds'
pessimistic model), so the figures say how much rests on that assumption. Writes
bench/results/<name>.json and <name>.png.

    python -m bench.sim_crowd                       # V = 10^3 .. 10^5, 3 seeds, M = 8
    python -m bench.sim_crowd --visitors 1000 100000 --seeds 5 --volunteers 0
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench.sim_common import RESULTS, peak_rss_mb, pyplot, write
from peerweb.sim.crowd import MB, CrowdConfig, CrowdResult, flash_crowd

MODELS = {"piece": 1.0, "share": 0.0}


def row(result: CrowdResult, model: str) -> dict[str, Any]:
    c = result.config
    return {"model": model, "visitors": c.visitors, "volunteers": c.volunteers,
            "seed": c.seed, "site_mb": c.site_bytes / MB,
            "origin_capacity_mb_s": c.origin_capacity / MB,
            "origin_copies": round(result.origin_copies, 3),
            "origin_http_copies": round(result.origin_http_bytes / c.site_bytes, 3),
            "page_p50_s": round(result.percentile(50), 3),
            "page_p95_s": round(result.percentile(95), 3),
            "page_max_s": round(float(result.page_seconds.max()), 3),
            "handed_off_at_s": result.handed_off_at, "stepped_back_at_s": result.stepped_back_at,
            "volunteers_asked_at_s": result.volunteers_asked_at,
            "mode_changes": result.mode_changes, "wall_s": round(result.wall_seconds, 2)}


def spread(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, nargs="+",
                        default=[1000, 3000, 10_000, 30_000, 100_000])
    parser.add_argument("--volunteers", type=int, default=8)
    parser.add_argument("--capacity-mb", type=float, default=1.25,
                        help="origin capacity, MB/s (1.25: 10 Mbit/s)")
    parser.add_argument("--site-mb", type=float, default=2.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--name", default="sim_crowd")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for model in args.models:
        for visitors in args.visitors:
            got = [row(flash_crowd(CrowdConfig(
                visitors=visitors, volunteers=args.volunteers, site_bytes=int(args.site_mb * MB),
                origin_capacity=args.capacity_mb * MB, piece_efficiency=MODELS[model],
                seed=seed)), model) for seed in range(args.seeds)]
            rows.extend(got)
            print(f"{model}: V={visitors} M={args.volunteers}: origin copies "
                  f"{spread([r['origin_copies'] for r in got])} (HTTP "
                  f"{spread([r['origin_http_copies'] for r in got])}), page p50 "
                  f"{spread([r['page_p50_s'] for r in got])} s, p95 "
                  f"{spread([r['page_p95_s'] for r in got])} s, hand-off at "
                  f"{spread([r['handed_off_at_s'] or 0.0 for r in got])} s, "
                  f"{statistics.mean(r['wall_s'] for r in got):.1f} s wall", flush=True)
    summary: dict[str, Any] = {}
    smallest, largest = min(args.visitors), max(args.visitors)
    for model in args.models:
        def p95s(v: int, m: str = model) -> list[float]:
            return [r["page_p95_s"] for r in rows if r["model"] == m and r["visitors"] == v]
        growth = [b / a for a, b in zip(p95s(smallest), p95s(largest), strict=True)]
        copies = [r["origin_copies"] for r in rows if r["model"] == model]
        summary[model] = {"p95_growth": [round(g, 3) for g in growth],
                          "origin_copies_max": max(copies),
                          "meets_targets": max(growth) <= 2.0 and max(copies) <= 3.0}
        print(f"{model}: p95 at V={largest} over V={smallest}: {spread(growth)}x (target <= 2);"
              f" origin copies at most {max(copies):.2f} (target <= 3)")
    write(args.name, {"runs": rows, "summary": summary, "peak_rss_mb": round(peak_rss_mb()),
                      "targets": "origin egress <= 3 copies; p95 growth <= 2x, 10^3 -> 10^5"})
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for model in args.models:
        for axis, metric in ((left, "page_p95_s"), (right, "origin_copies")):
            means = [statistics.mean(r[metric] for r in rows
                                     if r["model"] == model and r["visitors"] == v)
                     for v in args.visitors]
            lows = [min(r[metric] for r in rows if r["model"] == model and r["visitors"] == v)
                    for v in args.visitors]
            highs = [max(r[metric] for r in rows if r["model"] == model and r["visitors"] == v)
                     for v in args.visitors]
            axis.plot(args.visitors, means, marker="o", label=f"{model} model")
            axis.fill_between(args.visitors, lows, highs, alpha=0.2)
    left.axhline(2 * statistics.mean(r["page_p95_s"] for r in rows if r["visitors"] == smallest
                                     and r["model"] == args.models[0]),
                 color="grey", linewidth=0.6, linestyle="--", label="2x the smallest crowd")
    right.axhline(3.0, color="grey", linewidth=0.6, linestyle="--", label="target 3 copies")
    for axis, label in ((left, "visitor page time p95 (s)"), (right, "origin egress (copies)")):
        axis.set_xscale("log")
        axis.set_xlabel("visitors V (over 60 s)")
        axis.set_ylabel(label)
        axis.legend(fontsize=8)
    fig.suptitle(f"Flash crowd: {args.site_mb:g} MB site, origin {args.capacity_mb:g} MB/s, "
                 f"M={args.volunteers} volunteers ({args.seeds} seeds, range shaded)")
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png", dpi=110)


if __name__ == "__main__":
    main()
