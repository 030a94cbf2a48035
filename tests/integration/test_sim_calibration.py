"""The simulator against real nodes: a small testnet and the simulator's model of it.

The loopback model (``scenarios.LOOPBACK`` with ``TESTNET_FIT``) was fitted on 50 real
nodes by bench/sim_calibrate.py (bench/results/sim_calibrate.json); here it predicts a
testnet of 10 it never saw: how long a holders lookup takes, and how long a new version
takes to reach half and all of 8 holders once the publisher has signed it (the model's
publish delay is left out: the build and the DHT get before the first push are the
publisher's own, and vary with the machine's load). Tolerances are in ``LOOKUP_TOLERANCE`` and
``FLOOD_TOLERANCE`` (why they differ: see there).
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time

import pytest

pytest.importorskip("numpy")

from peerweb.config import NodeConfig, Timings  # noqa: E402
from peerweb.policy import propagation  # noqa: E402
from peerweb.sim import scenarios  # noqa: E402
from peerweb.sim.scenarios import FloodConfig, update_flood  # noqa: E402
from peerweb.tools.testnet import Testnet, watch_accepts, write_sample_site  # noqa: E402

from ..waiting import wait_until  # noqa: E402

NODES, HOLDERS, ROUNDS = 10, 8, 7
LOOKUP_TOLERANCE = 0.2
"""A holders lookup is round trips and the node's 0.3 s grace, one or two rounds of it: the
model predicts it within the issue's 20%."""
FLOOD_TOLERANCE = 0.6
"""A flood of 8 holders is one wave of planned pushes from the publisher
(``propagation.PUBLISH_WAVE`` > 8), a few ms, set by how busy the one Python process of
all the testnet's nodes is; now and then the publisher's list misses a holder and the
lookup beside the wave brings it in ~0.6 s later, or one push waits tens of ms for the
loop. So the median of 7 rounds is compared, held to 60% (or ``FLOOR_S``); the 20%
comparison is the bench's."""


FLOOR_S = 0.02
"""Below 20 ms (the first wave, one push from the publisher) a difference is the event
loop's scheduling, not the model's."""


def share_time(times: list[float], share: float) -> float:
    need = max(1, round(share * HOLDERS + 0.4999))
    return times[need - 1] if len(times) >= need else 60.0


def predicted() -> tuple[list[list[float]], list[float]]:
    fit = scenarios.TESTNET_FIT
    floods, lookups = [], []
    for seed in range(5):
        result = update_flood(FloodConfig(
            nodes=NODES, holders=HOLDERS, shards=propagation.HOLDER_SHARDS, warm=True,
            geography=dataclasses.replace(scenarios.LOOPBACK,
                                          access_median=fit["access_median_s"]),
            push_delay=fit["push_delay_s"], publish_delay=0.0,
            shared_cpu=fit["shared_cpu_per_node_s"] * NODES,
            horizon=60.0, announce_window=5.0, holders_ttl=0.0,
            probe_lookups=6, seed=seed))
        floods.append(result.accepted_at)
        lookups.extend(result.probe_seconds)
    return floods, lookups




async def test_the_simulator_predicts_a_small_testnet(tmp_path) -> None:
    template = NodeConfig(timings=dataclasses.replace(Timings(), holders_ttl=0.0))
    folder = tmp_path / "site"
    write_sample_site(folder, small_files=3, big_size=0)
    async with Testnet(NODES, root=tmp_path / "net", template=template) as net:
        publisher, stranger, *holders = net.nodes
        site = (await publisher.node.publish(folder, "calibrate")).site_id
        await asyncio.gather(*(h.node.open_site(site) for h in holders))

        async def all_announced() -> bool:
            return len(await stranger.node.holders(site, max_age=0.0)) >= HOLDERS
        await wait_until(all_announced, timeout=40.0)
        # Every holder's own list, as its next announce would refresh it.
        await asyncio.gather(*(h.node._resolver.refresh_holders(site)
                               for h in [publisher, *holders]))
        lookups = []
        for _ in range(6):
            started = time.perf_counter()
            await stranger.node.holders(site, max_age=0.0)
            lookups.append(time.perf_counter() - started)
        accepted: dict[int, float] = {}
        for i, h in enumerate(holders):
            watch_accepts(h.node._resolver, i, accepted)
        signed: dict[int, float] = {}
        watch_accepts(publisher.node._resolver, 0, signed)
        floods = []
        for number in range(ROUNDS):
            (folder / "index.html").write_text(f"<h1>version {number + 2}</h1>")
            accepted.clear()
            signed.clear()
            await publisher.node.publish(folder, "calibrate")
            await wait_until(lambda: len(accepted) == HOLDERS, timeout=30.0,
                             what="every holder to take the new version")
            # From the moment the publisher holds the new version: the building and the
            # DHT get before it are the publisher's, not the flood's.
            floods.append(sorted(at - signed[0] for at in accepted.values()))
    model_floods, model_lookups = predicted()
    real_lookup, model_lookup = statistics.median(lookups), statistics.median(model_lookups)
    assert abs(model_lookup - real_lookup) <= LOOKUP_TOLERANCE * real_lookup, (
        real_lookup, model_lookup)
    print(f"lookup: real {real_lookup:.3f} s, model {model_lookup:.3f} s")
    for share in (0.5, 1.0):
        real = statistics.median(share_time(f, share) for f in floods)
        model = statistics.median(share_time(f, share) for f in model_floods)
        print(f"t{100 * share:.0f}: real {real:.3f} s (rounds "
              f"{[round(share_time(f, share), 3) for f in floods]}), model {model:.3f} s, error "
              f"{(model - real) / real:+.0%}")
        assert abs(model - real) <= max(FLOOD_TOLERANCE * real, FLOOR_S), (
            share, real, model, floods, model_floods)
