"""How news of a new version spreads: pure policy, no I/O.

Nodes that hold a site announce themselves in the DHT under a key derived from the site's
public key (``holders_key``), on their peer port. A node that accepts a newer signed pointer
pushes it to a few of those holders; each of them accepts it only if it is newer than what it
has, and only then forwards it, so every holder forwards each version at most once and the
news floods the holders in a few hops. Polling the DHT (``poll_interval``) is the safety net
for pushes that were lost, at a pace set by how recently the site was used.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

HOLDERS_KEY_PREFIX = b"peerweb holders v1:"
# How many holders a node pushes a new pointer to. With each holder forwarding once, n
# holders hear of a version in about log_FANOUT(n) hops.
FANOUT = 6
# Poll intervals (seconds) by how long ago the site was last visited here.
POLL_ACTIVE = 60.0
POLL_RECENT = 10 * 60.0
POLL_IDLE = 60 * 60.0
ACTIVE_WINDOW = 10 * 60.0
RECENT_WINDOW = 24 * 3600.0

Endpoint = tuple[str, int]


def holders_key(public_key: bytes) -> bytes:
    """The 20-byte DHT key under which holders of a site announce their peer port.

    Distinct from any torrent's info-hash, so it never mixes site holders with a swarm."""
    return hashlib.sha1(HOLDERS_KEY_PREFIX + public_key).digest()


VOLUNTEERS_KEY = hashlib.sha1(b"peerweb volunteers v1").digest()
"""Where volunteer mirrors announce their peer port, for origins in need to find them."""


def poll_interval(idle_seconds: float, rng: random.Random | None = None) -> float:
    """Seconds until the next DHT check of a site last used ``idle_seconds`` ago.

    Jittered by +-10% so that many nodes watching one site do not query in lockstep."""
    if idle_seconds < ACTIVE_WINDOW:
        base = POLL_ACTIVE
    elif idle_seconds < RECENT_WINDOW:
        base = POLL_RECENT
    else:
        base = POLL_IDLE
    return base * (rng or random).uniform(0.9, 1.1)


def push_targets(holders: Sequence[Endpoint], me: Endpoint, exclude: Sequence[Endpoint] = (),
                 fanout: int = FANOUT, rng: random.Random | None = None) -> list[Endpoint]:
    """Up to ``fanout`` distinct holders to push to, never ourselves nor the sender."""
    skip = {me, *exclude}
    unique = [h for h in dict.fromkeys(holders) if h not in skip and h[1] > 0]
    return (rng or random).sample(unique, min(fanout, len(unique)))
