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


def test_next_version_same_bytes_keeps_the_version():
    assert versions.next_version(3, 3, same_bytes=True) == 3


def test_next_version_goes_past_both_counters():
    assert versions.next_version(0, 0, same_bytes=False) == 1
    assert versions.next_version(3, 1, same_bytes=False) == 4  # learned a newer one
    assert versions.next_version(2, 7, same_bytes=False) == 8  # our counter ran ahead
