"""Which volunteer mirrors an origin in need sends visitors to, and which it asks to help:
pure policy, no I/O.

Volunteers report their load (upload rate over capacity; None when unlimited, counted as
idle) and the version of each site they hold (``Node.load_report``). Those holding the
site's current version are ready at once. If fewer than ``wanted`` are, some of the others
are asked to mirror it, each the lighter of two drawn at random (``to_ask``); a volunteer
that answers with the current version is ready too. Visitors go to the ready ones, least
loaded first.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

Report = Mapping[str, Any]
"""A volunteer's load report: ``load`` (float or None), ``sites`` (site id -> version)."""


def load_of(report: Report) -> float:
    """A volunteer's load; one without an upload limit reports None and counts as idle."""
    return float(report["load"] or 0.0)


def holding(reports: Sequence[Report], site_id: str, version: int) -> list[Report]:
    """The volunteers that hold ``version`` of the site, in report order."""
    return [r for r in reports if r["sites"].get(site_id) == version]


def to_ask(reports: Sequence[Report], site_id: str, version: int, wanted: int,
           rng: random.Random | None = None) -> list[Report]:
    """Volunteers without ``version`` of the site to ask, as many as it takes to reach
    ``wanted`` ready ones (none when enough are ready), each the lighter of two drawn at
    random from those not yet chosen.

    Not simply the least loaded: origins in need come in crowds, they read the same load
    reports (stale by the time they act), and all asked the same few volunteers (622 of
    1,000 origins the same one, docs/simulator.md). The lighter of two random choices keeps
    most of the benefit of knowing the loads while spreading the asks (Mitzenmacher, "The
    power of two choices in randomized load balancing", 2001)."""
    missing = wanted - len(holding(reports, site_id, version))
    if missing <= 0:
        return []
    spare = [r for r in reports if r["sites"].get(site_id) != version]
    draw = rng or random
    chosen: list[Report] = []
    while spare and len(chosen) < missing:
        picks = draw.sample(range(len(spare)), min(2, len(spare)))
        best = min(picks, key=lambda i: load_of(spare[i]))  # a tie: the first drawn
        chosen.append(spare.pop(best))
    return chosen


def took(asked: Sequence[Report], answers: Sequence[int | None], version: int) -> list[Report]:
    """The asked volunteers whose answer (the version each now holds) is ``version``."""
    return [r for r, answer in zip(asked, answers, strict=True) if answer == version]


def ranked(ready: Sequence[Report]) -> list[Report]:
    """Ready volunteers least loaded first (equal loads keep their order)."""
    return sorted(ready, key=load_of)


# -- the volunteer's side: what it agrees to mirror ------------------------------------------

# Sites one requester address may have this volunteer mirror at the same time: an origin
# asks for its own site (or a few); more is someone spending the volunteer's disk.
MAX_SITES_PER_REQUESTER = 3
# A volunteer whose upload runs at this share of its capacity or more takes no new site:
# its visitors would get less than the origin in need hopes for.
BUSY_LOAD = 0.9
# How long a chain of renewed mirror leases may last, in leases: requests for help keep a
# site pinned for at most this many leases in a row (then it is evictable like any visit).
MAX_LEASE_RENEWALS = 8


def fits_disk(size: int, committed: int, quota: int) -> bool:
    """Whether a site of ``size`` bytes fits beside the ``committed`` bytes of the sites
    the quota cannot evict (published, pinned, mirrored) within ``quota`` bytes."""
    return size >= 0 and committed + size <= quota


def has_upload_room(upload_rate: int, capacity: int, busy: float = BUSY_LOAD) -> bool:
    """Whether a volunteer uploading ``upload_rate`` B/s of its ``capacity`` (0: unlimited)
    can take another site."""
    return capacity <= 0 or upload_rate < busy * capacity


def requester_may_ask(asked_for: set[str], site_id: str,
                      limit: int = MAX_SITES_PER_REQUESTER) -> bool:
    """Whether a requester already mirrored for (``asked_for``: its live leases) may have
    ``site_id`` mirrored too (renewing one of its own is always fine)."""
    return site_id in asked_for or len(asked_for) < limit


def renew_lease(since: float, until: float, now: float, lease: float,
                renewals: int = MAX_LEASE_RENEWALS) -> tuple[float, float]:
    """A mirror lease after a request for help at ``now``: (start of the chain, end).

    A lease that has run out (``until`` 0 or past) starts a new chain; a live one is extended
    by ``lease``, but never past ``renewals`` leases after the chain started, so strangers
    asking again and again cannot keep a site pinned forever."""
    if not until or now > until or not since:
        return now, now + lease
    return since, min(now + lease, since + renewals * lease)
