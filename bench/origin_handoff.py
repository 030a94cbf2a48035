"""Origin hand-off under a flash crowd: plain HTTP visitors, no peerweb on their side.

VISITORS concurrent clients (curl processes, started from a process of their own: see
visitors.py) each load the 41-file page (6 transfers in parallel, following redirects).
(a) The upstream alone, its egress capped at 4 MB/s (a token bucket shared by all
connections). (b) The same capped upstream behind `peerweb origin`, with VOLUNTEERS volunteer
mirrors found through the DHT (each a peerweb node, libtorrent upload capped at 10 MB/s).
Reports pages per second, p50/p95 page time, errors and the upstream's egress bytes, and for
(b) when the overload, the first mirror and the hand-off came, and the CPU time of the servers
and of the crowd. Targets: (b) no errors, p95 at least 5x better than (a), origin egress at
most 20% of (a)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import visitors
from bench.common import CappedOrigin, median, serving, write_result
from peerweb import aio
from peerweb.config import NodeConfig
from peerweb.spike.handoff import LoadPolicy, Mode, Thresholds
from peerweb.spike.origin import Origin, OriginConfig, sitemap_of
from peerweb.tools.testnet import Testnet, write_sample_site

VISITORS = 200
VOLUNTEERS = 5
UPSTREAM_CAP = 4_000_000
VOLUNTEER_UP = 10_000_000
PARALLEL = 6


@dataclass
class Run:
    times_s: list[float]
    errors: int
    wall_s: float
    egress: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self, label: str) -> str:
        return (f"{label}: {len(self.times_s) / self.wall_s:.1f} pages/s, p50 "
                f"{median(self.times_s):.2f} s, p95 {p95(self.times_s):.2f} s, errors "
                f"{self.errors}/{VISITORS}, upstream egress {self.egress / 1e6:.1f} MB")


async def crowd(base: str, folder: Path, watch: Callable[[float], None] | None = None) -> Run:
    """The visitors' page times; ``watch(seconds since the start)`` is called every 0.1 s
    meanwhile."""

    async def sample() -> None:
        began = time.perf_counter()
        while watch is not None:
            watch(time.perf_counter() - began)
            await asyncio.sleep(0.1)

    sampler = asyncio.ensure_future(sample())
    cpu = time.process_time()
    try:
        result = await visitors.run(base, folder, VISITORS, PARALLEL, timeout=600)
    finally:
        sampler.cancel()
    spent = {"servers": time.process_time() - cpu, "visitors": result["cpu_s"]}
    return Run(list(result["times_s"]), int(result["errors"]), float(result["wall_s"]),
               extra={"cpu_s": spent})


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] if ordered else float("nan")


async def behind(base: str, upstream: CappedOrigin, folder: Path) -> Run:
    """The crowd against the capped upstream behind `peerweb origin`, with fresh volunteers."""
    upstream.sent = 0
    async with Testnet(1, template=NodeConfig(limit_local_peers=True)) as net:
        publisher = net.nodes[0]
        for i in range(1, VOLUNTEERS + 1):
            await net.add_node(replace(net.config_for(i), volunteer=True,
                                       upload_limit=VOLUNTEER_UP))
        result = await publisher.node.publish(folder, "crowd")

        async def find() -> list[str]:
            found = await publisher.node.ask_for_help(result.site_id, VOLUNTEERS)
            return [m["mirror"] for m in found]

        policy = LoadPolicy(Thresholds(capacity=UPSTREAM_CAP))
        origin = Origin(OriginConfig(base, result.site_id, [], None), sitemap_of(folder),
                        policy, find)
        timeline: dict[str, float] = {}

        def watch(t: float) -> None:
            if policy.overloaded(time.monotonic()):
                timeline.setdefault("overloaded", t)
            if origin.handoff.mirrors:
                timeline.setdefault("first mirror", t)
            if policy.mode is Mode.HANDOFF:
                timeline.setdefault("hand-off", t)

        async with serving(origin.make_app()) as origin_base:
            run = await crowd(origin_base, folder, watch)
    run.egress = upstream.sent
    run.extra.update(handed_off=policy.handed_off, mirrors=len(origin.handoff.mirrors),
                     timeline_s=timeline)
    return run


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "site"
        contents = write_sample_site(folder, big_size=0)
        upstream = CappedOrigin(contents, UPSTREAM_CAP)
        async with serving(upstream.app()) as base:
            alone = await crowd(base, folder)
            alone.egress = upstream.sent
            run = await behind(base, upstream, folder)

    print(alone.line("(a) upstream alone, 4 MB/s"))
    speedup = p95(alone.times_s) / p95(run.times_s)
    share = run.egress / alone.egress
    print(run.line(f"(b) behind peerweb origin, {VOLUNTEERS} volunteers"))
    timeline = ", ".join(f"{k} {v:.2f} s" for k, v in run.extra["timeline_s"].items())
    cpu = run.extra["cpu_s"]
    print(f"p95 {speedup:.2f}x better (target >= 5); origin egress {share:.2f} of (a) "
          f"(target <= 0.2); {run.extra['handed_off']} requests handed off to "
          f"{run.extra['mirrors']} mirrors\n(b) after the crowd began: {timeline}; CPU seconds: "
          f"servers {cpu['servers']:.1f}, visitors {cpu['visitors']:.1f}")
    result = {"visitors": VISITORS, "volunteers": VOLUNTEERS, "upstream_cap": UPSTREAM_CAP,
              "alone": asdict(alone), "behind": asdict(run), "p95_speedup": speedup,
              "egress_share": share}
    write_result("origin_handoff", result)


if __name__ == "__main__":
    aio.run(main())
