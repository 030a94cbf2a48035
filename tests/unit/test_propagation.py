import random

import pytest

from peerweb.policy import propagation as prop


def test_holders_key_is_per_site_and_never_a_plain_hash_of_the_key():
    a, b = bytes(32), bytes([1]) * 32
    assert len(prop.holders_key(a)) == 20
    assert prop.holders_key(a) != prop.holders_key(b)
    assert prop.holders_key(a) == prop.holders_key(a)


def test_poll_interval_follows_use_with_jitter():
    rng = random.Random(1)
    active = [prop.poll_interval(5.0, rng) for _ in range(50)]
    assert all(prop.POLL_ACTIVE * 0.9 <= x <= prop.POLL_ACTIVE * 1.1 for x in active)
    assert len(set(active)) > 1  # not in lockstep
    assert prop.poll_interval(3600.0, rng) >= prop.POLL_RECENT * 0.9
    assert prop.poll_interval(7 * 24 * 3600.0, rng) >= prop.POLL_IDLE * 0.9


def test_push_targets_skip_self_sender_duplicates_and_cap_at_fanout():
    me, sender = ("127.0.0.1", 1000), ("127.0.0.2", 1000)
    others = [(f"127.0.0.{i}", 2000) for i in range(3, 20)]
    holders = [me, sender, *others, others[0], ("127.0.0.99", 0)]
    picked = prop.push_targets(holders, me, [sender], fanout=6, rng=random.Random(2))
    assert len(picked) == 6 and len(set(picked)) == 6
    assert me not in picked and sender not in picked and ("127.0.0.99", 0) not in picked
    assert prop.push_targets([me], me) == []


def test_a_forwarder_looks_up_when_the_push_named_too_few_and_a_share_of_the_time():
    rng = random.Random(4)
    assert all(prop.must_look_up(prop.FANOUT - 1, rng) for _ in range(100))
    draws = [prop.must_look_up(prop.PUSHED_HOLDERS, rng) for _ in range(3000)]
    assert abs(sum(draws) / len(draws) - prop.LOOKUP_SHARE) < 0.03
    assert not prop.must_look_up(prop.FANOUT, rng, share=0.0)


def test_a_push_names_distinct_holders_never_its_target_and_at_most_the_bound():
    target = ("127.0.0.2", 2000)
    known = [target, ("127.0.0.9", 0)] + [(f"127.0.0.{i}", 2000) for i in range(3, 60)] * 2
    named = prop.holders_to_send(known, target, rng=random.Random(1))
    assert len(named) == prop.PUSHED_HOLDERS == len(set(named))
    assert target not in named and ("127.0.0.9", 0) not in named
    assert prop.holders_to_send([target], target) == []


def test_holders_shards_have_distinct_keys_and_the_unsharded_key_stays():
    pk = bytes(range(32))
    keys = {prop.holders_key(pk, s) for s in range(prop.HOLDER_SHARDS)}
    assert len(keys) == prop.HOLDER_SHARDS and prop.holders_key(pk) not in keys
    assert all(len(k) == 20 for k in keys)
    assert prop.holders_key(pk, 3) != prop.holders_key(bytes(32), 3)  # per site
    with pytest.raises(ValueError):
        prop.holders_key(pk, 2**16)


def test_a_holder_keeps_one_shard_and_refreshes_its_own_and_one_other():
    rng = random.Random(1)
    shards = {prop.holder_shard(rng) for _ in range(400)}
    assert shards == set(range(prop.HOLDER_SHARDS))  # spread over all of them
    for own in range(prop.HOLDER_SHARDS):
        tried = prop.holder_refresh(own, rng)
        assert tried[0] == own and len(set(tried)) == 2
    assert prop.holder_refresh(0, rng, shards=1) == [0]


def test_holders_widen_to_every_other_shard_only_when_short():
    assert prop.holders_widen(prop.FANOUT, [0, 1]) == []
    assert prop.holders_widen(prop.FANOUT - 1, [0, 5]) == [1, 2, 3, 4, 6, 7]


def test_a_warm_list_forwards_without_a_lookup_unless_it_is_short():
    rng = random.Random(2)
    assert not any(prop.must_look_up(prop.FANOUT, rng, warm=True) for _ in range(200))
    assert prop.must_look_up(prop.FANOUT - 1, rng, warm=True)
    assert any(prop.must_look_up(prop.FANOUT, rng) for _ in range(200))
def test_a_plan_pushes_to_every_known_holder_exactly_once():
    """Each receiver plans its share again: the pushes of a whole flood reach every holder of
    the first list once, never the publisher, never a holder twice."""
    me = ("127.0.0.1", 1000)
    holders = [(f"127.0.{i // 200}.{i % 200 + 2}", 2000) for i in range(500)]
    rng = random.Random(5)
    pushed: list = []
    waves = [prop.plan_pushes([*holders, me, holders[3], ("127.0.0.9", 0)], me,
                              fanout=prop.PUBLISH_WAVE, rng=rng)]
    assert len(waves[0]) == prop.PUBLISH_WAVE
    sizes = [len(share) for _, share in waves[0]]
    assert max(sizes) - min(sizes) <= 1  # as even as can be
    hops = 0
    while waves:
        hops += 1
        plan = waves.pop()
        for target, share in plan:
            pushed.append(target)
            assert target not in share and len(share) <= prop.PUSHED_HOLDERS
            if share:
                waves.append(prop.plan_pushes(share, target, [me], rng=rng))
    assert sorted(pushed) == sorted(holders)
    assert prop.plan_pushes([me], me) == [] and prop.plan_pushes([], me) == []


def test_a_plan_leaves_holders_past_its_bound_to_lookups_and_never_names_the_sender():
    me, sender = ("127.0.0.1", 1000), ("127.0.0.2", 1000)
    holders = [(f"127.0.1.{i}", 2000) for i in range(1, 60)]
    plan = prop.plan_pushes([sender, *holders], me, [sender], fanout=2, bound=5,
                            rng=random.Random(3))
    named = [h for target, share in plan for h in (target, *share)]
    assert len(plan) == 2 and len(named) == len(set(named)) == 2 * (1 + 5)
    assert sender not in named and me not in named
    few = prop.plan_pushes(holders[:3], me, rng=random.Random(1))
    assert sorted(t for t, _ in few) == sorted(holders[:3]) and all(not s for _, s in few)


def test_a_share_of_the_planned_receivers_look_further():
    rng = random.Random(8)
    draws = [prop.looks_further(rng) for _ in range(3000)]
    assert abs(sum(draws) / len(draws) - prop.LOOKUP_SHARE) < 0.03
    assert not prop.looks_further(rng, share=0.0)
