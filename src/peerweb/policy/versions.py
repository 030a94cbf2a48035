"""Which pointer a node holds for a site, and which version number it publishes next: pure
policy, no I/O.

A node never goes back a version (a replayed older pointer is ignored). Between two pointers
of the same version the newer signature wins (``content.pointer.is_newer``); ``force`` also
lets a node replace its pointer with another signature of the same version and bytes, as when
the DHT signs our own pointer again with its sequence number.
"""

from __future__ import annotations

from ..content.pointer import Pointer, is_newer


def pointer_update(current: Pointer | None, candidate: Pointer, force: bool = False) -> bool:
    """Whether to replace ``current`` (None: the site is new here) with ``candidate``."""
    newer = is_newer(candidate, current)
    if force and current is not None and candidate.version == current.version:
        return candidate.infohash == current.infohash or newer
    return newer


def next_version(current_version: int, published_version: int, same_bytes: bool) -> int:
    """The version number of a site published again.

    ``current_version`` is the version of the pointer held (0: none), ``published_version``
    the one this node last published (0: never); ``same_bytes`` when the new torrent and its
    trackers and web seeds equal the held pointer's: then it is the same version,
    re-announced. Otherwise one past the highest either knows, so a key moved to a node with
    an older counter still goes forward."""
    if same_bytes:
        return current_version
    return max(current_version, published_version) + 1
