"""Which copy of a page to believe, and which holders to stop asking.

An unaware site signs nothing: a copy is only as good as the holders that vouch for it.
Holders answer with the digest of their copy's manifest (see copies.py) and when they fetched
it. The decision (``choose``):

- holders are counted by host address, so one machine answering on many ports is one voice
  (a flood of fake holders from one address counts once);
- a version is *eligible* when at least ``k`` independent hosts vouch for it; this node's own
  copy (fetched by itself) counts as one of them;
- among eligible versions the newest wins, where a version's time is the ``k``-th newest of
  its vouchers' fetch times (one liar claiming a late fetch cannot make it look newer);
- with no eligible version, this node's own copy is shown if it has one (it is the user's
  own fetch), with ``agreeing`` saying how many vouched;
- a host whose different copy was fetched *between* two fetches of the chosen version is
  contradicted: the page cannot have been different then (unless it changed and changed
  back, a price paid for a simple rule). So is a host that claims a fetch in the future.

Whoever serves a body that does not match the chosen manifest is caught too (service.py);
``Reputation`` remembers the caught hosts so they are not asked again.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Endpoint = tuple[str, int]
# The pseudo-host of this node's own copy.
SELF = "self"
# A holder may claim a fetch this far in the future of our clock before it is not believed.
CLOCK_SKEW = 300
# How many holders one lookup asks at most (all at once; a manifest is small).
MAX_ASKED = 12
# A caught host is not asked again for this long, and at most this many are remembered.
BAN_SECONDS = 7 * 24 * 3600.0
MAX_BANNED = 4096


@dataclass(frozen=True)
class Answer:
    """One holder's answer: its copy's manifest digest and fetch time."""

    holder: Endpoint
    digest: str
    fetched_at: int


@dataclass(frozen=True)
class Choice:
    """The version to show, or why none."""

    digest: str | None
    agreeing: int = 0
    """Independent hosts vouching for ``digest``."""
    fetched_at: int | None = None
    """The version's fetch time as shown (the ``k``-th newest of its vouchers')."""
    vouchers: tuple[Endpoint, ...] = ()
    """Holders that vouched for it (not this node), to fetch its bodies from."""
    contradicted: tuple[Endpoint, ...] = ()
    """Holders caught with a copy the chosen one contradicts."""
    reason: str = ""


def _host(endpoint: Endpoint) -> str:
    return endpoint[0]


def choose(answers: Iterable[Answer], own: Answer | None, k: int, now: float) -> Choice:
    """The version to show among holders' ``answers`` and this node's ``own`` copy."""
    answers = list(answers)
    liars = [a.holder for a in answers if a.fetched_at > now + CLOCK_SKEW]
    believable = [a for a in answers if a.fetched_at <= now + CLOCK_SKEW]
    times: dict[str, dict[str, int]] = {}  # digest -> host -> newest fetch time
    holders: dict[str, list[Endpoint]] = {}
    for answer in believable + ([own] if own is not None else []):
        host = SELF if answer is own else _host(answer.holder)
        by_host = times.setdefault(answer.digest, {})
        by_host[host] = max(by_host.get(host, 0), answer.fetched_at)
        if answer is not own:
            holders.setdefault(answer.digest, []).append(answer.holder)

    def when(digest: str) -> int:
        ordered = sorted(times[digest].values(), reverse=True)
        return ordered[min(k, len(ordered)) - 1]

    eligible = [d for d, hosts in times.items() if len(hosts) >= k]
    if eligible:
        chosen = max(eligible, key=lambda d: (when(d), len(times[d]), d))
    elif own is not None:
        chosen = own.digest
    else:
        best = max((len(h) for h in times.values()), default=0)
        return Choice(None, agreeing=best, contradicted=tuple(liars),
                      reason=("no holder answered" if not times else
                              f"no copy has {k} independent holders agreeing"))
    vouched = sorted(times[chosen].values())
    first, last = vouched[0], vouched[-1]
    for answer in believable:
        if answer.digest != chosen and first < answer.fetched_at < last:
            liars.append(answer.holder)
    return Choice(chosen, agreeing=len(times[chosen]), fetched_at=when(chosen),
                  vouchers=tuple(dict.fromkeys(holders.get(chosen, []))),
                  contradicted=tuple(dict.fromkeys(liars)))


class Reputation:
    """Hosts caught serving a contradicted or altered copy, and hosts whose copies held up.
    ``now`` is passed in."""

    def __init__(self, ban_seconds: float = BAN_SECONDS, capacity: int = MAX_BANNED) -> None:
        self.ban_seconds = ban_seconds
        self.capacity = capacity
        self._banned: dict[str, float] = {}
        self._good: dict[str, int] = {}

    def caught(self, endpoint: Endpoint, now: float) -> None:
        host = _host(endpoint)
        self._banned.pop(host, None)
        self._banned[host] = now + self.ban_seconds
        self._good.pop(host, None)
        while len(self._banned) > self.capacity:
            del self._banned[next(iter(self._banned))]

    def vouched(self, endpoint: Endpoint) -> None:
        host = _host(endpoint)
        if host not in self._banned and len(self._good) < self.capacity:
            self._good[host] = self._good.get(host, 0) + 1

    def avoided(self, endpoint: Endpoint, now: float) -> bool:
        until = self._banned.get(_host(endpoint))
        if until is None:
            return False
        if until <= now:
            del self._banned[_host(endpoint)]
            return False
        return True

    def standing(self, endpoint: Endpoint) -> int:
        """How often this host's copies held up (0: unknown)."""
        return self._good.get(_host(endpoint), 0)

    def banned(self, now: float) -> list[str]:
        return [h for h, until in self._banned.items() if until > now]


def pick_holders(found: Sequence[Endpoint], own: Endpoint | None, reputation: Reputation,
                 now: float, rng: random.Random, limit: int = MAX_ASKED) -> list[Endpoint]:
    """Whom to ask among the holders the DHT named: one endpoint per host, never this node
    nor an avoided host, hosts whose copies held up before first, the rest in random order
    (so the order in which a flood of fake holders is listed wins them nothing)."""
    by_host: dict[str, Endpoint] = {}
    shuffled = list(found)
    rng.shuffle(shuffled)
    for endpoint in shuffled:
        if endpoint == own or reputation.avoided(endpoint, now):
            continue
        by_host.setdefault(_host(endpoint), endpoint)
    ordered = sorted(by_host.values(), key=lambda e: -reputation.standing(e))
    return ordered[:limit]
