"""What a node lets in from strangers (policy.admission), with plain values."""

from __future__ import annotations

from peerweb.policy.admission import ASKED_WINDOW, TokenBucket, store_unsolicited


def test_a_pushed_pointer_is_kept_only_for_a_site_known_or_just_asked_about() -> None:
    assert store_unsolicited(True, None, 100.0)
    assert not store_unsolicited(False, None, 100.0)
    assert store_unsolicited(False, 100.0 - ASKED_WINDOW, 100.0)
    assert not store_unsolicited(False, 100.0 - ASKED_WINDOW - 0.1, 100.0)
    assert not store_unsolicited(False, 101.0, 100.0)  # "asked" in the future: a bad clock


def test_a_bucket_spends_its_burst_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take("a", 0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after("a", 0.0) == 0.5
    assert not bucket.take("a", 0.4)
    assert bucket.take("a", 0.5)
    assert not bucket.take("a", 0.5)
    # Others are not held back by one address's flood.
    assert bucket.take("b", 0.5)
    # Idle long enough, a bucket is full again, never more.
    assert [bucket.take("a", 100.0) for _ in range(4)] == [True, True, True, False]


def test_a_bucket_table_stays_bounded_forgetting_full_buckets_first() -> None:
    bucket = TokenBucket(rate=1.0, burst=2.0, max_keys=3)
    for i in range(3):
        bucket.take(f"busy{i}", 0.0)
        bucket.take(f"busy{i}", 0.0)  # empty now
    bucket.take("idle", 0.0)
    assert len(bucket) == 3
    # busy0 is the oldest and still not full at t=1: evicted by age; nothing is lost by
    # forgetting a full bucket, so those go first.
    assert not bucket.take("busy1", 0.5)
    for i in range(10):
        bucket.take(f"new{i}", 10.0)
    assert len(bucket) <= 3
