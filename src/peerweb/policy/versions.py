"""Which pointer a node holds for a site, and which version number it publishes next: pure
policy, no I/O.

A node never goes back a version (a replayed older pointer is ignored). Between two pointers
of the same version the newer signature wins (``content.pointer.is_newer``); ``force`` also
lets a node replace its pointer with another signature of the same version and bytes, as when
the DHT signs our own pointer again with its sequence number.

A publisher signs one past the highest version it ever signed. It may have lost its state
(a wiped data dir, a key moved to another machine), and a holder ignores a version it has
already seen, silently and for ever, so the publisher asks every place that may remember
(``plan_version``): its state, the counter kept beside the key, the DHT and the holders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..content.pointer import Pointer, is_newer

# Where a publisher learns the highest version signed, in the order a tie is reported: the
# sources nearest to hand first.
VERSION_SOURCES = ("state", "key", "dht", "holders")
NO_SOURCE = "none"
"""``VersionPlan.version_from`` of a site's first version: nobody knew of an earlier one."""


def pointer_update(current: Pointer | None, candidate: Pointer, force: bool = False) -> bool:
    """Whether to replace ``current`` (None: the site is new here) with ``candidate``."""
    newer = is_newer(candidate, current)
    if force and current is not None and candidate.version == current.version:
        return candidate.infohash == current.infohash or newer
    return newer


@dataclass(frozen=True)
class VersionPlan:
    """The version a publish signs, and why."""

    version: int
    unchanged: bool
    """The bytes (and trackers and web seeds) are those of the highest version known: that
    version is announced again rather than a new one signed."""
    highest: int
    """The highest version any source knew of (0: none)."""
    version_from: str
    """Which source knew of ``highest`` (one of ``VERSION_SOURCES``, or ``NO_SOURCE``)."""


def plan_version(known: Mapping[str, int], newest_version: int, newest_same_bytes: bool,
                 ) -> VersionPlan:
    """The version to sign, from the highest version each source knows (``known``: source
    name -> version, 0 or absent when it knows none).

    ``newest_version`` is the version of the newest pointer seen (held, from the DHT or from
    a holder) and ``newest_same_bytes`` whether its bytes equal the folder's. Only when that
    pointer is also the highest version any source knows is it the same version: a counter
    beside the key above every pointer seen means that version was signed (for bytes nobody
    has seen), so the same bytes need a version past it."""
    highest = max((v for v in known.values() if v > 0), default=0)
    source = next((s for s in VERSION_SOURCES if known.get(s, 0) == highest), NO_SOURCE)
    if highest == 0:
        source = NO_SOURCE
    unchanged = newest_same_bytes and newest_version == highest and highest > 0
    version = highest if unchanged else highest + 1
    return VersionPlan(version, unchanged, highest, source)


def put_needed(unchanged: bool, dht_has_it: bool) -> bool:
    """Whether a publish puts its pointer in the DHT now: always for a new version, and for
    an unchanged one unless the DHT answered with that very pointer (the re-put loop renews it
    before it expires). Waiting on a put costs seconds when the routing table holds nodes
    that went away."""
    return not (unchanged and dht_has_it)


def holders_worth_waiting(held: Pointer | None, dht: Pointer | None) -> bool:
    """Whether a publisher that has the DHT's answer (``dht``, None: it had none) still
    waits for the holders' answer before signing, holding ``held`` itself.

    The holders are asked in case the DHT item expired or the state here was lost: then
    they may remember a version the DHT does not. When this node holds a pointer and the
    DHT answered with that very one or an older one, the DHT item is alive and nobody has
    signed past it, so the holders' lookup (seconds when a shard is empty or a holder went
    away) would only delay the publish: an unchanged republish waited 5 s on a departed
    node (tests/integration/test_publish.py). A DHT answer newer than ``held`` means a
    version was signed elsewhere: the holders may know a newer one still."""
    if held is None or dht is None:
        return True
    return is_newer(dht, held)
