"""The resolver's decisions, without I/O: freshness, serve-stale, agreement, rate limits.

Plain values and ``now`` (seconds, the wall clock: signatures are dated in it) in, plain
values out; tested without sockets.

Serve-stale follows RFC 8767: an answer past its TTL may be served when the upstreams fail,
with a short TTL (section 4: 30 s), for at most a bounded time (section 5 suggests 1 to 3
days). A signed answer is served only within its signatures' validity window, from this
node's cache or a peer's proof; an unsigned one only from this node's own cache, or, when
the user opted in, when several independent peers (distinct addresses) hand the same records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

# RFC 8767 section 4: the TTL of a stale answer.
STALE_TTL = 30
# RFC 8767 section 5: how long past its TTL an unsigned answer may be served (3 days).
MAX_STALE = 3 * 24 * 3600
# TTLs from upstream are clamped to this (RFC 8767 section 4 recommends 7 days at most), and
# to at least MIN_TTL so a 0-TTL answer does not send every query upstream twice at once.
MAX_TTL = 7 * 24 * 3600
MIN_TTL = 1
# RFC 2308 section 5: one to three hours "work well" for negative answers; past a day,
# problems. A negative answer is kept at most this long, whatever its SOA says.
MAX_NEGATIVE_TTL = 3 * 3600


@dataclass(frozen=True)
class Copy:
    """One candidate answer for a name and type."""

    records: frozenset[str]
    """The records, as canonical text (to compare copies)."""
    ttl_expires: float
    """When its TTL runs out (when it was fetched + TTL)."""
    signed: bool
    valid_from: float = 0.0
    valid_until: float = float("inf")
    """The proof's signature window (unsigned: 0 .. infinity)."""
    source: str = "self"
    """'self' (fetched from upstream by this node) or the peer's address."""


def fresh(copy: Copy | None, now: float) -> bool:
    """Whether ``copy`` answers without asking upstream: within its TTL and, if signed,
    within its signatures' window."""
    return copy is not None and now < copy.ttl_expires and within_signatures(copy, now)


def within_signatures(copy: Copy, now: float) -> bool:
    return copy.valid_from <= now <= copy.valid_until


def clamp_ttl(ttl: int) -> int:
    return max(MIN_TTL, min(MAX_TTL, ttl))


def negative_ttl(soa_ttl: int | None, soa_minimum: int | None) -> int | None:
    """How long an NXDOMAIN or no-data answer is cached: the lesser of its SOA's TTL and
    MINIMUM field (RFC 2308 section 5), clamped; None (not cached) without an SOA, since
    then nothing bounds it (RFC 2308 section 5 again)."""
    if soa_ttl is None or soa_minimum is None:
        return None
    return max(MIN_TTL, min(soa_ttl, soa_minimum, MAX_NEGATIVE_TTL))


def answer_ttl(copy: Copy, now: float, stale: bool) -> int:
    """The TTL to send: what is left of it, never past the signatures' window; STALE_TTL for
    a stale answer (capped the same way)."""
    left = STALE_TTL if stale else max(0, int(copy.ttl_expires - now))
    if copy.valid_until != float("inf"):
        left = min(left, max(0, int(copy.valid_until - now)))
    return left


class Stale(Enum):
    """Where a stale answer came from."""

    OWN = "own cache"
    PEERS_SIGNED = "a peer's validated proof"
    PEERS_AGREED = "independent peers that agree"


@dataclass(frozen=True)
class StaleChoice:
    copy: Copy | None
    """The copy to serve, None when nothing may be served (SERVFAIL)."""
    source: Stale | None
    reason: str
    """Why (logged)."""


def choose_stale(own: Copy | None, peers: Sequence[Copy], now: float,
                 quorum: int = 0) -> StaleChoice:
    """What to serve once the upstreams failed (RFC 8767): this node's copy first, then a
    peer's validated (signed) copy within its window, then, with ``quorum`` >= 2, unsigned
    copies that at least ``quorum`` distinct peers hand identically."""
    if own is not None:
        if own.signed and within_signatures(own, now):
            return StaleChoice(own, Stale.OWN, "signed, within its signatures' validity")
        if not own.signed and now - own.ttl_expires <= MAX_STALE:
            return StaleChoice(own, Stale.OWN, "unsigned, from this node's own cache")
    signed = [p for p in peers if p.signed and within_signatures(p, now)]
    if signed:
        best = max(signed, key=lambda p: (p.valid_until, p.ttl_expires))
        return StaleChoice(best, Stale.PEERS_SIGNED, f"validated proof from {best.source}")
    if quorum >= 2:
        agreed = agreement([p for p in peers if not p.signed], quorum)
        if agreed is not None:
            return StaleChoice(agreed, Stale.PEERS_AGREED,
                               f"{quorum} or more independent peers agree")
    why = ("its signatures expired" if own is not None and own.signed
           else "no copy may be served")
    return StaleChoice(None, None, why)


def agreement(copies: Sequence[Copy], quorum: int) -> Copy | None:
    """A copy that at least ``quorum`` distinct sources hand with identical records (the
    most widely held; None if none reaches the quorum). One source counts once, whatever
    it sends."""
    by_records: dict[frozenset[str], dict[str, Copy]] = {}
    for copy in copies:
        by_records.setdefault(copy.records, {}).setdefault(copy.source, copy)
    best = max(by_records.values(), key=len, default={})
    if quorum < 1 or len(best) < quorum:
        return None
    return min(best.values(), key=lambda c: c.ttl_expires)


# After an upstream timed out or refused, it is not asked again for this long: queries in
# the meantime go straight to stale answers instead of each waiting out a timeout (RFC 8767
# section 5's "failure recheck", per upstream rather than per name).
UPSTREAM_RECHECK = 5.0


@dataclass
class UpstreamHealth:
    """Which upstreams to ask now."""

    recheck: float = UPSTREAM_RECHECK
    _down_until: dict[str, float] = field(default_factory=dict)

    def usable(self, upstream: str, now: float) -> bool:
        return self._down_until.get(upstream, 0.0) <= now

    def failed(self, upstream: str, now: float) -> None:
        self._down_until[upstream] = now + self.recheck

    def answered(self, upstream: str) -> None:
        self._down_until.pop(upstream, None)


@dataclass
class RateLimiter:
    """Token buckets per source address: ``rate`` queries a second, bursts of ``burst``.
    Sources beyond ``max_sources`` evict the longest idle one (a spoofed-address flood
    cannot grow the table)."""

    rate: float
    burst: float
    max_sources: int = 10_000
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)
    """source -> (tokens, when last updated)."""

    def admit(self, source: str, now: float) -> bool:
        tokens, then = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - then) * self.rate)
        admitted = tokens >= 1.0
        if admitted:
            tokens -= 1.0
        self._buckets[source] = (tokens, now)  # re-inserted: the dict's order is by use
        while len(self._buckets) > self.max_sources:
            del self._buckets[next(iter(self._buckets))]
        return admitted
