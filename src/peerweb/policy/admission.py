"""What a node lets in from strangers on its peer port: pure policy, no I/O.

The peer port faces the network, so every push and every request for help is someone
else's idea. A node keeps an unsolicited pointer only for a site it knows or asked about a
moment ago (``store_unsolicited``): otherwise anyone with fresh keys could fill its state and
its home page with junk sites. Each source address gets a token bucket (``TokenBucket``), so
one address cannot keep the node busy verifying signatures; a legitimate holder pushes each
new version of a site once, far below the rate.

Times are seconds on one clock the caller chooses, passed in as ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Pushes per second an address may make once its burst is spent, and the burst. A holder
# forwards each new version of a site once: a node holding a hundred sites updated at the
# same moment spends its burst and then waits a few seconds at most.
PUSH_RATE = 2.0
PUSH_BURST = 30.0
# Requests for help (``POST /peerweb/v1/help``) per address: an origin in need asks once per
# site per hand-off check, so a few a minute is plenty.
HELP_RATE = 0.2
HELP_BURST = 5.0
# Addresses a bucket table remembers; past this many the ones that have been idle long
# enough to be full again are forgotten (forgetting them changes nothing), then the oldest.
MAX_TRACKED = 4096
# An unsolicited pointer for a site this node looked up this recently is kept: the answer
# to its own question may come as a push from a holder while the lookup runs.
ASKED_WINDOW = 60.0


def store_unsolicited(known: bool, asked_at: float | None, now: float,
                      window: float = ASKED_WINDOW) -> bool:
    """Whether to keep a pushed pointer (already verified, and newer than any held).

    ``known``: the node has a record of the site. ``asked_at``: when the node last looked the
    site up itself (None: never, or not that it remembers)."""
    if known:
        return True
    return asked_at is not None and 0.0 <= now - asked_at <= window


@dataclass
class TokenBucket:
    """One token bucket per key (a source address): ``take`` spends a token if there is one.

    Each key starts with ``burst`` tokens and regains ``rate`` per second, up to ``burst``."""

    rate: float
    """Tokens regained per second."""
    burst: float
    """The most tokens a key can hold (and what a new key starts with)."""
    max_keys: int = MAX_TRACKED
    """Keys remembered at most (see ``MAX_TRACKED``)."""
    _tokens: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Per key: tokens left and when they were counted."""

    def level(self, key: str, now: float) -> float:
        """Tokens ``key`` holds at ``now``."""
        tokens, at = self._tokens.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - at) * self.rate)

    def take(self, key: str, now: float) -> bool:
        """Spend one of ``key``'s tokens at ``now``; False (nothing spent) when it has none."""
        tokens = self.level(key, now)
        if tokens < 1.0:
            self._tokens[key] = (tokens, now)
            return False
        self._tokens.pop(key, None)  # re-inserted last: the table stays oldest first
        self._tokens[key] = (tokens - 1.0, now)
        if len(self._tokens) > self.max_keys:
            self._forget(now)
        return True

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token again (0 if it has one now)."""
        missing = 1.0 - self.level(key, now)
        return max(0.0, missing / self.rate) if self.rate > 0 else float("inf")

    def __len__(self) -> int:
        return len(self._tokens)

    def _forget(self, now: float) -> None:
        for key in [k for k in self._tokens if self.level(k, now) >= self.burst]:
            del self._tokens[key]
        while len(self._tokens) > self.max_keys:
            del self._tokens[next(iter(self._tokens))]
