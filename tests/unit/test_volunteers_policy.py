"""Which volunteers an origin in need asks, and where it sends visitors: plain values."""

import random

from peerweb.policy import volunteers as rule

SITE = "site"


def report(name: str, load: float | None, version: int | None) -> dict[str, object]:
    return {"gateway": name, "load": load, "sites": {} if version is None else {SITE: version}}


def names(reports) -> list[str]:
    return [r["gateway"] for r in reports]


def test_an_unlimited_volunteer_counts_as_idle():
    assert rule.load_of(report("a", None, 1)) == 0.0
    assert rule.load_of(report("a", 0.5, 1)) == 0.5


def test_volunteers_with_the_current_version_are_ready():
    reports = [report("old", 0.1, 1), report("cur", 0.9, 2), report("none", 0.0, None)]
    assert names(rule.holding(reports, SITE, 2)) == ["cur"]


def test_only_volunteers_without_the_version_are_asked_up_to_wanted():
    reports = [report("cur", 0.5, 2), report("busy", 0.9, None), report("calm", 0.1, 1),
               report("free", None, None), report("mid", 0.4, None)]
    asked = names(rule.to_ask(reports, SITE, 2, wanted=3, rng=random.Random(1)))
    assert len(asked) == 2 and len(set(asked)) == 2 and "cur" not in asked
    assert names(rule.to_ask(reports, SITE, 2, wanted=1)) == []  # enough are ready
    everyone = rule.to_ask(reports, SITE, 2, wanted=10, rng=random.Random(1))
    assert sorted(names(everyone)) == ["busy", "calm", "free", "mid"]


def test_each_ask_is_the_lighter_of_two_so_the_heaviest_is_asked_last():
    reports = [report(f"v{i}", i / 10, None) for i in range(10)]
    for seed in range(200):
        asked = names(rule.to_ask(reports, SITE, 1, wanted=9, rng=random.Random(seed)))
        assert len(asked) == 9 and "v9" not in asked  # it loses every draw it is in
    # Of two, the lighter; equal loads: the first drawn.
    two = [report("heavy", 0.8, None), report("light", 0.2, None)]
    assert names(rule.to_ask(two, SITE, 1, wanted=1, rng=random.Random(0))) == ["light"]


def test_a_crowd_of_origins_reading_the_same_reports_does_not_herd():
    """1,000 origins, the same 250 reports each: the least loaded alone would have every
    origin ask the same 3; the lighter of two spreads them, still favouring the light."""
    draw = random.Random(7)
    reports = [report(f"v{i}", draw.random(), None) for i in range(250)]
    rng = random.Random(8)
    asks: dict[str, int] = {}
    for _ in range(1000):
        for name in names(rule.to_ask(reports, SITE, 1, wanted=3, rng=rng)):
            asks[name] = asks.get(name, 0) + 1
    assert max(asks.values()) < 60  # not 1,000
    load = {r["gateway"]: rule.load_of(r) for r in reports}
    light = sum(n for name, n in asks.items() if load[name] < 0.5)
    assert light > 0.65 * 3000  # uniform picks would give half


def test_a_seeded_rng_makes_the_choice_reproducible():
    reports = [report(f"v{i}", (i * 7 % 10) / 10, None) for i in range(30)]
    first = names(rule.to_ask(reports, SITE, 1, wanted=3, rng=random.Random(5)))
    assert first == names(rule.to_ask(reports, SITE, 1, wanted=3, rng=random.Random(5)))


def test_only_volunteers_that_answer_with_the_current_version_are_taken():
    asked = [report("a", 0.1, None), report("b", 0.2, None), report("c", 0.3, None)]
    assert names(rule.took(asked, [2, None, 1], 2)) == ["a"]


def test_visitors_go_to_the_least_loaded_first_equal_loads_in_order():
    ready = [report("p", 0.5, 2), report("q", None, 2), report("r", 0.5, 2),
             report("s", 0.1, 2)]
    assert names(rule.ranked(ready)) == ["q", "s", "p", "r"]


def test_a_volunteer_takes_only_what_fits_its_disk_and_upload() -> None:
    from peerweb.policy.volunteers import fits_disk, has_upload_room

    assert fits_disk(3, 2, 5) and not fits_disk(68_000_000, 0, 5_000_000)
    assert not fits_disk(4, 2, 5)
    assert has_upload_room(10**9, 0)  # no limit
    assert has_upload_room(80, 100) and not has_upload_room(90, 100)


def test_a_requester_has_a_few_sites_mirrored_at_most() -> None:
    from peerweb.policy.volunteers import MAX_SITES_PER_REQUESTER, requester_may_ask

    full = {f"s{i}" for i in range(MAX_SITES_PER_REQUESTER)}
    assert requester_may_ask(set(), "a")
    assert requester_may_ask(full, "s0")  # renewing its own
    assert not requester_may_ask(full, "other")


def test_renewed_leases_end_after_a_bounded_chain() -> None:
    from peerweb.policy.volunteers import renew_lease

    assert renew_lease(0.0, 0.0, 100.0, 10.0, renewals=3) == (100.0, 110.0)
    assert renew_lease(100.0, 110.0, 105.0, 10.0, renewals=3) == (100.0, 115.0)
    # However often strangers ask, the chain ends 3 leases after it began...
    assert renew_lease(100.0, 128.0, 127.0, 10.0, renewals=3) == (100.0, 130.0)
    assert renew_lease(100.0, 130.0, 129.9, 10.0, renewals=3) == (100.0, 130.0)
    # ... and once a lease has run out, a new request starts a new one.
    assert renew_lease(100.0, 130.0, 131.0, 10.0, renewals=3) == (131.0, 141.0)
