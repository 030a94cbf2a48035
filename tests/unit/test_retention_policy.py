"""What a node keeps and what it lets go: plain values, no libtorrent."""

from peerweb.policy import retention as rule


def test_published_and_pinned_snapshots_are_protected():
    assert rule.protected(["a", "b"], ["b", "c"]) == {"a", "b", "c"}
    assert rule.protected([], []) == set()


def test_eviction_order_is_least_recently_used_first_never_used_first_of_all():
    used = {"a": 30.0, "b": 10.0, "c": 20.0}
    assert rule.eviction_order(used, ["a", "b", "c", "d"]) == ["d", "b", "c", "a"]


def test_evicts_least_recently_used_until_the_rest_fit():
    sizes = {"old": 40, "mid": 40, "new": 40}
    used = {"old": 1.0, "mid": 2.0, "new": 3.0}
    assert rule.to_evict(sizes, used, quota=100) == ["old"]
    assert rule.to_evict(sizes, used, quota=80) == ["old"]
    assert rule.to_evict(sizes, used, quota=79) == ["old", "mid"]
    assert rule.to_evict(sizes, used, quota=120) == []


def test_the_most_recently_used_stays_even_alone_over_the_quota():
    assert rule.to_evict({"only": 500}, {"only": 1.0}, quota=10) == []
    sizes = {"a": 5, "b": 500}
    assert rule.to_evict(sizes, {"a": 1.0, "b": 2.0}, quota=0) == ["a"]
    assert rule.to_evict({}, {}, quota=0) == []


def test_superseded_versions_go_once_the_current_one_is_complete():
    history = ["v1", "v2", "v3"]
    held = {"v1", "v2", "v3"}
    assert rule.superseded("v3", "v3", False, history, held, keep=set()) == ["v1", "v2"]
    # Not held here, or protected (published or pinned elsewhere): kept or nothing to drop.
    assert rule.superseded("v3", "v3", False, history, {"v2", "v3"}, keep={"v2"}) == []


def test_nothing_is_superseded_by_an_old_version_or_on_a_pinned_site():
    history, held = ["v1", "v2"], {"v1", "v2"}
    assert rule.superseded("v1", "v2", False, history, held, set()) == []  # not current
    assert rule.superseded("v2", "v2", True, history, held, set()) == []  # pinned


def test_metered_mode_pauses_idle_unprotected_torrents_nobody_reads():
    used = {"idle": 0.0, "fresh": 95.0, "own": 0.0, "done": 0.0, "read": 0.0}
    held = ["idle", "fresh", "own", "done", "read", "never"]
    assert rule.idle_to_pause(used, held, keep={"own"}, paused={"done"}, busy={"read"},
                              now=100.0, idle_after=30.0) == ["idle", "never"]
    # Exactly idle_after seconds idle is idle enough.
    assert rule.idle_to_pause({"t": 70.0}, ["t"], set(), set(), set(), 100.0, 30.0) == ["t"]
    assert rule.idle_to_pause({"t": 70.5}, ["t"], set(), set(), set(), 100.0, 30.0) == []


def test_a_metered_node_seeds_only_its_own_and_pinned_sites():
    assert rule.seeds(metered=False, published=False, pinned=False)
    assert rule.seeds(metered=True, published=True, pinned=False)
    assert rule.seeds(metered=True, published=False, pinned=True)
    assert not rule.seeds(metered=True, published=False, pinned=False)


def test_mirror_leases_expire_after_their_end_and_zero_is_no_lease():
    leases = {"gone": 99.0, "edge": 100.0, "later": 101.0, "none": 0.0}
    assert rule.expired_leases(leases, now=100.0) == ["gone"]
    assert rule.expired_leases({}, now=100.0) == []
