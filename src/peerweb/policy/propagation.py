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
from collections.abc import Collection, Sequence

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


def holders_key(public_key: bytes, shard: int | None = None) -> bytes:
    """The 20-byte DHT key under which holders of a site announce their peer port: with a
    ``shard``, that shard's key, ``sha1(base + "#" + shard as 2 bytes big-endian)``.

    Distinct from any torrent's info-hash, so it never mixes site holders with a swarm."""
    base = hashlib.sha1(HOLDERS_KEY_PREFIX + public_key).digest()
    if shard is None:
        return base
    if not 0 <= shard < 2**16:
        raise ValueError(f"shard {shard} is not a 16-bit number")
    return hashlib.sha1(base + b"#" + shard.to_bytes(2, "big")).digest()


HOLDER_SHARDS = 8
"""Holders of a site announce under one of this many keys (``holders_key(pk, shard)``).
One key is a hot spot for a popular site: its 8 DHT nodes receive every holder's announce
and refresh and store at most ~500 holders each (``dht_max_peers``), so past ~4,000
holders most are stored nowhere and hear of new versions only by polling
(docs/simulator.md). 8 shards store ~8 times more holders and divide each key's announces
by 8; a site with more holders than ~8 x 400 needs more shards (not adaptive yet)."""


def holder_shard(rng: random.Random | None = None, shards: int = HOLDER_SHARDS) -> int:
    """The shard a holder announces a site under, drawn once per site and kept."""
    return (rng or random).randrange(shards)


def holder_refresh(own: int, rng: random.Random | None = None,
                   shards: int = HOLDER_SHARDS) -> list[int]:
    """The shards a holder looks up when it refreshes its list of other holders (at each
    announce): its own and one other at random, so that lists cross shards and a flood
    forwarded from them does too."""
    others = [s for s in range(shards) if s != own]
    return [own, (rng or random).choice(others)] if others else [own]


def holders_widen(found: int, tried: Collection[int], shards: int = HOLDER_SHARDS) -> list[int]:
    """The shards still to look up after ``tried`` named ``found`` holders: none if that is
    at least ``FANOUT``, else every other one (a small site's few holders are spread over
    the shards; one more round finds them all)."""
    if found >= FANOUT:
        return []
    return [s for s in range(shards) if s not in tried]


FORWARD_LIST_AGE = 15 * 60.0
"""How old a holder's own list of other holders (refreshed at each announce, every
``holder_announce_interval``) may be and still be forwarded to without a new lookup. A
stale entry costs one failed push; a lookup per forwarder cost most of a flood's messages
and its tail (docs/simulator.md)."""


VOLUNTEERS_KEY = hashlib.sha1(b"peerweb volunteers v1").digest()
"""The one key volunteers announced under before the key was sharded, and the base of the
shards' keys (``volunteer_key``). Origins still look it up when they widen, to find
volunteers of the previous version; volunteers no longer announce under it."""

VOLUNTEER_SHARDS = 16
"""Volunteers announce under one of this many keys. One key is a hot spot: the 8 DHT nodes
closest to it received every volunteer's announce and every origin's lookup, 415x the mean
node, and dropped most of them at libtorrent's 8000 B/s reply limit (docs/simulator.md,
V = 2,000). 16 shards cut the busiest node's load 8x with no drops, while an origin probing
``VOLUNTEER_PROBES`` of them still sees 1/8 of all volunteers (~250 of 2,000, far more than
it asks). A shard stores every announcer up to ~8 nodes x 500 peers (``dht_max_peers``),
~400 volunteers kept safely: 16 shards hold ~6,400 volunteers; raise it past that."""

VOLUNTEER_PROBES = 2
"""Shards an origin in need looks up at first, in parallel: two, so that one shard whose
nodes are slow or whose volunteers are all busy does not leave it empty-handed."""


def volunteer_key(shard: int) -> bytes:
    """The 20-byte DHT key of one volunteers shard, ``0 <= shard < VOLUNTEER_SHARDS``:
    ``sha1(VOLUNTEERS_KEY + "#" + shard as 2 bytes big-endian)``."""
    if not 0 <= shard < 2**16:
        raise ValueError(f"shard {shard} is not a 16-bit number")
    return hashlib.sha1(VOLUNTEERS_KEY + b"#" + shard.to_bytes(2, "big")).digest()


def volunteer_shard(rng: random.Random | None = None, shards: int = VOLUNTEER_SHARDS) -> int:
    """The shard a volunteer announces under, drawn once when it starts and then kept (a
    volunteer that hopped would be stored under several keys, and counted several times)."""
    return (rng or random).randrange(shards)


def volunteer_probes(rng: random.Random | None = None, shards: int = VOLUNTEER_SHARDS,
                     probes: int = VOLUNTEER_PROBES) -> list[int]:
    """The shards an origin in need looks up first: ``probes`` distinct ones at random, so
    origins spread over the shards as volunteers do."""
    return (rng or random).sample(range(shards), min(probes, shards))


