"""When a node writes its state and resume data (policy.saving)."""

from __future__ import annotations

from peerweb.policy.saving import next_write_delay, resume_due


def test_state_writes_are_at_most_one_per_interval() -> None:
    assert next_write_delay(None, 50.0, 1.0) == 0.0
    assert next_write_delay(49.5, 50.0, 1.0) == 0.5
    assert next_write_delay(40.0, 50.0, 1.0) == 0.0


def test_resume_data_is_saved_often_while_downloading_and_rarely_when_idle() -> None:
    assert resume_due(0, None, 0.0, 5.0, 3.0, 60.0)  # never saved
    assert not resume_due(100, 50, 10.0, 12.0, 3.0, 60.0)  # gained pieces, 2 s ago
    assert resume_due(100, 50, 10.0, 13.0, 3.0, 60.0)
    assert not resume_due(100, 100, 10.0, 69.0, 3.0, 60.0)  # idle
    assert resume_due(100, 100, 10.0, 70.0, 3.0, 60.0)
