"""What a node keeps on disk and what it lets go: pure policy, no I/O.

A node keeps every snapshot it publishes and every pinned site (``protected``). Visited
snapshots fill the disk quota, the least recently used going first, but the most recently
used one always stays: a visitor is looking at it (``to_evict``). Once a site's current
version is complete, the older versions held here go (``superseded``). A metered node pauses
the torrents of visited sites nobody has looked at for a while (``idle_to_pause``) and seeds
only what it publishes or pins (``seeds``). A volunteer's pin for an origin in need lasts a
lease (``expired_leases``).

Times are seconds on whichever clock the caller keeps the matching values on.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence


def protected(published: Iterable[str], pinned: Iterable[str]) -> set[str]:
    """Snapshots never evicted: those of sites this node publishes, and of pinned sites."""
    return {*published, *pinned}


def eviction_order(last_used: Mapping[str, float], candidates: Iterable[str]) -> list[str]:
    """``candidates`` least recently used first (never used: first of all)."""
    return sorted(candidates, key=lambda tid: last_used.get(tid, 0.0))


def to_evict(sizes: Mapping[str, int], last_used: Mapping[str, float], quota: int) -> list[str]:
    """Which of the evictable snapshots (``sizes``: bytes on disk of each) to evict, in
    order, so that the rest fit in ``quota`` bytes.

    The most recently used one stays even when it alone exceeds the quota."""
    left = sum(sizes.values())
    evicted: list[str] = []
    for tid in eviction_order(last_used, sizes)[:-1]:
        if left <= quota:
            break
        left -= sizes[tid]
        evicted.append(tid)
    return evicted


def superseded(complete: str, current: str, pinned: bool, history: Sequence[str],
               held: Container[str], keep: Container[str]) -> list[str]:
    """Versions of one site to drop now that snapshot ``complete`` is whole.

    Only when ``complete`` is the site's ``current`` version and the site is not pinned:
    every other version in its ``history`` (info-hashes, oldest first) that is ``held``
    here and not in ``keep`` (``protected``)."""
    if current != complete or pinned:
        return []
    return [tid for tid in history if tid != complete and tid in held and tid not in keep]


def idle_to_pause(last_used: Mapping[str, float], held: Iterable[str], keep: Container[str],
                  paused: Container[str], busy: Container[str], now: float,
                  idle_after: float) -> list[str]:
    """Metered mode: the held snapshots to pause, unused for at least ``idle_after``.

    Never a protected one (``keep``), one already ``paused``, or one a reader is waiting on
    (``busy``)."""
    return [tid for tid in held
            if tid not in keep and now - last_used.get(tid, 0.0) >= idle_after
            and tid not in paused and tid not in busy]


def seeds(metered: bool, published: bool, pinned: bool) -> bool:
    """Whether a node offers a site to others: a metered node only its own and pinned ones."""
    return not metered or published or pinned


def expired_leases(mirrored_until: Mapping[str, float], now: float) -> list[str]:
    """Volunteer mode: sites whose mirror lease (its end time; 0 for none) has run out."""
    return [site_id for site_id, until in mirrored_until.items() if until and now > until]
