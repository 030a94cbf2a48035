"""The failure detector and the detour choice (peerweb.policy.paths)."""

from __future__ import annotations

from peerweb.policy.paths import DIRECT_RETRY_FIRST, PathBook, PathWatch, swarm_detours

DEST = ("198.18.1.10", 8080)
R1, R2, R3, R4 = (("198.18.2.10", 9000), ("198.18.2.11", 9000), ("198.18.2.12", 9000),
                  ("198.18.1.10", 9000))


def test_no_connection_in_time_fails() -> None:
    w = PathWatch(started=10.0, connect_timeout=2.0)
    assert w.verdict(11.9) is None
    assert w.deadline(10.0) == 12.0
    assert "no connection" in (w.verdict(12.0) or "")


def test_a_stall_fails_and_progress_keeps_it_alive() -> None:
    w = PathWatch(started=0.0, stall_after=2.0)
    w.on_connected(0.5)
    w.on_bytes(100, 2.0)
    assert w.verdict(3.9) is None
    assert w.deadline(3.0) == 4.0
    assert "stalled" in (w.verdict(4.0) or "")
    assert w.received == 100


def test_an_error_fails_at_once() -> None:
    w = PathWatch(started=0.0)
    w.on_connected(0.1)
    w.on_error("connection reset")
    assert w.verdict(0.2) == "connection reset"


def test_a_failed_direct_path_is_retried_later_with_doubling_backoff() -> None:
    book = PathBook()
    assert book.try_direct(DEST, 0.0)
    book.direct_failed(DEST, 0.0)
    assert not book.try_direct(DEST, DIRECT_RETRY_FIRST - 1)
    assert book.try_direct(DEST, DIRECT_RETRY_FIRST)
    book.direct_failed(DEST, 100.0)
    assert not book.try_direct(DEST, 100.0 + DIRECT_RETRY_FIRST)
    assert book.try_direct(DEST, 100.0 + 2 * DIRECT_RETRY_FIRST)
    book.direct_worked(DEST)
    assert book.try_direct(DEST, 101.0)


def test_detours_prefer_recent_success_then_untried_then_oldest_failure() -> None:
    book = PathBook()
    assert book.detours(DEST, [R1, R2, R3, R4], 0.0) == [R1, R2, R3]  # never the destination
    book.relay_failed(DEST, R1, 5.0)
    book.relay_failed(DEST, R2, 1.0)
    book.relay_worked(DEST, R3, 2.0)
    assert book.detours(DEST, [R1, R2, R3], 6.0) == [R3, R2, R1]
    assert book.detours(DEST, [R1, R2, R3], 6.0, tries=1) == [R3]
    # A success long ago is no longer preferred.
    # (R3 now ranks with the untried, still ahead of R1, which failed.)
    assert book.detours(DEST, [R1, R3], 10_000.0) == [R3, R1]


def test_swarm_peers_are_relayed_only_while_none_is_connected() -> None:
    peers = [("198.18.0.12", 6881), ("198.18.0.13", 6881), ("198.18.1.10", 6881),
             ("198.18.0.12", 6881)]
    assert swarm_detours(peers, 1, {}, [], 0.0) == []
    assert swarm_detours(peers, 0, {}, ["198.18.1.10"], 0.0) == peers[:2]
    tried = {peers[0]: 10.0}
    assert swarm_detours(peers, 0, tried, [], 20.0, retry=30.0) == peers[1:3]
    assert swarm_detours(peers, 0, tried, [], 40.0, retry=30.0, limit=1) == peers[:1]
