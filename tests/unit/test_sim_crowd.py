"""The flash-crowd model: the origin's hand-off and step-back decided by the node's code."""

from __future__ import annotations

import pytest

pytest.importorskip("numpy")

from peerweb.policy import stepback  # noqa: E402
from peerweb.sim.crowd import CrowdConfig, flash_crowd  # noqa: E402


def test_a_crowd_is_handed_off_and_the_origin_steps_back(monkeypatch: pytest.MonkeyPatch):
    steps = []
    real = stepback.should_step_back

    def spy(counts: list[int], peers: int) -> bool:
        steps.append((tuple(counts), peers))
        return real(counts, peers)

    monkeypatch.setattr(stepback, "should_step_back", spy)
    result = flash_crowd(CrowdConfig(visitors=2000, volunteers=4, seed=3))
    assert result.handed_off_at is not None and result.handed_off_at < 3.0
    assert result.stepped_back_at is not None and result.stepped_back_at > result.handed_off_at
    assert steps and all(peers <= 50 for _, peers in steps)  # the origin's peers only
    assert result.mode_changes == 1  # no flapping back to HTTP while the crowd lasts
    assert result.volunteers_asked_at is not None
    assert (result.page_seconds < float("inf")).all()
    # Every byte the origin sent is counted, HTTP before the hand-off and the swarm after.
    assert result.origin_http_bytes < result.origin_bytes
    assert 1.0 < result.origin_copies <= 3.0


def test_a_bigger_crowd_costs_the_origin_no_more_and_visitors_little_more():
    small = flash_crowd(CrowdConfig(visitors=1000, seed=0))
    big = flash_crowd(CrowdConfig(visitors=20_000, seed=0))
    assert big.origin_copies <= 1.2 * small.origin_copies
    assert big.percentile(95) <= 2 * small.percentile(95)


def test_uploading_in_proportion_to_what_is_held_is_the_pessimistic_model():
    piece = flash_crowd(CrowdConfig(visitors=5000, seed=1))
    share = flash_crowd(CrowdConfig(visitors=5000, piece_efficiency=0.0, seed=1))
    assert share.percentile(95) > piece.percentile(95)
    assert share.origin_copies > piece.origin_copies

