"""policy.backups: what counts as a copy of a backup, whom to ask and to challenge, and
what a proof must hold."""

from __future__ import annotations

import hashlib
import os
import random

from hypothesis import given
from hypothesis import strategies as st

from peerweb.policy import backups as rule
from peerweb.policy.backups import Copy

A, B, C, D = (("127.0.0.1", 7000 + i) for i in range(4))
NOW = 1_000_000.0


def test_a_copy_counts_only_while_proved_for_the_newest_version() -> None:
    fresh = Copy(A, 3, NOW - 10)
    assert rule.is_complete(fresh, 3, NOW)
    assert not rule.is_complete(fresh, 4, NOW)  # behind
    assert not rule.is_complete(Copy(A, 3, None), 3, NOW)  # its word only
    assert not rule.is_complete(Copy(A, 3, NOW - rule.PROOF_MAX_AGE - 1), 3, NOW)  # stale
    lied = rule.failed(fresh, NOW - 5, "piece fails its SHA-1")
    assert not rule.is_complete(lied, 3, NOW)
    assert rule.is_complete(rule.proved(lied, 3, NOW - 1), 3, NOW)  # proved again since


def test_freshness_names_each_state() -> None:
    states = {
        "complete": Copy(A, 2, NOW - 1),
        "stale": Copy(A, 2, NOW - rule.PROOF_MAX_AGE - 5),
        "failed": Copy(A, 2, NOW - 100, failed_at=NOW - 1, reason="refused"),
        "fetching": Copy(A, 0, None, asked_at=NOW - 1),
        "unproved": Copy(A, 0, None),
    }
    for state, copy in states.items():
        shown = rule.freshness(copy, 2, NOW)
        assert shown["state"] == state, (state, shown)
        assert shown["holder"] == "127.0.0.1:7000"
    behind = rule.freshness(Copy(A, 1, NOW - 1), 3, NOW)
    assert (behind["state"], behind["versions_behind"], behind["proved_ago"]) == ("stale", 2, 1.0)


def test_a_holder_fetching_is_on_its_way_until_patience_runs_out() -> None:
    asked = Copy(A, 0, None, asked_at=NOW - 10)
    assert rule.on_its_way(asked, 1, NOW)
    assert not rule.on_its_way(asked, 1, NOW + rule.PENDING_PATIENCE)
    assert not rule.on_its_way(rule.proved(asked, 1, NOW), 1, NOW)  # arrived
    # A holder of v1 asked again for v2 is on its way to v2.
    renewed = rule.agreed(Copy(A, 1, NOW - 20), NOW - 5)
    assert rule.on_its_way(renewed, 2, NOW) and not rule.on_its_way(renewed, 1, NOW)
    assert not rule.on_its_way(rule.failed(asked, NOW - 1, "x"), 1, NOW)


def test_to_ask_fills_the_gap_least_loaded_first_and_skips_the_useless() -> None:
    copies = [Copy(A, 2, NOW - 1)]
    loads = {B: 0.5, C: 0.1, D: 0.9}
    assert rule.to_ask([A, B, C, D], copies, 2, 3, NOW, loads) == [C, B]
    # One refused lately: not asked again within the cooldown, then asked.
    refused = [*copies, Copy(C, 0, None, failed_at=NOW - 1, reason="quota")]
    assert rule.to_ask([A, B, C, D], refused, 2, 3, NOW, loads) == [B, D]
    later = NOW + rule.REFUSAL_COOLDOWN
    assert rule.to_ask([A, B, C, D], [Copy(A, 2, later - 1), *refused[1:]], 2, 3, later,
                       loads) == [C, B]
    # Enough copies: nobody.
    full = [Copy(h, 2, NOW - 1) for h in (A, B, C)]
    assert rule.to_ask([A, B, C, D], full, 2, 3, NOW) == []


def test_copies_on_their_way_are_not_asked_for_twice() -> None:
    copies = [Copy(A, 2, NOW - 1), Copy(B, 0, None, asked_at=NOW - 30)]
    assert rule.to_ask([A, B, C, D], copies, 2, 3, NOW, {C: 0.2, D: 0.1}) == [D]
    # Once its patience ran out, the slow one may be asked again like any other.
    late = NOW + rule.PENDING_PATIENCE
    assert rule.to_ask([B, C], [Copy(A, 2, late - 1), copies[1]], 2, 2, late) == [B]


def test_a_holder_behind_is_asked_before_a_stranger() -> None:
    copies = [Copy(A, 1, NOW - 1)]
    assert rule.to_ask([B, A], copies, 2, 1, NOW, {A: 0.9, B: 0.0}) == [A]


