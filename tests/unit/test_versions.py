"""Which pointer a node keeps and which version it publishes next: plain values."""

import pytest

from peerweb.content import pointer as ptr
from peerweb.content.identity import SiteKey
from peerweb.policy import versions

IH1 = bytes(20)
IH2 = bytes(range(20))


@pytest.fixture(scope="module")
def key() -> SiteKey:
    return SiteKey.generate("t")


def test_a_new_site_takes_any_pointer(key):
    assert versions.pointer_update(None, ptr.sign(key, IH1, 1, seq=1))
    assert versions.pointer_update(None, ptr.sign(key, IH1, 1, seq=1), force=True)


def test_a_higher_version_is_taken_a_lower_one_never(key):
    v1, v2 = ptr.sign(key, IH1, 1, seq=1), ptr.sign(key, IH2, 2, seq=2)
    assert versions.pointer_update(v1, v2)
    assert not versions.pointer_update(v2, v1)
    assert not versions.pointer_update(v2, v1, force=True)  # force never goes back


def test_same_version_without_force_follows_the_value_order(key):
    a, b = ptr.sign(key, IH1, 3, seq=3), ptr.sign(key, IH2, 3, seq=3)
    low, high = sorted([a, b], key=lambda p: p.value)
    assert versions.pointer_update(low, high)
    assert not versions.pointer_update(high, low)
    assert not versions.pointer_update(a, a)


def test_force_takes_another_signature_of_the_same_version_and_bytes(key):
    local = ptr.sign(key, IH1, 4, seq=4)
    dht = ptr.sign(key, IH1, 4, seq=9)  # the DHT's own sequence number, same record
    assert versions.pointer_update(local, dht, force=True)
    assert versions.pointer_update(local, local, force=True)


def test_force_with_other_bytes_of_the_same_version_follows_the_value_order(key):
    a, b = ptr.sign(key, IH1, 5, seq=5), ptr.sign(key, IH2, 5, seq=5)
    low, high = sorted([a, b], key=lambda p: p.value)
    assert versions.pointer_update(low, high, force=True)
    assert not versions.pointer_update(high, low, force=True)


def test_a_first_version_is_1_from_nobody():
    plan = versions.plan_version({}, 0, newest_same_bytes=False)
    assert plan == versions.VersionPlan(1, False, 0, versions.NO_SOURCE)
    assert versions.plan_version({"state": 0, "key": 0, "dht": 0}, 0, False).version == 1


def test_the_next_version_goes_past_every_source():
    known = {"state": 3, "key": 1, "dht": 0, "holders": 0}
    assert versions.plan_version(known, 3, False) == versions.VersionPlan(4, False, 3, "state")
    known = {"state": 2, "key": 7}  # our counter ran ahead (signed, never seen)
    assert versions.plan_version(known, 2, False).version == 8


def test_a_publisher_that_lost_its_state_learns_the_version_from_the_key_or_the_network():
    # Issue 16 item 5: state.json wiped, v2 signed before: v3, not v1 (ignored by holders).
    assert versions.plan_version({"state": 0, "key": 2}, 0, False) == versions.VersionPlan(
        3, False, 2, "key")
    # The counter beside the key gone too (a key imported elsewhere): the DHT knows.
    assert versions.plan_version({"state": 0, "key": 0, "dht": 2, "holders": 1}, 2,
                                 False).version_from == "dht"
    # The DHT item expired: a holder still hands out v2.
    assert versions.plan_version({"dht": 0, "holders": 2}, 2, False) == versions.VersionPlan(
        3, False, 2, "holders")


def test_a_tie_names_the_nearest_source():
    plan = versions.plan_version({"holders": 5, "dht": 5, "key": 5, "state": 5}, 5, False)
    assert plan.version_from == "state"
    assert versions.plan_version({"holders": 5, "dht": 5}, 5, False).version_from == "dht"


def test_the_same_bytes_as_the_newest_version_are_unchanged():
    plan = versions.plan_version({"state": 3, "key": 3}, 3, newest_same_bytes=True)
    assert plan == versions.VersionPlan(3, True, 3, "state")


def test_the_same_bytes_under_a_higher_signed_counter_are_a_new_version():
    # v4 was signed (noted beside the key) but never seen: its bytes may differ, so the
    # folder held as v3 is published again as v5, not announced as v3 under everyone's v4.
    plan = versions.plan_version({"state": 3, "key": 4}, 3, newest_same_bytes=True)
    assert plan == versions.VersionPlan(5, False, 4, "key")


def test_the_same_bytes_as_an_older_pointer_than_the_network_knows_are_a_new_version():
    # The DHT has v6 (other bytes), held here v3 with the same bytes as the folder.
    plan = versions.plan_version({"state": 3, "dht": 6}, 6, newest_same_bytes=False)
    assert plan.version == 7 and not plan.unchanged


def test_an_unchanged_site_is_put_again_only_if_the_dht_lacks_it():
    assert versions.put_needed(unchanged=False, dht_has_it=True)
    assert versions.put_needed(unchanged=False, dht_has_it=False)
    assert versions.put_needed(unchanged=True, dht_has_it=False)
    assert not versions.put_needed(unchanged=True, dht_has_it=True)


def test_a_publisher_waits_for_the_holders_only_when_the_dht_cannot_vouch(key):
    v1, v2 = ptr.sign(key, IH1, 1, seq=1), ptr.sign(key, IH2, 2, seq=2)
    assert versions.holders_worth_waiting(None, v1)  # nothing held here: lost state?
    assert versions.holders_worth_waiting(v1, None)  # the DHT item may have expired
    assert versions.holders_worth_waiting(v1, v2)  # signed elsewhere: maybe newer still
    assert not versions.holders_worth_waiting(v1, v1)  # an unchanged republish
    assert not versions.holders_worth_waiting(v2, v1)  # the DHT is behind us