def volunteer_widen(found: int, wanted: int, tried: Collection[int],
                    shards: int = VOLUNTEER_SHARDS) -> list[int]:
    """The shards still to look up after ``tried`` named ``found`` volunteers: none if that
    is at least ``wanted``, else all the others at once (one more round, not one per shard:
    a shard with nobody in it costs a whole lookup timeout, so few volunteers in a small
    network are found in two rounds, not sixteen)."""
    if found >= wanted:
        return []
    return [s for s in range(shards) if s not in tried]


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


PUSHED_HOLDERS = 40
"""Holders a push names at most, so that the receiver can forward without a DHT lookup: the
storm of every forwarding holder looking the same key up is most of a flood's cost
(docs/simulator.md). 40 IPv6 endpoints are ~2 KB of JSON beside a pointer under 1 KB,
within the peer port's 4 KB body; in the simulator 40 reached the last holders sooner
than 20 (t99 16 s against 33 s at H = 1,000)."""

LOOKUP_SHARE = 1 / 3
"""Share of forwarding holders that look the holders up even though the push named enough.

Without any lookup a flood reaches only the holders named in the lists that the first
lookup (the publisher's) started: lists pass on subsets of what they were given, so at most
FANOUT x (PUSHED_HOLDERS + 1) holders. A third of the forwarders looking up again brings
fresh holders in at every hop for a third of the lookups of before; a sixth left more
holders to their poll (t99 34 s against 16 s at H = 1,000, docs/simulator.md)."""


def must_look_up(usable: int, rng: random.Random | None = None,
                 share: float = LOOKUP_SHARE, warm: bool = False) -> bool:
    """Whether a holder forwarding a new version looks the holders key up first, when the
    push and its cache give it ``usable`` targets: always if fewer than ``FANOUT``; never
    if ``warm`` (its own list, refreshed at its last announce, is among them: every holder's
    list is its own sample of the DHT, so lists differ and reach everyone without more
    lookups); else with probability ``share``."""
    if usable < FANOUT:
        return True
    return not warm and (rng or random).random() < share


def holders_to_send(known: Sequence[Endpoint], target: Endpoint,
                    bound: int = PUSHED_HOLDERS,
                    rng: random.Random | None = None) -> list[Endpoint]:
    """Up to ``bound`` distinct holders of ``known`` to name in a push to ``target`` (not
    ``target`` itself), drawn at random so that the lists of one flood differ."""
    unique = [h for h in dict.fromkeys(known) if h != target and h[1] > 0]
    return (rng or random).sample(unique, min(bound, len(unique)))


def push_targets(holders: Sequence[Endpoint], me: Endpoint, exclude: Sequence[Endpoint] = (),
                 fanout: int = FANOUT, rng: random.Random | None = None) -> list[Endpoint]:
    """Up to ``fanout`` distinct holders to push to, never ourselves nor the sender."""
    skip = {me, *exclude}
    unique = [h for h in dict.fromkeys(holders) if h not in skip and h[1] > 0]
    return (rng or random).sample(unique, min(fanout, len(unique)))


PUBLISH_WAVE = 20
"""Holders the publisher pushes a new version to itself, each with a share of the others.

A push is ~1 KB of pointer and up to ~2 KB of share, and the publisher's uplink is idle when
it publishes: a wide first wave puts every holder of a small site one hop from the
publisher (20 holders: one hop, news at ~0.1 s), and a large one two hops
(PUBLISH_WAVE x (PUSHED_HOLDERS + 1) = 820 holders), where a FANOUT-wide first wave took
three or four."""


Push = tuple[Endpoint, list[Endpoint]]
"""A push to plan: its target, and the share of holders that target is to forward to."""


def plan_pushes(known: Sequence[Endpoint], me: Endpoint, exclude: Sequence[Endpoint] = (),
                fanout: int = FANOUT, bound: int = PUSHED_HOLDERS,
                rng: random.Random | None = None) -> list[Push]:
    """Up to ``fanout`` targets among ``known`` (never ``me`` nor ``exclude``), each handed a
    share of the other holders to forward to, the shares disjoint and as even as can be.

    Each receiver plans its share the same way, so every holder of ``known`` is pushed to
    exactly once while pushes arrive. Drawing targets at random from one list instead (each
    forwarder ``push_targets`` from what it was named) left holders nobody drew: one of 20
    waited a minute for its poll in one round of three (bench/update_propagation.py). A
    share holds at most ``bound`` holders (what a push may name); holders past
    ``fanout x (bound + 1)`` are left to the receivers' own lookups (``looks_further``)."""
    skip = {me, *exclude}
    unique = [h for h in dict.fromkeys(known) if h not in skip and h[1] > 0]
    (rng or random).shuffle(unique)
    targets, rest = unique[:fanout], unique[fanout:]
    return [(target, rest[i::len(targets)][:bound]) for i, target in enumerate(targets)]


def looks_further(rng: random.Random | None = None, share: float = LOOKUP_SHARE) -> bool:
    """Whether a holder handed a share also looks the holders up, once its share is pushed.

    A plan covers only the holders the publisher's lookup found, a few hundred of a large
    site's at most: a ``share`` of the receivers looking up, as forwarders did before plans
    (``must_look_up``), brings the others in (``plan_pushes`` of those not yet planned)."""
    return (rng or random).random() < share
