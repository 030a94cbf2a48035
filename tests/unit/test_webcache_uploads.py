"""Serving copies within the node's upload limit (peerweb.webcache.uploads)."""

from __future__ import annotations

from peerweb.webcache.uploads import UploadMeter, may_serve


def test_the_meter_is_a_rate_over_its_window() -> None:
    meter = UploadMeter(window=2.0)
    assert meter.rate(0.0) == 0
    meter.add(100_000, 0.0)
    meter.add(300_000, 1.0)
    assert meter.rate(1.5) == 200_000
    assert meter.rate(2.5) == 150_000  # the first has left the window
    assert meter.rate(10.0) == 0


def test_a_body_is_served_while_swarm_and_copies_stay_within_the_limit() -> None:
    assert may_serve(10**9, 10**9, 10**6, limit=0)  # no limit
    assert may_serve(500_000, 0, 200_000, limit=1_000_000)  # 500 + 100 KB/s of 1 MB/s
    assert not may_serve(500_000, 400_000, 400_000, limit=1_000_000)
    assert not may_serve(1_000_000, 0, 1, limit=1_000_000)  # the swarm uses it all
    # A body larger than what is left goes out when no other copy is being sent.
    assert may_serve(900_000, 0, 8_000_000, limit=1_000_000)
    assert not may_serve(900_000, 50_000, 8_000_000, limit=1_000_000)
