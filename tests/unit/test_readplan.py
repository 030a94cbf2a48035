"""The piece reader's decisions, with plain values: which pieces a byte range needs, what to
request ahead and with which deadlines, which held runs to read from disk, how a piece's
bytes are clipped to the range, and when a wait on a piece has stalled."""

from __future__ import annotations

import pytest

from peerweb.errors import PeerError
from peerweb.policy.readplan import (
    DEADLINE_STEP_MS,
    DISK_RUN_PIECES,
    FIRST_PIECE_DEADLINE_MS,
    READAHEAD_PIECES,
    STALL_CHECKS,
    Cooldown,
    ReadPlan,
    Remedy,
    StallDetector,
)

PL = 16  # piece length in these tests


def plan(start: int, end: int, offset: int = 0, size: int = 10 * PL) -> ReadPlan:
    return ReadPlan(start=start, end=end, file_offset=offset, file_size=size, piece_length=PL)


def whole(piece: int, length: int = PL) -> bytes:
    """Piece ``piece``'s bytes: each byte names its position in the torrent (mod 256)."""
    return bytes((piece * PL + i) % 256 for i in range(length))


# -- which pieces ----------------------------------------------------------------------------


def test_a_range_inside_one_piece_needs_that_piece() -> None:
    assert plan(3, 9).pieces == range(0, 1)
    assert plan(PL + 1, 2 * PL).pieces == range(1, 2)


def test_a_range_spanning_pieces_needs_each_it_touches() -> None:
    assert plan(PL - 1, PL + 1).pieces == range(0, 2)
    assert plan(0, 3 * PL).pieces == range(0, 3)
    assert plan(0, 3 * PL + 1).pieces == range(0, 4)


def test_a_file_not_starting_at_piece_0_counts_from_its_offset() -> None:
    p = plan(0, PL, offset=5 * PL)
    assert p.pieces == range(5, 6)
    # A v1 file may start inside a piece: its first bytes lie in the piece before.
    assert plan(0, PL, offset=5 * PL + 4).pieces == range(5, 7)


def test_an_empty_range_needs_no_piece() -> None:
    assert list(plan(0, 0).pieces) == []
    assert list(plan(7, 7).pieces) == []
    assert list(plan(PL, PL, offset=3 * PL).pieces) == []


# -- read-ahead ------------------------------------------------------------------------------


def test_readahead_requests_the_window_with_growing_deadlines() -> None:
    p = plan(0, 20 * PL, size=20 * PL)
    asked = p.readahead(2, pending=set(), held=b"")
    assert [piece for piece, _ in asked] == list(range(2, 2 + READAHEAD_PIECES + 1))
    assert [deadline for _, deadline in asked] == [
        FIRST_PIECE_DEADLINE_MS + k * DEADLINE_STEP_MS for k in range(READAHEAD_PIECES + 1)]


def test_readahead_stops_at_the_range_end() -> None:
    p = plan(0, 3 * PL)
    assert p.readahead(1, pending=set(), held=b"") == [
        (1, FIRST_PIECE_DEADLINE_MS), (2, FIRST_PIECE_DEADLINE_MS + DEADLINE_STEP_MS)]


