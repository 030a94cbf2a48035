"""Which volunteers an origin in need asks, and where it sends visitors: plain values."""

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


def test_the_least_loaded_others_are_asked_up_to_wanted():
    reports = [report("cur", 0.5, 2), report("busy", 0.9, None), report("calm", 0.1, 1),
               report("free", None, None), report("mid", 0.4, None)]
    assert names(rule.to_ask(reports, SITE, 2, wanted=3)) == ["free", "calm"]
    assert names(rule.to_ask(reports, SITE, 2, wanted=1)) == []  # enough are ready
    assert names(rule.to_ask(reports, SITE, 2, wanted=10)) == ["free", "calm", "mid", "busy"]


def test_equal_loads_are_asked_in_report_order():
    reports = [report("x", 0.2, None), report("y", 0.2, None), report("z", 0.2, None)]
    assert names(rule.to_ask(reports, SITE, 1, wanted=2)) == ["x", "y"]


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