def test_to_challenge_covers_holders_and_claimants_but_rests_recent_failures() -> None:
    copies = [Copy(A, 2, NOW - 1), Copy(B, 0, None, failed_at=NOW - 1, reason="lied")]
    assert rule.to_challenge(copies, [C], 2, NOW) == [A, C]
    # A failed one that claims the version again is heard again (it may have recovered).
    assert rule.to_challenge(copies, [B], 2, NOW) == [A, B]
    assert rule.to_challenge(copies, [], 2, NOW + rule.REFUSAL_COOLDOWN) == [A, B]


def piece(size: int) -> tuple[bytes, tuple[int, bytes]]:
    data = os.urandom(size)
    return data, (size, hashlib.sha1(data).digest())


def test_a_proof_holds_the_pieces_bytes_exactly() -> None:
    (one, e1), (two, e2) = piece(1000), piece(700)
    assert rule.check_proof([e1, e2], one + two) is None
    assert "piece 2 of 2" in str(rule.check_proof([e1, e2], one + two[:-1] + b"\0"))
    assert "answered 1699 bytes" in str(rule.check_proof([e1, e2], one + two[:-1]))
    assert rule.check_proof([e1, e2], two + one) is not None  # right bytes, wrong order
    assert rule.check_proof([e1], b"") is not None


@given(st.binary(min_size=1, max_size=300), st.integers(0, 299), st.integers(1, 255))
def test_any_changed_byte_fails_the_proof(data: bytes, at: int, flip: int) -> None:
    at %= len(data)
    spoiled = bytearray(data)
    spoiled[at] ^= flip
    assert rule.check_proof([(len(data), hashlib.sha1(data).digest())], bytes(spoiled))


def test_challenges_are_distinct_pieces_in_range() -> None:
    rng = random.Random(4)
    for count in (1, 2, 3, 50, 10_000):
        drawn = rule.challenge(count, rng)
        assert len(drawn) == min(count, rule.PROOF_PIECES) == len(set(drawn))
        assert all(0 <= p < count for p in drawn) and drawn == sorted(drawn)
    # Drawn afresh each time: a holder that kept a few pieces cannot know which come next.
    assert len({tuple(rule.challenge(10_000)) for _ in range(20)}) > 15


def test_a_holder_reads_only_a_few_distinct_pieces_it_has() -> None:
    assert rule.valid_challenge([0, 5, 2], 6) == [0, 5, 2]
    for bad in ([], [6], [-1], [1, 1], [True], ["1"], "0", None,
                list(range(rule.MAX_ASKED_PIECES + 1))):
        assert rule.valid_challenge(bad, 100 if isinstance(bad, list) and len(bad) > 2
                                    else 6) is None, bad


def test_a_backup_short_of_copies_is_checked_soon() -> None:
    full = [Copy(h, 1, NOW - 1) for h in (A, B)]
    assert rule.next_check(full, 1, 2, NOW) == rule.CHECK_LATER
    assert rule.next_check(full[:1], 1, 2, NOW) == rule.CHECK_SOON
    coming = [*full, Copy(C, 0, None, asked_at=NOW - 1)]
    assert rule.next_check(coming, 1, 2, NOW) == rule.CHECK_SOON


def test_complete_holders_are_asked_again_before_their_lease_runs_out() -> None:
    copies = [rule.agreed(Copy(A, 1, NOW - 1), NOW - rule.RENEW_EVERY),
              rule.agreed(Copy(B, 1, NOW - 1), NOW - 10), Copy(C, 1, NOW - 1),
              Copy(D, 0, None, asked_at=NOW - rule.RENEW_EVERY)]
    assert rule.to_renew(copies, 1, NOW, [A, B, C, D]) == [A, C]
    assert rule.to_renew(copies, 1, NOW, [B]) == []  # A and C did not answer: not now


def test_holders_that_failed_long_ago_are_forgotten() -> None:
    old = NOW - rule.FORGET_AFTER - 1
    gone = Copy(A, 1, old - 50, failed_at=old, reason="unreachable")
    back = rule.agreed(gone, NOW - 5)  # it agreed again since: kept
    fresh = Copy(B, 0, None, failed_at=NOW - 1, reason="refused")
    assert rule.remembered([gone, back, fresh, Copy(C, 1, NOW - 1)], NOW) == [
        back, fresh, Copy(C, 1, NOW - 1)]


def test_kept_versions_are_the_newest() -> None:
    assert rule.keep_versions([3, 1, 2, 2, 5], 2) == [3, 5]
    assert rule.keep_versions([1], 0) == []
