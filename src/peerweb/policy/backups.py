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

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

Endpoint = tuple[str, int]

PROOF_PIECES = 3
"""Pieces asked per challenge: a holder that kept a fraction f of a version passes with
probability about f**3 each time, and is challenged again at every check."""
PROOF_MAX_AGE = 3600.0
"""A copy proved longer ago than this no longer counts until it is proved again."""
REFUSAL_COOLDOWN = 600.0
"""A node that refused a backup (quota, load) or failed a proof is not asked again for so long."""
PENDING_PATIENCE = 900.0
"""A node that agreed to hold a backup and has not proved it yet counts as on its way (no
one is asked in its place) for so long; then others are asked."""
MAX_ASKED_PIECES = 8
"""The most pieces a holder reads for one challenge (a challenger asks ``PROOF_PIECES``)."""
FORGET_AFTER = 86400.0
"""A holder that failed (or refused) and has not been heard of since for so long is
forgotten: not challenged again, not shown (it may be asked again like any stranger)."""
RENEW_EVERY = 600.0
"""A holder of a complete copy is asked again this often, which renews its mirror lease (a
volunteer pins a site for ``NodeConfig.mirror_lease`` after each request, 30 min by default)."""
CHECK_SOON = 60.0
"""How often a backup short of copies (or with copies on their way) is checked..."""
CHECK_LATER = 600.0
"""... and one with all its copies proved: well within ``PROOF_MAX_AGE``."""


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
    asked_at: float | None = None
    """When it last agreed to hold the backup (its answer to a request for help)."""


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


def _failed_last(copy: Copy) -> bool:
    """Whether the last thing heard of the holder was a failure (or a refusal)."""
    if copy.failed_at is None:
        return False
    return all(copy.failed_at >= t for t in (copy.proved_at, copy.asked_at) if t is not None)


def on_its_way(copy: Copy, version: int, now: float,
               patience: float = PENDING_PATIENCE) -> bool:
    """Whether the holder agreed to hold ``version`` lately and may still be fetching it."""
    return (copy.asked_at is not None and now - copy.asked_at < patience
            and not _failed_last(copy) and not is_complete(copy, version, now)
            and (copy.proved_at is None or copy.asked_at > copy.proved_at
                 or copy.version < version))


def freshness(copy: Copy, version: int, now: float) -> dict[str, object]:
    """How one copy stands, for ``peerweb backup status``."""
    state = ("complete" if is_complete(copy, version, now)
             else "failed" if _failed_last(copy)
             else "fetching" if on_its_way(copy, version, now)
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
    copies (less those on their way), never one that holds a complete copy already or is
    fetching one, nor one that refused or failed within ``cooldown``. A holder that is
    merely behind (an older version) is asked first: it has most pieces already."""
    coming = [c for c in copies if on_its_way(c, version, now)]
    need = missing(copies, version, replicas, now) - len(coming)
    if need <= 0:
        return []
    known = {c.holder: c for c in copies}
    usable = []
    for endpoint in dict.fromkeys(candidates):
        copy = known.get(endpoint)
        if copy is not None and (is_complete(copy, version, now)
                                 or on_its_way(copy, version, now)):
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


def to_challenge(copies: Sequence[Copy], claimed: Sequence[Endpoint], version: int,
                 now: float, cooldown: float = REFUSAL_COOLDOWN) -> list[Endpoint]:
    """Holders to challenge now: every holder known (a complete copy is proved again at
    each check), and every node whose load report ``claimed`` the version, except those
    that failed within ``cooldown`` and have not agreed to hold it since."""
    known = {c.holder: c for c in copies}
    chosen = []
    for endpoint in dict.fromkeys([*known, *claimed]):
        copy = known.get(endpoint)
        if copy is not None and _failed_last(copy) and copy.failed_at is not None \
                and now - copy.failed_at < cooldown and endpoint not in claimed:
            continue
        chosen.append(endpoint)
    return chosen


def proved(copy: Copy, version: int, now: float) -> Copy:
    return replace(copy, version=version, proved_at=now, reason="")


def failed(copy: Copy, now: float, reason: str) -> Copy:
    return replace(copy, failed_at=now, reason=reason)


def agreed(copy: Copy, now: float) -> Copy:
    return replace(copy, asked_at=now, reason="")


def check_proof(expected: Sequence[tuple[int, bytes]], answer: bytes) -> str | None:
    """Why ``answer`` (the challenged pieces' bytes, one after another) is no proof, or None
    when it is: each piece is ``expected``'s size and matches its SHA-1 (v1 piece hashes)."""
    if len(answer) != sum(size for size, _sha1 in expected):
        return (f"answered {len(answer)} bytes for pieces of "
                f"{sum(size for size, _sha1 in expected)}")
    at = 0
    for number, (size, sha1) in enumerate(expected):
        if hashlib.sha1(answer[at:at + size]).digest() != sha1:
            return f"challenged piece {number + 1} of {len(expected)} fails its SHA-1"
        at += size
    return None


def valid_challenge(pieces: object, count: int,
                    limit: int = MAX_ASKED_PIECES) -> list[int] | None:
    """The holder's side: the piece indexes asked, if they are distinct integers below
    ``count`` and at most ``limit`` of them; None for anything else."""
    if not isinstance(pieces, list) or not 0 < len(pieces) <= limit:
        return None
    if not all(type(p) is int and 0 <= p < count for p in pieces):
        return None
    return pieces if len(set(pieces)) == len(pieces) else None


def next_check(copies: Sequence[Copy], version: int, replicas: int, now: float,
               soon: float = CHECK_SOON, later: float = CHECK_LATER) -> float:
    """Seconds until a backup is checked again: ``soon`` while it lacks copies or some are
    on their way, else ``later``."""
    if missing(copies, version, replicas, now) or any(on_its_way(c, version, now)
                                                      for c in copies):
        return soon
    return later


def to_renew(copies: Sequence[Copy], version: int, now: float, reachable: Sequence[Endpoint],
             every: float = RENEW_EVERY) -> list[Endpoint]:
    """Holders of complete copies to ask again (renewing their lease): those ``reachable``
    (their load report answered) not asked within ``every``."""
    return [c.holder for c in complete(copies, version, now)
            if c.holder in reachable and (c.asked_at is None or now - c.asked_at >= every)]


def remembered(copies: Sequence[Copy], now: float,
               forget_after: float = FORGET_AFTER) -> list[Copy]:
    """The copies still worth knowing: all but those whose last news, a failure, is older
    than ``forget_after``."""
    return [c for c in copies if not (_failed_last(c) and c.failed_at is not None
                                      and now - c.failed_at > forget_after)]
