"""The simulator's peerweb scenarios, small: they run the node's own policy code."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("numpy")

import numpy as np  # noqa: E402

from peerweb.policy import propagation  # noqa: E402
from peerweb.policy import volunteers as volunteer_rule  # noqa: E402
from peerweb.sim import scenarios  # noqa: E402
from peerweb.sim.scenarios import (  # noqa: E402
    DiscoveryConfig,
    FloodConfig,
    update_flood,
    volunteer_discovery,
)


def test_an_update_floods_every_holder_mostly_by_push(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node's planned pushes: the publisher's wave is ``PUBLISH_WAVE`` wide, every
    other plan ``FANOUT``, and holders plan at most twice (share, then ``looks_further``)."""
    fanouts: list[int] = []
    real = propagation.plan_pushes

    def spy(*args: object, **kwargs: object) -> list[propagation.Push]:
        fanouts.append(int(kwargs["fanout"]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(propagation, "plan_pushes", spy)
    result = update_flood(FloodConfig(nodes=1000, holders=60, seed=1))
    assert len(result.accepted_at) == 60
    assert result.by_push >= 55 and result.by_push + result.by_poll == 60
    assert fanouts[0] == propagation.PUBLISH_WAVE
    assert set(fanouts) <= {propagation.PUBLISH_WAVE, propagation.FANOUT}
    assert fanouts.count(propagation.PUBLISH_WAVE) <= 2  # the wave, and the lookup's extra
    assert len(fanouts) <= 2 + 2 * 60
    t50, t100 = result.time_to(0.5), result.time_to(1.0)
    assert t50 is not None and t100 is not None and 0 < t50 <= t100 < 65


def test_forward_once_pushes_of_before_stay_selectable(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = propagation.push_targets

    def spy(*args: object, **kwargs: object) -> list[propagation.Endpoint]:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(propagation, "push_targets", spy)
    result = update_flood(FloodConfig(nodes=1000, holders=60, planned=False, seed=1))
    assert len(result.accepted_at) == 60
    # Forward-once: the publisher and each holder push once at most (the run stops when
    # the last holder has it, some lookups still in flight), FANOUT targets each.
    assert 0 < len(calls) <= 61
    assert result.pushes <= len(calls) * propagation.FANOUT


def test_a_small_sites_holders_all_hear_from_the_publishers_own_wave() -> None:
    """Fewer holders than ``PUBLISH_WAVE``, warm lists: the publisher pushes to every one
    of them itself, so all take it within one push of each other (one wave, as on the
    testnet); forward-once pushes of before needed a second hop."""
    # holders_ttl 0: the wave goes out from the warm list at once, not after the publish's
    # own lookup (which the forward-once pushes of before did not wait for either).
    common = dict(nodes=200, holders=12, shards=propagation.HOLDER_SHARDS, warm=True,
                  geography=scenarios.LOOPBACK, announce_window=5.0, poll=False,
                  holders_ttl=0.0)
    for seed in range(3):
        now = update_flood(FloodConfig(**common, seed=seed))  # type: ignore[arg-type]
        before = update_flood(FloodConfig(**common, planned=False,  # type: ignore[arg-type]
                                          holder_list=propagation.PUSHED_HOLDERS, seed=seed))
        assert len(now.accepted_at) == 12 and now.by_push == 12
        t100, two_hops = now.time_to(1.0), before.time_to(1.0)
        assert t100 is not None and (two_hops is None or t100 < two_hops)


def test_without_pushes_polls_still_deliver_within_one_interval() -> None:
    result = update_flood(FloodConfig(nodes=800, holders=30, fanout=0, wave=0, seed=2))
    assert result.by_push == 0 and len(result.accepted_at) == 30
    t100 = result.time_to(1.0)
    assert t100 is not None and t100 <= propagation.POLL_ACTIVE * 1.1 + 10


def test_one_volunteers_key_is_a_hot_spot_and_shards_spread_it() -> None:
    one = volunteer_discovery(DiscoveryConfig(nodes=2000, volunteers=300, origins=40,
                                              seed=3))
    sharded = volunteer_discovery(DiscoveryConfig(nodes=2000, volunteers=300, origins=40,
                                                  shards=8, probes=2, seed=3))
    assert one.load_announce.busiest >= 300  # every volunteer asks the nodes by the key
    assert sharded.load_announce.busiest < one.load_announce.busiest / 3
    assert min(sharded.found) >= 3 and min(one.found) >= 3


def test_shard_keys_leave_one_shard_as_the_key_itself() -> None:
    base = propagation.VOLUNTEERS_KEY
    assert scenarios.shard_key(base, 0, 1) == base
    keys = {scenarios.shard_key(base, s, 4) for s in range(4)}
    assert len(keys) == 4 and base not in keys


def test_holder_shards_derive_their_keys_as_the_node_derives_volunteer_shards() -> None:
    base = propagation.VOLUNTEERS_KEY
    assert all(scenarios.shard_key(base, s, propagation.VOLUNTEER_SHARDS)
               == propagation.volunteer_key(s) for s in range(propagation.VOLUNTEER_SHARDS))


def test_origins_widen_when_their_probes_name_too_few(monkeypatch: pytest.MonkeyPatch) -> None:
    """16 volunteers in 16 shards: two probes seldom name 3, so most origins look up every
    shard (the node's ``volunteer_widen``) and then find all of them."""
    calls = []
    real = volunteer_rule.to_ask

    def spy(*args: object, **kwargs: object) -> list[volunteer_rule.Report]:
        calls.append(args[-1])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(volunteer_rule, "to_ask", spy)
    result = volunteer_discovery(DiscoveryConfig(
        nodes=1000, volunteers=16, origins=20, shards=propagation.VOLUNTEER_SHARDS, seed=4))
    assert result.widened >= 10
    assert sorted(result.found)[len(result.found) // 2] >= 14
    assert len(calls) == 20 and all(isinstance(rng, random.Random) for rng in calls)


def test_pushes_that_name_holders_spare_most_lookups() -> None:
    before = update_flood(FloodConfig(nodes=1000, holders=200, planned=False, seed=5))
    after = update_flood(FloodConfig(nodes=1000, holders=200, planned=False, seed=5,
                                     holder_list=propagation.PUSHED_HOLDERS))
    assert len(after.accepted_at) == 200
    assert after.dht_queries < before.dht_queries / 2
    t50_before, t50_after = before.time_to(0.5), after.time_to(0.5)
    assert t50_before is not None and t50_after is not None and t50_after < t50_before


def test_sharded_holders_with_warm_lists_flood_fast_and_spread_the_key() -> None:
    """The third round's holders: HOLDER_SHARDS keys, each holder's own list refreshed at
    its announce and forwarded to without a lookup (forward-once pushes, before planned
    ones). Against one key and cold lists (before): the flood's tail and messages shrink,
    and no node takes every holder's requests."""
    before = update_flood(FloodConfig(nodes=2000, holders=600, shards=1, legacy_lookup=True,
                                      planned=False, holder_list=propagation.PUSHED_HOLDERS,
                                      seed=7))
    after = update_flood(FloodConfig(nodes=2000, holders=600, shards=propagation.HOLDER_SHARDS,
                                     warm=True, holder_list=propagation.PUSHED_HOLDERS,
                                     planned=False, seed=7))
    t99_before, t99_after = before.time_to(0.99), after.time_to(0.99)
    assert t99_after is not None and t99_after <= 5.0
    assert t99_before is None or t99_after < t99_before
    assert after.messages_per_holder <= 10 < before.messages_per_holder
    assert after.holders_in_dht == 600
    assert after.load_announce.busiest < before.load_announce.busiest / 2
    assert after.load_update.busiest < before.load_update.busiest / 5
    assert after.load_update.busiest_over_median <= after.load_update.busiest


def test_on_one_shared_processor_news_queue_and_forwards_leave_in_waves() -> None:
    """The testnet's model: every news costs ``shared_cpu`` of the one process, and a
    forward goes out once the queue is through, so holders take a version in waves."""
    common = dict(nodes=50, holders=30, shards=propagation.HOLDER_SHARDS, warm=True,
                  holder_list=propagation.PUSHED_HOLDERS, geography=scenarios.LOOPBACK,
                  announce_window=5.0, seed=3)
    free = update_flood(FloodConfig(**common))  # type: ignore[arg-type]
    shared = update_flood(FloodConfig(**common, shared_cpu=0.03))  # type: ignore[arg-type]
    assert len(free.accepted_at) == len(shared.accepted_at) == 30
    t100, alone = shared.time_to(1.0), free.time_to(1.0)
    # The last wave is taken once the news of the publisher's wave (PUBLISH_WAVE of the
    # 30) were worked through, one at a time, before their forwards went out.
    assert t100 is not None and alone is not None
    assert t100 >= shared.accepted_at[0] + (propagation.PUBLISH_WAVE - 1) * 0.03
    waves = {round(t, 2) for t in shared.accepted_at}
    assert len(waves) <= 8 < len({round(t, 4) for t in free.accepted_at})


def test_background_traffic_sets_the_median_the_busiest_is_measured_against() -> None:
    quiet = np.zeros(1000, dtype=np.int64)
    hot = quiet.copy()
    hot[0] = 6000
    # Peerweb alone: the median is 0 and every hot key is "infinitely" over it.
    assert scenarios.with_background(hot, 60.0, 0.0) == float("inf")
    # 1 request/s of Mainline's own over 60 s: ~60 each; the hot node ~100x that.
    assert 90 < scenarios.with_background(hot, 60.0, 1.0) < 115
    assert scenarios.with_background(quiet, 60.0, 10.0) < 1.3  # Poisson's own spread


def test_a_crowd_of_visitors_makes_the_pointers_nodes_the_busiest() -> None:
    load, times = scenarios.crowd_lookups(2000, 200, window=20.0)
    assert len(times) == 200 and load.busiest > 100 * max(1.0, load.median)
    assert set(load.background) == set(scenarios.BACKGROUND_RATES)
    assert load.background[10.0] < load.background[0.1]