def test_readahead_skips_pending_and_held_pieces_but_keeps_their_place() -> None:
    p = plan(0, 10 * PL)
    held = bytes([0, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    asked = dict(p.readahead(0, pending={2}, held=held))
    assert sorted(asked) == [0, *range(4, READAHEAD_PIECES + 1)]
    # The deadline is by distance from the piece being read, whatever was skipped.
    assert asked[4] == FIRST_PIECE_DEADLINE_MS + 4 * DEADLINE_STEP_MS


def test_readahead_with_no_held_map_treats_nothing_as_held() -> None:
    assert [piece for piece, _ in plan(0, 2 * PL).readahead(0, set(), b"")] == [0, 1]


# -- runs from disk --------------------------------------------------------------------------


def test_a_disk_run_is_the_held_pieces_in_a_row() -> None:
    held = bytes([1, 1, 1, 0, 1, 1, 1, 1, 1, 1])
    p = plan(0, 10 * PL)
    assert p.disk_run(0, held, pending=set()) == [0, 1, 2]
    assert p.disk_run(4, held, pending=set()) == [4, 5, 6, 7, 8, 9]


def test_no_disk_run_for_an_unheld_or_pending_piece() -> None:
    held = bytes([0, 1, 1])
    p = plan(0, 3 * PL, size=3 * PL)
    assert p.disk_run(0, held, pending=set()) == []
    assert p.disk_run(1, held, pending={1}) == []
    assert p.disk_run(1, b"", pending=set()) == []


def test_a_disk_run_stops_at_a_pending_piece_and_at_the_range_end() -> None:
    held = bytes([1] * 10)
    assert plan(0, 10 * PL).disk_run(0, held, pending={3}) == [0, 1, 2]
    assert plan(0, 2 * PL + 1).disk_run(1, held, pending=set()) == [1, 2]


def test_a_disk_run_is_at_most_disk_run_pieces_long() -> None:
    n = DISK_RUN_PIECES + 5
    held = bytes([1] * n)
    assert plan(0, n * PL, size=n * PL).disk_run(0, held, set()) == list(range(DISK_RUN_PIECES))


def test_in_file_places_a_piece_and_cuts_the_files_tail() -> None:
    p = plan(0, 40, offset=2 * PL, size=40)
    assert p.in_file(2) == (0, PL)
    assert p.in_file(4) == (2 * PL, 40 - 2 * PL)  # the tail; padding follows in the torrent


# -- clipping --------------------------------------------------------------------------------


def test_clip_inside_one_piece() -> None:
    assert plan(3, 9).clip(0, whole(0)) == whole(0)[3:9]


def test_clip_across_pieces_gives_back_the_range() -> None:
    p = plan(5, 2 * PL + 3)
    data = b"".join(p.clip(piece, whole(piece)) for piece in p.pieces)
    assert data == b"".join(whole(piece) for piece in range(3))[5:2 * PL + 3]


def test_clip_with_a_file_offset() -> None:
    p = plan(2, PL + 4, offset=3 * PL)
    data = b"".join(p.clip(piece, whole(piece)) for piece in p.pieces)
    assert data == (whole(3) + whole(4))[2:PL + 4]


def test_clip_the_torrents_last_short_piece() -> None:
    # The file is the torrent's last 20 bytes: its second piece has 4 bytes only.
    p = plan(10, 20, offset=0, size=20)
    assert p.clip(1, whole(1, 4)) == whole(1, 4)


def test_a_piece_short_of_the_range_is_a_peer_error() -> None:
    p = plan(0, 20, size=20)
    with pytest.raises(PeerError, match="piece 1 came back short"):
        p.clip(1, whole(1, 3))
    with pytest.raises(PeerError):
        plan(0, PL).clip(0, b"")


# -- stalls ----------------------------------------------------------------------------------


def never() -> bool:
    raise AssertionError("asked about stuck requests when payload was still coming")


def test_a_piece_received_but_unverified_gets_a_recheck_after_stall_checks() -> None:
    detector = StallDetector()
    remedies = [detector.observe(True, payload=100 * n, stuck=never)
                for n in range(STALL_CHECKS)]
    assert remedies == [None] * (STALL_CHECKS - 1) + [Remedy.RECHECK]
    assert detector.stalled == 0  # counting starts again after a recheck


def test_an_observation_of_a_piece_not_yet_received_resets_the_count() -> None:
    detector = StallDetector()
    assert detector.observe(True, 1, never) is None
    assert detector.observe(False, 2, never) is None
    assert detector.observe(True, 3, never) is None
    assert detector.stalled == 1


def test_no_payload_with_a_snubbed_peer_holding_requests_gets_a_reconnect() -> None:
    detector = StallDetector()
    assert detector.observe(False, 500, stuck=never) is None  # first look: nothing to compare
    assert detector.observe(False, 500, stuck=lambda: True) is Remedy.RECONNECT
    assert detector.observe(False, 500, stuck=lambda: False) is None
    assert detector.observe(False, 600, stuck=never) is None


def test_a_recheck_comes_before_a_reconnect() -> None:
    detector = StallDetector()
    for _ in range(STALL_CHECKS - 1):
        detector.observe(True, 0, lambda: False)
    assert detector.observe(True, 0, never) is Remedy.RECHECK


def test_a_cooldown_lets_one_action_per_interval_per_key() -> None:
    cooldown = Cooldown(interval=10.0)
    assert cooldown.ready("a", now=0.0)
    assert not cooldown.ready("a", now=9.9)
    assert cooldown.ready("b", now=9.9)  # another torrent
    assert cooldown.ready("a", now=10.0)
    assert not cooldown.ready("a", now=15.0)  # counted from the last action, not the refusal
    assert cooldown.ready("a", now=20.0)


def test_a_cooldown_is_ready_at_once_for_a_new_key_even_at_time_zero() -> None:
    assert Cooldown(interval=10.0).ready("a", now=0.0)
