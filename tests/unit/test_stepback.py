"""When a publisher steps back from a crowd, and when it comes back."""

from peerweb.policy import stepback


def test_availability_counts_holders_per_piece():
    peers = [[True, False, True], [True, True, False], [False, False, True, True]]
    assert stepback.availability(peers, 3) == [2, 1, 2]  # a longer bitfield is cut
    assert stepback.availability([], 2) == [0, 0]


def test_steps_back_once_a_crowd_holds_every_piece_twice():
    twice = [2, 3, 2, 5]
    assert stepback.should_step_back(twice, peers=stepback.MIN_PEERS)
    assert not stepback.should_step_back([2, 1, 2, 5], peers=20)  # one piece held once
    assert not stepback.should_step_back(twice, peers=stepback.MIN_PEERS - 1)  # no crowd
    assert not stepback.should_step_back([], peers=20)


def test_returns_when_the_crowd_thins_or_a_piece_has_no_holder():
    assert stepback.should_return([2, 0, 3], peers=20)
    assert stepback.should_return([2, 2, 3], peers=stepback.MIN_PEERS - 1)
    # Between the thresholds nothing changes: a piece held once does not bring it back.
    assert not stepback.should_return([2, 1, 3], peers=20)
    assert not stepback.should_step_back([2, 1, 3], peers=20)


def test_the_lowered_rate_is_a_share_of_the_rate_with_a_floor():
    assert stepback.stepped_back_rate(4_000_000) == 1_000_000
    assert stepback.stepped_back_rate(0) == stepback.MIN_RATE
