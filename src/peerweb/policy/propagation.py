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
"""The fewest keys holders of a site announce under (``holders_key(pk, shard)``), and the
count of nodes before the count grew with the site: shards ``0..7`` are in every node's
range, so old nodes and new ones find each other there. One key is a hot spot for a
popular site: its 8 DHT nodes receive every holder's announce and refresh and store at
most ~500 holders each (``dht_max_peers``), so past ~4,000 holders most are stored nowhere
and hear of new versions only by polling (docs/simulator.md)."""

MAX_HOLDER_SHARDS = 1024
"""The most holders keys a site's count grows to (``holder_shards``): ~10^5 holders at
``SHARD_GROW_AT`` each; a lookup that widens looks at a bounded sample of them."""

SHARD_GROW_AT = 150
"""Holders found per shard looked up at which a holder doubles its site's shard count. A
lookup gathers the replies of the first few of a key's 8 nodes (``dht_max_peers_reply`` =
100 each, a grace after the first), so it names at most a few hundred of a shard's up to
500 stored: a count found near that means the shard is full or nearly so. 150 keeps every
shard well under what its nodes store (the simulator's flood stored every holder at 10^4
and 10^5 holders, docs/simulator.md)."""

SHARD_SHRINK_AT = 40
"""Holders found per shard below which the count halves (never under ``HOLDER_SHARDS``):
under half of ``SHARD_GROW_AT``, so that a count just doubled does not halve again."""


def holder_shards(found: Sequence[int], current: int = HOLDER_SHARDS) -> int:
    """The site's shard count after a lookup whose shards named ``found`` holders each:
    doubled if even the emptiest looks full (``SHARD_GROW_AT``), halved if even the fullest
    looks sparse (``SHARD_SHRINK_AT``), else kept; within ``HOLDER_SHARDS..MAX_HOLDER_SHARDS``.
    The emptiest, not the mean: a holder's own shard among the first 8 also holds, until
    they expire, the announces of holders that moved out as the count grew, and read alone
    it drove the counts of the holders in it up 4x past the others' (docs/simulator.md).

    Every holder derives the count from what it sees, so no signed field or coordination is
    needed, and a node that never changes it (8, the count before) still looks up shards
    every holder may announce under. One step per lookup, so that one odd answer moves it
    only by 2x: a site of H holders settles at ~H/150 shards after log2 of that refreshes."""
    if not found:
        return current
    if min(found) >= SHARD_GROW_AT:
        return min(current * 2, MAX_HOLDER_SHARDS)
    if max(found) < SHARD_SHRINK_AT:
        return max(current // 2, HOLDER_SHARDS)
    return max(HOLDER_SHARDS, min(current, MAX_HOLDER_SHARDS))


def reshard(own: int, old: int, new: int, rng: random.Random | None = None) -> int:
    """A holder's shard once its site's count goes from ``old`` to ``new``: growing, one of
    the ``new / old`` shards congruent to ``own`` at random (holders stay spread evenly and
    half of them keep their key when the count doubles); shrinking, ``own % new``."""
    if new > old:
        return own + old * (rng or random).randrange(max(1, new // old))
    return own % new


def holder_estimate(found: Sequence[int], shards: int) -> int:
    """Holders of the site as one lookup suggests (``found``: holders each shard named):
    the emptiest shard's count times the shard count (a low bound once shards are full)."""
    return min(found, default=0) * shards


def holder_shard(rng: random.Random | None = None, shards: int = HOLDER_SHARDS) -> int:
    """The shard a holder announces a site under, drawn once per site and kept (moved only
    by ``reshard``)."""
    return (rng or random).randrange(shards)


def holder_refresh(own: int, rng: random.Random | None = None,
                   shards: int = HOLDER_SHARDS, ahead: bool = False) -> list[int]:
    """The shards a holder looks up when it refreshes its list of other holders (at each
    announce): its own and one other at random, so that lists cross shards and a flood
    forwarded from them does too. ``ahead`` (the site looks near its next doubling,
    ``looks_full``): one more among the next ``shards``, where the holders that already
    reckon twice as many announce half of themselves, which no list would name otherwise
    (docs/simulator.md). Not for a small site: an empty third shard would not cost time,
    but two empty ones would, and a small site's first two are often empty."""
    if shards <= 1:
        return [own]
    r = rng or random
    other = r.randrange(shards - 1)
    tried = [own, other if other < own else other + 1]
    if ahead and 2 * shards <= MAX_HOLDER_SHARDS:
        tried.append(shards + r.randrange(shards))
    return tried


def looks_full(estimate: int, shards: int) -> bool:
    """Whether a site of ``estimate`` holders (``holder_estimate``) is near the size at
    which holders double ``shards``: half of ``SHARD_GROW_AT`` per shard."""
    return 2 * estimate >= shards * SHARD_GROW_AT


def counted_shards(tried: Sequence[int], found: Sequence[int], shards: int) -> list[int]:
    """Of the holders each ``tried`` shard named (``found``), those of the shards within
    the count: the ones above it are filled by the holders that reckon more, not a gauge."""
    return [n for s, n in zip(tried, found, strict=True) if s < shards]


WIDEN_SAMPLE = 8
"""Shards past ``HOLDER_SHARDS`` that a short lookup widens to, drawn at random."""


def holders_widen(found: int, tried: Collection[int], shards: int = HOLDER_SHARDS,
                  rng: random.Random | None = None) -> list[int]:
    """The shards still to look up after ``tried`` named ``found`` holders: none if that is
    at least ``FANOUT``, else every other one of the first ``HOLDER_SHARDS`` (where every
    node's holders may be, old or new) and ``WIDEN_SAMPLE`` of the rest (a small site's
    few holders are spread over the shards; one more round finds them)."""
    if found >= FANOUT:
        return []
    first = [s for s in range(min(shards, HOLDER_SHARDS)) if s not in tried]
    rest = [s for s in range(HOLDER_SHARDS, shards) if s not in tried]
    return first + sorted((rng or random).sample(rest, min(WIDEN_SAMPLE, len(rest))))


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


POLL_BUDGET = 2.0
"""BEP 44 gets a second that all the holders of one site together may send the pointer's
key by polling. Every holder polling every minute sent H/60 a second to the same ~8 DHT
nodes: at 10^5 holders 1,667/s, dropped by the thousand at libtorrent's 8000 B/s of
replies (docs/simulator.md). Pushes reach a large site's holders within seconds, so the
poll is only the net for the few they miss; 2 a second costs each of those nodes ~1 KB/s."""

POLL_LONGEST = 6 * 3600.0
"""The longest a holder's poll of a large site is stretched to (``poll_interval``)."""


def poll_interval(idle_seconds: float, rng: random.Random | None = None,
                  holders: int = 0) -> float:
    """Seconds until the next DHT check of a site last used ``idle_seconds`` ago, that
    this node believes ``holders`` nodes hold (``holder_estimate``; 0: unknown).

    By use: ``POLL_ACTIVE`` to ``POLL_IDLE``; stretched to ``holders / POLL_BUDGET`` (at
    most ``POLL_LONGEST``) so that a site's holders together poll ``POLL_BUDGET`` times a
    second whatever their number. Jittered by +-10% so that many nodes watching one site
    do not query in lockstep."""
    if idle_seconds < ACTIVE_WINDOW:
        base = POLL_ACTIVE
    elif idle_seconds < RECENT_WINDOW:
        base = POLL_RECENT
    else:
        base = POLL_IDLE
    base = max(base, min(holders / POLL_BUDGET, POLL_LONGEST))
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
