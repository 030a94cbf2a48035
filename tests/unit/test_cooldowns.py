"""How often a node asks the network again: plain values, a clock passed in."""

from peerweb.policy import cooldowns


def test_a_pointer_checked_recently_is_fresh():
    assert cooldowns.pointer_fresh(checked_at=100.0, now=120.0, fresh_for=30.0)
    assert cooldowns.pointer_fresh(checked_at=100.0, now=130.0, fresh_for=30.0)
    assert not cooldowns.pointer_fresh(checked_at=100.0, now=130.5, fresh_for=30.0)
    assert not cooldowns.pointer_fresh(checked_at=0.0, now=1000.0, fresh_for=30.0)  # never


def test_a_poll_is_due_at_its_time_and_a_site_never_polled_at_once():
    assert cooldowns.poll_due(next_poll=0.0, now=5.0)
    assert cooldowns.poll_due(next_poll=5.0, now=5.0)
    assert not cooldowns.poll_due(next_poll=5.1, now=5.0)


def test_a_stored_value_is_reused_while_younger_than_its_max_age():
    assert cooldowns.still_fresh(stored_at=10.0, now=29.9, max_age=20.0)
    assert not cooldowns.still_fresh(stored_at=10.0, now=30.0, max_age=20.0)
    assert not cooldowns.still_fresh(stored_at=10.0, now=10.0, max_age=0.0)


def test_lookup_waits_double_up_to_a_second():
    waits = [cooldowns.lookup_wait(a, now=0.0, deadline=1e9, min_attempts=3) for a in range(6)]
    assert waits == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert cooldowns.lookup_wait(10_000, now=0.0, deadline=1e9, min_attempts=3) == 1.0


def test_lookup_asks_at_least_min_attempts_times_whatever_the_deadline():
    assert cooldowns.lookup_wait(0, now=50.0, deadline=10.0, min_attempts=3) == 0.2
    assert cooldowns.lookup_wait(1, now=50.0, deadline=10.0, min_attempts=3) == 0.4
    assert cooldowns.lookup_wait(2, now=50.0, deadline=10.0, min_attempts=3) is None


def test_lookup_gives_up_when_the_wait_would_pass_its_patience():
    assert cooldowns.lookup_wait(3, now=8.9, deadline=10.0, min_attempts=3) == 1.0
    assert cooldowns.lookup_wait(3, now=9.0, deadline=10.0, min_attempts=3) == 1.0
    assert cooldowns.lookup_wait(3, now=9.1, deadline=10.0, min_attempts=3) is None
