"""Backups of the user's own folders (issue 20): how many complete copies a backup has,
how fresh each is, which nodes to ask when they are too few, and which pieces to ask a
holder for as proof. Pure: plain values in (and ``now``, seconds since the epoch), plain
values out; ``node.backups`` carries the answers out.

A copy counts as **complete** only while its holder proved it: it answered a challenge
(the bytes of ``PROOF_PIECES`` pieces drawn at random, each checked against the torrent's
SHA-1) for the backup's newest version within ``PROOF_MAX_AGE``. A holder's own word (its
load report says it holds the version) makes it a candidate, never a copy: one that lies
fails the challenge and is counted as failed, and others are asked in its place.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Endpoint = tuple[str, int]

PROOF_PIECES = 3
"""Pieces asked per challenge: a holder that kept a fraction f of a version passes with
probability about f**3 each time, and is challenged again at every check."""
PROOF_MAX_AGE = 3600.0
"""A copy proved longer ago than this no longer counts until it is proved again."""
REFUSAL_COOLDOWN = 600.0
"""A node that refused a backup (quota, load) or failed a proof is not asked again for so long."""


@dataclass(frozen=True)
class Copy:
    """What this node knows of one holder's copy of a backup."""

    holder: Endpoint
    version: int
    """The version it last proved it holds (0: none yet)."""
    proved_at: float | None
    """When it last passed a challenge for ``version``."""
    failed_at: float | None = None
    """When it last failed one (or refused to answer): not counted, not asked again soon."""
    reason: str = ""


def is_complete(copy: Copy, version: int, now: float, max_age: float = PROOF_MAX_AGE) -> bool:
    """Whether ``copy`` counts as a complete copy of ``version``."""
    if copy.version != version or copy.proved_at is None:
        return False
    if copy.failed_at is not None and copy.failed_at >= copy.proved_at:
        return False
    return now - copy.proved_at <= max_age


def complete(copies: Sequence[Copy], version: int, now: float,
             max_age: float = PROOF_MAX_AGE) -> list[Copy]:
    return [c for c in copies if is_complete(c, version, now, max_age)]


def freshness(copy: Copy, version: int, now: float) -> dict[str, object]:
    """How one copy stands, for ``peerweb backup status``."""
    state = ("complete" if is_complete(copy, version, now)
             else "failed" if copy.failed_at is not None
             and (copy.proved_at is None or copy.failed_at >= copy.proved_at)
             else "stale" if copy.proved_at is not None else "unproved")
    return {
        "holder": f"{copy.holder[0]}:{copy.holder[1]}",
        "state": state,
        "version": copy.version,
        "versions_behind": max(0, version - copy.version),
        "proved_ago": None if copy.proved_at is None else round(now - copy.proved_at, 1),
        "reason": copy.reason,
    }


def missing(copies: Sequence[Copy], version: int, replicas: int, now: float) -> int:
    """How many more complete copies the backup needs."""
    return max(0, replicas - len(complete(copies, version, now)))


def to_ask(candidates: Sequence[Endpoint], copies: Sequence[Copy], version: int,
           replicas: int, now: float, loads: Mapping[Endpoint, float] | None = None,
           cooldown: float = REFUSAL_COOLDOWN) -> list[Endpoint]:
    """Nodes to ask to hold the backup, least loaded first: as many as it lacks complete
    copies, never one that holds a complete copy already, nor one that refused or failed
    within ``cooldown``. A holder that is merely behind (an older version) is asked first:
    it has most pieces already."""
    need = missing(copies, version, replicas, now)
    if need == 0:
        return []
    known = {c.holder: c for c in copies}
    usable = []
    for endpoint in dict.fromkeys(candidates):
        copy = known.get(endpoint)
        if copy is not None and is_complete(copy, version, now):
            continue
        if copy is not None and copy.failed_at is not None and now - copy.failed_at < cooldown:
            continue
        usable.append(endpoint)
    load = loads or {}
    behind = {c.holder for c in copies if c.proved_at is not None and c.version < version}
    usable.sort(key=lambda e: (e not in behind, load.get(e, 0.0)))
    return usable[:need]


def challenge(pieces: int, rng: random.Random | None = None,
              count: int = PROOF_PIECES) -> list[int]:
    """Distinct piece indexes to ask a holder for (all of them if there are few)."""
    draw = rng or random.SystemRandom()
    return sorted(draw.sample(range(pieces), min(count, pieces)))


def keep_versions(versions: Sequence[int], keep: int) -> list[int]:
    """The versions of a backup worth restoring with ``--version``: the newest ``keep``."""
    return sorted(set(versions))[-keep:] if keep > 0 else []
