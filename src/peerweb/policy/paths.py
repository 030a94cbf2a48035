"""Watching a path in use, and choosing a detour when it fails (RON-style, one hop).

``PathWatch`` is the failure detector of one transfer: a connection that is not up within
``connect_timeout``, or one that carries nothing for ``stall_after`` while bytes are still
owed, has failed; a reset fails it at once. ``PathBook`` remembers, per destination, when
the direct path last failed (it is tried again after a doubling back-off) and which relays
reached it recently (they are tried first), so probing stays cheap: no relay is probed
unless a transfer needs it, and at most ``DETOUR_TRIES`` are tried per failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

CONNECT_TIMEOUT = 2.0
"""A TCP handshake on the open internet takes well under a second; twice that means the
SYN or its answer is being dropped (a blackholed path)."""
STALL_AFTER = 2.0
"""A flowing transfer that goes this long without a byte has stalled (a TCP retransmission
timeout alone is at least 1 s, so a shorter stall would fire on one lost packet)."""
DETOUR_TRIES = 3
DIRECT_RETRY_FIRST = 30.0
DIRECT_RETRY_MAX = 600.0
REMEMBER = 600.0
"""A relay that reached a destination is preferred for it this long."""

Endpoint = tuple[str, int]


@dataclass
class PathWatch:
    """The failure detector of one transfer on one path."""

    started: float
    connect_timeout: float = CONNECT_TIMEOUT
    stall_after: float = STALL_AFTER
    connected: float | None = None
    last_progress: float | None = None
    received: int = 0
    error: str | None = None

    def on_connected(self, now: float) -> None:
        self.connected = now
        self.last_progress = now

    def on_bytes(self, count: int, now: float) -> None:
        self.received += count
        self.last_progress = now

    def on_error(self, reason: str) -> None:
        self.error = reason

    def verdict(self, now: float) -> str | None:
        """Why the path has failed, or None while it works."""
        if self.error is not None:
            return self.error
        if self.connected is None:
            if now - self.started >= self.connect_timeout:
                return f"no connection after {self.connect_timeout:.1f} s"
            return None
        assert self.last_progress is not None
        if now - self.last_progress >= self.stall_after:
            return f"stalled: nothing for {self.stall_after:.1f} s"
        return None

    def deadline(self, now: float) -> float:
        """When ``verdict`` could next change (for the caller's timer)."""
        if self.connected is None:
            return self.started + self.connect_timeout
        assert self.last_progress is not None
        return self.last_progress + self.stall_after


@dataclass
class _Memory:
    direct_failed: float | None = None
    backoff: float = DIRECT_RETRY_FIRST
    reached_by: dict[Endpoint, float] = field(default_factory=dict)
    failed_by: dict[Endpoint, float] = field(default_factory=dict)


@dataclass
class PathBook:
    """Per destination: direct path health and the relays that reached it."""

    memory: dict[Endpoint, _Memory] = field(default_factory=dict)

    def _of(self, destination: Endpoint) -> _Memory:
        return self.memory.setdefault(destination, _Memory())

    def direct_failed(self, destination: Endpoint, now: float) -> None:
        m = self._of(destination)
        if m.direct_failed is not None:
            m.backoff = min(m.backoff * 2, DIRECT_RETRY_MAX)
        m.direct_failed = now

    def direct_worked(self, destination: Endpoint) -> None:
        m = self._of(destination)
        m.direct_failed, m.backoff = None, DIRECT_RETRY_FIRST

    def try_direct(self, destination: Endpoint, now: float) -> bool:
        """Whether the direct path is worth trying now (never failed, or its back-off is
        over: a failed path is tried again later)."""
        m = self.memory.get(destination)
        return m is None or m.direct_failed is None or now - m.direct_failed >= m.backoff

    def relay_worked(self, destination: Endpoint, relay: Endpoint, now: float) -> None:
        m = self._of(destination)
        m.reached_by[relay] = now
        m.failed_by.pop(relay, None)

    def relay_failed(self, destination: Endpoint, relay: Endpoint, now: float) -> None:
        m = self._of(destination)
        m.failed_by[relay] = now
        m.reached_by.pop(relay, None)

    def detours(self, destination: Endpoint, relays: Sequence[Endpoint], now: float,
                tries: int = DETOUR_TRIES) -> list[Endpoint]:
        """The relays to try, in order: those that reached the destination recently, then
        those never tried for it, then those that failed longest ago; never the destination
        itself; at most ``tries``."""
        m = self.memory.get(destination) or _Memory()

        def rank(relay: Endpoint) -> tuple[int, float]:
            reached = m.reached_by.get(relay)
            if reached is not None and now - reached <= REMEMBER:
                return (0, -reached)
            failed = m.failed_by.get(relay)
            return (1, 0.0) if failed is None else (2, failed)

        candidates = [r for r in dict.fromkeys(relays) if r[0] != destination[0]]
        return sorted(candidates, key=rank)[:tries]


SWARM_RELAY_RETRY = 30.0
"""A swarm peer reached through a relay is not relayed again for this long (libtorrent
keeps the connection; a failed one is not retried at once)."""


def swarm_detours(peers: Sequence[Endpoint], connected: int, tried: dict[Endpoint, float],
                  own: Sequence[str], now: float, limit: int = 4,
                  retry: float = SWARM_RELAY_RETRY) -> list[Endpoint]:
    """The peers of a torrent to reach through a relay now: only while libtorrent has no
    connected peer of its own (a direct or punched connection is always preferred), never
    this node's own addresses, none tried within ``retry``; at most ``limit``."""
    if connected:
        return []
    mine = set(own)
    due = [p for p in dict.fromkeys(peers)
           if p[0] not in mine and now - tried.get(p, -retry) >= retry]
    return due[:limit]
